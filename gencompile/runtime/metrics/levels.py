"""Whether a discrete likelihood's levels hold the data's values one each.

A categorical likelihood (a VAE's or VQ-VAE's decoder, a PixelCNN's pixels) and a flow's
uniform dequantization read a value x in [0, 1] as level round(x (bins - 1)). When distinct
values of the data share a level, the model scores a coarsened copy of the data: its NLL is
not the data's. `merged_levels` finds such a level in a held-out split; the families'
evaluations (and `gencompile score`) refuse their NLLs then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime.splits import batches

LEVEL_TOLERANCE = 1e-6  # values this close are one value (float32 round-off of k / levels)
# How far from a level (a share of the levels' spacing) a value to score may lie: the float32
# round-off of a level mapped into the model's units is far below it.
OFF_LEVEL_TOLERANCE = 1e-3
EVAL_BATCH = 256


def merged_levels(
    to_levels: Callable[[tf.Tensor], tf.Tensor], x: Any, batch_size: int = EVAL_BATCH
) -> tuple[int, float, float] | None:
    """(level, lowest value, highest value) of a level that distinct values of split `x`
    share, where `to_levels` maps a float32 batch to the integer level of each value (same
    shape; a negative level: a value outside the levels, left out here, as the support's
    business); None when each level holds one value of the data, so that the model's NLL
    over its levels is the data's own."""
    low: np.ndarray = np.zeros(0)
    high: np.ndarray = np.zeros(0)
    for rows in batches(x, batch_size):
        xb = tf.cast(tf.constant(rows), tf.float32)
        values = tf.reshape(xb, [-1])
        index = tf.reshape(tf.cast(to_levels(xb), tf.int32), [-1])
        count = max(0, int(tf.reduce_max(index)) + 1)  # negative levels are dropped
        lo = tf.math.unsorted_segment_min(values, index, count).numpy()  # +inf if empty
        hi = tf.math.unsorted_segment_max(values, index, count).numpy()  # -inf if empty
        size = max(len(low), count)
        low = np.minimum(
            np.pad(low, (0, size - len(low)), constant_values=np.inf),
            np.pad(lo, (0, size - count), constant_values=np.inf),
        )
        high = np.maximum(
            np.pad(high, (0, size - len(high)), constant_values=-np.inf),
            np.pad(hi, (0, size - count), constant_values=-np.inf),
        )
    spread = np.where(np.isfinite(low), high - low, 0.0)
    level = int(np.argmax(spread)) if spread.size else 0
    if spread.size == 0 or spread[level] <= LEVEL_TOLERANCE:
        return None
    return level, float(low[level]), float(high[level])


def off_level(bins: int, x: Any, tolerance: float = OFF_LEVEL_TOLERANCE) -> tuple[int, int] | None:
    """(example, flat position) of the first value of `x` (model units, one row per example)
    that rounds to one of `bins` levels k / (bins - 1) without lying on it (more than
    `tolerance` of their spacing away): a model of those levels would score it as the level
    it rounds to. Values rounding to no level are left out, as the support's business. Each
    example is judged on its own values alone, whatever else is scored with it."""
    position = np.asarray(x, np.float64).reshape(len(x), -1) * (bins - 1)
    level = np.round(position)
    off = (level >= 0) & (level <= bins - 1) & (np.abs(position - level) > tolerance)
    if not off.any():
        return None
    example, where = np.argwhere(off)[0]
    return int(example), int(where)


def merged_levels_message(metrics: str, merged: tuple[int, float, float], advice: str) -> str:
    """One line refusing `metrics` ("nll and bits_per_dim") of data whose distinct values
    share one of the model's levels (`merged`, from `merged_levels`), then `advice`."""
    level, low, high = merged
    return (
        f"{metrics}: the held-out values {low:.6g} and {high:.6g} are both read as level "
        f"{level} of the model's levels, so the NLL would be that of a coarsened copy of the "
        f"data, not the data's; {advice}"
    )


CATEGORICAL_ADVICE = (
    "use model.likelihood: {type: categorical, bins: N} with one bin for each value of the "
    "data (bins - 1 a multiple of the data's levels - 1), a gaussian or logistic likelihood "
    "for continuous values, or remove {metrics} from evaluation.metrics"
)


DEQUANTIZATION_ADVICE = (
    "use model.dequantization: {type: uniform, bins: N} with one bin for each value of the "
    "data (bins - 1 a multiple of the data's levels - 1), no model.dequantization for "
    "continuous values (the flow's exact density), or remove {metrics} from evaluation.metrics"
)


def refuse_merged_levels(
    to_levels: Callable[[tf.Tensor], tf.Tensor], x: Any, what: str, advice: str
) -> None:
    """Refuse `what` ("nll and bits_per_dim") when distinct values of split `x` share one of
    the levels `to_levels` reads (see `merged_levels`), with `advice`; nothing otherwise."""
    merged = merged_levels(to_levels, x)
    if merged is not None:
        raise RunError(merged_levels_message(what, merged, advice))


def listed(metrics: list[str]) -> str:
    """["a", "b", "c"] as "a, b and c"."""
    return " and ".join([", ".join(metrics[:-1]), metrics[-1]] if metrics[:-1] else metrics)


def check_categorical_levels(likelihood: Any, x: Any, metrics: list[str]) -> None:
    """Refuse `metrics` (a VAE's or VQ-VAE's likelihood metrics) when `likelihood` is
    categorical and distinct values of split `x` share one of its bins; nothing otherwise."""
    if getattr(likelihood, "name", None) != "categorical" or not metrics:
        return
    words = listed(metrics)
    refuse_merged_levels(
        likelihood.levels, x, words, CATEGORICAL_ADVICE.replace("{metrics}", words)
    )


def dequantized_levels(dequantization: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """A flow's dequantization's level of each value, -1 for a value that rounds to none of
    its levels (outside the flow's support, which the support check names instead)."""
    top = float(dequantization.bins - 1)

    def to_levels(xb: tf.Tensor) -> tf.Tensor:
        k = dequantization.rounded(xb)
        return tf.where((k >= 0.0) & (k <= top), k, -1.0)

    return to_levels


def check_dequantized_levels(dequantization: Any, x: Any, metrics: list[str]) -> None:
    """Refuse `metrics` (a dequantized flow's nll, bits_per_dim) when distinct values of
    split `x` share one of the dequantization's bins: continuous data, or too few bins."""
    if dequantization is None or not metrics:
        return
    words = listed(metrics)
    advice = DEQUANTIZATION_ADVICE.replace("{metrics}", words)
    refuse_merged_levels(dequantized_levels(dequantization), x, words, advice)
