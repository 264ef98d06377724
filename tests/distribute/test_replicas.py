"""On one device (no strategy) the replica helpers are the plain computations, so code
generated for `mirrored` trains there as single-device code does; and which batches would
leave a replica without an example (`runtime/replica_batches.py`)."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime import replica_batches, replicas, training


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


def test_scaling_with_a_count_is_the_identity_on_one_replica() -> None:
    loss = tf.constant(2.5)
    assert replicas.scale_to_global_batch(loss, 7) is loss
    share = replicas.batch_share(7)  # one replica holds the whole batch
    assert float(share) == 1.0
    assert replicas.scale_to_global_batch(loss, share=share) is loss


def test_tracked_means_weigh_each_batch_by_its_examples() -> None:
    tracker = keras.metrics.Mean(name="loss")
    replicas.track(tracker, 1.0, 3)  # a batch of 3 with mean 1
    replicas.track(tracker, 5.0, 1)  # a last batch of 1
    assert float(tracker.result()) == 2.0  # (3 * 1 + 5) / 4, not (1 + 5) / 2
    replicas.track(tracker, float("nan"), 0)  # an empty slice's mean over nothing
    assert float(tracker.result()) == 2.0
    assert {k: float(v) for k, v in replicas.results([tracker]).items()} == {"loss": 2.0}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_non_empty_slice_tracks_as_keras_weighted_mean_does(dtype: str) -> None:
    # Generated steps that never see an empty slice write the plain Keras form; it adds
    # the same total and count, bit for bit (a float16 loss under mixed precision too).
    ours, keras_form = keras.metrics.Mean(), keras.metrics.Mean()
    values = np.random.default_rng(0).normal(size=20) * 10
    for value, examples in zip(values, range(1, 21), strict=True):
        value, examples = tf.constant(value, dtype), tf.constant(examples, tf.int32)
        replicas.track(ours, value, examples)
        keras_form.update_state(value, sample_weight=examples)
    for mine, theirs in [(ours.total, keras_form.total), (ours.count, keras_form.count)]:
        assert mine.numpy().tobytes() == theirs.numpy().tobytes()


def test_tf_distribute_leaves_a_replica_empty_as_predicted() -> None:
    # The slices MirroredStrategy gave partial batches of 1..7 (batches of 8) on 4 replicas.
    split = {1: [1, 0, 0, 0], 2: [1, 1, 0, 0], 3: [1, 1, 1, 0], 4: [1, 1, 1, 1]}
    split |= {5: [2, 2, 1, 0], 6: [2, 2, 2, 0], 7: [2, 2, 2, 1]}
    for examples, slices in split.items():
        assert replica_batches.leaves_a_replica_empty(examples, 4) == (0 in slices)
    assert [n for n in range(1, 8) if replica_batches.leaves_a_replica_empty(n, 2)] == [1]


def test_an_epoch_skips_only_a_last_batch_that_would_leave_a_replica_empty() -> None:
    skipped = replica_batches.skipped_last_batch
    assert skipped(count=129, steps=9, batch_size=16, replicas=2) == 1  # 8 x 16 + 1
    assert skipped(count=131, steps=9, batch_size=16, replicas=2) == 0  # ... + 3: 2 + 1
    assert skipped(count=128, steps=8, batch_size=16, replicas=2) == 0  # full batches
    assert skipped(count=35, steps=2, batch_size=16, replicas=2) == 0  # drop_remainder
    assert skipped(count=13, steps=2, batch_size=8, replicas=4) == 5  # 2 + 2 + 1 + 0
    batches = tf.data.Dataset.range(129).batch(16)
    kept = replica_batches.without_batches_of(batches, 1)
    assert [int(b.shape[0]) for b in kept] == [16] * 8


def test_steps_per_epoch_leave_out_the_skipped_batch(monkeypatch) -> None:
    monkeypatch.setattr(training, "replicas_of", lambda config: 2)
    data = SimpleNamespace(x_train=np.zeros((129, 2)), steps_per_epoch=9, batch_size=16)
    config = {"steps_per_epoch": None}
    assert training.skipped_per_epoch(config, data) == 1
    assert training.steps_per_epoch(config, data) == 8
    fixed = {"steps_per_epoch": 5}  # full batches of a repeated epoch: nothing to skip
    assert training.skipped_per_epoch(fixed, data) == 0
    assert training.steps_per_epoch(fixed, data) == 5


def test_held_out_data_that_would_leave_a_replica_empty_is_refused_before_training(
    monkeypatch,
) -> None:
    monkeypatch.setattr(
        training, "strategy_for", lambda name: SimpleNamespace(num_replicas_in_sync=2)
    )
    data = SimpleNamespace(
        x_train=np.zeros((163, 2)), x_val=np.zeros((65, 2)), steps_per_epoch=11, batch_size=16
    )
    config = {
        "steps_per_epoch": None,
        "mixed_precision": False,
        "distribution": {"strategy": "mirrored"},
    }
    with pytest.raises(RunError) as caught:
        training.build_and_compile(lambda: None, config, data, epochs=1)
    assert str(caught.value) == (
        "data.validation_split holds 65 held-out examples, whose last batch of 1 "
        "(data.batch_size=16) would leave one of the 2 replicas of the 'mirrored' strategy "
        "without an example (TensorFlow's CPU convolutions fail on an empty batch), and "
        "held-out examples are not skipped: use a batch size that splits them, e.g. "
        "--set data.batch_size=18, or another data.validation_split"
    )


def test_a_held_out_split_too_small_for_the_replicas_asks_for_more_of_it() -> None:
    with pytest.raises(RunError, match=r"use a data\.validation_split that holds more of them$"):
        replica_batches.check_validation_batches(5, 8, 4, "multi_worker")  # 2 + 2 + 1 + 0
    replica_batches.check_validation_batches(7, 8, 4, "multi_worker")  # 2 + 2 + 2 + 1
    replica_batches.check_validation_batches(0, 8, 4, "multi_worker")  # no held-out split


class Built(Exception):
    """Raised by a model builder: build_and_compile got past its checks."""


def _four_replicas(monkeypatch) -> None:
    strategy = SimpleNamespace(num_replicas_in_sync=4, scope=contextlib.nullcontext)
    monkeypatch.setattr(training, "strategy_for", lambda name: strategy)


def _build() -> None:
    raise Built


def test_a_training_split_of_one_batch_that_would_leave_a_replica_empty_is_refused(
    monkeypatch,
) -> None:
    _four_replicas(monkeypatch)  # 5 examples in a batch of 8: slices 2 + 2 + 1 + 0
    data = SimpleNamespace(
        x_train=np.zeros((5, 2)), x_val=np.zeros((0, 2)), steps_per_epoch=1, batch_size=8
    )
    config = {
        "steps_per_epoch": None,
        "mixed_precision": False,
        "distribution": {"strategy": "multi_worker", "empty_slices": False},
        "validation_every_epochs": "auto",
    }
    with pytest.raises(RunError) as caught:
        training.build_and_compile(lambda: None, config, data, epochs=1)
    assert str(caught.value) == (
        "the training split holds 5 example(s), one batch of data.batch_size=8 that would "
        "leave one of the 4 replicas of the 'multi_worker' strategy without an example "
        "(TensorFlow's CPU convolutions fail on an empty batch): an epoch leaves such a last "
        "batch out, and nothing would be left to train on: use a smaller batch size, e.g. "
        "--set data.batch_size=4, or more training data"
    )


def test_a_training_split_smaller_than_the_replicas_asks_for_more_data() -> None:
    with pytest.raises(RunError, match=r"use more training data \(at least 2 examples\), or a "):
        replica_batches.refuse_one_skipped_batch(1, 8, 2, "mirrored")  # slices 1 + 0


def test_steps_that_take_empty_slices_keep_every_batch(monkeypatch) -> None:
    """A mixture's steps take a replica's empty slice: no batch is left out, and held-out
    data ending with one is not refused. (Their first batches split evenly: Keras builds
    the model from one averaged over the replicas, `check_first_batches`.)"""
    _four_replicas(monkeypatch)
    monkeypatch.setattr(training, "replicas_of", lambda config: 4)
    data = SimpleNamespace(  # last batches of 1: slices 1 + 0 + 0 + 0
        x_train=np.zeros((9, 2)), x_val=np.zeros((9, 2)), steps_per_epoch=2, batch_size=8
    )
    config = {
        "steps_per_epoch": None,
        "mixed_precision": False,
        "distribution": {"strategy": "mirrored", "empty_slices": True},
    }
    assert training.skipped_per_epoch(config, data) == 0
    assert training.steps_per_epoch(config, data) == 2
    with pytest.raises(Built):
        training.build_and_compile(_build, config, data, epochs=1)
    config["distribution"]["empty_slices"] = False
    assert training.skipped_per_epoch(config, data) == 1
    with pytest.raises(RunError, match="held-out examples are not skipped"):
        training.build_and_compile(lambda: None, config, data, epochs=1)


def test_one_replica_holds_the_whole_batch_without_a_collective() -> None:
    split = replicas.split(5)
    assert (split.start, split.examples, split.total, float(split.share)) == (0, 5, 5, 1.0)
    first = replicas.draw(lambda n: keras.random.normal((n, 2), seed=7), split)
    np.testing.assert_array_equal(first, keras.random.normal((5, 2), seed=7))
    loss = tf.constant(2.5)
    assert replicas.scale_to_global_batch(loss, share=split.share) is loss


def test_a_split_smaller_than_a_batch_that_splits_unevenly_is_refused(monkeypatch) -> None:
    """Keras averages a split's first batch over the replicas to build the model: 43
    held-out examples in batches of 64 made slices of 22 and 21, and `--workers 2` failed
    with a collective's shape mismatch at the first validation."""
    monkeypatch.setattr(
        training, "strategy_for", lambda name: SimpleNamespace(num_replicas_in_sync=2)
    )
    data = SimpleNamespace(
        x_train=np.zeros((387, 2)), x_val=np.zeros((43, 2)), steps_per_epoch=7, batch_size=64
    )
    config = {
        "steps_per_epoch": None,
        "mixed_precision": False,
        "distribution": {"strategy": "multi_worker", "empty_slices": True},
    }
    with pytest.raises(RunError) as caught:
        training.build_and_compile(lambda: None, config, data, epochs=1)
    assert str(caught.value) == (
        "data.validation_split holds 43 example(s), fewer than data.batch_size=64: its one "
        "batch does not split evenly between the 2 replicas of the 'multi_worker' strategy "
        "(Keras builds the model from a first batch averaged over the replicas, which needs "
        "slices of one size): use a batch size that splits it, e.g. --set "
        "data.batch_size=40, or a split of a multiple of 2 examples"
    )
    with pytest.raises(RunError, match=r"^the training split holds 43 example"):
        replica_batches.check_first_batches(43, 0, 64, 2, "mirrored")
    replica_batches.check_first_batches(42, 44, 64, 2, "mirrored")  # even: 21 + 21, 22 + 22
    replica_batches.check_first_batches(129, 65, 64, 2, "mirrored")  # first batches of 64
    # The suggested size keeps every batch's first slice even and no replica empty.
    assert replica_batches.splitting_batch_size(43, 64, 2) == 40  # 40 + 3: 2 + 1
