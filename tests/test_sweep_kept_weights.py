"""A sweep's `val_*` metric is the value of the weights each trial keeps: the epoch early
stopping restored (recorded in metrics.json as `restored_epoch`, with `validated` holding
that epoch's values), never an earlier validated epoch nor a finite value before a NaN."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gencompile.errors import GencompileError, SpecError
from gencompile.report import format_value
from gencompile.sweep import metric_value, plan_sweep

SPEC = """\
spec_version: 1
name: tiny-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: bernoulli}
training:
  epochs: 3
evaluation:
  metrics: [elbo]
output:
  samples: {count: 4}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # sweeps/ goes here
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def _run(folder: Path, history: str, record: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text(history)
    (folder / "metrics.json").write_text(json.dumps(record))
    return folder


HISTORY = "epoch,loss,val_loss\n1,3.0,2.5\n2,2.0,2.0\n3,1.5,2.2\n"


def test_the_value_is_the_restored_epochs(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", HISTORY, {"metrics": {}, "epochs": 3, "restored_epoch": 2})
    assert metric_value(run, "val_loss") == 2.0  # not epoch 3's 2.2


def test_without_a_restore_the_value_is_the_last_epochs(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", HISTORY, {"metrics": {}, "epochs": 3})
    assert metric_value(run, "val_loss") == 2.2


def test_a_last_epoch_not_validated_fails_the_trial(tmp_path: Path) -> None:
    history = "epoch,loss,val_loss\n1,3.0,\n2,2.0,2.0\n3,1.5,\n"
    run = _run(tmp_path / "run", history, {"metrics": {}, "epochs": 3})
    with pytest.raises(GencompileError, match="its epoch 3, whose weights it keeps, has no val"):
        metric_value(run, "val_loss")


def test_a_non_finite_last_validation_fails_the_trial(tmp_path: Path) -> None:
    history = "epoch,loss,val_loss\n1,3.0,2.5\n2,2.0,2.0\n3,1.5,nan\n"
    run = _run(tmp_path / "run", history, {"metrics": {}, "epochs": 3})
    with pytest.raises(GencompileError, match="val_loss is nan at epoch 3"):
        metric_value(run, "val_loss")  # not epoch 2's finite 2.0


def test_a_validation_that_skips_the_last_epoch_is_refused_before_training(
    spec: Path, tmp_path: Path
) -> None:
    every = ["training.validation_every_epochs=2"]
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.latent_dim=2,3"], metric="val_loss", overrides=every)
    assert "scores each trial's last epoch (3), which validating every 2 epochs leaves out" in (
        str(info.value)
    )
    # a divisor of the epochs validates the last one: planned
    plan_sweep(spec, ["model.latent_dim=2,3"], metric="val_loss", overrides=every, epochs=4)


def test_early_stopping_with_a_validation_that_skips_epochs_is_refused_before_training(
    spec: Path,
) -> None:
    """Early stopping may keep any epoch (where it stops, the best it restores): with
    validation every 2 epochs of 4 the kept one may have no val_loss, although 2 divides 4."""
    every = [
        "training.validation_every_epochs=2",
        "training.early_stopping={monitor: loss, patience: 2}",
    ]
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.latent_dim=2,3"], metric="val_loss", overrides=every, epochs=4)
    assert "early stopping may keep any epoch, which validating every 2 epochs" in (str(info.value))
    every[0] = "training.validation_every_epochs=1"  # every epoch validated: planned
    plan_sweep(spec, ["model.latent_dim=2,3"], metric="val_loss", overrides=every, epochs=4)


def test_early_stopping_tells_the_epoch_it_restored() -> None:
    """Keras 3 restores the best epoch's weights at the end of every fit (here without
    stopping early): the callback says which, and they are the model's weights."""
    import keras
    import numpy as np

    from gencompile.runtime import callbacks as cb

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stopping = cb.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    stopping.set_model(model)
    stopping.on_train_begin()
    kept = None
    for epoch, value in enumerate([3.0, 1.0, 2.0, 4.0]):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.zeros(1, "float32")])
        kept = model.get_weights() if value == 1.0 else kept
        stopping.on_epoch_end(epoch, {"val_loss": value})
    stopping.on_train_end()
    assert cb.restored_epoch(model) == 2  # 1-based, as history.csv
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), kept or [], strict=True))
    stopping.on_train_begin()  # a new fit forgets the last one's restore
    assert cb.restored_epoch(model) is None


@pytest.mark.slow  # one training of 3 epochs and its evaluation (~10 s)
def test_a_trial_restored_by_early_stopping_is_scored_by_its_kept_weights(
    spec: Path, run_cli
) -> None:
    # mode max: the "best" val_loss is the highest, epoch 1's (the loss falls as it trains)
    stopping = "training.early_stopping={monitor: val_loss, mode: max, patience: 5}"
    args = ["--grid", "model.latent_dim=2", "--metric", "val_loss", "--set", stopping]
    code, out, err = run_cli("sweep", str(spec), *args)
    assert code == 0, err
    run = Path("sweeps/tiny-vae/trial-0000")
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert f"trial 0: val_loss {format_value(float(rows[0]['val_loss']))}" in out
    record = json.loads((run / "metrics.json").read_text())
    assert record["epochs"] == 3 and record["restored_epoch"] == 1
    assert record["validated"]["epoch"] == 1
    assert record["validated"]["val_loss"] == float(rows[0]["val_loss"])
    assert record["final"]["val_loss"] == float(rows[2]["val_loss"])  # the last epoch's own
    [summary] = csv.DictReader(Path("sweeps/tiny-vae/summary.csv").read_text().splitlines())
    assert float(summary["val_loss"]) == float(rows[0]["val_loss"])
    assert "restored epoch 1" in summary["note"]


def test_a_grid_of_epochs_that_validation_leaves_out_is_refused(spec: Path) -> None:
    every = ["training.validation_every_epochs=2"]
    with pytest.raises(SpecError) as info:  # 4 epochs are validated at 4; 3 are not
        plan_sweep(spec, ["training.epochs=4,3"], metric="val_loss", overrides=every, epochs=4)
    [problem] = info.value.problems
    assert problem.file == "--grid" and problem.message == (
        "with training.epochs=3: a val_* metric scores each trial's last epoch (3), which "
        "validating every 2 epochs leaves out"
    )
