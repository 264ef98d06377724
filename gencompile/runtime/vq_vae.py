"""Held-out metrics of a generated VQ-VAE (nats per example, on the validation split).

- `reconstruction_nll`: -log p(x | z_q(x)), x decoded from its own codes;
- `prior_nll`: -log p(codes(x)) under the PixelCNN prior;
- `nll_bound`: their sum, an upper bound on -log p(x): the ELBO of a posterior that puts
  all its mass on x's codes (its entropy is 0, so the bound has no other term);
- `codebook_perplexity`: exp of the entropy of the held-out codes' frequencies (the codes
  in use, counted as if used equally), with the share of the codebook used beside it;
- then the sample-quality metrics, on samples drawn from the prior and decoded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime.compiled import compiled
from gencompile.runtime.distributions import Gaussian, Logistic
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.levels import check_categorical_levels
from gencompile.runtime.metrics.results import (
    Metrics,
    density_caveat,
    held_out,
    likelihood_caveat,
)
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.splits import batches, mean_of
from gencompile.runtime.vq import codes_of

EVAL_BATCH = 256
LIKELIHOOD_METRICS = ("reconstruction_nll", "prior_nll", "nll_bound")


def reconstruction_nll_batches(model: keras.Model, x: Any) -> Iterator[np.ndarray]:
    """-log p(x | z_q) of each example, batch by batch."""
    terms = compiled(model, _reconstruction_nll)
    for xb in batches(x, EVAL_BATCH):
        yield terms(tf.constant(xb)).numpy().astype(np.float64)


def prior_nll_of(model: keras.Model, codes: np.ndarray) -> np.ndarray:
    """-log p(codes) of each grid under the prior (nats)."""
    nll = compiled(model, _code_nll)
    parts = [
        nll(tf.constant(codes[i : i + EVAL_BATCH])).numpy()
        for i in range(0, len(codes), EVAL_BATCH)
    ]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0,))


def _reconstruction_nll(model: keras.Model, xb: tf.Tensor) -> tf.Tensor:
    return model.vq_terms(xb, training=False)[0]


def _code_nll(model: keras.Model, codes: tf.Tensor) -> tf.Tensor:
    return model.prior.code_nll(codes, training=False)


def perplexity_of(codes: np.ndarray, codebook_size: int) -> tuple[float, float]:
    """(perplexity, share of the codebook used) of a set of code grids."""
    counts = np.bincount(codes.ravel(), minlength=codebook_size).astype(np.float64)
    frequencies = counts / counts.sum()
    used = frequencies[frequencies > 0]
    return float(np.exp(-(used * np.log(used)).sum())), float((counts > 0).mean())


def nll_bound_of(model: keras.Model, x: Any) -> np.ndarray:
    """-log p(x | z_q) - log p(codes) of each example (nats, model units): `nll_bound`
    per example, what `gencompile score` writes for a VQ-VAE."""
    reconstruction = np.concatenate([*reconstruction_nll_batches(model, x), np.zeros((0,))])
    return reconstruction + prior_nll_of(model, codes_of(model, x))


def units_shift(model: keras.Model, data: Any) -> float:
    """What takes a continuous likelihood's NLL from model units to the data's units (the
    preprocessing's log-Jacobian); 0 for a probability mass (Bernoulli, categorical)."""
    continuous = isinstance(model.likelihood, (Gaussian, Logistic))
    return float(data.preprocessor.log_det_jacobian) if continuous else 0.0


def check_likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse the NLLs when distinct held-out values share one categorical bin: they
    would be of a coarsened copy (files' values). Training asks it first."""
    asked = [m for m in ("reconstruction_nll", "nll_bound") if m in config["metrics"]]
    if len(data.x_val) and asked:
        check_categorical_levels(model.likelihood, data.x_val, asked)


@evaluation(check_likelihood_metrics)
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The configured metrics on the validation split, then the sample-quality metrics."""
    metrics = Metrics()
    wanted = set(config["metrics"])
    if len(data.x_val) and wanted & {*LIKELIHOOD_METRICS, "codebook_perplexity"}:
        check_likelihood_metrics(model, data, config)
        codes = codes_of(model, data.x_val)
        how = held_out(data.x_val)
        # A bernoulli likelihood of grey levels: its NLLs are cross-entropies (not prior_nll).
        caveat = likelihood_caveat(model.likelihood, data.x_val)
        if isinstance(model.likelihood, (Gaussian, Logistic)):  # a density at known levels
            caveat = density_caveat(data)
        decoded = {**how, **caveat}
        # In the data's units, as the VAE's NLLs (a continuous likelihood's density moves
        # with the preprocessing's scale).
        shift = units_shift(model, data)
        reconstruction = mean_of(reconstruction_nll_batches(model, data.x_val)) - shift
        if "reconstruction_nll" in wanted:
            metrics.add("reconstruction_nll", reconstruction, decoded)
        if wanted & {"prior_nll", "nll_bound"}:
            prior = float(prior_nll_of(model, codes).mean())
            epochs = int(keras.ops.convert_to_numpy(model.prior_epochs))
            if "prior_nll" in wanted:
                metrics.add("prior_nll", prior, {**how, "prior_epochs": epochs})
            if "nll_bound" in wanted:
                dims = int(np.prod(data.element_shape))
                bound = reconstruction + prior
                # Bits per dimension of a probability only (as the VAE's metric): not of a
                # cross-entropy, nor of a density at the data's discrete levels.
                per_dim = {} if caveat else {"bits_per_dim": bound / (dims * math.log(2))}
                metrics.add("nll_bound", bound, {**decoded, **per_dim})
        if "codebook_perplexity" in wanted:
            size = int(model.quantizer.codebook_size)
            perplexity, usage = perplexity_of(codes, size)
            metrics.add(
                "codebook_perplexity",
                perplexity,
                {**how, "codebook_size": size, "codes_used": usage},
            )
    return metrics.merge(sample_quality(model, data, config))
