"""metrics.json's `final` holds the last epoch's own values, never an earlier epoch's
validation (validation skips epochs); `validated` holds the last validated epoch's, with
that epoch."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from gencompile.runtime.training import history_record

nan = math.nan


def test_a_last_epoch_not_validated_has_no_val_values_under_final() -> None:
    history = {
        "loss": [33.4, 28.9, 27.5, 26.4, 26.2, 26.23],
        "val_loss": [nan, nan, nan, 26.29, nan, nan],  # validation_every_epochs: auto
        "val_kl": [nan, nan, nan, 1.80, nan, nan],
    }
    assert history_record(history) == {
        "final": {"loss": 26.23},
        "validated": {"epoch": 4, "val_loss": 26.29, "val_kl": 1.80},
    }


def test_a_validated_last_epoch_is_final_and_validated() -> None:
    history = {"loss": [3.0, 2.0], "val_loss": [2.5, 1.5]}
    assert history_record(history) == {
        "final": {"loss": 2.0, "val_loss": 1.5},
        "validated": {"epoch": 2, "val_loss": 1.5},
    }


def test_a_run_never_validated_or_with_a_lost_last_row() -> None:
    assert history_record({"loss": [3.0, 2.0]}) == {"final": {"loss": 2.0}}
    assert history_record({"loss": [3.0, 2.0], "val_loss": [nan, nan]}) == {"final": {"loss": 2.0}}
    # The last epoch's row lost (a damaged history.csv): nothing of it is "final".
    assert history_record({"loss": [3.0, nan], "val_loss": [2.5, nan]}) == {
        "final": {},
        "validated": {"epoch": 1, "val_loss": 2.5},
    }


def test_a_trained_runs_final_is_its_last_rows_values(trained_vae: Path) -> None:
    record = json.loads((trained_vae / "metrics.json").read_text())
    with open(trained_vae / "history.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    epoch = int(last.pop("epoch"))
    assert record["final"] == {k: float(v) for k, v in last.items() if v}
    if "validated" in record:
        assert record["validated"]["epoch"] <= epoch
