"""`losses.total_correlation`: beta-TCVAE's minibatch estimate of TC(q(z)), against the
closed form of a Gaussian aggregate posterior and against a direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from gencompile.runtime.losses import total_correlation

SIGMA = 0.3  # every posterior's standard deviation


def codes(rho: float, size: int, dims: int, seed: int) -> tuple[np.ndarray, ...]:
    """Posterior means with unit variances and correlation `rho` between dimensions 0 and
    1, and one z drawn from each posterior N(mean, SIGMA^2 I)."""
    rng = np.random.default_rng(seed)
    cov = np.eye(dims)
    cov[0, 1] = cov[1, 0] = rho
    mean = rng.multivariate_normal(np.zeros(dims), cov, size=size).astype(np.float32)
    log_var = np.full_like(mean, 2 * np.log(SIGMA))
    z = (mean + SIGMA * rng.standard_normal(mean.shape)).astype(np.float32)
    return z, mean, log_var


def gaussian_tc(rho: float) -> float:
    """TC of N(0, C + SIGMA^2 I) with C's only correlation rho: -1/2 log(1 - r^2)."""
    r = rho / (1 + SIGMA**2)
    return -0.5 * np.log(1 - r**2)


def test_independent_latents_have_no_total_correlation() -> None:
    z, mean, log_var = codes(0.0, 1000, 2, seed=0)
    tc = np.asarray(total_correlation(z, mean, log_var, dataset_size=1000))
    assert tc.shape == (1000,)
    assert abs(tc.mean()) < 0.03


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_correlated_latents_have_the_gaussian_total_correlation(rho: float) -> None:
    z, mean, log_var = codes(rho, 1000, 2, seed=1)
    tc = float(np.mean(total_correlation(z, mean, log_var, dataset_size=1000)))
    assert tc > 0.1
    assert tc == pytest.approx(gaussian_tc(rho), abs=0.04)


def test_stratified_weights_against_a_direct_computation() -> None:
    """A batch of M = 6 standing for N = 100 examples, computed pair by pair in float64."""
    z, mean, log_var = codes(0.6, 6, 3, seed=2)
    n, m = 100, 6
    log_q = norm.logpdf(z[:, None, :], mean[None], np.exp(0.5 * log_var)[None])  # [i, j, d]
    weights = np.full((m, m), (n - 1) / (n * (m - 1)))
    np.fill_diagonal(weights, 1 / n)
    log_qz = logsumexp(log_q.sum(-1), b=weights, axis=1)
    log_marginals = logsumexp(log_q, b=weights[:, :, None], axis=1).sum(-1)
    got = np.asarray(total_correlation(z, mean, log_var, dataset_size=n))
    np.testing.assert_allclose(got, log_qz - log_marginals, rtol=1e-4, atol=1e-4)


def test_a_data_set_no_larger_than_the_batch_is_the_batch() -> None:
    """N <= M (or N unset, 0): every posterior weighs 1/M; a batch of one is finite."""
    z, mean, log_var = codes(0.6, 8, 2, seed=3)
    at_m = np.asarray(total_correlation(z, mean, log_var, dataset_size=8))
    np.testing.assert_allclose(np.asarray(total_correlation(z, mean, log_var, 0)), at_m)
    one = np.asarray(total_correlation(z[:1], mean[:1], log_var[:1], dataset_size=0))
    assert np.all(np.isfinite(one))
