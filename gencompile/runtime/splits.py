"""Reading a split (`data.x_train`, `data.x_val`) after and around training, in bounded memory.

A split is a loaded array or, for streamed data, an array-like that reads rows on demand
(`streaming.StreamedSplit`, `records.RecordSplit`). Metrics over a whole split iterate it in
batches (`batches`, `labelled_batches`) and reduce as they go (`mean_of`); references and
initialisations defined on a subset read a seeded random subset of it (`head`). The same
code runs on loaded and streamed data, so both give the same numbers from the same rows:
the first rows of a split are a seeded random subset of the data (the split is a seeded
permutation); streamed tfrecord shards, whose splits are in file order, say where those
same rows sit (`head_positions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np


def batches(x: Any, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive rows of split `x`, `batch_size` at a time, in the split's order.

    A split that reads itself in batches (tfrecord shards: one pass, not a pass per slice)
    says so with a `batches` method; anything else is sliced."""
    read = getattr(x, "batches", None)
    if read is not None:
        yield from read(batch_size)
        return
    for start in range(0, len(x), batch_size):
        yield np.asarray(x[start : start + batch_size])


def labelled_batches(
    x: Any, y: np.ndarray | None, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """`batches` of `x` with the matching rows of its labels `y` (held in memory), or None."""
    start = 0
    for xb in batches(x, batch_size):
        yield xb, (None if y is None else y[start : start + len(xb)])
        start += len(xb)


def head_positions(x: Any, count: int) -> np.ndarray:
    """The positions in split `x` of its first `count` rows in the seeded permutation's
    order (all of them when it holds fewer): a seeded random subset, the same examples
    whether the data is loaded or streamed. Pair labels with them: `y[head_positions(x, n)]`.
    """
    placed = getattr(x, "head_positions", None)  # a split kept in file order
    return placed(count) if placed is not None else np.arange(min(count, len(x)))


def head(x: Any, count: int) -> np.ndarray:
    """The rows of split `x` at `head_positions`: its first `count` rows, in loaded data's
    order (all of them when it holds fewer)."""
    placed = getattr(x, "head_positions", None)  # a split kept in file order
    if placed is None:
        return np.asarray(x[: min(count, len(x))])  # a loaded array: a view
    return np.asarray(x[placed(count)])


def mean_of(parts: Iterable[Any]) -> float:
    """The mean of every value of `parts` (per-example values, batch by batch), summed in
    float64 so that nothing per example is kept."""
    total, count = 0.0, 0
    for part in parts:
        values = np.asarray(part, np.float64)
        total += float(values.sum())
        count += values.size
    return total / count
