"""A mixture fitted by gradient descent: valid parameters always, and EM's likelihood.

The free parameters are logits, means and log-Cholesky precision factors; whatever their
values, the mixture they stand for must be valid (weights on the simplex, covariances
positive definite and never below reg_covar). Trained with Adam from EM's starting point,
the mean log-likelihood must rise and end close to what EM reaches.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import mixture

COVARIANCES = ("full", "diag", "spherical", "tied")
K, D, N = 3, 4, 1500


def precision_matrices(factor: np.ndarray, covariance: str) -> np.ndarray:
    """(K, D, D) precisions P P^T, whatever the covariance type stores."""
    if covariance in ("full", "tied"):
        p = np.broadcast_to(factor, (K, D, D))
        return p @ np.transpose(p, (0, 2, 1))
    squares = np.square(factor)
    if covariance == "spherical":
        squares = np.broadcast_to(squares[:, None], (K, D))
    return np.stack([np.diag(v) for v in squares])


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_any_free_values_give_valid_covariances_above_reg_covar(covariance, generated_mixture):
    module = generated_mixture(covariance, K, D, algorithm="gradient")
    model, reg = module.build_model(), module.REG_COVAR
    rng = np.random.default_rng(0)
    # exp(3 sigma) ~ 8e3 already exceeds 1 / sqrt(reg_covar); exp(12 sigma) is absurd on
    # purpose (condition numbers of 1e20 and more): the factor must still be valid.
    for scale in (0.1, 3.0, 12.0):
        free = rng.normal(scale=scale, size=model.free_precisions.shape)
        model.free_precisions.assign(free)
        model.logits.assign(rng.normal(scale=scale, size=K))
        weights = model.component_weights.numpy()
        assert np.all(weights >= 0) and abs(weights.sum() - 1) < 1e-12
        q = model.precisions_cholesky.numpy()
        assert np.all(np.isfinite(q))
        # Triangular with a positive diagonal: Q Q^T is positive definite by construction.
        if covariance in ("full", "tied"):
            assert np.array_equal(q, np.triu(q))  # upper, as sampling and log-dets assume
            assert np.all(np.diagonal(q, axis1=-2, axis2=-1) > 0)
        else:
            assert np.all(q > 0)
        # No covariance below reg_covar: no precision eigenvalue above 1 / reg_covar.
        precisions = precision_matrices(q, covariance)
        assert np.all(np.linalg.eigvalsh(precisions) <= (1 + 1e-6) / reg), scale
        assert np.all(np.isfinite(np.asarray(model.sample(50))))
        if scale < 10:  # ... and each is the free factor's covariance plus reg_covar.
            covs = np.linalg.inv(precisions)
            p = mixture.precision_factor(free, covariance).numpy()
            expected = np.linalg.inv(precision_matrices(p, covariance)) + reg * np.eye(D)[None]
            np.testing.assert_allclose(covs, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_set_parameters_round_trips(covariance, generated_mixture, make_data, em):
    x = make_data(N, D, K)
    weights, means, covariances = em.poor_start(x, covariance, K)
    target = mixture.precisions_cholesky(covariances, covariance).numpy()
    model = generated_mixture(covariance, K, D, algorithm="gradient").build_model()
    model.set_parameters(weights, means, target)
    np.testing.assert_allclose(model.component_weights.numpy(), weights, rtol=1e-12)
    np.testing.assert_allclose(model.means.numpy(), means, rtol=1e-12)
    np.testing.assert_allclose(model.precisions_cholesky.numpy(), target, rtol=1e-9)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_adam_raises_the_likelihood_to_within_2_percent_of_em(
    covariance, generated_mixture, make_data, em
):
    x = make_data(N, D, K).astype(np.float32).astype(np.float64)
    weights, means, covariances = em.poor_start(x, covariance, K)
    start = (weights, means, mixture.precisions_cholesky(covariances, covariance))
    fitted_by_em = generated_mixture(covariance, K, D).build_model()
    fitted_by_em.set_parameters(*start)
    em.run_em(fitted_by_em, x, iterations=40)
    reached_by_em = em.mean_log_likelihood(fitted_by_em, x)

    model = generated_mixture(covariance, K, D, algorithm="gradient").build_model()
    model.set_parameters(*start)
    initial = em.mean_log_likelihood(model, x)
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    dataset = tf.data.Dataset.from_tensor_slices(x.astype(np.float32))
    dataset = dataset.shuffle(N, seed=0).batch(250)
    history = model.fit(dataset, epochs=30, shuffle=False, verbose=0).history
    final = em.mean_log_likelihood(model, x)

    curve = history["log_likelihood"]
    assert np.mean(curve[-5:]) > np.mean(curve[5:10]) > np.mean(curve[:5])
    assert final > initial + 10.0
    assert abs(final - reached_by_em) <= 0.02 * abs(reached_by_em), (final, reached_by_em)
    assert np.isclose(history["loss"][-1], -curve[-1])
    assert np.all(np.isfinite(history["grad_norm"]))
