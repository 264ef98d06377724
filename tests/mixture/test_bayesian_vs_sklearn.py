"""The generated variational mixture against scikit-learn's BayesianGaussianMixture.

Both start from the same k-means labels (the spec's seed is the reference's random_state,
so KMeans draws the same centres), compute their priors from the same data, and run the
same iterations: the lower bound after each must agree to 1e-6 relative, and the fitted
models' score_samples to 1e-6. The generated model runs in float64, as scikit-learn does.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from gencompile.runtime import bayesian_mixture, mixture

COVARIANCES = ("full", "diag", "spherical", "tied")
PRIORS = ("dirichlet_process", "dirichlet_distribution")
K, D, N, ITERATIONS = 5, 4, 900, 6
SEED = 5  # the fixture spec's seed


def fit_generated(module, x: np.ndarray, iterations: int) -> tuple[keras.Model, list[float]]:
    """`initialize` then `iterations` epochs of the generated train_step; the bounds logged."""
    model = module.build_model()
    model.compile(optimizer="sgd")
    model.initialize(SimpleNamespace(x_train=x.astype("float32")))
    dataset = tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(256)
    callbacks = [mixture.EMStep(), bayesian_mixture.LowerBoundConverged(tol=-1.0)]  # never stop
    history = model.fit(dataset, epochs=iterations, callbacks=callbacks, shuffle=False, verbose=0)
    return model, history.history["lower_bound"]


def fit_reference(x: np.ndarray, covariance: str, prior: str, iterations: int):
    reference = BayesianGaussianMixture(
        n_components=K,
        covariance_type=covariance,
        weight_concentration_prior_type=prior,
        max_iter=iterations,
        tol=0.0,  # run every iteration
        reg_covar=1e-6,
        init_params="kmeans",
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(x)
    return reference


@pytest.fixture(scope="module")
def data(make_data) -> np.ndarray:
    return make_data(N, D, 3).astype(np.float32).astype(np.float64)  # the model sees float32


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_lower_bound_after_each_iteration_equals_sklearn(
    covariance, prior, data, generated_mixture
):
    module = generated_mixture(covariance, K, D, algorithm=f"variational_{prior.split('_')[1]}")
    model, ours = fit_generated(module, data, ITERATIONS)
    reference = fit_reference(data, covariance, prior, ITERATIONS)
    theirs = np.ravel(reference.lower_bounds_)  # (tied: sklearn's bounds are 1-element arrays)
    assert len(ours) == len(theirs) == ITERATIONS
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    # The fitted posteriors agree too, and so do the per-example scores.
    np.testing.assert_allclose(model.component_weights.numpy(), reference.weights_, atol=1e-8)
    np.testing.assert_allclose(model.means.numpy(), reference.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        model.degrees_of_freedom.numpy(), reference.degrees_of_freedom_, rtol=1e-9
    )
    ours_scores = model.score_samples(data.astype("float32")).numpy()
    np.testing.assert_allclose(ours_scores, reference.score_samples(data), rtol=1e-6)
    np.testing.assert_allclose(
        model.responsibilities(data.astype("float32")).numpy(),
        reference.predict_proba(data),
        atol=1e-6,
    )
