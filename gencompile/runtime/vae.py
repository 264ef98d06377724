"""Held-out metrics of a generated VAE: the ELBO and the IWAE bound on log p(x).

Both are in nats per example. For continuous likelihoods (gaussian, logistic) they are
reported in the data's original units: the preprocessing's log-Jacobian is added back, so
numbers compare across preprocessing choices. `bits_per_dim` divides the NLL by D ln 2.
A bernoulli likelihood of non-binary data (grey levels in [0, 1]) gives a cross-entropy, not
a normalised likelihood: its computed_with says so (`caveat`), and bits_per_dim is refused.
So does a gaussian or logistic likelihood of data with known discrete levels (the digits,
8-bit images): a density at the levels, not a probability of them. A categorical
likelihood's metrics stop with advice when distinct held-out values share a bin.
A conditional VAE's bounds are of log p(x | y): its metrics are of the marginal
p(x) = sum_y p(y) p(x | y), p(y) the training split's class frequencies (`marginal`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.levels import source_levels
from gencompile.progress import progress_bar
from gencompile.runtime.compiled import compiled
from gencompile.runtime.conditional import model_classes
from gencompile.runtime.distributions import Gaussian, Logistic, diag_normal_log_prob
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.levels import check_categorical_levels
from gencompile.runtime.metrics.mig import check_factors, mig_metric
from gencompile.runtime.metrics.results import (
    Metrics,
    density_bits_per_dim,
    density_caveat,
    held_out,
    likelihood_caveat,
)
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.posteriors import repeat_draws
from gencompile.runtime.splits import labelled_batches, mean_of

MAX_ROWS = 16384  # rows per decoder call when importance sampling
# Validation refuses it for the built-in data sets (all non-binary); this is for files.
BERNOULLI_BITS_PER_DIM = (
    "bits_per_dim: the held-out data is not binary, and a bernoulli likelihood of values "
    "between 0 and 1 is a cross-entropy, not a normalised likelihood, so it has no bits per "
    "dimension; use model.likelihood: {type: categorical, bins: N} with N the data's levels "
    "(a gaussian or logistic likelihood for continuous data), or drop bits_per_dim from "
    "evaluation.metrics"
)


def elbo(model: keras.Model, x: Any, y: np.ndarray | None, batch_size: int = 256) -> float:
    """Mean ELBO (one posterior sample per example, the model's own KL) in nats, over the
    split `x` read batch by batch."""
    return mean_of(elbo_batches(model, x, y, batch_size))


def elbo_batches(
    model: keras.Model, x: Any, y: np.ndarray | None, batch_size: int = 256
) -> Iterator[np.ndarray]:
    """The ELBO of each example of split `x` (with its labels `y`), batch by batch."""
    terms = compiled(model, _elbo_terms)
    for xb, yb in labelled_batches(x, y, batch_size):
        # (reconstruction, kl, the KL term[, the total correlation of a beta-TCVAE])
        reconstruction, kl, *_ = terms(tf.constant(xb), None if yb is None else tf.constant(yb))
        yield -(reconstruction.numpy() + kl.numpy())


def _elbo_terms(model: keras.Model, xb: Any, yb: Any) -> Any:
    """The model's `elbo_terms` without training (compiled once per model by `elbo_batches`)."""
    return model.elbo_terms(xb, yb, training=False)


def class_log_prior(model: keras.Model, data: Any) -> np.ndarray | None:
    """log p(y) of each class of a conditional VAE: the training split's class frequencies
    (-inf for a class it never shows); None for an unconditional VAE."""
    classes = model_classes(model)
    if classes is None or data.y_train is None:
        return None
    counts = np.bincount(np.asarray(data.y_train).ravel(), minlength=classes)[:classes]
    with np.errstate(divide="ignore"):
        return np.log(counts / counts.sum())


def marginal(
    per_class: Any, x: Any, y: np.ndarray | None, log_prior: np.ndarray | None
) -> Iterable[np.ndarray]:
    """Per-example log p(x) bounds of split `x`, in parts: `per_class(x, labels)` (the
    per-example batches of a bound on log p(x | labels)) with the data's own labels `y` for
    an unconditional model (`log_prior` None: they are not read), else one part of
    log sum_c p(c) exp(bound(x | c)) over the classes c of `log_prior`. That stays a lower
    bound on log p(x) = log sum_c p(c) p(x | c), as each class's bound is one (the IWAE's
    in expectation). It holds one number per example, where an unconditional model's parts
    stream."""
    if log_prior is None:
        return per_class(x, y)
    total = np.full(len(x), -np.inf)
    labels_dtype = np.int32 if y is None else np.asarray(y).dtype
    for c, log_p in enumerate(log_prior):
        if np.isfinite(log_p):
            labels = np.full(len(x), c, labels_dtype)
            bound = np.concatenate([*per_class(x, labels), np.zeros((0,))])
            total = np.logaddexp(total, log_p + bound)
    return [total]


def marginal_how(log_prior: np.ndarray | None) -> dict[str, Any]:
    """What computed_with says of a conditional VAE's likelihood metrics: the marginal over
    the classes, with p(y) the training split's class frequencies; {} otherwise."""
    if log_prior is None:
        return {}
    return {
        "marginal_over_classes": len(log_prior),
        "class_prior": "training split's class frequencies",
        "computed": "-log sum_y p(y) p(x|y), each p(x|y) by the bound",
    }


IWAE_SEED = 0  # the importance samples' own generator: independent of the model's state


def iwae_log_likelihood(
    model: keras.Model, x: Any, y: np.ndarray | None, k: int, seed: int = IWAE_SEED
) -> np.ndarray:
    """Per-example log p(x) ~= logsumexp_k [log p(x|z) + log p(z) - log q(z|x)] - log k."""
    return np.concatenate(list(iwae_batches(model, x, y, k, seed)))


def _log_weights(vae: keras.Model, xb: Any, yb: Any, eps: Any, draws: int) -> Any:
    """`[draws, b]`: log p(x|z) + log p(z) - log q(z|x) of the draws z made from the base
    noise `eps` `[draws, b, latent]` (draw d of example i from eps[d, i]); `draws` is a
    Python int (a generated `posterior` branches on it). Compiled once per model by `_iwae`."""
    if hasattr(vae, "posterior"):  # a flow posterior, VampPrior or IWAE-trained model
        return _posterior_log_weights(vae, xb, yb, eps, draws)
    z_mean, z_log_var = vae.encode(xb, yb, training=False)
    # Under mixed precision the networks answer in float16; the estimator works in float32.
    z_mean, z_log_var = tf.cast(z_mean, tf.float32), tf.cast(z_log_var, tf.float32)
    b = tf.shape(xb)[0]
    z = z_mean[None] + tf.exp(0.5 * z_log_var)[None] * eps
    flat = tf.reshape(z, (-1, tf.shape(z_mean)[1]))
    yb_rep = None if yb is None else repeat_draws(yb, draws)
    log_px = vae.likelihood.log_prob(
        repeat_draws(xb, draws), vae.decode(flat, yb_rep, training=False)
    )
    log_pz = vae.prior.log_prob(flat)
    log_qz = diag_normal_log_prob(flat, repeat_draws(z_mean, draws), repeat_draws(z_log_var, draws))
    return tf.reshape(log_px + log_pz - log_qz, (draws, b))


def _posterior_log_weights(vae: keras.Model, xb: Any, yb: Any, eps: Any, draws: int) -> Any:
    """Importance weights through the model's own `posterior` (whose log q includes a flow's
    log-determinants) -> `[draws, b]`, from the base noise `eps` `[draws, b, latent]`."""
    b = tf.shape(xb)[0]
    noise = tf.reshape(eps, (-1, tf.shape(eps)[2]))  # draw-major rows, as `posterior` lays out
    z, log_qz = vae.posterior(xb, yb, training=False, draws=draws, noise=noise)
    x_rep = repeat_draws(xb, draws)
    y_rep = None if yb is None else repeat_draws(yb, draws)
    log_px = vae.likelihood.log_prob(x_rep, vae.decode(z, y_rep, training=False))
    log_pz = vae.prior.log_prob(z)
    return tf.reshape(log_px + log_pz - tf.cast(log_qz, tf.float32), (draws, b))


def iwae_batches(
    model: keras.Model, x: Any, y: np.ndarray | None, k: int, seed: int = IWAE_SEED
) -> Iterator[np.ndarray]:
    """`iwae_log_likelihood` batch by batch, reading the split `x` as it goes: every draw
    of every example its own noise, from one generator (a precise mean over the split)."""
    generator = keras.random.SeedGenerator(seed)
    latent = int(model.prior.latent_dim)

    def noise(start: int, draws: int, rows: int) -> tf.Tensor:
        return keras.random.normal((draws, rows, latent), seed=generator)

    return _iwae(model, x, y, k, noise)


def iwae_shared_noise_batches(
    model: keras.Model, x: Any, y: np.ndarray | None, k: int, seed: int = IWAE_SEED
) -> Iterator[np.ndarray]:
    """The IWAE bound of each example with the same k base draws eps_1..eps_k for every
    example: an example's value depends on its own values alone, not on the rows beside it
    or its place among them (the per-example score of `gencompile score`)."""
    latent = int(model.prior.latent_dim)
    shared = np.random.default_rng(seed).standard_normal((k, 1, latent)).astype(np.float32)

    def noise(start: int, draws: int, rows: int) -> tf.Tensor:
        return tf.constant(np.broadcast_to(shared[start : start + draws], (draws, rows, latent)))

    return _iwae(model, x, y, k, noise)


def _iwae(
    model: keras.Model, x: Any, y: np.ndarray | None, k: int, noise: Any
) -> Iterator[np.ndarray]:
    """log p(x) ~= logsumexp_k [log w] - log k per example, batch by batch, with base noise
    `noise(start, draws, rows)` `[draws, rows, latent]` for draws start.. of a batch."""
    log_weights = compiled(model, _log_weights)
    batch = max(1, min(len(x), MAX_ROWS // min(k, MAX_ROWS)))
    chunk = max(1, min(k, MAX_ROWS // batch))
    done = 0
    with progress_bar(f"iwae: {k} importance samples", len(x), "examples") as update:
        for xb, yb in labelled_batches(x, y, batch):
            xt = tf.constant(xb)
            yt = None if yb is None else tf.constant(yb)
            pieces = []
            for s in range(0, k, chunk):
                draws = min(chunk, k - s)
                pieces.append(log_weights(xt, yt, noise(s, draws, len(xb)), draws).numpy())
            weights = np.concatenate(pieces, axis=0).astype(np.float64)
            top = weights.max(axis=0)
            done += len(xb)
            update(done)
            yield top + np.log(np.exp(weights - top).sum(axis=0)) - math.log(k)


def check_likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse elbo, iwae_nll and bits_per_dim where the held-out data cannot give them:
    bits of a bernoulli's cross-entropy or of a density at discrete levels, distinct values
    in one categorical bin. Needs only the data and the likelihood, so training asks it
    first (`FamilyEvaluation.check`)."""
    asked = [m for m in ("elbo", "iwae_nll", "bits_per_dim") if m in config["metrics"]]
    if len(data.x_val) == 0 or not asked:
        return
    bits = "bits_per_dim" in asked
    if bits and likelihood_caveat(model.likelihood, data.x_val):  # validation could not see
        raise RunError(BERNOULLI_BITS_PER_DIM)
    # Distinct values in one categorical bin: the NLL of a coarsened copy (files' values).
    check_categorical_levels(model.likelihood, data.x_val, asked)
    continuous = isinstance(model.likelihood, (Gaussian, Logistic))
    if continuous and bits and density_caveat(data):  # refused by validation; an older lock
        raise density_bits_per_dim(
            f"a {model.likelihood.name} likelihood",
            f"use model.likelihood: {{type: categorical, bins: {source_levels(data.source)}}}",
        )


def check_mig(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    if "mig" in config["metrics"]:
        check_factors(data)


@evaluation(check_likelihood_metrics, check_mig)
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The configured metrics: likelihoods on the validation split (nats per example), the
    disentanglement of its codes (mig), then the sample-quality metrics."""
    metrics = likelihood_metrics(model, data, config)
    if "mig" in config["metrics"]:
        metrics.merge(mig_metric(model, data))
    return metrics.merge(sample_quality(model, data, config))


def likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    metrics = Metrics()
    if len(data.x_val) == 0:
        return metrics
    # A density changes with the units of the data; a probability mass does not.
    continuous = isinstance(model.likelihood, (Gaussian, Logistic))
    shift = data.preprocessor.log_det_jacobian if continuous else 0.0
    dims = int(np.prod(data.element_shape))
    wanted = config["metrics"]
    if not {"elbo", "iwae_nll", "bits_per_dim"} & set(wanted):
        return metrics
    check_likelihood_metrics(model, data, config)
    caveat = likelihood_caveat(model.likelihood, data.x_val)
    if continuous:  # a density at the data's discrete levels, if it has some, is no probability
        caveat = density_caveat(data)
    # A conditional VAE's bounds are of log p(x | y): its metrics are of the marginal p(x),
    # summed over the classes (K times the work), as an unconditional model's are.
    log_prior = class_log_prior(model, data)
    marginal_note = marginal_how(log_prior)
    if "elbo" in wanted:
        per_class = lambda x, y: elbo_batches(model, x, y)  # noqa: E731
        value = mean_of(marginal(per_class, data.x_val, data.y_val, log_prior)) + shift
        how = held_out(data.x_val, posterior_samples=1, **caveat, **marginal_note)
        metrics.add("elbo", value, how)
    if "iwae_nll" in wanted or "bits_per_dim" in wanted:
        k = int(config["importance_samples"])
        per_class = lambda x, y: iwae_batches(model, x, y, k)  # noqa: E731
        nll = -mean_of(marginal(per_class, data.x_val, data.y_val, log_prior)) - shift
        how = held_out(
            data.x_val, importance_samples=k, importance_seed=IWAE_SEED, **caveat, **marginal_note
        )
        if "iwae_nll" in wanted:
            metrics.add("iwae_nll", nll, how)
        if "bits_per_dim" in wanted:
            metrics.add("bits_per_dim", nll / (dims * math.log(2)), how)
    return metrics
