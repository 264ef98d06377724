"""Files that a kill can never leave half-written, and their fingerprints.

Every artifact gencompile writes (generated sources, locks, checkpoints, metrics, pictures,
reports) goes through `atomic_write_bytes`: a temporary file in the same folder, fsync,
rename. Shared by the compiler and the runtime, so it imports neither TensorFlow nor them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from gencompile.errors import RunError, quoted


@contextmanager
def atomic_open(path: Path, sync_folder: bool = True) -> Iterator[IO[bytes]]:
    """A file written under a temporary name beside `path`, so that readers see either the
    old file or the whole new one: fsynced, then renamed into place; removed if anything
    fails (an interrupt included). The temp file lives in the same folder, so `os.replace`
    is an atomic rename. `sync_folder=False` leaves persisting the rename to the caller
    (`atomic_write_files` syncs each folder once for many files)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with mode 0o666 lets the umask decide permissions, like a plain open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:  # (a read-only folder)
        _name_file(error, path, tmp)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        _name_file(error, path, tmp)
        raise
    if sync_folder:
        _fsync_directory(path.parent)


def _name_file(error: BaseException, path: Path, temporary: Path) -> None:
    """Give an OSError that names no file (a write or fsync on a full disk: "No space left on
    device"), or names the `temporary` file written for `path`, the file it was writing, so
    its message says where (never a hidden `.NAME.PID.HEX.tmp`)."""
    if not isinstance(error, OSError) or error.errno is None:
        return  # (with no errno, str(error) would read "[Errno None]")
    if error.filename is None or str(error.filename) == str(temporary):
        error.filename = str(path)


class UnwrittenRunFile(OSError):
    """A run's file that could not be written, with what the run keeps and how to go on
    (`advice`), said after the usual hint."""

    def __init__(self, error: OSError, advice: str) -> None:
        super().__init__(error.errno, error.strerror, error.filename)
        self.advice = advice


# What to do about an OSError, by its errno.
_OS_HINTS = {
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOSPC: "the disk is full: free space or choose another disk",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
}


def os_error_text(error: OSError) -> str:
    r"""`runs/x: Permission denied (choose a folder you can write to)`: the path, the reason
    on one line, what to do.

    A library's report that wraps the system's reason (h5py's "Can't synchronously write
    data (file write failed: time = ...\n, ..., error message = 'No space left on device',
    buf = ...)") is said as the system's reason alone.

    >>> full = "write failed:\n errno = 28, error message = 'No space left on device'"
    >>> os_error_text(OSError(errno.ENOSPC, full, "m.h5"))
    'm.h5: No space left on device (the disk is full: free space or choose another disk)'
    """
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    reason = " ".join((error.strerror or str(error)).split())
    if error.errno is not None and os.strerror(error.errno) in reason:
        reason = os.strerror(error.errno)
    hint = _OS_HINTS.get(error.errno or -1, "check the path")
    advice = f"; {error.advice}" if isinstance(error, UnwrittenRunFile) else ""
    return f"{where or 'a file operation'}: {reason} ({hint}){advice}"


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write many files atomically (`atomic_open` each), then persist the renames with one
    fsync per folder instead of one per file: a generated project is ~15 files in 3 folders."""
    folders: dict[Path, None] = {}
    for path, data in files.items():
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, sync_folder=False) as handle:
            handle.write(data)
        folders[path.parent] = None
    for folder in folders:
        _fsync_directory(folder)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (`atomic_open`), creating its folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        handle.write(data)


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); silently skipped where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _plain(obj: Any) -> Any:
    """JSON fallback for NumPy scalars/arrays, tensors and paths."""
    np = sys.modules.get("numpy")  # not imported yet: `obj` cannot be a NumPy value
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if np is not None and isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "numpy"):  # a tensor: TensorFlow has imported NumPy
        import numpy

        return _plain(numpy.asarray(obj.numpy()))
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write `obj` as stable JSON (indent=2, sorted keys, trailing newline), atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_plain)
    atomic_write_text(path, text + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large checkpoints stay cheap."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_save(path: Path, save: Callable[[Path], Any]) -> Path:
    """Let a library `save(temporary)` write a file or folder, then fsync and rename it.

    The temporary name keeps the final suffix (`.weights.h5`, `.keras`), which Keras checks.
    An existing folder at `path` is replaced only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    try:
        save(temporary)
        for written in [temporary, *temporary.rglob("*")] if temporary.is_dir() else [temporary]:
            if written.is_file():
                with open(written, "rb+") as handle:
                    os.fsync(handle.fileno())
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException as error:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
        _name_file(error, path, temporary)
        raise
    _fsync_directory(path.parent)
    return path


class _NamedMemory(io.BytesIO):
    """Memory Keras' `save_weights` writes its HDF5 file into (it reads the file name,
    which must end in `.weights.h5`, from str())."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def __str__(self) -> str:
        return self.label


def atomic_save_weights(path: Path, model: Any) -> Path:
    """A Keras model's `.weights.h5` made in memory, then written atomically.

    HDF5 that fails to write a file (a full disk) leaves it half-open: each of its handles
    fails again as Python frees it ("Exception ignored ... Can't decrement id ref count"),
    and closing it can crash the interpreter (a segfault). In memory nothing fails, and
    the disk write is an ordinary OSError."""
    memory = _NamedMemory(Path(path).name)
    model.save_weights(memory)
    atomic_write_bytes(path, memory.getvalue())
    return Path(path)


# What repairs a damaged run or sweep file, by its name ({folder}: the folder holding it).
_REPAIRS = {
    "metrics.json": "`gencompile train --resume {folder}` writes it again from the checkpoint "
    "of its last epoch if the run trained all its epochs; else restore it from a copy",
    "status.json": "restore it from a copy, or remove it: gencompile then reads the run's "
    "state from its other files, but loses what only status.json records (a pruned sweep "
    "trial's mark; a continuation's finished revision, which --discard-continuation needs)",
    "sweep.json": "remove it: the next `gencompile sweep` of this folder writes it again",
}


def read_json(path: Path) -> dict[str, Any]:
    """A run's JSON file ({} when it does not exist yet); a corrupt one is a RunError
    saying what repairs it."""
    if not path.exists():
        return {}
    try:
        found: Any = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # bad JSON, bad UTF-8, deep nesting
        raise RunError(_damaged(path, str(err))) from None
    if not isinstance(found, dict):  # run files hold objects
        raise RunError(_damaged(path, "it holds no JSON object"))
    return found


def _damaged(path: Path, why: str) -> str:
    repair = _REPAIRS.get(path.name, "restore it, or remove it if gencompile wrote it")
    return f"{path} is unreadable or corrupt ({why}): {repair.format(folder=quoted(path.parent))}"


# The temporary names of `atomic_save` (`.tmp-PID-HEX-NAME`) and `atomic_open`
# (`.NAME.PID.HEX.tmp`), with the writer's process id and the name written.
_TEMPORARY = re.compile(
    r"^\.(?:tmp-(?P<saver>\d+)-[0-9a-f]{8}-(?P<saved>.+)"
    r"|(?P<opened>.+)\.(?P<opener>\d+)\.[0-9a-f]{8}\.tmp)$"
)


def temporary_of(name: str) -> tuple[str, int] | None:
    """For the name of an atomic write's temporary file, the name it is renamed to once
    written and its writer's process id; None for any other name.

    >>> temporary_of(".tmp-42-0badcafe-epoch-0003.weights.h5"), temporary_of("epoch-0003.json")
    (('epoch-0003.weights.h5', 42), None)
    >>> temporary_of(".epoch-0003.json.42.0badcafe.tmp")
    ('epoch-0003.json', 42)
    """
    match = _TEMPORARY.match(name)
    if match is None:
        return None
    if match["saver"] is not None:
        return match["saved"], int(match["saver"])
    return match["opened"], int(match["opener"])


def stray_temporaries(folder: Path) -> list[Path]:
    """The temporary files (or folders) in `folder` whose writer is gone: a kill -9 or a
    power loss during an atomic write leaves them, as large as what was being written."""
    if not Path(folder).is_dir():
        return []
    found = []
    for path in sorted(Path(folder).iterdir()):
        if (temporary := temporary_of(path.name)) and not process_alive(temporary[1]):
            found.append(path)
    return found


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
