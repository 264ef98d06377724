"""Training on several workers: TensorFlow's `MultiWorkerMirroredStrategy` over the cluster
that the standard `TF_CONFIG` environment variable names.

Every worker runs the same program on the same data: Keras splits each global batch
between the workers' replicas (data sharding by element, after the seeded order), sums the
gradients with collective all-reduces, and every worker ends with the same weights. The
chief (task `chief`, or worker 0 when the cluster has no chief) writes the run folder;
every other worker writes to a scratch folder of its own, removed when it exits, so the
collective operations that saving and evaluation run stay the same on every worker.

Without `TF_CONFIG` the strategy is one worker: this process, with its local devices.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

from gencompile.errors import RunError

__all__ = ["cluster_spec", "is_chief", "multi_worker_strategy", "output_dir", "shard_by_example"]


class _MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's strategy, with the `reduce` that Keras 3's `fit` expects of it.

    Across workers TensorFlow's `reduce` takes one tensor, not a structure (Keras reduces a
    batch `(x, y)` to build a model), and Keras averages a step's scalar logs with
    `axis=0`, which a scalar has not (tensorflow/tensorflow#72388). Here a structure is
    reduced value by value, in its own dtype (as on one worker: labels stay integers), and
    the mean of a scalar over the replicas is taken as such.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:
        def one(tensor: Any) -> Any:
            rank = tensor.shape.rank if hasattr(tensor, "shape") else None
            reduced = super(_MultiWorkerStrategy, self).reduce(
                reduce_op, tensor, axis=None if rank == 0 else axis
            )
            return tf.cast(reduced, tensor.dtype) if hasattr(tensor, "dtype") else reduced

        return tf.nest.map_structure(one, value)


def cluster_spec() -> dict[str, Any]:
    """The `TF_CONFIG` of this process ({} when it names no cluster), checked."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"TF_CONFIG is not JSON ({err}); see the README's 'Scaling out'") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster", {}), dict):
        raise RunError('TF_CONFIG must be {"cluster": {...}, "task": {"type": ..., "index": ...}}')
    return config


@functools.cache
def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """One per process, created before TensorFlow runs any operation (TensorFlow configures
    its collective operations when it starts)."""
    cluster_spec()  # a TF_CONFIG that is not JSON: a message, not TensorFlow's traceback
    try:
        strategy = _MultiWorkerStrategy()
    except RuntimeError as err:
        if "program startup" not in str(err):
            raise
        raise RunError(
            "the multi_worker strategy joins its cluster when TensorFlow starts, and this "
            "process has already run TensorFlow: train in a fresh process "
            "(gencompile train --workers N, or python -m <package>.train on each worker)"
        ) from None
    return strategy


def is_chief() -> bool:
    """Whether this process writes the run: the `chief` task, or worker 0 without one."""
    config = cluster_spec()
    task = config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return (
        task.get("type") == "worker"
        and int(task.get("index", 0)) == 0
        and ("chief" not in config.get("cluster", {}))
    )


def output_dir(run_dir: Path) -> Path:
    """Where this worker writes: the run folder on the chief, a scratch folder elsewhere."""
    if is_chief():
        return run_dir
    return _scratch_dir()


@functools.cache
def _scratch_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="gencompile-worker-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def shard_by_example(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker takes its rows of every global batch, whatever the source: the batches
    stay those of one worker in the seeded order (file sharding would change the order)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
