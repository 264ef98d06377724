"""Held-out metrics of a generated normalizing flow: `nll` (nats) and `bits_per_dim`.

A flow's log-likelihood is exact, so the metrics are too, with one exception: on discrete
data the flow models a dequantized density and the NLL is an upper bound.

- Continuous data: nll = -mean log p(x) in the data's original units; the preprocessing
  is affine, so its log-Jacobian is subtracted (as the VAE's and the mixture's metrics do).
  On data with known discrete levels (the digits, 8-bit images) that is a density at the
  levels, not a probability: computed_with's caveat says so, and bits_per_dim is refused.
- Dequantized data (`model.dequantization` set): -log P(k) is bounded above by the
  importance-weighted dequantization bound with k uniform draws per example,
  -log (1/k sum_s p((x + u_s) / bins)) + D log(bins) (k = `evaluation.importance_samples`;
  k = 1 is the usual single-draw bound). Probability masses have no units, so no
  preprocessing term applies.

`bits_per_dim` is nll / (D ln 2) in both cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.levels import source_levels
from gencompile.runtime.compiled import compiled
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.levels import check_dequantized_levels, listed
from gencompile.runtime.metrics.results import (
    Metrics,
    density_bits_per_dim,
    density_caveat,
    held_out,
)
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.posteriors import repeat_draws
from gencompile.runtime.splits import batches, mean_of
from gencompile.runtime.support import flow_support, outside_advice

MAX_ROWS = 8192  # rows per flow evaluation when drawing several dequantizations


def log_likelihood(model: keras.Model, x: Any, batch_size: int = 1024) -> np.ndarray:
    """log p(x) per example, exactly (nats, in the model's preprocessed units)."""
    return np.concatenate(list(log_likelihood_batches(model, x, batch_size)))


def log_likelihood_batches(
    model: keras.Model, x: Any, batch_size: int = 1024
) -> Iterator[np.ndarray]:
    """`log_likelihood` batch by batch, reading the split `x` as it goes."""
    log_prob = compiled(model, _log_prob)
    for xb in batches(x, batch_size):
        yield log_prob(tf.constant(xb)).numpy().astype(np.float64)


def dequantized_log_likelihood(model: keras.Model, x: Any, draws: int, seed: int = 0) -> np.ndarray:
    """Per-example lower bound on log P(x) for discrete x, with `draws` uniform draws each."""
    return np.concatenate(list(dequantized_batches(model, x, draws, seed)))


def dequantized_batches(
    model: keras.Model, x: Any, draws: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """`dequantized_log_likelihood` batch by batch, reading the split `x` as it goes: every
    draw of every example its own uniform noise, from one generator (a precise mean)."""
    generator = keras.random.SeedGenerator(seed)
    shape = tuple(int(d) for d in x.shape[1:])

    def noise(start: int, count: int, rows: int) -> tf.Tensor:
        return keras.random.uniform((count * rows, *shape), seed=generator)

    return _dequantized(model, x, draws, noise)


def dequantized_shared_noise_batches(
    model: keras.Model, x: Any, draws: int, seed: int = 0
) -> Iterator[np.ndarray]:
    """The dequantization bound of each example with the same `draws` uniform draws
    u_1..u_k for every example: an example's value depends on its own values alone, not on
    the rows beside it or its place among them (the score of `gencompile score`)."""
    shape = tuple(int(d) for d in x.shape[1:])
    shared = np.random.default_rng(seed).random((draws, 1, *shape), dtype=np.float32)

    def noise(start: int, count: int, rows: int) -> tf.Tensor:
        chosen = np.broadcast_to(shared[start : start + count], (count, rows, *shape))
        return tf.constant(chosen.reshape(count * rows, *shape))

    return _dequantized(model, x, draws, noise)


def _log_prob(model: keras.Model, xb: tf.Tensor) -> tf.Tensor:
    return model.log_prob(xb)


def _log_densities(model: keras.Model, xb: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """log p of each example of `xb` dequantized by each draw of `u` -> [count, b]."""
    count = tf.shape(u)[0] // tf.shape(xb)[0]
    y = model.dequantization.from_noise(repeat_draws(xb, count), u)
    return tf.reshape(model.log_prob(y), (count, -1))


def _dequantized(model: keras.Model, x: Any, draws: int, noise: Any) -> Iterator[np.ndarray]:
    """log (1/k sum_s p((k + u_s) / bins)) + D log(1/bins) per example, batch by batch;
    `noise(start, count, rows)` gives draws start.. of a batch's u, draw-major rows."""
    dequantization = model.dequantization
    dims = int(np.prod(x.shape[1:]))
    batch = max(1, min(len(x), MAX_ROWS // min(draws, MAX_ROWS)))
    chunk = max(1, min(draws, MAX_ROWS // batch))

    log_densities = compiled(model, _log_densities)
    for rows in batches(x, batch):
        xb = tf.constant(rows)
        pieces = [
            log_densities(xb, noise(s, min(chunk, draws - s), len(rows))).numpy()
            for s in range(0, draws, chunk)
        ]
        log_p = np.concatenate(pieces, axis=0).astype(np.float64)
        top = log_p.max(axis=0)
        log_mean = top + np.log(np.exp(log_p - top).mean(axis=0))
        yield log_mean + dequantization.log_jacobian(dims)


def check_likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse nll and bits_per_dim where the held-out data cannot give them: values
    outside the flow's support, distinct values in one dequantization bin, or bits of a
    density at discrete levels. Needs only the data and the flow's structure, so training
    asks it first (`FamilyEvaluation.check`)."""
    asked = [m for m in ("nll", "bits_per_dim") if m in config["metrics"]]
    if len(data.x_val) == 0 or not asked:
        return
    check_support(model, data, asked)  # before the levels: values outside have no level
    check_dequantized_levels(model.dequantization, data.x_val, asked)
    if model.dequantization is None and "bits_per_dim" in asked and density_caveat(data):
        raise density_bits_per_dim(
            "a flow without dequantization",
            f"add model.dequantization: {{type: uniform, bins: {source_levels(data.source)}}}",
        )


@evaluation(check_likelihood_metrics)
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The configured metrics: NLL on the validation split (nats per example, bits per
    dim), then the sample-quality metrics."""
    return likelihood_metrics(model, data, config).merge(sample_quality(model, data, config))


def check_support(model: keras.Model, data: Any, metrics: list[str]) -> None:
    """Refuse `metrics` when held-out examples lie outside the values the flow gives any
    probability (a logit transform's domain, a dequantization's levels): their likelihood
    is 0, the NLL infinite (NaN as computed), and the cause is the data, not training."""
    support = flow_support(model)
    if support is None:
        return
    outside = ~support.rows(data.x_val)
    if not outside.any():
        return
    raise RunError(
        f"{listed(metrics)}: {int(outside.sum())} of {len(outside)} held-out examples lie "
        f"outside the values the model gives any probability: "
        f"{support.explained(data.preprocessor)}, so their likelihood is 0 and the NLL "
        f"infinite ({outside_advice(support, data.x_val, outside, data)}), or remove "
        f"{listed(metrics)} from evaluation.metrics"
    )


def likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    metrics = Metrics()
    wanted = set(config["metrics"])
    if len(data.x_val) == 0 or not wanted & {"nll", "bits_per_dim"}:
        return metrics
    dims = int(np.prod(data.element_shape))
    check_likelihood_metrics(model, data, config)
    if model.dequantization is not None:
        draws = int(config["importance_samples"])
        nll = -mean_of(dequantized_batches(model, data.x_val, draws))
        how = held_out(data.x_val, dequantization_samples=draws, dequantization_seed=0)
    else:
        # A density changes with the units of the data: back to the original units.
        caveat = density_caveat(data)  # a density at discrete levels is no probability
        shift = data.preprocessor.log_det_jacobian
        nll = -mean_of(log_likelihood_batches(model, data.x_val)) - shift
        how = held_out(data.x_val, exact=True, **caveat)
    if "nll" in wanted:
        metrics.add("nll", nll, how)
    if "bits_per_dim" in wanted:
        metrics.add("bits_per_dim", nll / (dims * math.log(2)), how)
    return metrics
