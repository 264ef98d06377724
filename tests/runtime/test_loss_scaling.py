"""loss_scaling.track_gradient_norm: the one definition of a gradient norm under mixed
precision, unscaled, a step loss scaling skipped (gradients not finite) weighing 0."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import loss_scaling


def test_the_norm_is_unscaled_and_a_skipped_step_weighs_nothing() -> None:
    tracker = keras.metrics.Mean()
    grads = [tf.constant([3.0, 4.0]), tf.constant([0.0])]  # norm 5
    loss_scaling.track_gradient_norm(tracker, [g * 4.0 for g in grads], 4.0)
    loss_scaling.track_gradient_norm(tracker, [tf.constant([np.inf, 0.0])], 4.0)  # skipped
    loss_scaling.track_gradient_norm(tracker, [tf.constant([np.nan])], 2.0)  # skipped
    loss_scaling.track_gradient_norm(tracker, [tf.constant([0.0, 14.0])], 2.0)  # norm 7
    assert tracker.result().numpy() == 6.0
    assert tracker.count.numpy() == 2.0


def test_an_epoch_of_skipped_steps_has_an_empty_mean() -> None:
    tracker = keras.metrics.Mean()
    loss_scaling.track_gradient_norm(tracker, [tf.constant([np.inf])], 8.0)
    assert tracker.count.numpy() == 0.0  # the GradientMonitor logs nan for it


def test_it_runs_in_a_compiled_step_with_the_scale_of_a_loss_scale_optimizer() -> None:
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), initial_scale=8.0)
    tracker = keras.metrics.Mean()

    @tf.function
    def step(grads):
        loss_scaling.track_gradient_norm(tracker, grads, optimizer.scale_loss(1.0))

    step([tf.constant([24.0, 32.0])])  # norm 40, scaled by 8
    assert tracker.result().numpy() == 5.0
