"""log_prob, predict, responsibilities and sample of a generated mixture against scipy.

Both algorithms' models: EM's holds the parameters, the gradient model's derives them from
free parameters (`set_parameters` inverts that), and the rest of the class is shared.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gencompile.runtime import mixture

COVARIANCES = ("full", "diag", "spherical", "tied")
ALGORITHMS = ("em", "gradient")
K, D = 3, 4


def random_parameters(covariance: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(K) * 3)
    means = rng.normal(scale=3.0, size=(K, D))
    a = rng.normal(size=(K, D, D))
    full = a @ np.transpose(a, (0, 2, 1)) + 0.5 * np.eye(D)
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.3, 2.0, size=(K, D)),
        "spherical": rng.uniform(0.3, 2.0, size=K),
    }[covariance]
    return weights, means, covariances


def dense_covariances(covariances: np.ndarray, covariance: str) -> np.ndarray:
    """(K, D, D) covariance matrices for scipy, whatever the covariance type."""
    if covariance == "full":
        return covariances
    if covariance == "tied":
        return np.broadcast_to(covariances, (K, D, D))
    if covariance == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return covariances[:, None, None] * np.eye(D)[None]


def model_with(generated_mixture, covariance: str, algorithm: str = "em"):
    model = generated_mixture(covariance, K, D, algorithm=algorithm).build_model()
    weights, means, covariances = random_parameters(covariance)
    model.set_parameters(weights, means, mixture.precisions_cholesky(covariances, covariance))
    return model, weights, means, dense_covariances(covariances, covariance)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_log_prob_predict_and_responsibilities_match_scipy(
    covariance, algorithm, generated_mixture
):
    model, weights, means, covs = model_with(generated_mixture, covariance, algorithm)
    x = np.random.default_rng(1).normal(scale=3.0, size=(50, D)).astype(np.float32)
    joint = np.stack(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(x)
            for w, m, c in zip(weights, means, covs, strict=True)
        ],
        axis=1,
    )
    log_prob = np.asarray(model.log_prob(x))
    assert log_prob.shape == (50,) and log_prob.dtype == np.float64
    np.testing.assert_allclose(log_prob, logsumexp(joint, axis=1), rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(model(x)), joint.argmax(axis=1))
    np.testing.assert_array_equal(model.predict(x, verbose=0), joint.argmax(axis=1))
    resp = np.asarray(model.responsibilities(x))
    np.testing.assert_allclose(resp, np.exp(joint - logsumexp(joint, axis=1)[:, None]), atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_samples_have_the_mixtures_moments(covariance, algorithm, generated_mixture):
    model, weights, means, covs = model_with(generated_mixture, covariance, algorithm)
    samples = np.asarray(model.sample(40000), np.float64)
    assert samples.shape == (40000, D) and np.all(np.isfinite(samples))
    mean = weights @ means
    second = np.einsum("k,kde->de", weights, covs + means[:, :, None] * means[:, None, :])
    scale = np.sqrt(np.diag(second - np.outer(mean, mean)))
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.05 * scale.max())
    np.testing.assert_allclose(
        np.cov(samples.T), second - np.outer(mean, mean), atol=0.1 * scale.max() ** 2
    )


def test_samples_are_shaped_like_the_data_and_seeded(generated_mixture):
    module = generated_mixture("diag", K, D)
    first = np.asarray(module.build_model().sample(5))
    second = np.asarray(module.build_model().sample(5))
    assert first.shape == (5, *module.DATA_SHAPE) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
