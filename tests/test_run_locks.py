"""Who may write a run folder at once: one training (gencompile's or its generated
train.py run by hand) or one evaluation; and a finished run trains on only as a
continuation that its lock records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.run_status import recorded
from gencompile.runtime import run_lock

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tiny_vae"  # TINY_VAE's (tests/conftest.py)

# A second process holding a folder's lock until its stdin closes (no TensorFlow).
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gencompile.runtime import run_lock
    fd = run_lock.lock_folder(Path(sys.argv[1]), run_lock.in_use)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def run(trained_vae: Path, tmp_path: Path) -> Path:
    """A copy of the session's finished one-epoch run, to write to."""
    return Path(shutil.copytree(trained_vae, tmp_path / "run"))


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder whose lock another process holds, and that process's id."""
    folder = tmp_path / "held"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_env(),
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
    try:
        yield folder, holder.pid
    finally:
        holder.communicate(timeout=30)  # stdin closed: it lets go


def _gencompile(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gencompile", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)


# F10: evaluate holds the run folder's lock.


def test_a_resume_while_the_run_is_evaluated_is_refused_naming_the_evaluation(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import runs

    seen: list[subprocess.CompletedProcess[str]] = []
    plan = runs.locked_plan

    def meanwhile(lock: dict) -> object:  # while evaluate works: a continuation starts
        seen.append(_gencompile("train", "--resume", run, "--epochs", "3", "--quiet"))
        return plan(lock)

    monkeypatch.setattr(runs, "locked_plan", meanwhile)
    before = (run / "spec.lock.json").read_text()
    runs.evaluate(run)
    refused = seen[0]
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"{run} is in use right now by process {os.getpid()}" in refused.stderr
    assert (run / "spec.lock.json").read_text() == before  # nothing continued
    assert not (run / "checkpoints" / "epoch-0002.json").exists()


def test_an_evaluation_while_the_run_trains_is_refused(run: Path) -> None:
    from gencompile.runs import evaluate

    with recorded(run), pytest.raises(RunError) as refused:  # this process trains it
        evaluate(run)
    message = str(refused.value)
    assert f"{run} is being trained right now by process {os.getpid()}" in message
    assert f"then evaluate it with `gencompile evaluate {run}`" in message


def test_evaluate_merges_nothing_into_a_run_whose_weights_changed_meanwhile(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import runs

    fingerprint = runs.trained_fingerprint

    def retrained(run_dir: Path, lock: dict) -> object:  # after the model was loaded
        record = json.loads((run / "metrics.json").read_text())
        record["weights_sha256"] = "0" * 64  # as a training finishing meanwhile would
        (run / "metrics.json").write_text(json.dumps(record))
        return fingerprint(run_dir, lock)

    monkeypatch.setattr(runs, "trained_fingerprint", retrained)
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    with pytest.raises(RunError, match="holds other weights than the ones evaluated"):
        runs.evaluate(run, metrics=["elbo"])
    record = json.loads((run / "metrics.json").read_text())
    assert record["weights_sha256"] == "0" * 64  # the new record, nothing merged into it
    assert record["metrics"] == metrics


# F6: a finished run trains on only as a continuation.


def _lock_and_status(folder: Path, epochs: int, status: str | None) -> None:
    lock = {"resolved_spec": {"training": {"epochs": epochs}}}
    (folder / "spec.lock.json").write_text(json.dumps(lock))
    if status is not None:
        (folder / "status.json").write_text(json.dumps({"status": status}))


def test_train_py_refuses_to_train_a_finished_run_past_its_epochs(run: Path) -> None:
    from gencompile.generated import import_generated

    before = {name: (run / name).read_bytes() for name in ("history.csv", "status.json")}
    module = import_generated(run, PACKAGE)
    with pytest.raises(RunError) as refused:
        module.main(["--run-dir", str(run), "--resume", "--epochs", "3", "--quiet"])
    assert str(refused.value) == (
        f"{run} finished its training at epoch 1: continue it to 3 epochs with `gencompile "
        f"train --resume {run} --epochs 3`, which records the continuation in its lock"
    )
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not (run / "checkpoints" / "epoch-0002.json").exists()


def test_only_a_finished_gencompile_run_is_kept_to_its_epochs(tmp_path: Path) -> None:
    from gencompile.runtime.final_files import PENDING
    from gencompile.runtime.training import refuse_training_past_finished

    _lock_and_status(tmp_path, 2, None)  # a plain generated project trained by hand
    refuse_training_past_finished(tmp_path, 10)
    _lock_and_status(tmp_path, 2, "interrupted")  # its resume goes to its own epochs
    refuse_training_past_finished(tmp_path, 10)
    _lock_and_status(tmp_path, 2, "finished")
    refuse_training_past_finished(tmp_path, 2)  # its own length: no epoch past it
    with pytest.raises(RunError, match="finished its training at epoch 2"):
        refuse_training_past_finished(tmp_path, 3)
    (tmp_path / PENDING).mkdir(parents=True)  # a continuation to 5 waits: its project trains
    _lock_and_status(tmp_path / PENDING, 5, None)
    refuse_training_past_finished(tmp_path, 5)
    with pytest.raises(RunError, match="finished its training at epoch 5"):
        refuse_training_past_finished(tmp_path, 6)


def _checkpoint_as(run: Path, epoch: int, newest: int) -> None:
    folder = run / "checkpoints"
    for suffix in (".weights.h5", ".rng.npz", ".json"):
        shutil.copy(folder / f"epoch-{epoch:04d}{suffix}", folder / f"epoch-{newest:04d}{suffix}")


def test_a_continuation_refuses_checkpoints_beyond_the_finished_epochs(run: Path) -> None:
    from gencompile.runs import resume

    _checkpoint_as(run, 1, 7)  # trained on by hand, outside the lock
    lock = (run / "spec.lock.json").read_text()
    with pytest.raises(RunError) as refused:
        resume(run, quiet=True, epochs=3)
    assert str(refused.value) == (
        f"{run} cannot be continued: its lock says 1 epoch, but its checkpoints go on to "
        "epoch 7, trained outside gencompile (its train.py run by hand): move the "
        f"checkpoints of epochs 2-7 out of {run / 'checkpoints'}, then continue it"
    )
    assert (run / "spec.lock.json").read_text() == lock
    assert not (run / "checkpoints" / "continuation").exists()


def test_a_continuation_refuses_metrics_of_epochs_beyond_its_lock(run: Path) -> None:
    from gencompile.runs import resume

    _checkpoint_as(run, 1, 4)
    record = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**record, "epochs": 4}))
    with pytest.raises(RunError, match=r"its lock says 1 epoch, but its metrics\.json says 4"):
        resume(run, quiet=True, epochs=6)


# F1: a generated train.py run as a command holds the folder's lock.


def test_train_py_as_a_command_is_refused_a_folder_another_process_holds(
    held_elsewhere: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    from gencompile.runtime import training

    folder, pid = held_elsewhere

    def main() -> None:  # a generated train.py's first step
        training.parse_args(["--run-dir", str(folder)], epochs=1, run_dir=folder)
        pytest.fail("trained beside another process")  # pragma: no cover

    with pytest.raises(SystemExit) as stopped:
        training.run_as_command(main)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder} is in use right now by process {pid} (`python")
    assert f"(`kill {pid}`), then run this again" in err and err.count("\n") == 1
    assert not (folder / "checkpoints").exists()


def test_train_py_holds_the_lock_until_its_command_ends(tmp_path: Path) -> None:
    from gencompile.runtime import training

    folder = tmp_path / "new" / "run"  # created: a lock needs the folder

    def main() -> None:
        training.parse_args(["--run-dir", str(folder)], epochs=1, run_dir=folder)
        assert run_lock.holders(folder) in ({os.getpid()}, None)  # None: not said here
        second = recorded(folder)  # a second trainer (gencompile's) meanwhile
        with pytest.raises(RunError, match="is being written right now"), second:
            pytest.fail("two trainers")  # pragma: no cover

    training.run_as_command(main)
    with recorded(folder):  # the command ended: its lock went with it
        pass


def test_train_py_called_in_process_takes_no_lock_of_its_own(tmp_path: Path) -> None:
    """`gencompile train` calls the generated main under its own lock (`recorded`): a
    second lock of the folder in this process would refuse it."""
    from gencompile.runtime import training

    with recorded(tmp_path):
        args = training.parse_args(["--run-dir", str(tmp_path)], epochs=1, run_dir=tmp_path)
    assert args.run_dir == tmp_path


def test_a_hand_run_train_py_beside_gencompile_train_is_refused(run: Path) -> None:
    """The generated train.py as users run it (`python -m PACKAGE.train --resume`) while
    gencompile trains the run in this process."""
    command = [sys.executable, "-m", f"{PACKAGE}.train", "--resume", "--quiet"]
    env = {**_env(), "PYTHONPATH": f"{ROOT}{os.pathsep}{run}"}
    with recorded(run):
        refused = subprocess.run(command, cwd=run, capture_output=True, text=True, env=env)
    assert refused.returncode == 1, refused.stderr
    assert f"is in use right now by process {os.getpid()}" in refused.stderr
    assert refused.stderr.count("\n") == 1
