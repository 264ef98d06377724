"""A run whose final phase (evaluation, samples, final files) fails after all its epochs
trained keeps the checkpoint of its last epoch: `train` says so, and that
`train --resume RUN` finishes it without training again; `evaluate` and the other
commands that want a finished run give the same advice, never "train again"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gencompile.errors import RunError

FAILURE = "fd_digits is NaN: the samples' covariance is singular; raise evaluation.num_samples"
QUICK = ["--set", "training.epochs=2", "--set", "evaluation.metrics=[elbo]", "--quiet"]

RunCli = Callable[..., tuple[int, str, str]]


def fail_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every family's evaluation raises FAILURE (a singular covariance, say)."""
    from gencompile.runtime import evaluation

    def fail(self: object, model: object, data: object, config: object) -> None:
        raise RunError(FAILURE)

    monkeypatch.setattr(evaluation.FamilyEvaluation, "__call__", fail)


def stop_in_epoch_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """keras.Model.fit raises when epoch 2 begins (epoch 1 is checkpointed)."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            if epoch == 1:
                raise RunError("stopped in epoch 2")

    fit = keras.Model.fit

    def fit_until_stopped(self: keras.Model, *args: object, callbacks=(), **kwargs: object):
        return fit(self, *args, callbacks=[*callbacks, Stop()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_until_stopped)


def the_run(runs: Path) -> Path:
    (run,) = [p for p in runs.glob("*/*") if p.is_dir()]
    return run


def status(run: Path) -> str:
    return str(json.loads((run / "status.json").read_text())["status"])


def trained_then_failed(run_cli: RunCli, spec: Path, runs: Path, monkeypatch) -> Path:
    """A 2-epoch run whose evaluation failed after its epochs; its `train` output checked."""
    with monkeypatch.context() as patch:
        fail_evaluation(patch)
        code, out, err = run_cli("train", str(spec), *QUICK, "--runs-dir", str(runs))
    run = the_run(runs)
    assert (code, out) == (1, ""), err
    assert err == (
        f"note: {run} trained all its 2 epochs and keeps the checkpoint of epoch 2; once the "
        f"cause is fixed, `gencompile train --resume {run}` evaluates it and writes its "
        "final files without training those epochs again\n"
        f"error: {FAILURE}\n"
    )
    assert status(run) == "failed"
    assert (run / "checkpoints" / "epoch-0002.json").is_file()
    assert not (run / "metrics.json").exists()
    return run


def test_a_run_failed_after_its_epochs_says_a_resume_trains_none_again(
    run_cli: RunCli, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = trained_then_failed(run_cli, tiny_vae_spec, tmp_path / "runs", monkeypatch)
    history = (run / "history.csv").read_text()

    # Fixed: the resume trains no epoch (history.csv as it was) and finishes the run.
    code, _, err = run_cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    assert status(run) == "finished"
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert (run / "history.csv").read_text() == history


def test_evaluate_and_sample_advise_the_resume_that_trains_no_epoch_again(
    run_cli: RunCli, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "fix it and train again", which would throw the epochs away."""
    run = trained_then_failed(run_cli, tiny_vae_spec, tmp_path / "runs", monkeypatch)
    refusal = (
        f"error: {run} has not finished training (status: failed): it trained all its 2 "
        f"epochs, but its evaluation or final files failed (see {run / 'status.json'} for "
        f"the error): once that is fixed, `gencompile train --resume {run}` evaluates it "
        "and writes its final files without training those epochs again\n"
    )
    assert run_cli("evaluate", str(run)) == (1, "", refusal)
    assert run_cli("sample", str(run), "-n", "4", "-o", str(tmp_path / "s.npz")) == (
        1,
        "",
        refusal,
    )


def test_a_run_failed_in_an_epoch_gets_no_such_note(
    run_cli: RunCli, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped before its last epoch, a resume trains on: no "without training" note."""
    runs = tmp_path / "runs"
    with monkeypatch.context() as patch:
        stop_in_epoch_2(patch)
        code, _, err = run_cli("train", str(tiny_vae_spec), *QUICK, "--runs-dir", str(runs))
    assert (code, err) == (1, "error: stopped in epoch 2\n")
    run = the_run(runs)
    assert status(run) == "failed"
    code, _, err = run_cli("evaluate", str(run))
    assert code == 1
    assert err == (
        f"error: {run} has not finished training (status: failed): see "
        f"{run / 'status.json'} for the error, then fix it and train again\n"
    )


def write_run(run: Path, planned: int, checkpointed: list[int]) -> Path:
    """A run folder as far as `trained_to_the_end` reads it: its lock's planned epochs
    and its checkpoints' manifests."""
    (run / "checkpoints").mkdir(parents=True)
    lock = {"resolved_spec": {"training": {"epochs": planned}}}
    (run / "spec.lock.json").write_text(json.dumps(lock))
    for epoch in checkpointed:
        (run / "checkpoints" / f"epoch-{epoch:04d}.json").write_text("{}")
    return run


def test_only_a_run_checkpointed_at_its_planned_epochs_trained_to_the_end(tmp_path: Path) -> None:
    """Early stopping, EM's convergence or a NaN loss leave the newest checkpoint before
    the planned epochs: a resume would train on, so the run did not train to the end."""
    from gencompile.run_status import trained_to_the_end

    trained = (3, "trained all its 3 epochs")
    assert trained_to_the_end(write_run(tmp_path / "all", 3, [2, 3])) == trained
    assert trained_to_the_end(write_run(tmp_path / "early", 5, [2, 3])) is None
    assert trained_to_the_end(write_run(tmp_path / "none", 2, [])) is None
    (tmp_path / "all" / "spec.lock.json").write_text("{not json")
    assert trained_to_the_end(tmp_path / "all") is None
