"""status.json: whether a run folder holds a finished run, or one that stopped on the way.

A run folder looks the same whether training finished, failed or was killed, so every
training writes its state there (atomically): `running` with its process id when it
starts, then `finished`, `failed` (with the error) or `interrupted` (Ctrl-C, SIGTERM). A
run killed outright (SIGKILL, power loss) cannot write anything: it stays `running` with
the id of a process that no longer exists, which `read_status` reports as `interrupted`.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from gencompile.errors import GencompileError
from gencompile.files import atomic_write_json, read_json

STATUS_NAME = "status.json"
Status = Literal["running", "interrupted", "failed", "finished"]


class RunInterrupted(GencompileError):
    """Training stopped by Ctrl-C or SIGTERM; its checkpoints are kept for --resume."""

    exit_code = 130
    prefix = ""  # the message starts with "interrupted:"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_status(run_dir: Path, status: Status, **fields: Any) -> None:
    record = {**read_json(run_dir / STATUS_NAME), "status": status, "updated": _now(), **fields}
    atomic_write_json(run_dir / STATUS_NAME, record)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def read_status(run_dir: Path | str) -> str | None:
    """The run's status; None for a run written before gencompile kept one."""
    record = read_json(Path(run_dir) / STATUS_NAME)
    status = record.get("status")
    if status != "running":
        return status
    same_host = record.get("host") == socket.gethostname()
    pid = record.get("pid")
    if same_host and isinstance(pid, int) and not _alive(pid):
        return "interrupted"  # killed without a chance to say so
    return status


def interrupted_message(run_dir: Path, resume_options: str = "") -> str:
    """What an interrupted training kept: its newest checkpoint and how to continue from
    it, or, stopped before its first checkpoint, that nothing can be resumed."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    epoch = newest_epoch(run_dir / "checkpoints")
    if epoch:
        return (
            f"interrupted: {run_dir} keeps its checkpoint of epoch {epoch}; continue with "
            f"`gencompile train --resume {run_dir}{resume_options}`"
        )
    return (
        f"interrupted: {run_dir} was stopped before its first checkpoint was written, so "
        "its training is lost and cannot be resumed; train the spec again"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def recorded(run_dir: Path, resume_options: str = "") -> Iterator[None]:
    """Keep status.json true while training runs in this block (`resume_options`: what
    the advice to resume adds to `gencompile train --resume RUN`).

    SIGTERM is turned into the same clean stop as Ctrl-C (the default would end the
    process without a word), and both end in `RunInterrupted` saying how to resume.
    """
    write_status(run_dir, "running", pid=os.getpid(), host=socket.gethostname(), error=None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        handled = True
    except ValueError:  # not the main thread: signals stay as they are
        handled = False
    try:
        yield
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted")
        raise RunInterrupted(interrupted_message(run_dir, resume_options)) from None
    except BaseException as error:
        write_status(run_dir, "failed", error=f"{type(error).__name__}: {error}"[:2000])
        raise
    finally:
        if handled:
            signal.signal(signal.SIGTERM, previous)
    write_status(run_dir, "finished")
