"""Gradient norms under mixed precision, where a `LossScaleOptimizer` scales the loss.

Under mixed precision the loss is multiplied by the optimizer's loss scale before the
gradients are taken (so float16 activations keep their small gradients), and the gradients
are divided by it again inside `optimizer.apply`. A step whose scaled gradients overflowed
(not finite) is skipped by the optimizer, which lowers its scale and leaves the weights as
they are.

`track_gradient_norm` is the one definition every generated model that tracks a gradient
norm under mixed precision calls: the norm of the gradients divided by the scale they were
taken with, a skipped step weighing 0 in the epoch's mean. Without it, one skipped step
would make the epoch's mean inf or nan, and the GradientMonitor would read exploding
gradients where training in fact went on unharmed. An epoch whose every step was skipped
has an empty mean (Keras reads 0): the GradientMonitor logs nan for it and says why.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["track_gradient_norm"]


def applied_steps(optimizer: keras.optimizers.Optimizer) -> int:
    """The steps the optimizer applied (a skipped step is not counted), read through NumPy:
    under a tf.distribute strategy `iterations` is a mirrored variable, which `int()`
    refuses."""
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def track_gradient_norm(tracker: keras.metrics.Mean, grads: list[Any], scale: Any) -> None:
    """Add the global norm of `grads`, gradients of a loss multiplied by `scale`, unscaled,
    to `tracker`; a step whose scaled gradients are not finite (skipped) weighs 0.

    `scale` is the optimizer's `scale_loss(1.0)`, read before its `apply`, which lowers the
    scale after a skipped step and may raise it after a run of good ones.
    """
    norm = tf.linalg.global_norm(grads) / tf.cast(scale, tf.float32)
    finite = tf.math.is_finite(norm)
    tracker.update_state(tf.where(finite, norm, 0.0), sample_weight=tf.cast(finite, tf.float32))
