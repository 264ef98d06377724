"""Checkpoints a run can resume from bit for bit, and that a crash cannot corrupt unseen.

A checkpoint of epoch N is three files in the checkpoint folder:

    epoch-NNNN.weights.h5   model weights and the optimizer's state (Keras saves both)
    epoch-NNNN.rng.npz      the state of every SeedGenerator (not part of `model.weights`)
    epoch-NNNN.json         manifest: the epoch and the sha256 of the two files above

The manifest is written last, atomically, so it is the commit point: a checkpoint counts
only if its manifest exists and both hashes match. A truncated or half-written checkpoint
is skipped with a warning and the one before it is used.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from gencompile.files import atomic_save, atomic_write_bytes, atomic_write_text, sha256_file

_MANIFEST = re.compile(r"^epoch-(\d{4,})\.json$")


@dataclass(frozen=True)
class Checkpoint:
    epoch: int  # 1-based: the number of finished epochs
    weights: Path
    rng: Path
    manifest: Path


def _paths(directory: Path, epoch: int) -> Checkpoint:
    stem = directory / f"epoch-{epoch:04d}"
    return Checkpoint(
        epoch,
        stem.with_name(stem.name + ".weights.h5"),
        stem.with_name(stem.name + ".rng.npz"),
        stem.with_name(stem.name + ".json"),
    )


def rng_variables(model: keras.Model) -> list[keras.Variable]:
    """The SeedGenerator states: in `model.variables` but not in `model.weights`."""
    weight_ids = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def save_checkpoint(model: keras.Model, directory: Path, epoch: int) -> Checkpoint:
    """Write the checkpoint of a finished (1-based) epoch; the manifest commits it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = _paths(directory, epoch)
    atomic_save(paths.weights, model.save_weights)
    buffer = io.BytesIO()
    states = [keras.ops.convert_to_numpy(v) for v in rng_variables(model)]
    np.savez(buffer, *states)
    atomic_write_bytes(paths.rng, buffer.getvalue())
    manifest = {
        "epoch": epoch,
        "weights_sha256": sha256_file(paths.weights),
        "rng_sha256": sha256_file(paths.rng),
    }
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def listed(directory: Path) -> list[Checkpoint]:
    """Checkpoints with a manifest, oldest first (not yet verified)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    epochs = sorted(int(m.group(1)) for p in directory.iterdir() if (m := _MANIFEST.match(p.name)))
    return [_paths(directory, epoch) for epoch in epochs]


def verify(checkpoint: Checkpoint) -> str | None:
    """None if the checkpoint is whole, else what is wrong with it."""
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


def restore_latest(model: keras.Model, directory: Path) -> int:
    """Load the newest whole checkpoint into a compiled model; returns its epoch (0: none)."""
    if not model.optimizer.built:  # an unbuilt optimizer would skip its saved state
        model.optimizer.build(model.trainable_variables)
    for checkpoint in reversed(listed(directory)):
        problem = verify(checkpoint)
        if problem is None:
            try:
                model.load_weights(checkpoint.weights)
                with np.load(checkpoint.rng) as states:
                    arrays = [states[f"arr_{i}"] for i in range(len(states.files))]
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
    """Delete all but the newest `keep` checkpoints (manifest first: uncommit, then delete)."""
    for checkpoint in listed(directory)[:-keep]:
        for path in (checkpoint.manifest, checkpoint.weights, checkpoint.rng):
            path.unlink(missing_ok=True)
