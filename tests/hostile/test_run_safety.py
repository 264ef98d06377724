"""A run survives what stops it half-way: an interrupt while its checkpoint is written, a
second trainer on the same folder, a full disk, and a refused `reproduce`."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.run_status import RunInterrupted, read_status, recorded, refuse_if_training


def _interrupt_checkpoint_writes(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """The first `times` checkpoint writes stop half-way, as Ctrl-C would stop them."""
    from gencompile.runtime import checkpoints

    write = checkpoints.save_checkpoint
    left = [times]

    def interrupted(
        model: object, directory: Path, epoch: int, timing: object, **fields: object
    ) -> object:
        if left[0] > 0:
            left[0] -= 1
            raise KeyboardInterrupt
        return write(model, directory, epoch, timing, **fields)

    monkeypatch.setattr(checkpoints, "save_checkpoint", interrupted)


def test_ctrl_c_during_the_last_checkpoint_write_keeps_it_and_resumes(
    tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.runs import resume, train

    # every_seconds is 60 by default: epoch 1 is only in memory, epoch 2 written at the end.
    _interrupt_checkpoint_writes(monkeypatch, 1)
    with pytest.raises(RunInterrupted) as stopped:
        train(tiny_vae_spec, epochs=2, run_dir=tmp_path / "run", quiet=True)
    monkeypatch.undo()
    run = tmp_path / "run"
    assert f"{run} keeps its checkpoint of epoch 2" in str(stopped.value)
    assert f"gencompile train --resume {run}" in str(stopped.value)
    assert (run / "checkpoints" / "epoch-0002.json").is_file()
    assert read_status(run) == "interrupted"
    resume(run, quiet=True)
    assert read_status(run) == "finished"
    assert (run / "history.csv").read_text().count("\n") == 3  # the header and two epochs


def test_an_interrupt_before_the_first_checkpoint_says_the_training_is_lost(
    tmp_path: Path,
) -> None:
    with pytest.raises(RunInterrupted) as stopped, recorded(tmp_path):
        raise KeyboardInterrupt
    message = str(stopped.value)
    assert "stopped before its first checkpoint was written" in message
    assert "cannot be resumed" in message
    assert "--resume" not in message
    assert read_status(tmp_path) == "interrupted"


def test_resume_of_a_run_being_trained_is_refused_naming_its_process(
    hostile, vae_copy: Path
) -> None:
    pid = os.getpid()
    with recorded(vae_copy):  # this process trains it now
        outcome = hostile("train", "--resume", vae_copy, "--quiet", watch=vae_copy)
        assert read_status(vae_copy) == "running"
    outcome.assert_refused(
        1, f"{vae_copy} is being trained right now by process {pid}", f"`kill {pid}`"
    )


def test_two_trainers_never_overlap_on_one_folder(tmp_path: Path) -> None:
    with recorded(tmp_path):
        with pytest.raises(RunError, match="is being trained right now"), recorded(tmp_path):
            pytest.fail("a second trainer started")  # pragma: no cover
        assert read_status(tmp_path) == "running"  # the first's status, untouched
    assert read_status(tmp_path) == "finished"
    with recorded(tmp_path):  # the lock went with the first
        pass


def test_a_running_status_without_its_trainer_does_not_block_resume(tmp_path: Path) -> None:
    here = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    (tmp_path / "status.json").write_text(json.dumps(here))  # its pid alive, its lock free
    refuse_if_training(tmp_path)
    there = {**here, "host": "elsewhere.example"}
    (tmp_path / "status.json").write_text(json.dumps(there))
    with pytest.raises(RunError, match=r"if nothing on elsewhere\.example trains it any more"):
        refuse_if_training(tmp_path)


def _with_status(run: Path, **fields: object) -> None:
    record = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**record, **fields}))


def test_a_folder_a_build_writes_is_refused_without_naming_a_gone_trainer(
    vae_copy: Path,
) -> None:
    from gencompile.run_status import not_training

    gone = _dead_pid()
    _with_status(vae_copy, status="finished", pid=gone, host=socket.gethostname())
    # not_training: what build holds while it writes
    with not_training(vae_copy), pytest.raises(RunError) as refused:
        refuse_if_training(vae_copy)
    message = str(refused.value)
    assert f"{vae_copy} is being written right now by another gencompile command" in message
    assert str(gone) not in message and "kill" not in message


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads /proc/locks (Linux)")
def test_a_running_status_whose_process_holds_no_lock_is_not_named(vae_copy: Path) -> None:
    from gencompile.run_status import not_training

    other = os.getppid()  # alive, but not the process that holds the lock (this one)
    _with_status(vae_copy, status="running", pid=other, host=socket.gethostname())
    # Its lock free: not_training finds the status stale, as a build does.
    with not_training(vae_copy), pytest.raises(RunError) as refused:
        refuse_if_training(vae_copy)
    assert "is being written right now by another gencompile command" in str(refused.value)
    assert f"kill {other}" not in str(refused.value)


def _disk_full(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_write_on_a_full_disk_names_its_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.cli import _os_message
    from gencompile.files import atomic_save, atomic_write_json

    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError) as failed:
        atomic_write_json(tmp_path / "metrics.json", {"nll": 1.0})
    assert failed.value.errno == errno.ENOSPC
    assert failed.value.filename == str(tmp_path / "metrics.json")
    assert _os_message(failed.value).startswith(f"{tmp_path / 'metrics.json'}: No space left")
    assert "the disk is full" in _os_message(failed.value)
    monkeypatch.undo()

    def save(path: Path) -> None:
        path.write_bytes(b"half")
        _disk_full()

    with pytest.raises(OSError) as failed:
        atomic_save(tmp_path / "model.weights.h5", save)
    assert failed.value.filename == str(tmp_path / "model.weights.h5")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_full_disk_reports_the_error_that_stopped_training_not_the_status_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from gencompile.files import atomic_write_json

    with pytest.raises(OSError) as failed, recorded(tmp_path):
        monkeypatch.setattr(os, "fsync", _disk_full)  # the disk fills up while training
        atomic_write_json(tmp_path / "history.json", {})
    monkeypatch.undo()
    assert failed.value.filename == str(tmp_path / "history.json")  # the first error
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "running"
    assert "status.json could not be updated to 'failed'" in capsys.readouterr().err
    stopped = pytest.raises(RunInterrupted, match="stopped before its first checkpoint")
    with stopped, recorded(tmp_path):
        monkeypatch.setattr(os, "fsync", _disk_full)
        raise KeyboardInterrupt


@pytest.mark.parametrize("output", [None, "elsewhere/new"])
def test_a_refused_reproduce_leaves_no_folder_behind(
    hostile, vae_copy: Path, monkeypatch: pytest.MonkeyPatch, output: str | None
) -> None:
    from gencompile import lockfile

    monkeypatch.setattr(lockfile, "version_drift", lambda lock: ["keras 0.1 in the lock"])
    for _ in range(2):  # each refusal used to leave one more empty -reproduced-N folder
        outcome = hostile("reproduce", vae_copy, *(["-o", output] if output else []))
        outcome.assert_refused(1, "keras 0.1 in the lock", "--allow-drift")
    assert sorted(p.name for p in vae_copy.parent.iterdir()) == ["run"]


def test_a_truncated_weights_file_points_to_resume_which_writes_it_again(
    hostile, run_cli, vae_copy: Path
) -> None:
    weights = vae_copy / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    hostile("sample", vae_copy, "-o", "s.png").assert_refused(
        1,
        f"cannot load {weights}",
        f"`gencompile train --resume {vae_copy}` writes it again from the checkpoint of "
        "its last epoch (1)",
    )
    code, _, err = run_cli("train", "--resume", str(vae_copy), "--quiet")
    assert code == 0, err
    assert hostile("sample", vae_copy, "-o", "s.png").code == 0


def test_resume_refuses_other_versions_unless_allowed(
    hostile, interrupted_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import lockfile

    run = interrupted_run
    monkeypatch.setattr(lockfile, "version_drift", lambda lock: ["keras 0.1 in the lock"])
    outcome = hostile("train", "--resume", run, "--quiet", watch=run)
    outcome.assert_refused(1, f"cannot resume {run}", "keras 0.1 in the lock", "--allow-drift")
    outcome = hostile("train", "--resume", run, "--quiet", "--allow-drift")
    assert outcome.code == 0, outcome.err
    assert "warning: resuming despite drift: keras 0.1 in the lock" in outcome.err


def test_resume_of_an_unfinished_run_refuses_data_changed_since_it_started(
    tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from gencompile.lockfile import read_lock
    from gencompile.runs import resume, train
    from gencompile.runtime import data
    from gencompile.runtime.checkpoint_files import started_with

    run = tmp_path / "run"
    _interrupt_checkpoint_writes(monkeypatch, 1)
    with pytest.raises(RunInterrupted):
        train(tiny_vae_spec, epochs=2, run_dir=run, quiet=True)
    monkeypatch.undo()
    assert read_lock(run).get("data_fingerprint") is None  # it reaches the lock at the end
    started = started_with(run / "checkpoints")
    assert started is not None
    load = data.load_data

    def other_data(*args: object, **kwargs: object) -> object:
        return dataclasses.replace(load(*args, **kwargs), fingerprint="f" * 64)

    monkeypatch.setattr(data, "load_data", other_data)
    with pytest.raises(RunError, match=f"its training started on {started[:16]}") as refused:
        resume(run, quiet=True)
    assert "--allow-drift" in str(refused.value)
    monkeypatch.undo()
    resume(run, quiet=True)
    assert read_lock(run)["data_fingerprint"] == started


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_build_into_a_run_being_trained_is_refused_force_or_not(
    hostile, vae_copy: Path, tiny_vae_spec: Path, force: list[str]
) -> None:
    pid = os.getpid()
    with recorded(vae_copy):  # this process trains it now
        outcome = hostile("build", tiny_vae_spec, "-o", vae_copy, *force, watch=vae_copy)
    outcome.assert_refused(
        1, f"{vae_copy} is being trained right now by process {pid}", "build into"
    )


@pytest.fixture
def interrupted_run(tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run of 2 epochs interrupted while its last checkpoint was written: it keeps that
    checkpoint (of epoch 2), so its resume trains no epoch and writes the final files."""
    from gencompile.runs import train

    run = tmp_path / "run"
    with monkeypatch.context() as patched:
        _interrupt_checkpoint_writes(patched, 1)
        with pytest.raises(RunInterrupted):
            train(tiny_vae_spec, epochs=2, run_dir=run, quiet=True)
    return run


def test_a_damaged_history_row_is_warned_of_and_the_resume_finishes(
    hostile, interrupted_run: Path
) -> None:
    history = interrupted_run / "history.csv"
    history.write_text("epoch,loss\n1,abc\nxx\n")  # hand-edited, or damaged
    outcome = hostile("train", "--resume", interrupted_run, "--quiet")
    assert outcome.code == 0, outcome.err
    said = outcome.err.replace("\n", " ")  # a warning may wrap on a narrow terminal
    assert f"warning: {history} line 2 loss 'abc' is not a number" in said
    assert f"warning: {history} line 3 has no epoch number" in said
    assert read_status(interrupted_run) == "finished"
    assert json.loads((interrupted_run / "metrics.json").read_text())["epochs"] == 2


def test_a_history_that_lost_its_rows_still_counts_every_epoch(
    hostile, interrupted_run: Path
) -> None:
    history = interrupted_run / "history.csv"
    history.write_text(history.read_text()[:20])  # the header cut off: no row is left
    outcome = hostile("train", "--resume", interrupted_run, "--quiet")
    assert outcome.code == 0, outcome.err
    assert "has no row for epoch(s) 1, 2 " in outcome.err.replace("\n", " ")
    assert json.loads((interrupted_run / "metrics.json").read_text())["epochs"] == 2
    assert "2 epochs in" in (interrupted_run / "report.md").read_text()


def test_resume_of_a_finished_run_without_more_epochs_is_refused_and_changes_nothing(
    hostile, vae_copy: Path
) -> None:
    record = json.loads((vae_copy / "metrics.json").read_text())
    record["metrics"]["precision"] = 0.5  # as `evaluate --metrics precision_recall` adds
    (vae_copy / "metrics.json").write_text(json.dumps(record))
    outcome = hostile("train", "--resume", vae_copy, "--quiet", watch=vae_copy)
    outcome.assert_refused(
        1, f"{vae_copy} has already finished its 1 epoch; pass --epochs M (> 1) to continue it"
    )
    assert read_status(vae_copy) == "finished"


def test_an_unreadable_data_record_refuses_the_resume_unless_drift_is_allowed(
    hostile, interrupted_run: Path
) -> None:
    run, record = interrupted_run, interrupted_run / "checkpoints" / "data.json"
    record.write_text('{"data_fingerprint": ')  # damaged: the data's drift is unknown
    outcome = hostile("train", "--resume", run, "--quiet", watch=run)
    outcome.assert_refused(
        1,
        f"cannot resume {run}",
        f"{record} is unreadable",
        "If its data is unchanged, pass --allow-drift",
    )
    outcome = hostile("train", "--resume", run, "--quiet", "--allow-drift")
    assert outcome.code == 0, outcome.err
    assert f"warning: resuming despite drift: {record} is unreadable" in outcome.err
    assert read_status(run) == "finished"


class _Killed(Exception):
    """What SIGTERM raises in this test when `train` has not made it an interrupt."""


def _raise_killed(signum: int, frame: object) -> None:
    raise _Killed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_train_builds_its_folder_removes_it_and_says_so(
    tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    from gencompile import runs

    build = runs.build

    def build_then_signal(*args: object, **kwargs: object) -> object:
        built = build(*args, **kwargs)  # the folder now holds the project
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler runs at once (a test of its own then fails)
        return built

    monkeypatch.setattr(runs, "build", build_then_signal)
    previous = signal.signal(signal.SIGTERM, _raise_killed)  # never the default: pytest lives
    try:
        with pytest.raises(RunInterrupted) as stopped:
            runs.train(tiny_vae_spec, runs_root=tmp_path / "runs", quiet=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    message = str(stopped.value)
    assert message.startswith("interrupted: before training started"), message
    assert "was removed" in message
    assert stopped.value.exit_code == 130
    assert not any((tmp_path / "runs").rglob("*.lock.json"))
    assert [p for p in (tmp_path / "runs").rglob("*") if p.is_file()] == []


def _dead_pid() -> int:
    """The id of a process that has ended."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(child.stdout)


def test_resume_removes_the_temporary_files_a_killed_checkpoint_write_left(
    hostile, interrupted_run: Path
) -> None:
    from gencompile.files import atomic_open

    folder, gone, mine = interrupted_run / "checkpoints", _dead_pid(), os.getpid()
    with atomic_open(folder / "probe.json") as handle:  # the names atomic writes use
        (live,) = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        handle.write(b"{}")
    (folder / "probe.json").unlink()
    strays = [
        folder / live.replace(f".{mine}.", f".{gone}."),
        folder / f".tmp-{gone}-deadbeef-epoch-0002.weights.h5",
    ]
    for stray in strays:
        stray.write_bytes(b"\0" * 1000)
    (folder / f".tmp-{gone}-deadbeef-saved_model").mkdir()  # atomic_save writes folders too
    strays.append(folder / f".tmp-{gone}-deadbeef-saved_model")
    kept = folder / f".tmp-{mine}-cafebabe-epoch-0003.weights.h5"  # its writer is alive
    kept.write_bytes(b"\0")
    outcome = hostile("train", "--resume", interrupted_run, "--quiet")
    assert outcome.code == 0, outcome.err
    assert [p for p in strays if p.exists()] == []
    assert kept.exists()


def test_the_temporary_names_atomic_writes_use_read_back_as_their_file_and_writer(
    tmp_path: Path,
) -> None:
    """One parser (`files.temporary_of`) for the strays --resume removes and the epochs a
    discarded continuation removes: it must read the names both writers really use."""
    from gencompile.files import atomic_open, atomic_save, temporary_of

    seen: list[str] = []
    with atomic_open(tmp_path / "epoch-0002.json") as handle:
        seen += [p.name for p in tmp_path.iterdir()]
        handle.write(b"{}")

    def save(path: Path) -> None:
        seen.append(path.name)
        path.write_bytes(b"")

    atomic_save(tmp_path / "epoch-0002.weights.h5", save)
    assert [temporary_of(name) for name in seen] == [
        ("epoch-0002.json", os.getpid()),
        ("epoch-0002.weights.h5", os.getpid()),
    ]
    assert temporary_of("epoch-0002.json") is None


def _manifest(run: Path, epoch: int) -> Path:
    return run / "checkpoints" / f"epoch-{epoch:04d}.json"


def test_a_resumed_run_counts_the_seconds_of_its_earlier_process(
    run_cli, interrupted_run: Path
) -> None:
    before = json.loads(_manifest(interrupted_run, 2).read_text())["train_seconds"]
    assert before > 0  # the interrupted process trained epochs 1 and 2
    assert not (interrupted_run / "checkpoints" / "seconds.json").exists()  # no other record
    code, _, err = run_cli("train", "--resume", str(interrupted_run), "--quiet")
    assert code == 0, err
    seconds = json.loads((interrupted_run / "metrics.json").read_text())["train_seconds"]
    assert seconds >= before  # its resume trained no epoch: nearly all of it is before
    assert f"2 epochs in {seconds} s." in (interrupted_run / "report.md").read_text()


@pytest.mark.parametrize(
    "edit",
    [{"train_seconds": math.nan}, {"train_seconds": -3}, {"untimed_epochs": 7}, None],
    ids=["nan", "negative", "more-untimed-than-epochs", "older-gencompile"],
)
def test_a_checkpoint_without_its_seconds_is_warned_of_and_never_makes_the_seconds_wrong(
    hostile, interrupted_run: Path, edit: dict[str, float] | None
) -> None:
    manifest = _manifest(interrupted_run, 2)
    fields = json.loads(manifest.read_text())
    if edit is None:  # written before checkpoints kept their seconds
        del fields["train_seconds"], fields["untimed_epochs"]
    else:
        fields.update(edit)
    manifest.write_text(json.dumps(fields))
    outcome = hostile("train", "--resume", interrupted_run, "--quiet")
    assert outcome.code == 0, outcome.err
    said = outcome.err.replace("\n", " ")  # a warning may wrap on a narrow terminal
    assert f"warning: {manifest} records no training seconds" in said
    metrics = json.loads((interrupted_run / "metrics.json").read_text())  # strict: no NaN
    seconds = metrics["train_seconds"]
    assert math.isfinite(seconds) and seconds >= 0
    assert metrics["untimed_epochs"] == 2
    said = f"2 epochs in {seconds} s (not counting 2 epoch"
    assert said in (interrupted_run / "report.md").read_text()


def test_the_untimed_epochs_stay_counted_by_later_checkpoints(tmp_path: Path) -> None:
    from gencompile.runtime.checkpoint_files import Timing, paths, timing
    from gencompile.runtime.training import TrainingClock

    paths(tmp_path, 2).manifest.write_text('{"epoch": 2}')  # epochs 1 and 2: time unknown
    with pytest.warns(UserWarning, match="records no training seconds"):
        first = TrainingClock(tmp_path, initial_epoch=2)
    first.on_epoch_end(2)  # epoch 3 trained
    recorded = first.timing(3)
    assert recorded.untimed_epochs == 2 and recorded.seconds > 0
    third = paths(tmp_path, 3)
    third.manifest.write_text(json.dumps({"epoch": 3, **recorded.fields()}))
    assert timing(third) == Timing(round(recorded.seconds, 3), 2)
    later = TrainingClock(tmp_path, initial_epoch=3)
    assert (later.untimed, later.before) == (2, round(recorded.seconds, 3))
    assert TrainingClock(tmp_path).untimed == 0  # a fresh fit reads no checkpoint


def test_checkpoints_record_the_seconds_by_their_epoch(tiny_vae_spec: Path, tmp_path: Path) -> None:
    from gencompile.runs import train

    spec = tmp_path / "every_two.yaml"  # checkpoints of epochs 2 and 4, in one process
    spec.write_text(
        tiny_vae_spec.read_text().replace("every_epochs: 1", "every_epochs: 2, every_seconds: 0")
    )
    run = train(spec, epochs=4, run_dir=tmp_path / "run", quiet=True).run_dir
    second, fourth = (json.loads(_manifest(run, e).read_text()) for e in (2, 4))
    assert 0 < second["train_seconds"] < fourth["train_seconds"]
    assert second["untimed_epochs"] == fourth["untimed_epochs"] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_seconds"] >= fourth["train_seconds"]
    assert "untimed_epochs" not in metrics


def test_build_force_still_moves_a_damaged_status_aside(
    hostile, vae_copy: Path, tiny_vae_spec: Path
) -> None:
    (vae_copy / "status.json").write_text('{"status": "fini')  # no training holds the lock
    other = vae_copy.parent / "other.yaml"  # another spec: what training wrote is stale
    other.write_text(tiny_vae_spec.read_text().replace("seed: 3", "seed: 4"))
    outcome = hostile("build", other, "-o", vae_copy, "--force")
    assert outcome.code == 0, outcome.err
    assert not (vae_copy / "status.json").exists()
    assert list(vae_copy.glob("stale-*/status.json"))


def test_a_ctrl_c_tensorflow_turns_into_another_error_is_still_an_interrupt(
    tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C while TensorFlow traces a step can come out of model.fit as a TypeError
    (its tensor conversion re-raises what it caught): the run is interrupted, not failed."""
    import keras

    def fit_losing_the_interrupt(self: object, *args: object, **kwargs: object) -> object:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises KeyboardInterrupt in here ...
        except KeyboardInterrupt:  # ... and TensorFlow re-raises it as another error
            raise TypeError("Failed to convert elements of (None, 64) to Tensor") from None
        raise AssertionError("the interrupt never came")

    monkeypatch.setattr(keras.Model, "fit", fit_losing_the_interrupt)
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(RunInterrupted) as stopped:
            runs_train(tiny_vae_spec, tmp_path)
    finally:
        signal.signal(signal.SIGINT, outside)
    assert stopped.value.exit_code == 130
    assert str(stopped.value).startswith("interrupted: "), stopped.value  # not a traceback


def runs_train(spec: Path, tmp_path: Path) -> object:
    from gencompile import runs

    return runs.train(spec, runs_root=tmp_path / "runs", quiet=True)
