"""The exponential moving average of a network's weights, which the GAN's generator and
the diffusion model's denoiser sample from.

After each optimizer step, every trainable weight of the averaged copy moves towards the
trained network's: average <- d average + (1 - d) weight, with d = min(decay, (1 + t) /
(10 + t)) after t steps (as `tf.train.ExponentialMovingAverage(num_updates=t)`), so that
early on the average follows the network instead of holding on to its initial weights.
An average taken from a parent run (`model.init_from`) is no initial guess: it has no
warm-up, and goes on averaging at `decay` from the child's first step.

Non-trainable weights are copied, not averaged, as Keras' own optimizer EMA
(`use_ema=True`) leaves them to the model and averages trainable variables only. They are
not what the optimizer learns: batch normalisation's moving mean and variance are
already moving averages of the trained network's activations, and a second average would
only make them lag further behind the weights they go with; a spectral norm's power
iteration vector is an estimate for the current kernel. The exact statistics for the
averaged weights would need a pass over the data (PyTorch's `swa_utils.update_bn`); the
copy is the cheap, common approximation.

Under `tf.distribute` the new values are equal on every replica (they derive from
mirrored weights), and they are written once per step by one cross-replica update
(`replicas.assign`).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from gencompile.runtime import replicas

__all__ = ["started_from_average", "update"]

WARMED_UP = "_ema_warmed_up"  # set on an average taken from a parent run


def started_from_average(average: keras.Model) -> None:
    """Mark `average` as holding an average already (a parent run's), so that `update`
    skips the warm-up; called before the train step is traced, which reads the mark."""
    setattr(average, WARMED_UP, True)


def update(average: keras.Model, model: keras.Model, decay: float, step: Any = None) -> None:
    """Move `average`'s weights towards `model`'s (the same architecture): trainable weights
    by the moving average with `decay` (warmed up by the optimizer's `step` count when
    given, unless the average was taken from a parent), non-trainable ones copied."""
    d = tf.constant(decay, tf.float32)
    if step is not None and not getattr(average, WARMED_UP, False):
        t = tf.cast(step, tf.float32)
        d = tf.minimum(d, (1.0 + t) / (10.0 + t))
    rest = 1.0 - d
    pairs = list(zip(average.weights, model.weights, strict=True))
    values = [
        d * averaged.value + rest * current.value if current.trainable else current.value
        for averaged, current in pairs
    ]
    replicas.assign([averaged for averaged, _ in pairs], values)
