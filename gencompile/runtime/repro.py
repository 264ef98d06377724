"""Reproducibility helpers: seeding, weight fingerprints and atomic files.

Same spec + same seed + same versions on the same CPU must give bit-identical weights, and
a crash must never leave a half-written file in a run directory; these are the small
primitives the rest of the runtime (and `gencompile reproduce`) builds those promises on.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import tensorflow as tf

from gencompile.files import (  # re-exported: the runtime's file primitives
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "set_seed",
    "sha256_file",
    "weights_sha256",
]


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally make TF ops deterministic.

    Op determinism is process-wide and cannot be switched off through TF's public API,
    so `deterministic=False` only skips enabling it.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def weights_sha256(model: keras.Model) -> str:
    """Fingerprint a model's weights (name, shape, dtype, bytes, in `model.weights` order).

    Uses each variable's short name, not its path, so two identical models built in one
    process (whose auto-generated layer names differ) hash the same.
    """
    digest = hashlib.sha256()
    for variable in model.weights:
        array = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        header = f"{variable.name}|{tuple(array.shape)}|{array.dtype.str}|{array.nbytes}\n"
        digest.update(header.encode("utf-8"))
        digest.update(array.tobytes())
    return digest.hexdigest()
