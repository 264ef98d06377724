"""A generated train.py run by hand over a run whose continuation is pending: only the
continuation's own project trains the run, into the run folder (`--run-dir RUN`), as
gencompile runs it; the run's own code, or the continuation's project in its own folder,
is refused in one line that says how to finish (or give up) the continuation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.runtime.final_files import PENDING, check_trainer, final_folder


def run_with_pending_continuation(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / PENDING).mkdir(parents=True)
    (run / "spec.lock.json").write_text("{}")
    (run / PENDING / "spec.lock.json").write_text("{}")  # written last: the build finished
    return run


def test_the_continuations_project_trains_the_run_into_final(tmp_path: Path) -> None:
    run = run_with_pending_continuation(tmp_path)
    check_trainer(run / PENDING, run)  # as `gencompile train --resume RUN` runs it
    assert final_folder(run) == run / PENDING / "final"


def test_the_runs_own_code_is_refused_while_a_continuation_is_pending(tmp_path: Path) -> None:
    run = run_with_pending_continuation(tmp_path).resolve()
    with pytest.raises(RunError) as refused:
        check_trainer(run, run)  # `python -m pkg.train [--resume]` in the run folder
    assert str(refused.value) == (
        f"{run} has a continuation pending in {run / PENDING}, whose code alone trains the "
        f"run until it finishes: finish it with `gencompile train --resume {run}`, or give "
        f"it up with `gencompile train --resume {run} --discard-continuation`"
    )


def test_the_continuations_project_is_refused_its_own_folder(tmp_path: Path) -> None:
    run = run_with_pending_continuation(tmp_path).resolve()
    with pytest.raises(RunError) as refused:
        check_trainer(run / PENDING, run / PENDING)  # `python -m pkg.train` in its folder
    assert str(refused.value) == (
        f"{run / PENDING} is a continuation of the run {run}, waiting there until it "
        f"finishes: train it with `gencompile train --resume {run}`, not in {run / PENDING}"
    )


def test_without_a_pending_continuation_any_project_trains_its_folder(tmp_path: Path) -> None:
    run = run_with_pending_continuation(tmp_path)
    (run / PENDING / "spec.lock.json").unlink()  # a continuation's build cut short
    check_trainer(run, run)
    check_trainer(tmp_path / "project", tmp_path / "project")
    assert final_folder(run) == run


def test_a_generated_train_py_checks_before_anything_starts(tmp_path: Path) -> None:
    from gencompile.runtime.training import parse_args

    run = run_with_pending_continuation(tmp_path)
    with pytest.raises(RunError, match="has a continuation pending in"):
        parse_args(["--resume"], epochs=1, run_dir=run)
    assert parse_args(["--run-dir", str(run)], epochs=1, run_dir=run / PENDING).run_dir == run


def test_a_fresh_training_refuses_a_folder_holding_an_earlier_one(tmp_path: Path) -> None:
    """`python -m pkg.train` again in a trained project would replace its model, and a later
    --resume would restore the earlier training's newest checkpoint into the new one."""
    from gencompile.runtime.checkpoint_files import paths
    from gencompile.runtime.training import parse_args

    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    assert not parse_args([], epochs=1, run_dir=project).resume  # nothing trained yet
    paths(project / "checkpoints", 3).manifest.write_text("{}")
    (project / "history.csv").write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(RunError) as refused:
        parse_args(["--epochs", "5"], epochs=1, run_dir=project)
    assert str(refused.value) == (
        f"{project} holds an earlier training (checkpoints up to epoch 3, history.csv): "
        "continue it with --resume, train anew into another folder with --run-dir DIR, or "
        "move those files aside first"
    )
    assert parse_args(["--resume"], epochs=1, run_dir=project).resume
    paths(project / "checkpoints", 3).manifest.unlink()  # its first epoch failed: no checkpoint
    with pytest.raises(RunError) as refused:
        parse_args([], epochs=1, run_dir=project)
    assert "(history.csv): train anew into another folder with --run-dir DIR" in str(refused.value)
    other = tmp_path / "short"
    assert parse_args(["--run-dir", str(other)], epochs=1, run_dir=project).run_dir == other


def test_a_generated_train_py_run_as_a_command_says_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gencompile.runtime.training import run_as_command

    def refused() -> None:
        raise RunError("data.source.path: data file not found: points.npy")

    def interrupted() -> None:
        raise KeyboardInterrupt

    for main, code, said in (
        (refused, 1, "error: data.source.path: data file not found: points.npy\n"),
        (interrupted, 130, "interrupted\n"),
    ):
        with pytest.raises(SystemExit) as stopped:
            run_as_command(main)
        assert stopped.value.code == code
        assert capsys.readouterr().err == said
