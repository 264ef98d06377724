"""status.json: whether a run folder holds a finished run, or one that stopped on the way.

A run folder looks the same whether training finished, failed or was killed, so every
training writes its state there (atomically): `running` with its process id when it
starts, then `finished`, `failed` (with the error) or `interrupted` (Ctrl-C, SIGTERM). A
run killed outright (SIGKILL, power loss) cannot write anything: it stays `running` with
the id of a process that no longer exists, which `read_status` reports as `interrupted`.

One process at a time trains or evaluates a run folder: it holds an exclusive lock (`flock`)
on the folder itself (`gencompile.runtime.run_lock`, which a generated train.py run as a
command takes too), which the kernel releases however the process ends, and a second
trainer is refused, naming the first.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Literal, NamedTuple

from gencompile.errors import GencompileError, RunError, quoted
from gencompile.files import UnwrittenRunFile, atomic_write_json, process_alive, read_json
from gencompile.runtime import run_lock

STATUS_NAME = "status.json"
PRIOR_HISTORY = "prior_history.csv"  # gencompile.runtime.vq's (a test checks), without TensorFlow
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


def read_status(run_dir: Path | str) -> str | None:
    """The run's status; None for a run written before gencompile kept one."""
    record = read_json(Path(run_dir) / STATUS_NAME)
    status: str | None = record.get("status")
    if status != "running":
        return status
    same_host = record.get("host") == socket.gethostname()
    pid = record.get("pid")
    if same_host and isinstance(pid, int) and not process_alive(pid):
        return "interrupted"  # killed without a chance to say so
    return status


PRUNED = "pruned_after_epoch"  # status.json: a sweep's pruner stopped the fit after it


def pruned_epoch(run_dir: Path | str) -> int | None:
    """The epoch after which a sweep's pruner stopped this finished run's fit (its lock
    asks for more); None for a run that trained all its epochs."""
    epoch = read_json(Path(run_dir) / STATUS_NAME).get(PRUNED)
    return epoch if isinstance(epoch, int) else None


def epochs_phrase(count: Any) -> str:
    """`1 epoch`, `3 epochs`."""
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def kept_epochs(run_dir: Path) -> int | None:
    """The epochs of the finished training a pending continuation of `run_dir` keeps
    (status.json's `finished_revision`); None when no continuation is pending."""
    try:
        kept = read_json(run_dir / STATUS_NAME).get("finished_revision")
    except RunError:  # an unreadable status.json: no continuation known
        return None
    return kept.get("epochs") if isinstance(kept, dict) else None


def interrupted_message(run_dir: Path, resume_options: str = "") -> str:
    """What an interrupted training kept: its newest checkpoint and how to continue from
    it (a continuation: or how to give it up), or, stopped before its first checkpoint,
    that nothing can be resumed."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    epoch = newest_epoch(run_dir / "checkpoints")
    kept = kept_epochs(run_dir)
    meanwhile = (
        f", or give the continuation up with `gencompile train --resume {quoted(run_dir)} "
        "--discard-continuation` (until then sample and evaluate use its finished training "
        f"of {epochs_phrase(kept)})"
        if kept is not None
        else ""
    )
    if epoch:
        return (
            f"interrupted: {run_dir} keeps its checkpoint of epoch {epoch}; continue with "
            f"`gencompile train --resume {quoted(run_dir)}{resume_options}`{meanwhile}"
            f"{prior_trained_again(run_dir)}"
        )
    return (
        f"interrupted: {run_dir} was stopped before its first checkpoint was written, so "
        "its training is lost and cannot be resumed; train the spec again"
    )


def prior_trained_again(run_dir: Path) -> str:
    """What a VQ-VAE stopped in stage 2 loses: its checkpoints hold the VQ-VAE's epochs
    alone, so a resumed run fits its prior from scratch (to the same weights) and the
    prior's epochs so far (rows of `prior_history.csv` among the final files the training
    writes, runtime.vq's) are trained again. "" when no prior epoch was recorded."""
    from gencompile.runtime.final_files import final_folder  # no TensorFlow
    from gencompile.runtime.history_file import read_epochs

    done = len(read_epochs(final_folder(run_dir) / PRIOR_HISTORY))
    if not done:
        return ""
    verb = "is" if done == 1 else "are"
    return (
        f"; its prior's {epochs_phrase(done)} so far {verb} trained again (the checkpoints "
        "hold the VQ-VAE's epochs: --resume fits the prior from the start)"
    )


def _training_elsewhere(run_dir: Path, then: str | None = None) -> str:
    """`gencompile train --resume` refused: another process trains `run_dir` now (`then`:
    what to do once it stopped; default: continue it)."""
    record = read_json(run_dir / STATUS_NAME)
    pid, host = record.get("pid"), record.get("host")
    who = f"process {pid} on {host}" if pid and host else "another process"
    message = f"{run_dir} is being trained right now by {who}: wait for it to finish, or stop it"
    if host == socket.gethostname() and isinstance(pid, int):
        message += f" (Ctrl-C in its terminal, or `kill {pid}`)"
    message += f", then {then or f'continue it with `gencompile train --resume {quoted(run_dir)}`'}"
    if host and host != socket.gethostname():
        message += (
            f"; if nothing on {host} trains it any more, delete {run_dir / STATUS_NAME} first"
        )
    return message


def _held_elsewhere(run_dir: Path, then: str | None) -> str:
    """Why `run_dir`'s lock is held: by the trainer status.json names (running, alive and,
    where the kernel says, holding the lock); by another process the kernel names (an
    evaluation, a generated train.py run by hand); or else by another gencompile command of
    this process, or one the kernel does not name (a build, a discard, a training starting
    or ending), whose pid status.json does not hold: its old pid may be gone or reused."""
    try:
        record = read_json(run_dir / STATUS_NAME)
        training = read_status(run_dir) == "running"
    except RunError:  # an unreadable status.json names no trainer
        record, training = {}, False
    holders = run_lock.holders(run_dir)
    named = record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int)
    if training and named and (holders is None or record["pid"] in holders):
        return _training_elsewhere(run_dir, then)
    others = sorted((holders or set()) - {os.getpid()})  # this process: one of its commands
    if others:  # an evaluation, or a generated train.py run by hand
        who = ", ".join(map(run_lock.describe, others))
        return (
            f"{run_dir} is in use right now by {who}: wait for it to end, or stop it "
            f"(`kill {' '.join(map(str, others))}`), then {then or 'run this again'}"
        )
    return (
        f"{run_dir} is being written right now by another gencompile command (a build, or a "
        f"training starting or ending): wait for it to end, then {then or 'run this again'}"
    )


def _lock_folder(run_dir: Path, then: str | None = None) -> int | None:
    """An open descriptor of `run_dir` holding its exclusive lock (None: locks are not
    available here); RunError if another process holds it (`then`: what its message says to
    do once that process stopped). Closing it releases the lock."""
    return run_lock.lock_folder(run_dir, lambda folder: _held_elsewhere(folder, then))


def refuse_if_training(run_dir: Path) -> None:
    """Refuse to start training `run_dir` while another process trains it.

    The folder's lock decides on this machine: a trainer holds it throughout, so a free lock
    means that a `running` status.json was left by a process killed outright (whose id may
    since belong to another program). Where locks are not available, and for a status
    written on another host, a `running` status is believed unless its process is gone."""
    with not_training(run_dir):
        pass


@contextmanager
def not_training(run_dir: Path, then: str | None = None) -> Iterator[None]:
    """Hold `run_dir`'s lock in this block, refusing a run another process trains (as
    `refuse_if_training` decides; `then`: what the refusal says to do once it stopped), so
    that no training starts on it meanwhile."""
    run_dir = Path(run_dir)
    fd = _lock_folder(run_dir, then)  # RunError if held
    try:
        try:
            stale = fd is not None and read_json(run_dir / STATUS_NAME).get("host") == (
                socket.gethostname()
            )
            running = read_status(run_dir) == "running"
        except RunError:  # an unreadable status.json: the lock alone decides
            running = False
        if running and not stale:
            raise RunError(_training_elsewhere(run_dir, then))
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _record_stop(run_dir: Path, stop: BaseException, status: Status, **fields: Any) -> None:
    """Write why training stopped, if the disk lets us: when the write fails too (a full
    disk), the error that stopped training is the one to report, so the status write's
    own error is only noted (on the error and on stderr), never raised in its place."""
    try:
        write_status(run_dir, status, **fields)
    except (OSError, RunError) as unwritten:
        note = (
            f"note: {run_dir / STATUS_NAME} could not be updated to {status!r} ({unwritten}); "
            "it reads as interrupted once this process ends"
        )
        if hasattr(stop, "add_note"):  # Python 3.11+
            stop.add_note(note)
        print(note, file=sys.stderr, flush=True)


def _note_failed_continuation(run_dir: Path, error: BaseException, resume_options: str) -> None:
    """A continuation that failed leaves the run its finished training: say so, and how to
    go on or give it up (on the error, and on stderr)."""
    kept = kept_epochs(run_dir)
    if kept is None:
        return
    _note(
        error,
        f"note: {run_dir} keeps its finished training of {epochs_phrase(kept)}; once the "
        f"cause is fixed, continue with "
        f"`gencompile train --resume {quoted(run_dir)}{resume_options}`, "
        f"or give the continuation up with `gencompile train --resume {quoted(run_dir)} "
        "--discard-continuation`",
    )


def _note_failed_final_phase(run_dir: Path, error: BaseException, resume_options: str) -> None:
    """A training that failed after its last epoch (in its evaluation, samples or final
    files) keeps every epoch: say so, and that a resume trains none of them again (on the
    error, and on stderr). A continuation's failure is `_note_failed_continuation`'s; a
    final file that could not be written says what the run keeps itself."""
    if kept_epochs(run_dir) is not None or isinstance(error, UnwrittenRunFile):
        return
    trained = trained_to_the_end(run_dir)
    if trained is None:
        return
    _note(
        error,
        f"note: {run_dir} {trained.said} and keeps the checkpoint of epoch {trained.epoch}; "
        f"once the cause is fixed, {finish_without_training(run_dir, resume_options)}",
    )


def _note(error: BaseException, note: str) -> None:
    """`note` on the error (a traceback under --debug shows it) and on stderr."""
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(note)
    print(note, file=sys.stderr, flush=True)


class TrainedToTheEnd(NamedTuple):
    epoch: int  # of its newest checkpoint, where its training ended
    said: str  # "trained all its 2 epochs", "was stopped by early stopping after epoch 3"


def trained_to_the_end(run_dir: Path) -> TrainedToTheEnd | None:
    """A run whose training is all kept in its newest checkpoint, so that a resume goes
    straight on to its final phase (evaluation, samples, final files): one checkpointed at
    the last epoch its lock plans, or at the epoch where early stopping stopped it. None
    otherwise: it stopped in an epoch, or before its planned epochs (a NaN loss, EM's
    convergence, a sweep's pruner), where a resume would train on; or its lock is
    unreadable."""
    from gencompile.runtime.checkpoint_files import newest_epoch, stopped_early  # no TF

    try:
        planned = read_json(Path(run_dir) / "spec.lock.json")["resolved_spec"]["training"]["epochs"]
    except (RunError, KeyError, TypeError):
        return None
    if not isinstance(planned, int) or planned < 1:
        return None
    folder = Path(run_dir) / "checkpoints"
    stopped = stopped_early(folder)
    if stopped is not None:
        return TrainedToTheEnd(stopped, f"was stopped by early stopping after epoch {stopped}")
    if newest_epoch(folder) != planned:
        return None
    return TrainedToTheEnd(planned, f"trained all its {epochs_phrase(planned)}")


def finish_without_training(run_dir: Path, resume_options: str = "") -> str:
    """`gencompile train --resume RUN` evaluates ... without training again: the advice for a
    run `trained_to_the_end` (a VQ-VAE's prior, fitted after the checkpointed epochs, is
    fitted again: said so)."""
    return (
        f"`gencompile train --resume {quoted(run_dir)}{resume_options}` evaluates it and "
        f"writes its final files without training those epochs again{prior_trained_again(run_dir)}"
        f"{best_weights_unrecorded(run_dir)}"
    )


def best_weights_unrecorded(run_dir: Path) -> str:
    """What a run whose early stopping restores its best weights loses when its newest
    checkpoint records no early-stopping state (an older gencompile's): the resume keeps
    that checkpoint's weights. "" when it loses nothing."""
    from gencompile.runtime.checkpoint_files import listed, stopping, stopping_weights_file

    try:
        options = read_json(Path(run_dir) / "spec.lock.json")["resolved_spec"]["training"]
        restores = bool((options["early_stopping"] or {}).get("restore_best_weights"))
    except (RunError, KeyError, TypeError, AttributeError):
        return ""
    found = listed(Path(run_dir) / "checkpoints")
    if not restores or not found:
        return ""
    newest = found[-1]
    state = stopping(newest)
    if state is not None and (state.best_epoch == 0 or stopping_weights_file(newest)):
        return ""
    return (
        f"; but its checkpoint records no best weights of early stopping (written by an "
        f"older gencompile), so it keeps the weights of epoch {newest.epoch}, not "
        "necessarily those early stopping would restore"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops this block as Ctrl-C does (KeyboardInterrupt), where its default
    would end the process without a word or a chance to clean up. Outside the main
    thread, signals stay as they are."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        handled = True
    except ValueError:  # not the main thread
        handled = False
    try:
        yield
    finally:
        if handled:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def recorded(run_dir: Path, resume_options: str = "") -> Iterator[None]:
    """Keep status.json true while training runs in this block (`resume_options`: what
    the advice to resume adds to `gencompile train --resume RUN`).

    SIGTERM is turned into the same clean stop as Ctrl-C (the default would end the
    process without a word), and both end in `RunInterrupted` saying how to resume. The
    folder's lock is held throughout: a second trainer is refused before it writes.
    """
    lock = _lock_folder(run_dir)
    try:
        with _recorded(run_dir, resume_options):
            yield
    finally:
        if lock is not None:
            os.close(lock)


@contextmanager
def _recorded(run_dir: Path, resume_options: str) -> Iterator[None]:
    # A training that starts makes an earlier discarded continuation history.
    start = {"pid": os.getpid(), "host": socket.gethostname(), "error": None}
    write_status(run_dir, "running", **start, discarded_continuation=None, **{PRUNED: None})
    with terminate_as_interrupt():
        try:
            yield
        except KeyboardInterrupt:
            stopped = RunInterrupted(interrupted_message(run_dir, resume_options))
            _record_stop(run_dir, stopped, "interrupted")
            raise stopped from None
        except BaseException as error:
            error_text = f"{type(error).__name__}: {error}"[:2000]
            _record_stop(run_dir, error, "failed", error=error_text)
            _note_failed_continuation(run_dir, error, resume_options)
            _note_failed_final_phase(run_dir, error, resume_options)
            raise
    write_status(run_dir, "finished")
