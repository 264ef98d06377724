"""Loss terms shared by generated models.

Per-example terms come back unreduced (`[B]` or `[B, D]`) so the generated `train_step`
spells out its own reduction (under `tf.distribute`, `replicas.scale_to_global_batch` makes
that reduction the global batch's).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from gencompile.runtime.distributions import diag_normal_log_prob

Tensor = tf.Tensor

__all__ = ["free_bits_kl", "gaussian_kl", "monte_carlo_kl"]


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
