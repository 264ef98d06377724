"""Batches that a distribution strategy splits between its replicas, when one would leave
a replica without an example.

tf.distribute cuts a batch of n examples into slices of ceil(n / replicas), in replica
order: the last, partial batch of an epoch may leave replicas with none (a batch of 1 on
2 replicas, of 5 or 6 on 4 in batches of 8). The generated train steps weigh a replica's
loss and metrics by its examples, so an empty slice would add nothing; but TensorFlow's
CPU convolutions (oneDNN) answer an empty batch with a tensor of the wrong shape, and the
step fails. So such a batch never reaches the replicas of a model whose steps do not take
an empty slice (the compiler says which do, as `training.distribution.empty_slices`: a
mixture's, whose statistics are sums and whose means are masked):

- training: an epoch leaves it out (`skipped_last_batch`, `without_batches_of`): at most
  replicas - 1 examples of an epoch, other ones each epoch, as the order is reshuffled;
- a training split of that one batch is refused before training
  (`refuse_one_skipped_batch`): an epoch would train no step;
- validation: every held-out example counts, so a split whose last batch would leave a
  replica empty is refused before training (`check_validation_batches`), with a batch
  size that splits it.

Also here, without TensorFlow (`gencompile train --workers N` checks before it builds a
run): a batch size the replicas cannot split evenly is refused (`check_batch_split`). Keras
builds the model from a split's first batch averaged over the replicas, which needs slices
of one size: a split smaller than a batch, whose one batch does not split evenly, is
refused too (`check_first_batches`), whatever the model's steps take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gencompile.errors import RunError

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "check_batch_split",
    "check_first_batches",
    "check_validation_batches",
    "leaves_a_replica_empty",
    "refuse_one_skipped_batch",
    "skipped_last_batch",
    "without_batches_of",
]


def leaves_a_replica_empty(examples: int, replicas: int) -> bool:
    """Whether tf.distribute's split of a batch of `examples` gives a replica none."""
    return examples > 0 and (replicas - 1) * -(-examples // replicas) >= examples


def last_batch(count: int, batch_size: int) -> int:
    """The size of the last batch of `count` examples in batches of `batch_size`."""
    return count - (-(-count // batch_size) - 1) * batch_size


def skipped_last_batch(count: int, steps: int, batch_size: int, replicas: int) -> int:
    """The examples an epoch of `steps` batches of `count` examples leaves out under
    `replicas`: its last batch's when that batch is partial and would leave a replica
    empty, else 0 (a full last batch is a multiple of the replicas)."""
    last = count - (steps - 1) * batch_size
    if last < batch_size and leaves_a_replica_empty(last, replicas):
        return last
    return 0


def check_batch_split(batch_size: int, replicas: int, strategy: str) -> None:
    """Keras builds a model under a strategy from the first batch averaged over the
    replicas: slices of unequal size stop it (a shape mismatch of a collective operation)."""
    if batch_size % replicas:
        even = -(-batch_size // replicas) * replicas
        raise RunError(
            f"data.batch_size is {batch_size}, which does not split evenly between the "
            f"{replicas} replicas of the {strategy!r} strategy: use a multiple of {replicas} "
            f"(e.g. --set data.batch_size={even})"
        )


def check_first_batches(
    train_count: int, val_count: int, batch_size: int, replicas: int, strategy: str
) -> None:
    """Refuse a split smaller than a batch whose one batch the replicas cannot split evenly:
    Keras averages a split's first batch over the replicas to build the model (`fit` the
    training split's, every validation the held-out one's), and slices of unequal size
    stop it (a shape mismatch of a collective operation)."""
    for split, count in (("the training split", train_count), ("data.validation_split", val_count)):
        if not 0 < count < batch_size or count % replicas == 0:
            continue
        size = splitting_batch_size(count, batch_size, replicas)
        remedy = (
            f"a batch size that splits it, e.g. --set data.batch_size={size}, or "
            if size is not None
            else ""
        )
        raise RunError(
            f"{split} holds {count} example(s), fewer than data.batch_size={batch_size}: its "
            f"one batch does not split evenly between the {replicas} replicas of the "
            f"{strategy!r} strategy (Keras builds the model from a first batch averaged over "
            f"the replicas, which needs slices of one size): use {remedy}a split of a "
            f"multiple of {replicas} examples"
        )


def without_batches_of(stream: tf.data.Dataset, size: int) -> tf.data.Dataset:
    """`stream` (one element a batch: a tensor or a tuple of them) without its batches of
    `size` examples."""
    import tensorflow as tf  # here: the checks above run before TensorFlow starts

    return stream.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] != size)


def check_validation_batches(count: int, batch_size: int, replicas: int, strategy: str) -> None:
    """Refuse held-out data whose last batch would leave a replica without an example."""
    last = last_batch(count, batch_size)
    if count == 0 or not leaves_a_replica_empty(last, replicas):
        return
    size = splitting_batch_size(count, batch_size, replicas)
    remedy = (
        "a data.validation_split that holds more of them"
        if size is None
        else f"a batch size that splits them, e.g. --set data.batch_size={size}, or another "
        "data.validation_split"
    )
    raise RunError(
        f"data.validation_split holds {count} held-out examples, whose last batch of {last} "
        f"(data.batch_size={batch_size}) would leave one of the {replicas} replicas of the "
        f"{strategy!r} strategy without an example (TensorFlow's CPU convolutions fail on "
        f"an empty batch), and held-out examples are not skipped: use {remedy}"
    )


def refuse_one_skipped_batch(count: int, batch_size: int, replicas: int, strategy: str) -> None:
    """Refuse a training split of one partial batch that would leave a replica without an
    example: an epoch would leave it out, and train no step at all."""
    size = count // replicas * replicas  # full batches of it train; the rest is left out
    remedy = (
        f"a smaller batch size, e.g. --set data.batch_size={size}, or more training data"
        if size
        else f"more training data (at least {replicas} examples), or a smaller "
        "data.validation_split"
    )
    raise RunError(
        f"the training split holds {count} example(s), one batch of data.batch_size="
        f"{batch_size} that would leave one of the {replicas} replicas of the {strategy!r} "
        "strategy without an example (TensorFlow's CPU convolutions fail on an empty batch): "
        f"an epoch leaves such a last batch out, and nothing would be left to train on: use "
        f"{remedy}"
    )


def splitting_batch_size(count: int, batch_size: int, replicas: int) -> int | None:
    """The multiple of `replicas` nearest `batch_size` (the larger of two as near) whose
    last batch of `count` examples leaves no replica empty and whose first batch splits
    evenly; None if there is none."""
    for step in range(count // replicas + 2):  # past `count`: one batch of them all
        for size in (batch_size + step * replicas, batch_size - step * replicas):
            if size < replicas or min(count, size) % replicas:
                continue
            if not leaves_a_replica_empty(last_batch(count, size), replicas):
                return size
    return None
