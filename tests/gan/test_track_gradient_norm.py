"""gan.track_gradient_norm, the name projects generated before call: it delegates to
`loss_scaling.track_gradient_norm` (the unscaled norm, a skipped (non-finite) step weighing
0), and takes the call form of the oldest (the optimizer itself in place of its scale)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import gan


def test_a_scale_or_an_optimizer_unscale_the_norm_and_a_skipped_step_weighs_nothing() -> None:
    grads = [tf.constant([3.0, 4.0])]  # norm 5, scaled by 2 as a loss scale of 2 would
    by_scale = keras.metrics.Mean()
    gan.track_gradient_norm(by_scale, [g * 2.0 for g in grads], 2.0)
    gan.track_gradient_norm(by_scale, [tf.constant([np.inf, 0.0])], 2.0)  # skipped
    assert by_scale.result().numpy() == 5.0
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(), initial_scale=2.0, dynamic_growth_steps=1000
    )
    by_optimizer = keras.metrics.Mean()
    gan.track_gradient_norm(by_optimizer, [g * 2.0 for g in grads], optimizer)
    assert by_optimizer.result().numpy() == 5.0
