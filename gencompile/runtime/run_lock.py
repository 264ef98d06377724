"""One process at a time writes a run folder: an exclusive lock (`flock`) on the folder.

The kernel releases the lock however its process ends (a kill, a crash), so a lock left
behind cannot block a run. gencompile's commands take it through `gencompile.run_status`
(training, continuing, evaluating, building); a generated train.py run as a command
(`python -m <package>.train`) takes it here for the whole training (`command_locks` and
`hold_for_command`). Called in-process instead (`gencompile train` imports the generated
module and calls its `main` while it holds the lock itself, as local workers do under
it), train.py takes none: a second lock of the same folder in one process would refuse
that process itself. No TensorFlow here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gencompile.errors import RunError

MAX_COMMAND = 100  # characters of a holder's command line shown in a refusal


def lock_folder(run_dir: Path, refused: Callable[[Path], str]) -> int | None:
    """An open descriptor of `run_dir` holding its exclusive lock (None: locks are not
    available here); RunError(`refused(run_dir)`) if another holder has it. Closing the
    descriptor releases the lock."""
    if sys.platform == "win32":
        return None
    import fcntl

    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return None  # the write that follows names the problem
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunError(refused(Path(run_dir))) from None
    except OSError:  # a file system without locks (some network mounts)
        os.close(fd)
        return None
    return fd


def holders(run_dir: Path) -> set[int] | None:
    """The processes holding a `flock` on `run_dir`, from /proc/locks (Linux); None where
    the kernel does not say."""
    try:
        found = os.stat(run_dir)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    where = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    pids = {
        int(fields[4])
        for fields in map(str.split, lines)
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where
    }
    return pids or None  # a held lock not listed (another file system): not said


def describe(pid: int) -> str:
    """`process N (`its command line`)`, or `process N` where the command is not known."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return f"process {pid}"
    argv = [arg for arg in argv if arg]
    if not argv:
        return f"process {pid}"
    # The interpreter without its path; one line, whatever whitespace the arguments hold.
    command = " ".join(" ".join([Path(argv[0]).name, *argv[1:]]).split())
    if len(command) > MAX_COMMAND:
        command = command[: MAX_COMMAND - 3] + "..."
    return f"process {pid} (`{command}`)"


def in_use(run_dir: Path) -> str:
    """Why a train.py run as a command may not train `run_dir`: the process holding it."""
    pids = sorted(holders(run_dir) or ())
    if not pids:
        return (
            f"{run_dir} is in use right now by another process: wait for it to end, then run "
            "this again"
        )
    who = ", ".join(describe(pid) for pid in pids)
    kill = " ".join(str(pid) for pid in pids)
    return (
        f"{run_dir} is in use right now by {who}: wait for it to end, or stop it "
        f"(`kill {kill}`), then run this again"
    )


# The locks of the train.py command this process runs (None: not run as a command).
_command_locks: list[int] | None = None


@contextmanager
def command_locks() -> Iterator[None]:
    """Run a generated train.py as a command in this block: the lock `hold_for_command`
    takes is held until the block ends (the command's end)."""
    global _command_locks
    outer, _command_locks = _command_locks, []
    try:
        yield
    finally:
        for fd in _command_locks:
            os.close(fd)
        _command_locks = outer


def hold_for_command(run_dir: Path) -> None:
    """Lock `run_dir` until the train.py command running in this process ends (refused if
    another process holds it); nothing when train.py runs in-process, under the lock of
    whatever called it. The folder is created first: a lock needs it to exist."""
    if _command_locks is None:
        return
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # the first write names the problem
    fd = lock_folder(Path(run_dir), in_use)
    if fd is not None:
        _command_locks.append(fd)
