"""Variational Bayesian Gaussian mixtures, as scikit-learn's `BayesianGaussianMixture`.

The weights have a Dirichlet prior (`dirichlet_distribution`) or a truncated stick-breaking
Dirichlet-process prior (`dirichlet_process`); each component's mean and precision a
Gaussian-Wishart prior. Variational EM alternates the E-step of an ordinary mixture, with
the expected log-weights and expected log-densities in place of the plug-in ones, and a
closed-form update of the posterior's parameters from the same sufficient statistics an EM
epoch accumulates (`mixture.statistics_from_features`). So a variational mixture trains
with the EM `train_step`; what changes is the M-step (`update_posterior`), the natural
parameters (`expected_log_weights`, `log_prob_corrections`) and the convergence test, on
the lower bound (`lower_bound`) rather than on the log-likelihood.

Every formula follows scikit-learn's `sklearn/mixture/_bayesian_mixture.py`, constants
dropped where it drops them, so the lower bound is the number it reports (`lower_bounds_`);
the tests hold both to 1e-6 relative from the same start. Everything is float64, for the
reasons `gencompile.runtime.mixture` gives.

A posterior's parameters, by covariance type:

    weight_concentration  (2, k) dirichlet_process: the Beta parameters of each stick
                          (k,)   dirichlet_distribution: the Dirichlet's
    mean_precision        (k,)   beta_k, the precision of mu_k relative to Lambda_k
    means                 (k, d)
    degrees_of_freedom    (k,)   nu_k of the Wishart; a scalar for tied
    precisions_cholesky   the type's shape (see `mixture`): P P^T = E[Lambda_k] = nu_k W_k
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import mixture
from gencompile.runtime.splits import batches

DTYPE = tf.float64
PRIOR_BATCH = 4096  # rows of the training split read at a time for the data's moments


@dataclass(frozen=True)
class Priors:
    """The prior's parameters (scikit-learn's `*_prior_` attributes after fitting)."""

    weight_concentration: float  # gamma_0 (dirichlet_process) or alpha_0 (distribution)
    mean_precision: float  # beta_0
    mean: Any  # m_0, (d,)
    degrees_of_freedom: float  # nu_0 > d - 1
    covariance: Any  # W_0^-1, in `prior_covariance_shape`


class Posterior(NamedTuple):
    """The variational posterior's parameters (see the module's doc for their shapes)."""

    weight_concentration: Any
    mean_precision: Any
    means: Any
    degrees_of_freedom: Any
    precisions_cholesky: Any  # of the expected covariances, as `mixture.precisions_cholesky`


def concentration_shape(process: bool, components: int) -> tuple[int, ...]:
    return (2, components) if process else (components,)


def degrees_of_freedom_shape(covariance: str, components: int) -> tuple[int, ...]:
    return () if covariance == "tied" else (components,)


def prior_covariance_shape(covariance: str, features: int) -> tuple[int, ...]:
    return {"full": (features, features), "tied": (features, features), "diag": (features,)}.get(
        covariance, ()
    )


# --------------------------------------------------------------------------- priors


def data_moments(x_train: Any, covariance: str, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The training split's mean and its unbiased covariance in the type's shape.

    scikit-learn's defaults for `mean_prior` and `covariance_prior`: np.cov(X.T) (full,
    tied), np.var(X, ddof=1) per feature (diag) or its mean (spherical). Two passes over
    the split, batch by batch, so the covariance is summed from centred values (no
    cancellation) and memory stays flat.
    """
    count, total = 0, np.zeros(features)
    for xb in batches(x_train, PRIOR_BATCH):
        xb = np.reshape(xb, (-1, features)).astype(np.float64)
        count, total = count + len(xb), total + xb.sum(axis=0)
    if count < 2:
        raise ValueError(
            f"a variational mixture needs at least 2 training examples for its priors "
            f"(got {count}); use a larger data set or a smaller validation_split"
        )
    mean = total / count
    full = covariance in ("full", "tied")
    scatter = np.zeros((features, features) if full else features)
    for xb in batches(x_train, PRIOR_BATCH):
        centred = np.reshape(xb, (-1, features)).astype(np.float64) - mean
        scatter += centred.T @ centred if full else np.sum(centred**2, axis=0)
    spread = scatter / (count - 1)
    return mean, (spread.mean() if covariance == "spherical" else spread)


def prior_moments(
    x_train: Any, covariance: str, features: int, covariance_prior: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The prior mean m_0 and covariance W_0^-1: the training split's (scikit-learn's
    defaults) unless `covariance_prior` is given: a number c is c I (full, tied), c per
    feature (diag) or c (spherical); a list is a diagonal (its mean for spherical)."""
    mean, spread = data_moments(x_train, covariance, features)
    if covariance_prior is not None:
        diagonal = np.broadcast_to(np.asarray(covariance_prior, np.float64), (features,))
        spread = {
            "full": np.diag(diagonal),
            "tied": np.diag(diagonal),
            "diag": diagonal.copy(),
            "spherical": np.mean(diagonal),
        }[covariance]
    return mean, np.asarray(spread)


# --------------------------------------------------------------------------- M-step


def gaussian_statistics(counts, sums, second, covariance: str, reg_covar: float):
    """N_k, the responsibility-weighted means x_k and covariances S_k (plus reg_covar).

    scikit-learn's `_estimate_gaussian_parameters`, from the summed statistics of an epoch.
    """
    counts = tf.convert_to_tensor(counts, DTYPE) + mixture.EMPTY_COMPONENT_GUARD
    sums, second = tf.convert_to_tensor(sums, DTYPE), tf.convert_to_tensor(second, DTYPE)
    means = sums / counts[:, None]
    identity = tf.eye(tf.shape(means)[1], dtype=DTYPE)
    if covariance == "full":
        outer = means[:, :, None] * means[:, None, :]
        spread = second / counts[:, None, None] - outer + reg_covar * identity[None]
    elif covariance == "tied":
        outer = tf.matmul(means * counts[:, None], means, transpose_a=True)
        spread = (second - outer) / tf.reduce_sum(counts) + reg_covar * identity
    else:
        spread = second / counts[:, None] - tf.square(means) + reg_covar
        if covariance == "spherical":
            spread = tf.reduce_mean(spread, axis=1)
    return counts, means, spread


def update_posterior(
    counts, sums, second, covariance: str, reg_covar: float, priors: Priors, process: bool
) -> Posterior:
    """The variational M-step: the posterior's parameters from an epoch's statistics.

    `process`: a Dirichlet-process (stick-breaking) prior on the weights, else a Dirichlet.
    """
    nk, xk, sk = gaussian_statistics(counts, sums, second, covariance, reg_covar)
    k = tf.shape(nk)[0]
    if process:  # stick k: Beta(1 + N_k, gamma_0 + sum of N_j over the later sticks)
        later = tf.math.cumsum(nk, reverse=True, exclusive=True)
        concentration = tf.stack([1.0 + nk, priors.weight_concentration + later])
    else:
        concentration = priors.weight_concentration + nk
    beta0, nu0 = priors.mean_precision, priors.degrees_of_freedom
    m0 = tf.convert_to_tensor(priors.mean, DTYPE)
    mean_precision = beta0 + nk
    means = (beta0 * m0 + nk[:, None] * xk) / mean_precision[:, None]
    prior_covariance = tf.convert_to_tensor(priors.covariance, DTYPE)
    diff = xk - m0
    shrink = beta0 / mean_precision  # beta_0 / beta_k
    if covariance == "full":
        dof = nu0 + nk
        outer = diff[:, :, None] * diff[:, None, :]
        scatter = nk[:, None, None] * (sk + shrink[:, None, None] * outer)
        covariances = (prior_covariance + scatter) / dof[:, None, None]
    elif covariance == "tied":
        dof = nu0 + tf.reduce_sum(nk) / tf.cast(k, DTYPE)
        between = tf.matmul(diff * (nk / mean_precision)[:, None], diff, transpose_a=True)
        total = tf.reduce_sum(nk)
        scatter = sk * total / tf.cast(k, DTYPE) + beta0 / tf.cast(k, DTYPE) * between
        covariances = (prior_covariance + scatter) / dof
    elif covariance == "diag":
        dof = nu0 + nk
        scatter = nk[:, None] * (sk + shrink[:, None] * tf.square(diff))
        covariances = (prior_covariance + scatter) / dof[:, None]
    else:  # spherical
        dof = nu0 + nk
        scatter = nk * (sk + shrink * tf.reduce_mean(tf.square(diff), axis=1))
        covariances = (prior_covariance + scatter) / dof
    precisions = mixture.precisions_cholesky(covariances, covariance)
    return Posterior(concentration, mean_precision, means, dof, precisions)


# --------------------------------------------------------------------------- E-step


def expected_log_weights(concentration, process: bool):
    """E[log pi_k] under the posterior of the weights."""
    if process:  # E[log v_k] + sum over j < k of E[log (1 - v_j)]
        a, b = concentration[0], concentration[1]
        digamma_sum = tf.math.digamma(a + b)
        later = tf.math.cumsum(tf.math.digamma(b) - digamma_sum, exclusive=True)
        return tf.math.digamma(a) - digamma_sum + later
    return tf.math.digamma(concentration) - tf.math.digamma(tf.reduce_sum(concentration))


def log_prob_corrections(degrees_of_freedom, mean_precision, features: int):
    """What E[log N(x | mu_k, Lambda_k)] adds to log N(x | means_k, covariances_k), per k.

    -d/2 log nu_k rescales the plug-in precision W_k nu_k to W_k; E[log det Lambda_k] =
    d log 2 + log det W_k + sum_i digamma((nu_k - i) / 2); and the uncertain mean costs
    -d / (2 beta_k). (scikit-learn's `_estimate_log_prob`.)
    """
    dof = tf.broadcast_to(tf.convert_to_tensor(degrees_of_freedom, DTYPE), tf.shape(mean_precision))
    offsets = tf.range(features, dtype=DTYPE)[:, None]
    digammas = tf.reduce_sum(tf.math.digamma(0.5 * (dof[None] - offsets)), axis=0)
    log_lambda = features * math.log(2.0) + digammas
    return -0.5 * features * tf.math.log(dof) + 0.5 * (log_lambda - features / mean_precision)


def natural_parameters(posterior: Posterior, covariance: str, process: bool):
    """H with phi(x) H = E[log pi_k] + E[log N(x | mu_k, Lambda_k)] (`mixture`'s layout).

    Their logsumexp over k is scikit-learn's `score_samples`, their softmax its
    `predict_proba`: the expectations enter where a plain mixture has log w_k and its
    constant, so the expected log-joint is the same one matrix product.
    """
    features = posterior.means.shape[-1]
    log_weights = expected_log_weights(posterior.weight_concentration, process)
    log_weights += log_prob_corrections(
        posterior.degrees_of_freedom, posterior.mean_precision, features
    )
    return mixture.natural_parameters(
        log_weights, posterior.means, posterior.precisions_cholesky, covariance
    )


def mean_weights(concentration, process: bool):
    """The posterior mean of the weights (scikit-learn's `weights_`)."""
    if process:  # E[v_k] prod_{j<k} E[1 - v_j], renormalised over the truncation
        a, b = concentration[0], concentration[1]
        remaining = tf.math.cumprod(b / (a + b), exclusive=True)
        weights = a / (a + b) * remaining
    else:
        weights = concentration
    return weights / tf.reduce_sum(weights)


# --------------------------------------------------------------------------- lower bound


def log_det_cholesky(precisions_cholesky, covariance: str, features: int):
    """log det P per component (a scalar for tied), as scikit-learn's."""
    p = tf.convert_to_tensor(precisions_cholesky, DTYPE)
    if covariance in ("full", "tied"):
        return tf.reduce_sum(tf.math.log(tf.linalg.diag_part(p)), axis=-1)
    if covariance == "diag":
        return tf.reduce_sum(tf.math.log(p), axis=1)
    return features * tf.math.log(p)


def log_wishart_norm(degrees_of_freedom, log_det_precisions_chol, features: int):
    """log of the Wishart's normaliser per component, without its log(pi) term (as sklearn)."""
    dof = tf.convert_to_tensor(degrees_of_freedom, DTYPE)
    offsets = tf.range(features, dtype=DTYPE)
    gammas = tf.reduce_sum(tf.math.lgamma(0.5 * (dof[..., None] - offsets)), axis=-1)
    return -(dof * log_det_precisions_chol + dof * features * 0.5 * math.log(2.0) + gammas)


def lower_bound(entropy_sum, posterior: Posterior, covariance: str, process: bool, components: int):
    """scikit-learn's `_compute_lower_bound`: the evidence lower bound up to constants.

    `entropy_sum` is sum_n sum_k r_nk log r_nk over the epoch's E-step, `posterior` the
    parameters that epoch's statistics gave.
    """
    features = posterior.means.shape[-1]
    dof = posterior.degrees_of_freedom
    log_det = log_det_cholesky(posterior.precisions_cholesky, covariance, features)
    log_det -= 0.5 * features * tf.math.log(dof)
    wishart = log_wishart_norm(dof, log_det, features)
    log_wishart = components * wishart if covariance == "tied" else tf.reduce_sum(wishart)
    concentration = posterior.weight_concentration
    if process:
        a, b = concentration[0], concentration[1]
        log_norm_weight = -tf.reduce_sum(
            tf.math.lgamma(a) + tf.math.lgamma(b) - tf.math.lgamma(a + b)
        )
    else:
        log_norm_weight = tf.math.lgamma(tf.reduce_sum(concentration)) - tf.reduce_sum(
            tf.math.lgamma(concentration)
        )
    return (
        -entropy_sum
        - log_wishart
        - log_norm_weight
        - 0.5 * features * tf.reduce_sum(tf.math.log(posterior.mean_precision))
    )


def entropy_sum(log_joint, log_px):
    """sum_n sum_k r_nk log r_nk of a batch, r = softmax of the expected log-joint."""
    log_resp = log_joint - log_px[:, None]
    return tf.reduce_sum(tf.exp(log_resp) * log_resp)


class LowerBoundConverged(keras.callbacks.Callback):
    """Logs the lower bound of each epoch and stops when it changes by less than `tol`.

    The bound of an epoch needs the posterior its statistics give, which the M-step sets
    at the start of the next epoch: `model.lower_bound()` computes that posterior without
    setting it. The previous bound is model state (set by `m_step`), so a resumed run stops
    where an uninterrupted one does, as `mixture.Converged`.
    """

    def __init__(self, tol: float):
        super().__init__()
        self.tol = tol
        self.converged_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        bound = float(keras.ops.convert_to_numpy(self.model.lower_bound()))
        if logs is not None:
            logs["lower_bound"] = bound
        previous = float(keras.ops.convert_to_numpy(self.model.previous_lower_bound))
        if abs(bound - previous) < self.tol:  # (the first epoch's previous is -1.8e308)
            self.converged_epoch = epoch
            self.model.stop_training = True
