"""On one device (no strategy) the replica helpers are the plain computations, so code
generated for `mirrored` trains there as single-device code does."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import replicas, training


def test_outside_a_strategy_there_is_no_replica_context() -> None:
    assert replicas.replica_context() is None


def test_scaling_to_the_global_batch_is_the_identity_and_keeps_the_dtype() -> None:
    loss = tf.constant(2.5, tf.float64)
    assert replicas.scale_to_global_batch(loss) is loss


def test_a_draw_is_the_sample_itself() -> None:
    first = replicas.draw(lambda n: keras.random.normal((n, 2), seed=7), 5)
    second = keras.random.normal((5, 2), seed=7)
    np.testing.assert_array_equal(first, second)


def test_sum_over_replicas_and_assign_are_the_plain_operations() -> None:
    variables = [keras.Variable(np.zeros(3)), keras.Variable(1.0)]
    values = replicas.sum_over_replicas([tf.ones(3, tf.float64), tf.constant(4.0)])
    replicas.assign(variables, values)
    np.testing.assert_array_equal(variables[0].numpy(), np.ones(3))
    assert float(variables[1].numpy()) == 4.0


def test_clipping_is_left_to_keras_on_one_replica() -> None:
    optimizer = keras.optimizers.SGD(clipnorm=1.0)
    training.clip_after_all_reduce(optimizer, replicas=1)
    assert "_clip_gradients" not in vars(optimizer)
    assert "_all_reduce_sum_gradients" not in vars(optimizer)


def test_clipping_moves_after_the_sum_over_replicas() -> None:
    optimizer = keras.optimizers.SGD(clipnorm=1.0)
    training.clip_after_all_reduce(optimizer, replicas=2)
    grads = [tf.constant([3.0, 4.0])]
    assert optimizer._clip_gradients(grads) is grads  # not before the sum
    ((clipped, _),) = optimizer._all_reduce_sum_gradients([(grads[0], None)])
    np.testing.assert_allclose(clipped, [0.6, 0.8])  # norm 5 clipped to 1
