"""A disk that fills up while a run's final weights are written: one line on stderr, exit 1,
what the run keeps and how to continue it; never HDF5's tracebacks or a crash."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gencompile import files
from gencompile.files import os_error_text


def test_weights_that_do_not_fit_fail_once_as_an_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HDF5 left to write a full disk itself left its file half-open: "Exception ignored"
    tracebacks as its handles were freed, then a segfault (exit 139) on the way out (seen on
    a 200 kB tmpfs). The weights are now made in memory, so HDF5 never meets the disk, and
    the one write that can fail is an ordinary OSError naming the file."""
    import h5py
    import keras

    opened: list[object] = []
    real_file = h5py.File

    def watched(name: object, *args: object, **kwargs: object) -> h5py.File:
        opened.append(name)
        return real_file(name, *args, **kwargs)

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(h5py, "File", watched)
    monkeypatch.setattr(files, "atomic_write_bytes", disk_full)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    target = tmp_path / "model.weights.h5"
    with pytest.raises(OSError) as caught:
        files.atomic_save_weights(target, model)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert opened and not any(isinstance(name, (str, os.PathLike)) for name in opened)
    assert list(tmp_path.iterdir()) == []  # nothing half-written on the disk


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
