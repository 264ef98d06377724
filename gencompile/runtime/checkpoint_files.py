"""The files of a run's checkpoints, read without TensorFlow.

A checkpoint of epoch N is three files in the checkpoint folder:

    epoch-NNNN.weights.h5   model weights and the optimizer's state (Keras saves both)
    epoch-NNNN.rng.npz      the state of every SeedGenerator (not part of `model.weights`)
    epoch-NNNN.json         manifest: the epoch, the sha256 of the two files above, the
                            seconds the run had trained by then (`Timing`), the epoch's
                            history.csv row and early stopping's state (`Stopping`)

and early stopping's best weights, one file per best epoch K that a manifest names:

    best-epoch-KKKK.npz     the model's weights at the end of epoch K (`get_weights`)

The manifest is written last, atomically, so it is the commit point: a checkpoint counts
only if its manifest exists and both hashes match. Writing and loading them is
`runtime.checkpoints`' (TensorFlow); listing and checking them is here, for the commands
that only need to know what a run folder holds (an interrupted run's advice, `reproduce`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencompile.errors import RunError
from gencompile.files import sha256_file

_MANIFEST = re.compile(r"^epoch-(\d{4,})\.json$")
BEST_WEIGHTS = re.compile(r"^best-epoch-(\d{4,})\.npz$")
DATA_NAME = "data.json"  # the fingerprint of the data the run's first epoch started on


@dataclass(frozen=True)
class Checkpoint:
    epoch: int  # 1-based: the number of finished epochs
    weights: Path
    rng: Path
    manifest: Path


def paths(directory: Path, epoch: int) -> Checkpoint:
    stem = Path(directory) / f"epoch-{epoch:04d}"
    return Checkpoint(
        epoch,
        stem.with_name(stem.name + ".weights.h5"),
        stem.with_name(stem.name + ".rng.npz"),
        stem.with_name(stem.name + ".json"),
    )


def listed(directory: Path) -> list[Checkpoint]:
    """Checkpoints with a manifest, oldest first (not yet verified)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    epochs = sorted(int(m.group(1)) for p in directory.iterdir() if (m := _MANIFEST.match(p.name)))
    return [paths(directory, epoch) for epoch in epochs]


def best_weights_path(directory: Path, epoch: int) -> Path:
    """The file of early stopping's best weights, those of (1-based) `epoch`."""
    return Path(directory) / f"best-epoch-{epoch:04d}.npz"


def verify(checkpoint: Checkpoint) -> str | None:
    """None if the checkpoint is whole, else what is wrong with it. Early stopping's best
    weights are checked when they are read (`checkpoints.restore_stopping`): without them,
    the checkpoint still resumes the model."""
    try:
        manifest = json.loads(checkpoint.manifest.read_text())
        for key, path in (("weights_sha256", checkpoint.weights), ("rng_sha256", checkpoint.rng)):
            if not path.is_file():
                return f"{path.name} is missing"
            if sha256_file(path) != manifest[key]:
                return f"{path.name} does not match its recorded sha256 (truncated or edited)"
    except (OSError, ValueError, KeyError) as err:
        return f"{checkpoint.manifest.name} is unreadable ({err})"
    return None


@dataclass(frozen=True)
class Stopping:
    """Early stopping's state at the end of a checkpoint's epoch, which a resumed run goes
    on from: the best value so far, its (1-based) epoch (0: none yet), the epochs waited
    since, that epoch's weights (`restore_best_weights`: a list of arrays, read from or
    written to `best_weights_path`; None without), and whether it stopped the fit at that
    epoch (`stopped`: a resume then trains no epoch more, as the fit did not)."""

    best: float | None
    best_epoch: int
    wait: int
    best_weights: list[Any] | None = None
    stopped: bool = False

    def fields(self, best_weights_sha256: str | None) -> dict[str, Any]:
        """The manifest's `early_stopping` record."""
        record: dict[str, Any] = {"best": self.best, "best_epoch": self.best_epoch}
        record["wait"] = self.wait
        if self.stopped:
            record["stopped"] = True
        if best_weights_sha256 is not None:
            record["best_weights_sha256"] = best_weights_sha256
        return record


def stopping(checkpoint: Checkpoint) -> Stopping | None:
    """Early stopping's state that a checkpoint's manifest records, its best weights not
    read (`best_weights` None); None if it records none (written by an older gencompile,
    or by a run without early stopping) or it is no such state (edited)."""
    try:
        record = json.loads(checkpoint.manifest.read_text())["early_stopping"]
        best, best_epoch, wait = record["best"], record["best_epoch"], record["wait"]
        stopped = record.get("stopped", False)  # an older gencompile's: not recorded
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    counts = all(isinstance(v, int) and not isinstance(v, bool) for v in (best_epoch, wait))
    number = best is None or (isinstance(best, (int, float)) and not isinstance(best, bool))
    if not counts or not number or not 0 <= best_epoch <= checkpoint.epoch or wait < 0:
        return None
    if not isinstance(stopped, bool):
        return None
    return Stopping(None if best is None else float(best), best_epoch, wait, stopped=stopped)


def stopped_early(directory: Path) -> int | None:
    """The epoch of the newest checkpoint if early stopping stopped its run's fit there
    (nothing is left to train); None otherwise. Its files are not hashed."""
    found = listed(directory)
    if not found:
        return None
    state = stopping(found[-1])
    return found[-1].epoch if state is not None and state.stopped else None


def stopping_weights_file(checkpoint: Checkpoint) -> tuple[Path, str] | None:
    """The best-weights file a checkpoint names, with its recorded sha256 (None: it names
    none)."""
    try:
        record = json.loads(checkpoint.manifest.read_text())["early_stopping"]
        path = best_weights_path(checkpoint.manifest.parent, int(record["best_epoch"]))
        return path, str(record["best_weights_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Timing:
    """The seconds a run had trained by the end of a checkpoint's epoch, over all its
    processes, and how many of its epochs those seconds leave out (their time unknown)."""

    seconds: float
    untimed_epochs: int

    def fields(self) -> dict[str, float | int]:
        """The manifest's fields."""
        return {"train_seconds": round(self.seconds, 3), "untimed_epochs": self.untimed_epochs}


def timing(checkpoint: Checkpoint) -> Timing | None:
    """The seconds a checkpoint's manifest records; None if it records none (written before
    gencompile kept them) or its values are no numbers of seconds and epochs (edited)."""
    try:
        manifest = json.loads(checkpoint.manifest.read_text())
        seconds, untimed = manifest["train_seconds"], manifest["untimed_epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    values = (seconds, untimed)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers or not math.isfinite(seconds) or seconds < 0:
        return None
    if untimed != int(untimed) or not 0 <= untimed <= checkpoint.epoch:
        return None
    return Timing(float(seconds), int(untimed))


def history_row(checkpoint: Checkpoint) -> dict[str, str] | None:
    """The history.csv row a checkpoint's manifest records for its epoch; None if it records
    none (written by an older gencompile) or it is not a row of numbers (edited)."""
    try:
        row = json.loads(checkpoint.manifest.read_text())["history_row"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(row, dict) or not all(_number_cell(v) for v in row.values()):
        return None
    return {str(key): value for key, value in row.items()}


def _number_cell(cell: object) -> bool:
    if not isinstance(cell, str):
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def newest_epoch(directory: Path) -> int:
    """The epoch of the newest committed checkpoint (0: none); its files are not hashed."""
    found = listed(directory)
    return found[-1].epoch if found else 0


def started_with(directory: Path) -> str | None:
    """The data fingerprint a run's checkpoints were trained on, recorded when its training
    started (None: a run trained before it was recorded). A record that is there but
    cannot be read is a RunError: the data's drift could not be checked."""
    path = Path(directory) / DATA_NAME
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text()).get("data_fingerprint")
    except (OSError, ValueError, AttributeError) as err:
        raise RunError(f"{path} is unreadable or corrupt ({err})") from None
    if not isinstance(found, str):
        raise RunError(f"{path} holds no data_fingerprint")
    return found
