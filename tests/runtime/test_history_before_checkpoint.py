"""An epoch's history.csv row is written before its checkpoint: a stop between the two
(Ctrl-C while the checkpoint is written) leaves a row the resume rewrites, never a
checkpoint whose epoch has no row."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from gencompile.runtime import checkpoints, history_file
from gencompile.runtime.callbacks import NaNGuard
from gencompile.runtime.training import TrainingClock, fit_callbacks


def test_a_stop_while_the_checkpoint_is_written_keeps_the_epochs_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.training_callbacks = lambda: []  # type: ignore[attr-defined]
    training = {
        "checkpoint": {"every_epochs": 1, "keep": 1},
        "distribution": {"strategy": "none"},
        "early_stopping": None,
    }
    output = {"samples": {"count": 4, "format": "png", "every_epochs": 0}, "export": []}

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_checkpoint", interrupted)
    clock = TrainingClock(tmp_path / "checkpoints")
    made = fit_callbacks(model, None, training, output, tmp_path, NaNGuard(tmp_path), clock)
    x = np.zeros((4, 2), "float32")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[clock, *made])
    assert list(history_file.read_epochs(tmp_path / "history.csv")) == [1]
