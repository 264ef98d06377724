"""What a `train_step` written per replica needs under `tf.distribute` (MirroredStrategy).

Keras runs `train_step` once per replica, each on its slice of the global batch, and
`optimizer.apply` sums the replicas' gradients. Three things then need care, and each
helper here does one of them; outside a strategy (one replica) each one is the plain
single-device computation:

- `scale_to_global_batch`: a replica's mean loss divided by the replica count, so that the
  summed gradients are those of the mean over the global batch (Keras' own convention);
- `draw`: random draws per example (noise, latents, timesteps) equal to what one device
  draws for the global batch, each replica keeping its own rows;
- `assign` and `sum_over_replicas`: state that is not a gradient update (a moving average,
  EM's statistics) changed once per step by a cross-replica operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

Tensor = tf.Tensor

__all__ = ["assign", "draw", "replica_context", "scale_to_global_batch", "sum_over_replicas"]


def replica_context() -> tf.distribute.ReplicaContext | None:
    """The context of this replica's step when several replicas train in sync, else None."""
    if tf.distribute.get_strategy().num_replicas_in_sync == 1:
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None  # cross-replica code (callbacks, initialisation) sees whole batches
    return context


def scale_to_global_batch(loss: Any) -> Tensor:
    """A replica's mean loss divided by the replica count, in the loss's own dtype.

    With equal slices the replicas' summed gradients are then the gradient of the mean
    over the global batch (Keras' `compute_loss` does the same); with one replica this is
    the identity.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return loss
    loss = tf.convert_to_tensor(loss)
    return loss / tf.cast(replicas, loss.dtype)


def draw(sample: Callable[..., Tensor], count: Any, **kwargs: Any) -> Tensor:
    """This replica's `count` rows of `sample(global_count, **kwargs)`.

    Every replica draws for the whole global batch, from the same seed, and keeps the rows
    of its own examples: the draws are those one device makes at the global batch size,
    so training does not depend on the number of replicas. Slices of unequal size (the
    last batch of an epoch) are placed by gathering every replica's count.
    """
    context = replica_context()
    if context is None:
        return sample(count, **kwargs)
    counts = context.all_gather(tf.reshape(tf.cast(count, tf.int32), [1]), axis=0)
    start = tf.reduce_sum(counts[: context.replica_id_in_sync_group])
    return sample(tf.reduce_sum(counts), **kwargs)[start : start + count]


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
