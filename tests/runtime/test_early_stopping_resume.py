"""Early stopping's state is part of each checkpoint (its best value and epoch, the epochs
waited, and the best weights in a file of their own), so a resumed run ends with the
weights, `restored_epoch` and metrics of the uninterrupted run: one interrupted in its
epochs, and one whose evaluation failed after them (finished by a resume that trains no
epoch). A checkpoint that records no state (an older gencompile's) resumes as before,
with a warning only where it is true."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import callbacks as cb
from gencompile.runtime import checkpoints
from gencompile.runtime.checkpoint_files import Stopping, best_weights_path, listed, stopping

RunCli = Callable[..., tuple[int, str, str]]

# The loss rises every epoch, and "max" makes its first epoch the best: the run trains all
# 3 epochs (patience 5) and keeps epoch 1's weights.
SPEC = """\
spec_version: 1
name: es-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
training:
  epochs: 3
  checkpoint: {every_epochs: 1, keep: 3}
  early_stopping: {monitor: loss, mode: max, patience: 5}
evaluation:
  metrics: [elbo]
output:
  samples: {count: 16, format: png}
"""
LEGACY_WARNING = "early stopping chooses the best weights among the epochs trained after"


def stop_when_epoch_begins(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """keras.Model.fit raises when (1-based) epoch `number` begins."""

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            if epoch == number - 1:
                raise RunError(f"stopped in epoch {number}")

    fit = keras.Model.fit

    def fit_until_stopped(self: keras.Model, *args: object, callbacks=(), **kwargs: object):
        return fit(self, *args, callbacks=[*callbacks, Stop()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_until_stopped)


def fail_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    from gencompile.runtime import evaluation

    def fail(self: object, model: object, data: object, config: object) -> None:
        raise RunError("simulated evaluation failure; fix it")

    monkeypatch.setattr(evaluation.FamilyEvaluation, "__call__", fail)


def train_broken(run_cli: RunCli, spec: Path, runs: Path, break_it: Callable[[], None]) -> Path:
    """A run that `break_it` made fail, then resumed; the resume's stderr is checked."""
    break_it()
    code, _, err = run_cli("train", str(spec), "--runs-dir", str(runs), "--quiet")
    assert code == 1, err
    (run,) = runs.glob("*/*")
    return run


def record(run: Path) -> dict[str, object]:
    found = json.loads((run / "metrics.json").read_text())
    return {key: found.get(key) for key in ("weights_sha256", "restored_epoch", "metrics")}


@pytest.mark.slow
def test_a_resumed_run_keeps_the_uninterrupted_runs_best_epoch(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "es_vae.yaml"
    spec.write_text(SPEC)
    code, _, err = run_cli("train", str(spec), "--runs-dir", str(tmp_path / "ok"), "--quiet")
    assert code == 0, err
    (uninterrupted,) = (tmp_path / "ok").glob("*/*")
    expected = record(uninterrupted)
    assert expected["restored_epoch"] == 1

    for name, break_it in (
        ("interrupted", lambda: stop_when_epoch_begins(monkeypatch, 3)),  # epoch 2 kept
        ("failed", lambda: fail_evaluation(monkeypatch)),  # all 3 kept
    ):
        with monkeypatch.context():
            run = train_broken(run_cli, spec, tmp_path / name, break_it)
        monkeypatch.undo()
        kept = listed(run / "checkpoints")[-1]
        assert kept.epoch == (2 if name == "interrupted" else 3)
        assert stopping(kept) is not None and stopping(kept).best_epoch == 1  # type: ignore[union-attr]
        code, _, err = run_cli("train", "--resume", str(run), "--quiet")
        assert code == 0, err
        assert "early stopping" not in err, err  # nothing left to warn about
        assert record(run) == expected, name


def tiny_model() -> keras.Model:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_checkpoint_records_the_state_and_its_best_weights(tmp_path: Path) -> None:
    model = tiny_model()
    best = [np.full_like(w, 7.0) for w in model.get_weights()]
    state = Stopping(best=-1.5, best_epoch=1, wait=2, best_weights=best)
    checkpoints.save_checkpoint(model, tmp_path, 3, stopping=state)
    manifest = json.loads((tmp_path / "epoch-0003.json").read_text())
    assert {k: v for k, v in manifest["early_stopping"].items() if k != "best_weights_sha256"} == {
        "best": -1.5,
        "best_epoch": 1,
        "wait": 2,
    }
    restored = checkpoints.restore_stopping(tmp_path, 3)
    assert restored is not None and (restored.best, restored.best_epoch, restored.wait) == (
        -1.5,
        1,
        2,
    )
    assert all(np.array_equal(a, b) for a, b in zip(restored.best_weights or [], best, strict=True))
    # A damaged best-weights file: no state (the checkpoint itself still resumes the model).
    best_weights_path(tmp_path, 1).write_bytes(b"damaged")
    assert checkpoints.restore_stopping(tmp_path, 3) is None
    assert checkpoints.verify(listed(tmp_path)[-1]) is None


def test_best_weights_no_kept_checkpoint_names_are_pruned(tmp_path: Path) -> None:
    model = tiny_model()
    weights = model.get_weights()
    for epoch, best in ((1, 1), (2, 2), (3, 2)):
        state = Stopping(best=float(epoch), best_epoch=best, wait=0, best_weights=weights)
        checkpoints.save_checkpoint(model, tmp_path, epoch, stopping=state)
        checkpoints.prune(tmp_path, keep=2)
    assert [c.epoch for c in listed(tmp_path)] == [2, 3]
    assert not best_weights_path(tmp_path, 1).exists()  # named by epoch 1's only
    assert best_weights_path(tmp_path, 2).is_file()


def test_an_older_checkpoint_warns_only_what_is_true(tmp_path: Path) -> None:
    """No state recorded: a fit that trains on warns that the best is chosen among its own
    epochs; a resume that trains none warns that the run keeps its last epoch's weights."""
    model = tiny_model()
    cb.resumed_from(model, 3, None)
    stopping_cb = cb.EarlyStopping(3, monitor="loss", restore_best_weights=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stopping_cb.finish(model)
    (warned,) = [str(w.message) for w in caught]
    assert LEGACY_WARNING not in warned
    assert "keeps the weights of epoch 3, not necessarily those of its best epoch" in warned
    assert cb.restored_epoch(model) is None
    stopping_cb.set_model(model)
    with pytest.warns(UserWarning, match=LEGACY_WARNING):
        stopping_cb.on_train_begin()


def test_a_recorded_state_is_restored_by_a_resume_that_trains_no_epoch(tmp_path: Path) -> None:
    model = tiny_model()
    best = [np.full_like(w, 7.0) for w in model.get_weights()]
    cb.resumed_from(model, 3, Stopping(best=-1.5, best_epoch=1, wait=2, best_weights=best))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cb.EarlyStopping(3, monitor="loss", restore_best_weights=True).finish(model)
    assert cb.restored_epoch(model) == 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best, strict=True))


def failed_run(run: Path, manifest: dict[str, object], restores: bool = True) -> Path:
    """A run folder that trained its 3 epochs, as `failed_advice` reads it."""
    (run / "checkpoints").mkdir(parents=True)
    stopping_options = {"monitor": "loss", "restore_best_weights": restores}
    training = {"epochs": 3, "early_stopping": stopping_options}
    (run / "spec.lock.json").write_text(json.dumps({"resolved_spec": {"training": training}}))
    (run / "checkpoints" / "epoch-0003.json").write_text(json.dumps(manifest))
    return run


def test_the_advice_to_finish_says_when_an_older_checkpoint_loses_the_best(tmp_path: Path) -> None:
    """The note of a failed evaluation and `failed_advice` promise the uninterrupted
    run's model only where the checkpoint records early stopping's best weights."""
    from gencompile.generated import failed_advice

    lost = "so it keeps the weights of epoch 3, not necessarily those early stopping"
    assert lost in failed_advice(failed_run(tmp_path / "older", {}))
    recorded = {"early_stopping": {"best": 1.0, "best_epoch": 1, "wait": 2}}
    recorded["early_stopping"]["best_weights_sha256"] = "0" * 64  # type: ignore[index]
    assert lost not in failed_advice(failed_run(tmp_path / "recorded", recorded))
    assert lost not in failed_advice(failed_run(tmp_path / "kept", {}, restores=False))
    assert "without training those epochs again" in failed_advice(tmp_path / "older")


def test_a_discarded_continuation_puts_back_the_best_weights_its_checkpoint_names(
    tmp_path: Path,
) -> None:
    """The finished run's checkpoint is kept beside a continuation with the best-weights file
    its manifest names: put back, the run's early stopping state restores whole."""
    from gencompile.continuation import (
        KEPT_CHECKPOINT,
        _restore_checkpoint,
        keep_checkpoint,
        pending_folder,
    )

    run = tmp_path / "run"
    folder = run / "checkpoints"
    model = tiny_model()
    state = Stopping(best=-1.0, best_epoch=1, wait=1, best_weights=model.get_weights())
    checkpoints.save_checkpoint(model, folder, 2, stopping=state)
    keep_checkpoint(run, 2)
    for path in folder.glob("*.*"):  # the continuation pruned them as it trained on
        path.unlink()
    assert _restore_checkpoint(folder, pending_folder(run) / KEPT_CHECKPOINT, 2)
    restored = checkpoints.restore_stopping(folder, 2)
    assert restored is not None and restored.best_epoch == 1


@pytest.mark.slow  # three tiny trainings
def test_a_run_early_stopping_ended_whose_evaluation_failed_resumes_without_training(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early stopping ends the fit after epoch 2 of 5; the evaluation then fails. The
    resume used to train epochs 3-5, which the uninterrupted run never trained."""
    spec = tmp_path / "es_vae.yaml"
    spec.write_text(SPEC)
    stops = ["--set", "training.epochs=5", "--set", "training.early_stopping.patience=1"]
    runs = tmp_path / "ok"
    code, _, err = run_cli("train", str(spec), *stops, "--runs-dir", str(runs), "--quiet")
    assert code == 0, err
    (uninterrupted,) = runs.glob("*/*")
    assert json.loads((uninterrupted / "metrics.json").read_text())["epochs"] == 2

    with monkeypatch.context() as patch:
        fail_evaluation(patch)
        runs = tmp_path / "failed"
        code, _, err = run_cli("train", str(spec), *stops, "--runs-dir", str(runs), "--quiet")
    (run,) = runs.glob("*/*")
    assert code == 1
    assert f"note: {run} was stopped by early stopping after epoch 2 and keeps the " in err
    assert stopping(listed(run / "checkpoints")[-1]).stopped  # type: ignore[union-attr]
    history = (run / "history.csv").read_text()

    code, _, err = run_cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    assert (run / "history.csv").read_text() == history  # no epoch trained
    assert record(run) == record(uninterrupted)
    # Finished, its metrics.json lost: the resume writes it again, training nothing.
    (run / "metrics.json").unlink()
    code, _, err = run_cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    assert record(run) == record(uninterrupted)


def test_a_checkpoint_records_that_early_stopping_ended_the_fit_there(tmp_path: Path) -> None:
    from gencompile.run_status import trained_to_the_end

    model = tiny_model()
    checkpoints.save_checkpoint(model, tmp_path, 2, stopping=Stopping(1.0, 1, 1, stopped=True))
    assert json.loads((tmp_path / "epoch-0002.json").read_text())["early_stopping"]["stopped"]
    state = checkpoints.restore_stopping(tmp_path, 2)
    assert state is not None and state.stopped
    cb.resumed_from(model, 2, state)
    assert cb.stopped_at(model, 2)
    assert not cb.stopped_at(model, 1)  # resumed from another checkpoint
    cb.resumed_from(model, 2, Stopping(1.0, 1, 0))  # a checkpoint it went on from
    assert not cb.stopped_at(model, 2)

    run = failed_run(tmp_path / "run", {"early_stopping": {"best": 1.0, "best_epoch": 1}})
    (run / "checkpoints" / "epoch-0003.json").rename(run / "checkpoints" / "epoch-0002.json")
    assert trained_to_the_end(run) is None  # 2 of its 3 epochs, and no stop recorded
    stopped = {"best": 1.0, "best_epoch": 1, "wait": 1, "stopped": True}
    (run / "checkpoints" / "epoch-0002.json").write_text(json.dumps({"early_stopping": stopped}))
    assert trained_to_the_end(run) == (2, "was stopped by early stopping after epoch 2")
