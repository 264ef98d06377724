"""The generated EM against scikit-learn's GaussianMixture, and EM's monotone likelihood."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from gencompile.runtime import mixture

COVARIANCES = ("full", "diag", "spherical", "tied")
K, D, N = 3, 4, 1500


def precisions(covariances: np.ndarray, covariance: str) -> np.ndarray:
    if covariance in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def set_parameters(model, weights, means, covariances, covariance: str) -> None:
    model.set_parameters(weights, means, mixture.precisions_cholesky(covariances, covariance))


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_final_log_likelihood_equals_sklearn_from_the_same_start(
    covariance, generated_mixture, make_data, em
):
    x = make_data(N, D, K).astype(np.float32).astype(np.float64)  # the model sees float32
    weights, means, covariances = em.poor_start(x, covariance, K)
    reference = GaussianMixture(
        K,
        covariance_type=covariance,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions(covariances, covariance),
        max_iter=25,
        tol=0.0,  # run every iteration
        reg_covar=1e-6,
        init_params="random",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(x)
    module = generated_mixture(covariance, K, D)
    model = module.build_model()
    set_parameters(model, weights, means, covariances, covariance)
    em.run_em(model, x, iterations=25)
    ours, theirs = em.mean_log_likelihood(model, x), reference.score(x)
    assert abs(ours - theirs) <= 1e-3 * abs(theirs), (ours, theirs)
    np.testing.assert_allclose(model.component_weights.numpy(), reference.weights_, atol=1e-6)
    np.testing.assert_allclose(model.means.numpy(), reference.means_, atol=1e-5)


def test_kmeans_start_equals_sklearns_kmeans_start(generated_mixture, make_data):
    x = make_data(N, D, K).astype(np.float32).astype(np.float64)
    module = generated_mixture("full", K, D)
    model = module.build_model()

    class Data:  # the part of a DataBundle that `initialize` reads
        x_train = x.astype(np.float32)

    model.initialize(Data)
    reference = GaussianMixture(
        K, covariance_type="full", max_iter=1, tol=0.0, random_state=module.SEED
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference._initialize_parameters(x, np.random.RandomState(module.SEED))
    np.testing.assert_allclose(model.means.numpy(), reference.means_, atol=1e-8)
    np.testing.assert_allclose(
        model.precisions_cholesky.numpy(), reference.precisions_cholesky_, rtol=1e-6
    )


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_em_never_decreases_the_mean_log_likelihood(covariance, generated_mixture, make_data, em):
    x = make_data(N, D, K, seed=3).astype(np.float32).astype(np.float64)
    module = generated_mixture(covariance, K, D)
    model = module.build_model()
    set_parameters(model, *em.poor_start(x, covariance, K, seed=4), covariance)
    values = [em.mean_log_likelihood(model, x)]
    for _ in range(12):
        em.run_em(model, x, iterations=1, batch_size=200)
        values.append(em.mean_log_likelihood(model, x))
    steps = np.diff(values)
    assert np.all(steps >= -1e-9 * np.abs(values[1:])), values
    assert values[-1] > values[0] + 0.1  # and it did learn


def test_convergence_stops_when_the_change_is_below_tol(generated_mixture, make_data):
    x = make_data(N, D, K).astype(np.float32)
    model = generated_mixture("diag", K, D).build_model()
    model.compile(optimizer="sgd")
    stop = mixture.Converged(tol=1e-2)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(500)
    history = model.fit(
        dataset, epochs=200, callbacks=[mixture.EMStep(), stop], shuffle=False, verbose=0
    )
    curve = history.history["log_likelihood"]
    assert stop.converged_epoch is not None and len(curve) < 200
    assert abs(curve[-1] - curve[-2]) < 1e-2 <= abs(curve[-2] - curve[-3])


def test_the_model_state_round_trips_through_a_weights_file(generated_mixture, tmp_path):
    module = generated_mixture("tied", K, D)
    model = module.build_model()
    model.means.assign(np.arange(K * D, dtype=np.float64).reshape(K, D))
    path = tmp_path / "gmm.weights.h5"
    model.save_weights(path)
    other = module.build_model()
    other.load_weights(path)
    np.testing.assert_array_equal(other.means.numpy(), model.means.numpy())
    assert other.means.dtype == "float64" and keras.backend.standardize_dtype("float64")
