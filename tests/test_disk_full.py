"""A disk that fills up while a run's final weights are written: one line on stderr, exit 1,
what the run keeps and how to continue it; never HDF5's tracebacks or a crash."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gencompile import files
from gencompile.files import os_error_text

# A child process saves a model of ~400 kB of weights into a disk (a tmpfs) of 200 kB,
# then ends as gencompile does (`end_process`).
SAVE_PAST_THE_DISK = """
import gc, sys
import keras
from gencompile.files import atomic_save_weights
from gencompile.process_end import end_process

model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(1000)])
try:
    atomic_save_weights(sys.argv[1], model)
except OSError as error:
    print(error.errno, error.filename)
    del error
gc.collect()
end_process(1)
"""


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (root only: skips the test otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder])
    if mounted.returncode != 0:
        pytest.skip("this machine cannot mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


@pytest.mark.slow  # a child process that imports keras: ~10-16 s on two busy CPUs
def test_weights_that_do_not_fit_fail_once_as_an_oserror(tmp_path: Path) -> None:
    """HDF5 left to fail on the disk itself left the file half-open: "Exception ignored"
    tracebacks as its handles were freed, then a segfault (exit 139) on the way out."""
    with small_disk(tmp_path / "disk", "200k") as disk:
        target = disk / "model.weights.h5"
        done = subprocess.run(
            [sys.executable, "-c", SAVE_PAST_THE_DISK, str(target)],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stdout.split() == [str(errno.ENOSPC), str(target)]
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
        assert list(disk.iterdir()) == []  # no temporary file left behind


def test_a_librarys_multi_line_report_is_said_on_one_line() -> None:
    h5py_says = (
        "Can't synchronously write data (file write failed: time = Fri Dec  4 18:15:45 2026\n"
        ", filename = '.tmp-1-ab-model.weights.h5', errno = 28, error message = 'No space "
        "left on device', buf = 0x55, total write size = 131072)"
    )
    said = os_error_text(OSError(errno.ENOSPC, h5py_says, "run/model.weights.h5"))
    assert said == (
        "run/model.weights.h5: No space left on device (the disk is full: free space or "
        "choose another disk)"
    )
    odd = os_error_text(OSError(errno.EIO, "first line\n  second line", "f"))
    assert odd == "f: first line second line (check the path)"


@pytest.mark.slow  # a training, then its continuation: ~15 s
def test_a_full_disk_at_the_final_weights_says_what_the_run_keeps(
    run_cli, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = files.atomic_write_bytes

    def full_at_the_weights(path: Path, data: bytes) -> None:
        if Path(path).name == "model.weights.h5":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, data)

    monkeypatch.setattr(files, "atomic_write_bytes", full_at_the_weights)
    runs = tmp_path / "runs"
    code, _, err = run_cli("train", str(tiny_vae_spec), "--runs-dir", str(runs), "--quiet")
    assert code == 1
    (run,) = runs.glob("tiny-vae/*")
    assert err.splitlines() == [
        f"error: {run / 'model.weights.h5'}: No space left on device (the disk is full: free "
        f"space or choose another disk); {run} keeps its checkpoint of epoch 1: once that is "
        f"fixed, continue with `gencompile train --resume {run}`"
    ]
    monkeypatch.undo()
    code, _, err = run_cli("train", "--resume", str(run), "--quiet")  # as the advice says
    assert code == 0, err
    assert (run / "model.weights.h5").is_file() and (run / "metrics.json").is_file()


def _read_only(*args: object, **kwargs: object) -> int:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))


def test_a_read_only_folder_is_said_of_the_file_not_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "metrics.json"
    monkeypatch.setattr(os, "open", _read_only)  # creating the temporary file fails
    with pytest.raises(OSError) as failed:
        files.atomic_write_json(target, {"nll": 1.0})
    monkeypatch.undo()
    assert failed.value.filename == str(target)
    assert os_error_text(failed.value) == (
        f"{target}: Read-only file system (the file system is read-only: choose another folder)"
    )

    def save(temporary: Path) -> None:  # a library that opens its own file
        _read_only(temporary)

    with pytest.raises(OSError) as failed:
        files.atomic_save(tmp_path / "model.keras", save)
    assert failed.value.filename == str(tmp_path / "model.keras")


def test_evaluate_and_compare_plot_refuse_an_unwritable_folder_before_any_work(
    run_cli, trained_vae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import comparison, runs

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed before the folder was checked")

    monkeypatch.setattr(runs, "evaluate", never)
    monkeypatch.setattr(comparison, "compare", never)
    access = os.access
    locked = {str(trained_vae), str(tmp_path)}

    def writable(path: object, mode: int, **options: object) -> bool:
        if mode & os.W_OK and str(path) in locked:
            return False
        return access(path, mode, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", writable)
    code, out, err = run_cli("evaluate", str(trained_vae))
    assert (code, out) == (1, ""), err
    assert err == (
        f"error: cannot write {trained_vae / 'metrics.json'}: the folder {trained_vae} is not "
        "writable (choose a folder you can write to)\n"
    )
    code, out, err = run_cli("compare", str(trained_vae), "--plot", str(tmp_path / "x.png"))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot write {tmp_path / 'x.png'}: the folder {tmp_path} is")


def test_a_hand_run_train_py_says_a_full_disk_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The generated train.py run as a command (`run_as_command`) says an OSError as the
    gencompile CLI does: the path and the reason on one line, exit 1, no traceback."""
    from gencompile.runtime.training import run_as_command

    def main() -> None:
        h5py_says = "write failed:\n errno = 28, error message = 'No space left on device'"
        raise OSError(errno.ENOSPC, h5py_says, "run/model.weights.h5")

    with pytest.raises(SystemExit) as stopped:
        run_as_command(main)
    assert stopped.value.code == 1
    assert capsys.readouterr().err == (
        "error: run/model.weights.h5: No space left on device (the disk is full: free space "
        "or choose another disk)\n"
    )
