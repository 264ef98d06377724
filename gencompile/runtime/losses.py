"""Loss terms shared by generated models.

Per-example terms come back unreduced (`[B]` or `[B, D]`) so the generated `train_step`
spells out its own reduction (under `tf.distribute`, `replicas.scale_to_global_batch` makes
that reduction the global batch's).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from gencompile.runtime.distributions import LOG_2PI, diag_normal_log_prob

Tensor = tf.Tensor

__all__ = ["free_bits_kl", "gaussian_kl", "monte_carlo_kl", "total_correlation"]


def gaussian_kl(mean: Any, log_var: Any) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per latent dimension -> `[B, D]` (closed form).

    Kept per dimension so free bits can clamp each dimension separately.
    """
    mean = tf.cast(mean, tf.float32)
    log_var = tf.cast(log_var, tf.float32)
    return 0.5 * (tf.exp(log_var) + tf.square(mean) - 1.0 - log_var)


def monte_carlo_kl(z: Any, mean: Any, log_var: Any, prior: Any) -> Tensor:
    """Single-sample estimate log q(z|x) - log p(z) -> `[B]`, z drawn from q(z|x).

    For priors without a closed-form KL (e.g. the mixture); unbiased, noisier than analytic.
    """
    return diag_normal_log_prob(z, mean, log_var) - tf.cast(prior.log_prob(z), tf.float32)


def free_bits_kl(kl_per_dim: Any, free_bits: float) -> Tensor:
    """sum_d max(free_bits, mean over batch of kl_d) -> scalar (Kingma et al. 2016).

    Dimensions whose batch-average KL is below `free_bits` nats contribute a constant (no
    gradient), which stops the optimiser from collapsing them to the prior early on. With
    free_bits=0 this is the batch mean of the per-example total KL.
    """
    per_dim = tf.reduce_mean(tf.cast(kl_per_dim, tf.float32), axis=0)
    if isinstance(free_bits, (int, float)) and free_bits <= 0:
        return tf.reduce_sum(per_dim)  # exactly the plain mean, even for tiny negative noise
    return tf.reduce_sum(tf.maximum(per_dim, tf.constant(free_bits, tf.float32)))


def total_correlation(z: Any, mean: Any, log_var: Any, dataset_size: Any) -> Tensor:
    """log q(z_i) - sum_d log q(z_i,d) per example -> `[B]`: the total correlation of the
    aggregate posterior q(z) = 1/N sum_n q(z | x_n), estimated on the minibatch (beta-TCVAE,
    Chen et al. 2018), each z_i drawn from its own q(z | x_i).

    q(z_i) is estimated by stratified sampling: example i's own posterior stands for itself
    (weight 1/N), the batch's M - 1 others for the data set's N - 1 others (weight
    (N - 1) / (N (M - 1)) each), which is unbiased for q(z_i); every marginal q(z_i,d) is
    estimated with the same weights. A data set no larger than the batch (N <= M) is the
    batch itself: each posterior weighs 1/M, and the estimate is exact.
    """
    z, mean, log_var = (tf.cast(t, tf.float32) for t in (z, mean, log_var))
    m = tf.cast(tf.shape(z)[0], tf.float32)
    n = tf.maximum(tf.cast(dataset_size, tf.float32), m)
    # log q(z_i,d | x_j) for every pair (i, j) and dimension d -> [M, M, D]
    log_q = -0.5 * (
        LOG_2PI
        + log_var[None, :, :]
        + tf.square(z[:, None, :] - mean[None, :, :]) * tf.exp(-log_var[None, :, :])
    )
    own = tf.cast(tf.eye(tf.shape(z)[0]), tf.bool)
    other_weight = tf.math.log(n - 1.0) - tf.math.log(n) - tf.math.log(tf.maximum(m - 1.0, 1.0))
    log_weights = tf.where(own, -tf.math.log(n), other_weight)  # [M, M]
    log_qz = tf.reduce_logsumexp(log_weights + tf.reduce_sum(log_q, axis=-1), axis=1)
    log_qz_marginals = tf.reduce_logsumexp(log_weights[:, :, None] + log_q, axis=1)
    return log_qz - tf.reduce_sum(log_qz_marginals, axis=-1)
