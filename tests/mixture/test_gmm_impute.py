"""Imputation by Gaussian conditioning: exact for one Gaussian, better than column means."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import mixture


def fitted(module, x: np.ndarray, iterations: int = 30):
    model = module.build_model()

    class Data:  # what `initialize` reads of a DataBundle
        x_train = x.astype(np.float32)

    model.initialize(Data)
    model.compile(optimizer="sgd")
    dataset = tf.data.Dataset.from_tensor_slices(x.astype(np.float32)).batch(512)
    model.fit(dataset, epochs=iterations, callbacks=[mixture.EMStep()], shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("algorithm", ["em", "gradient"])
def test_one_gaussian_gives_the_textbook_conditional_mean(algorithm, generated_mixture):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov, mu = a @ a.T + np.eye(4), rng.normal(size=4)
    model = generated_mixture("full", 1, 4, algorithm=algorithm).build_model()
    model.set_parameters([1.0], mu[None], mixture.precisions_cholesky(cov[None], "full"))
    x = np.array([[0.5, np.nan, -1.0, np.nan], [np.nan] * 4, [1.0, 2.0, 3.0, 4.0]])
    filled = model.impute(x)
    o, m = [0, 2], [1, 3]
    expected = mu[m] + cov[np.ix_(m, o)] @ np.linalg.solve(cov[np.ix_(o, o)], x[0, o] - mu[o])
    np.testing.assert_allclose(filled[0, m], expected, rtol=1e-10)
    np.testing.assert_allclose(filled[1], mu, rtol=1e-10)  # nothing observed: the mean
    np.testing.assert_array_equal(filled[2], x[2])  # nothing missing: unchanged
    np.testing.assert_array_equal(filled[0, o], x[0, o])


@pytest.mark.slow
def test_imputation_beats_column_means_on_correlated_data(generated_mixture, make_data):
    d = 6
    x = make_data(6000, d, 3, seed=7)
    train, held_out = x[:5000], x[5000:]
    for covariance in ("full", "tied", "diag"):
        model = fitted(generated_mixture(covariance, 3, d), train)
        hidden = np.random.default_rng(1).uniform(size=held_out.shape) < 0.3
        masked = np.where(hidden, np.nan, held_out)
        filled = model.impute(masked)
        assert not np.isnan(filled).any()
        error = np.sqrt(np.mean((filled - held_out)[hidden] ** 2))
        baseline = np.sqrt(np.mean((train.mean(0)[None] - held_out)[hidden] ** 2))
        limit = 0.6 if covariance != "diag" else 0.9  # diag still picks the right cluster
        assert error < limit * baseline, (covariance, error, baseline)
