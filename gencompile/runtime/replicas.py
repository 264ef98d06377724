"""What a `train_step` written per replica needs under `tf.distribute` (MirroredStrategy).

Keras runs `train_step` once per replica, each on its slice of the global batch, and
`optimizer.apply` sums the replicas' gradients. Four things then need care, and each
helper here does one of them; outside a strategy (one replica) each one is the plain
single-device computation:

- `scale_to_global_batch`: a replica's mean loss weighted by its share of the global
  batch's examples, so that the summed gradients are those of the mean over the global
  batch, however the batch splits (the last batch of an epoch may leave a replica none);
- `track` and `results`: a metric's batch mean added with its example count as weight,
  so that an epoch's value is the mean over its examples (an empty slice adds nothing),
  and a validation step's logs read over every replica's examples;
- `draw`: random draws per example (noise, latents, timesteps) equal to what one device
  draws for the global batch, each replica keeping its own rows;
- `assign` and `sum_over_replicas`: state that is not a gradient update (a moving average,
  EM's statistics) changed once per step by a cross-replica operation.

The losses' shares and the draws' rows both follow from how the global batch splits over
the replicas. A step finds it once, `split = replicas.split(batch_size)` (one all-gather of
the replicas' counts), and passes it to each `draw(sample, split)` and each
`scale_to_global_batch(loss, share=split.share)`: one collective a step, not one a draw or
a loss (under multi_worker, each is a network round trip). The older call forms, a draw
given a count and a loss given its examples, still work, each with its own collective.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

Tensor = tf.Tensor

__all__ = [
    "BatchSplit",
    "assign",
    "batch_share",
    "draw",
    "replica_context",
    "results",
    "scale_to_global_batch",
    "split",
    "sum_over_replicas",
    "track",
]


def replica_context() -> tf.distribute.ReplicaContext | None:
    """The context of this replica's step when several replicas train in sync, else None."""
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None  # cross-replica code (callbacks, initialisation) sees whole batches
    return context


@dataclass(frozen=True)
class BatchSplit:
    """Where this replica's slice lies in the global batch: its `examples` are the rows
    `start` to `start + examples` of the global batch's `total`, and `share` is
    examples / total (float32). On one replica: start 0, total = examples, share 1."""

    start: Any
    examples: Any
    total: Any
    share: Tensor


def split(examples: Any) -> BatchSplit:
    """How the global batch splits over the replicas, seen from this one: one all-gather
    of every replica's count of `examples` (none on one replica).

    A step computes it once and passes it to each `draw(sample, split)` and each
    `scale_to_global_batch(loss, share=split.share)`: one collective a step, however
    many draws and losses the step has.
    """
    context = replica_context()
    if context is None:
        return BatchSplit(0, examples, examples, tf.ones_like(tf.cast(examples, tf.float32)))
    counts = context.all_gather(tf.reshape(tf.cast(examples, tf.int32), [1]), axis=0)
    total = tf.reduce_sum(counts)
    share = tf.cast(examples, tf.float32) / tf.cast(total, tf.float32)
    return BatchSplit(
        tf.reduce_sum(counts[: context.replica_id_in_sync_group]), examples, total, share
    )


def batch_share(examples: Any) -> Tensor:
    """This replica's share of the global batch: its `examples` over every replica's (an
    all-reduce), in float32; 1 on one replica.

    A step that scales several losses (a GAN's critic steps and generator step) computes
    it once and passes it to each `scale_to_global_batch(loss, share=share)`: one
    all-reduce a step, not one a loss (under multi_worker, each is a network round trip).
    A step that also draws computes `split` instead, whose `share` is this one.
    """
    examples = tf.cast(examples, tf.float32)
    context = replica_context()
    if context is None:
        return tf.ones_like(examples)
    return examples / context.all_reduce(tf.distribute.ReduceOp.SUM, examples)


def scale_to_global_batch(loss: Any, examples: Any = None, share: Any = None) -> Tensor:
    """This replica's share of the global batch's loss: its mean `loss` over its `examples`
    times examples / (the examples of every replica), in the loss's own dtype. A `share`
    (a `split`'s, or `batch_share`'s) stands for the examples, and saves their collective.

    Keras' optimizer sums the replicas' gradients: with these shares the sum is the
    gradient of the mean over the global batch (each replica's sum of per-example terms
    over the global count, as `tf.nn.compute_average_loss`), also when the batch splits
    unevenly. A replica left without examples (the last batch of an epoch) has a mean over
    nothing, NaN: it weighs 0 and is replaced by 0. Terms equal on every replica (the
    regularisation losses) add up to themselves. On one replica: the loss itself.
    """
    context = replica_context()
    if context is None:
        return loss
    loss = tf.convert_to_tensor(loss)
    if share is None:
        if examples is None:  # projects built before: equal slices assumed (Keras' convention)
            return loss / tf.cast(context.num_replicas_in_sync, loss.dtype)
        share = batch_share(examples)
    # tf.where, not a product with 0: NaN * 0 is NaN, and its gradient would be NaN too.
    return tf.where(share > 0, loss, tf.zeros_like(loss)) * tf.cast(share, loss.dtype)


def track(tracker: keras.metrics.Mean, value: Any, examples: Any) -> None:
    """Add a batch's mean `value` over its `examples` to `tracker`, weighted by their count.

    An epoch's result is then the mean over its examples, whatever the batch sizes (a last,
    partial batch weighs what it holds) and however the replicas split a batch: the
    tracker's total and count are summed over the replicas when read. A replica without
    examples, whose mean is NaN, adds nothing.

    Where a replica's slice is never empty (every family whose steps do not take empty
    slices, see `replica_batches`), this is exactly `tracker.update_state(value,
    sample_weight=examples)`, which generated code now writes; projects generated before
    call this.
    """
    examples = tf.cast(examples, tracker.dtype)
    value = tf.cast(value, tracker.dtype)
    tracker.update_state(tf.where(examples > 0, value, tf.zeros_like(value)), examples)


def results(trackers: Sequence[keras.metrics.Mean]) -> dict[str, Tensor]:
    """What a validation step returns: each tracker's mean so far over every replica's
    examples (its total and count summed over the replicas first).

    Keras keeps a validation's last step's return, averaged over the replicas, as its
    result: each replica's own mean would count alike, whatever the examples behind it.
    (A training epoch's values Keras reads from the trackers themselves, summed over the
    replicas: a training step returns `tracker.result()`, and saves this all-reduce.)
    On one replica: each tracker's result.
    """
    context = replica_context()
    if context is None:
        return {tracker.name: tracker.result() for tracker in trackers}
    sums = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        tf.stack([tf.stack([t.total.value, t.count.value]) for t in trackers]),
    )
    means = tf.math.divide_no_nan(sums[:, 0], sums[:, 1])
    return {tracker.name: means[i] for i, tracker in enumerate(trackers)}


def draw(sample: Callable[..., Tensor], count: Any, **kwargs: Any) -> Tensor:
    """This replica's rows of `sample(global_count, **kwargs)`: `count` is this replica's
    number of examples, or the step's `split` (which saves the collective).

    Every replica draws for the whole global batch, from the same seed, and keeps the rows
    of its own examples: the draws are those one device makes at the global batch size,
    so training does not depend on the number of replicas. Slices of unequal size (the
    last batch of an epoch) are placed by every replica's count: a `split` holds them, a
    plain count gathers them (one all-gather a call).
    """
    if isinstance(count, BatchSplit):
        placed, count = count, count.examples
    else:
        placed = None
    context = replica_context()
    if context is None:
        return sample(count, **kwargs)
    if placed is None:
        placed = split(count)  # projects built before: one all-gather a draw
    return sample(placed.total, **kwargs)[placed.start : placed.start + count]


def sum_over_replicas(value: Any) -> Tensor:
    """The sum of `value` over the replicas (an all-reduce); the value itself on one."""
    context = replica_context()
    if context is None:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def assign(variables: Sequence[keras.Variable], values: Sequence[Any]) -> None:
    """Assign values that are equal on every replica (they derive from mirrored weights)
    to mirrored variables, once per step, as a cross-replica update.

    A replica cannot assign a mirrored variable on its own; the update goes through
    `merge_call`, where each device's copy takes its replica's (equal) value.
    """
    context = replica_context()
    if context is None:
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        return

    def update(strategy: tf.distribute.Strategy, values: Sequence[Any]) -> None:
        for variable, value in zip(variables, values, strict=True):
            target = variable.value if isinstance(variable, keras.Variable) else variable
            strategy.extended.update(target, _assign, args=(value,), group=False)

    context.merge_call(update, args=(list(values),))


def _assign(variable: tf.Variable, value: Tensor) -> Any:
    return variable.assign(tf.cast(value, variable.dtype))
