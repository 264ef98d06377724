"""EM's n_init: the same starts as scikit-learn's GaussianMixture from the same seed, the
same final mean log-likelihood of each, and so the same winner; then the same fitted model
and the same score_samples."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from gencompile.compiler.lower import lower
from gencompile.runs import train
from gencompile.runtime import mixture
from gencompile.spec import load_spec

K, D, N, STARTS, ITERATIONS = 6, 3, 1200, 4, 15
SEED = 5  # the fixture spec's seed


class RecordingGaussianMixture(GaussianMixture):
    """scikit-learn's GaussianMixture, remembering the final lower bound of every start."""

    def _print_verbose_msg_init_end(self, lower_bound, init_has_converged):
        self.start_bounds_ = [*getattr(self, "start_bounds_", []), float(lower_bound)]


def fit_reference(x: np.ndarray, covariance: str, init: str) -> RecordingGaussianMixture:
    reference = RecordingGaussianMixture(
        K,
        covariance_type=covariance,
        n_init=STARTS,
        init_params=init,
        max_iter=ITERATIONS,
        tol=0.0,  # every iteration, as the generated spec's tol 0
        reg_covar=1e-6,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(x)
    return reference


@pytest.mark.parametrize(("covariance", "init"), [("full", "kmeans"), ("diag", "random")])
def test_each_start_and_the_winner_equal_sklearn(covariance, init, make_data, generated_mixture):
    x = make_data(N, D, 4, seed=3).astype(np.float32).astype(np.float64)  # as the model sees it
    module = generated_mixture(covariance, K, D, init=init, algorithm="em_starts")
    model = module.build_model()
    model.initialize(SimpleNamespace(x_train=x.astype("float32")))
    reference = fit_reference(x, covariance, init)

    ours = model.start_log_likelihoods.numpy()
    np.testing.assert_allclose(ours, reference.start_bounds_, rtol=1e-6)
    assert np.ptp(ours) > 1e-3  # the starts end apart, so the choice means something
    assert int(model.chosen_start.numpy()) == int(np.argmax(reference.start_bounds_))
    # Training from the winner repeats its EM: its final parameters are scikit-learn's.
    mixture.converge(model, x.astype("float32"), module.e_step, ITERATIONS, 0.0)
    np.testing.assert_allclose(model.component_weights.numpy(), reference.weights_, atol=1e-6)
    np.testing.assert_allclose(model.means.numpy(), reference.means_, atol=1e-5)
    scores = model.score_samples(x.astype("float32")).numpy()
    np.testing.assert_allclose(scores, reference.score_samples(x), rtol=1e-6)


def test_spec_words_and_a_tiny_run_record_the_winning_start(tmp_path):
    spec = Path(__file__).resolve().parents[2] / "specs" / "gmm_blobs.yaml"
    overrides = ["data.source.n_samples=600", "model.algorithm.max_iter=3"]
    overrides += ["model.algorithm.n_init=2", "output.samples.count=50"]
    plan = lower(load_spec(spec, overrides))
    assert plan.model.n_init == 2 and "from the best of 2 k-means starts" in plan.loss_in_words
    train(spec, overrides, run_dir=tmp_path / "run", quiet=True)
    how = json.loads((tmp_path / "run" / "metrics.json").read_text())["computed_with"]["nll"]
    start = how["em_start"]
    assert start["of"] == 2 and len(start["final_log_likelihoods"]) == 2
    assert start["chosen"] == int(np.argmax(start["final_log_likelihoods"]))
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"EM start {start['chosen'] + 1} of 2" in report
