"""Checkpoints a run can resume from bit for bit, and that a crash cannot corrupt unseen.

A checkpoint of epoch N is three files in the checkpoint folder (`checkpoint_files`, which
lists and verifies them without TensorFlow): the weights with the optimizer's state, the
random state, and a manifest written last, atomically, as the commit point. Under early
stopping, the manifest also records its state, and its best weights are a fourth file,
shared by the checkpoints with the same best epoch. A truncated or half-written checkpoint
is skipped with a warning and the one before it is used.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import keras
import numpy as np

from gencompile.files import (
    atomic_save_weights,
    atomic_write_bytes,
    atomic_write_text,
    sha256_file,
    stray_temporaries,
)
from gencompile.runtime import checkpoint_files
from gencompile.runtime.checkpoint_files import (
    BEST_WEIGHTS,
    DATA_NAME,
    Checkpoint,
    Stopping,
    Timing,
    best_weights_path,
    listed,
    stopping_weights_file,
    verify,
)
from gencompile.runtime.checkpoint_files import paths as _paths

__all__ = [
    "Checkpoint",
    "interrupts_deferred",
    "listed",
    "prune",
    "record_data",
    "remove_strays",
    "restore_latest",
    "restore_stopping",
    "save_checkpoint",
    "verify",
]

_deferring = threading.local()  # set while a block defers signals (nested blocks defer once)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then stop as they would have.

    A checkpoint written half-way is no checkpoint: a signal while one is written waits for
    the write (a note says so), and a second one stops at once, for a write that hangs. Only
    signals handled in Python (Ctrl-C's KeyboardInterrupt, the SIGTERM of a recorded run)
    are held; outside the main thread, or nested in another such block, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread() or getattr(
        _deferring, "on", False
    ):
        yield
        return
    previous: dict[int, Any] = {}
    held: int
    for held in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(held)
        if callable(handler):
            previous[held] = handler
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if received:  # asked twice: stop now
            previous[signum](signum, frame)
            return
        received.append(signum)
        print(
            "stopping once the checkpoint being written is complete (again to stop now)",
            file=sys.stderr,
            flush=True,
        )

    for signum in previous:
        signal.signal(signum, hold)
    _deferring.on = True
    try:
        yield
    finally:
        _deferring.on = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        previous[received[0]](received[0], None)  # KeyboardInterrupt, as the signal would


def rng_variables(model: keras.Model) -> list[keras.Variable]:
    """The SeedGenerator states: in `model.variables` but not in `model.weights`."""
    weight_ids = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def save_checkpoint(
    model: keras.Model,
    directory: Path,
    epoch: int,
    timing: Timing | None = None,
    *,
    history_row: dict[str, str] | None = None,
    stopping: Stopping | None = None,
    write_best: bool = True,
) -> Checkpoint:
    """Write the checkpoint of a finished (1-based) epoch; the manifest commits it, with the
    seconds the run had trained by that epoch's end (`timing`), which a resume counts on from,
    the epoch's history.csv row (`history_row`), which a resume puts back if the file lacks
    it, and early stopping's state then (`stopping`), which a resume goes on with. Its best
    weights are written when `write_best` (the best changed since they were last written)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = _paths(directory, epoch)
    atomic_save_weights(paths.weights, model)  # in memory first: see atomic_save_weights
    atomic_write_bytes(
        paths.rng, _npz([keras.ops.convert_to_numpy(v) for v in rng_variables(model)])
    )
    manifest: dict[str, Any] = {
        "epoch": epoch,
        "weights_sha256": sha256_file(paths.weights),
        "rng_sha256": sha256_file(paths.rng),
        **(timing.fields() if timing is not None else {}),
    }
    if history_row:
        manifest["history_row"] = history_row
    if stopping is not None:
        manifest["early_stopping"] = stopping.fields(_best_weights(directory, stopping, write_best))
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def _npz(arrays: list[Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def _arrays(path: Path) -> list[np.ndarray]:
    """The arrays of an `_npz` file, in order."""
    with np.load(path) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


def _best_weights(directory: Path, stopping: Stopping, write: bool) -> str | None:
    """The sha256 of early stopping's best weights file, written first if `write`; None
    when it keeps no weights (`restore_best_weights: false`, or no best yet)."""
    if stopping.best_weights is None:
        return None
    path = best_weights_path(directory, stopping.best_epoch)
    if write or not path.is_file():
        atomic_write_bytes(path, _npz(stopping.best_weights))
    return sha256_file(path)


def restore_stopping(directory: Path, epoch: int) -> Stopping | None:
    """Early stopping's state at the end of the checkpoint of `epoch`, with its best weights;
    None if it records none (an older gencompile's), or its best weights file is missing or
    does not match its recorded sha256."""
    checkpoint = _paths(Path(directory), epoch)
    state = checkpoint_files.stopping(checkpoint)
    best = stopping_weights_file(checkpoint)
    if state is None or best is None:
        return state
    path, sha256 = best
    if not path.is_file() or sha256_file(path) != sha256:
        return None
    return dataclasses.replace(state, best_weights=_arrays(path))


def record_data(directory: Path, fingerprint: str) -> None:
    """Note the data a run starts training on, before its first checkpoint: a resume can then
    tell whether the data changed even when the run never finished (the lock gets the
    fingerprint only at the end)."""
    text = json.dumps({"data_fingerprint": fingerprint}, indent=2) + "\n"
    atomic_write_text(Path(directory) / DATA_NAME, text)


def restore_latest(model: keras.Model, directory: Path) -> int:
    """Load the newest whole checkpoint into a compiled model; returns its epoch (0: none)."""
    if not model.optimizer.built:  # an unbuilt optimizer would skip its saved state
        model.optimizer.build(model.trainable_variables)
    for checkpoint in reversed(listed(directory)):
        problem = verify(checkpoint)
        if problem is None:
            try:
                model.load_weights(checkpoint.weights)
                arrays = _arrays(checkpoint.rng)
                variables = rng_variables(model)
                if len(arrays) != len(variables):
                    raise ValueError("the model's random state does not match the checkpoint")
                for variable, array in zip(variables, arrays, strict=True):
                    variable.assign(array)
                return checkpoint.epoch
            except Exception as err:  # h5py and Keras raise many kinds for a bad file
                problem = f"cannot be loaded ({err})"
        warnings.warn(
            f"skipping checkpoint of epoch {checkpoint.epoch}: {problem}; trying the one before",
            stacklevel=2,
        )
    return 0


def prune(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (manifest first: uncommit, then delete),
    and the best weights of early stopping that no checkpoint kept names."""
    found = listed(directory)
    for checkpoint in found[:-keep]:
        for path in (checkpoint.manifest, checkpoint.weights, checkpoint.rng):
            path.unlink(missing_ok=True)
    named = {best[0] for c in found[-keep:] if (best := stopping_weights_file(c)) is not None}
    for path in Path(directory).iterdir():
        if BEST_WEIGHTS.match(path.name) and path not in named:
            path.unlink(missing_ok=True)


def remove_strays(directory: Path) -> None:
    """Give back the space of temporary files that a killed checkpoint write left (their
    writer is gone: nothing will ever rename them into place)."""
    for path in stray_temporaries(directory):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
