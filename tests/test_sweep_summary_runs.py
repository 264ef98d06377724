"""The sweep summary reads each finished trial's run folder, as `compare` does: a pruned
trial that `gencompile train --resume` then trained to its end is a complete row with its
run's value (and may be the best), never the value the pruner saw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gencompile.sweep import plan_sweep
from gencompile.sweep.summary import best_row, trial_rows
from tests.conftest import SWEEP_VAE

SPEC = (
    SWEEP_VAE
    + """\
training:
  epochs: 3
sweep:
  metric: val_loss
  parameters:
    model.latent_dim: {type: int, low: 2, high: 6}
"""
)


def _trial(study, run_dir: Path, value: float, pruned: bool) -> None:
    import optuna

    trial = study.ask()
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("values", {"model.latent_dim": 2})
    trial.set_user_attr("value", value)
    if pruned:
        trial.report(value, 1)
        trial.set_user_attr("pruned_at_epoch", 1)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, value)


def _run(run_dir: Path, status: dict, epochs: int, losses: list[float]) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps(status))
    (run_dir / "metrics.json").write_text(json.dumps({"metrics": {}, "epochs": epochs}))
    rows = "".join(f"{e},{loss}\n" for e, loss in enumerate(losses, 1))
    (run_dir / "history.csv").write_text("epoch,val_loss\n" + rows)


@pytest.fixture
def plan(tmp_path: Path) -> Any:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    return plan_sweep(spec, search="optuna", sweeps_dir=tmp_path / "sweeps")


@pytest.mark.parametrize("resumed", [True, False])
def test_a_pruned_trial_trained_to_its_end_reads_as_its_run(
    tmp_path: Path, plan: Any, resumed: bool
) -> None:
    import optuna

    study = optuna.create_study(study_name=plan.name, storage=f"sqlite:///{tmp_path / 'o.db'}")
    first, second = plan.folder / "trial-0000", plan.folder / "trial-0001"
    _run(first, {"status": "finished"}, 3, [27.5, 27.0, 26.9])
    _trial(study, first, 26.9, pruned=False)
    if resumed:  # `train --resume` cleared the pruned mark and trained epochs 2 and 3
        _run(second, {"status": "finished", "pruned_after_epoch": None}, 3, [27.7, 27.2, 26.7])
    else:
        _run(second, {"status": "finished", "pruned_after_epoch": 1}, 1, [27.7])
    _trial(study, second, 27.7, pruned=True)
    row = trial_rows(study, plan)[1]
    if resumed:
        assert (row.state, row.value) == ("complete", 26.7)
        assert row.note == "pruned after epoch 1; then trained to its end by train --resume"
        assert best_row(trial_rows(study, plan), "minimize") == row
    else:
        assert (row.state, row.value, row.note) == ("pruned", 27.7, "pruned after epoch 1")
