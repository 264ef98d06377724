"""The mixture family's spec and lowering: defaults, refusals, parameter count, words."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.families.mixture import free_params
from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
spec_version: 1
name: gmm
data:
  source: {type: builtin, name: digits}
model:
  family: mixture
"""


def lowered(tmp_path: Path, text: str = "", overrides: list[str] | None = None):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + text)
    return lower(load_spec(path, overrides or []))


def test_defaults_and_flattened_images(tmp_path):
    plan = lowered(tmp_path)
    assert plan.family == "mixture" and plan.networks == ()
    m = plan.model
    assert (m.components, m.covariance, m.init, m.reg_covar) == (8, "full", "kmeans", 1e-6)
    assert m.data_shape == (8, 8, 1) and m.features == 64
    assert plan.training["epochs"] == m.max_iter == 100  # one EM iteration per epoch
    assert plan.resolved_spec["training"]["epochs"] == 100
    assert plan.evaluation["metrics"] == ["nll", "bic", "aic"]
    assert "EM" in plan.loss_in_words and "k-means" in plan.loss_in_words


def test_explicit_epochs_cap_max_iter(tmp_path):
    plan = lowered(tmp_path, overrides=["training.epochs=3"])
    assert plan.training["epochs"] == 3
    plan = lowered(tmp_path, "  algorithm: {type: em, max_iter: 5}\n", ["training.epochs=50"])
    assert plan.training["epochs"] == 5


@pytest.mark.parametrize(
    ("covariance", "expected"),
    # scikit-learn's GaussianMixture._n_parameters for k=3, d=4
    [
        ("full", 2 + 12 + 30),
        ("diag", 2 + 12 + 12),
        ("spherical", 2 + 12 + 3),
        ("tied", 2 + 12 + 10),
    ],
)
def test_free_parameters_count_like_sklearn(covariance, expected):
    assert free_params(covariance, 3, 4) == expected


@pytest.mark.parametrize(
    ("text", "overrides", "words"),
    [
        ("  algorithm: {type: gradient, init: kmean}\n", [], "did you mean 'kmeans'?"),
        ("  algorithm: {type: gradient, max_iter: 5}\n", [], "unknown key 'max_iter'"),
        ("  algorithm: {type: gradiant}\n", [], "did you mean 'gradient'?"),
        ("", ["training.mixed_precision=true"], "mixed precision is not available"),
        ("  covariance: ful\n", [], "covariance"),
        ("", ["evaluation.metrics=[elbo]"], "metric 'elbo' is not available for family mixture"),
    ],
)
def test_unavailable_options_are_refused(tmp_path, text, overrides, words):
    with pytest.raises(SpecError) as caught:
        lowered(tmp_path, text, overrides)
    assert words in str(caught.value)


def test_gradient_algorithm_trains_for_training_epochs_with_the_optimizer(tmp_path):
    plan = lowered(tmp_path, "  algorithm: {type: gradient}\n")
    m = plan.model
    assert (m.algorithm, m.init, m.max_iter, m.tol) == ("gradient", "kmeans", None, None)
    assert plan.training["epochs"] == 50  # the training section's default, not max_iter
    assert plan.training["optimizer"]["type"] == "adam"
    assert "fitting" not in plan.extra  # the model card shows the optimizer instead
    assert "minimised by adam" in plan.loss_in_words and "log-Cholesky" in plan.loss_in_words
    plan = lowered(
        tmp_path,
        "  algorithm: {type: gradient, init: random}\n",
        ["training.epochs=7", "training.optimizer={type: sgd, learning_rate: 0.1}"],
    )
    assert plan.training["epochs"] == 7 and plan.model.init == "random"
    assert "minimised by sgd" in plan.loss_in_words


def test_example_specs_lower(tmp_path):
    for name in ("gmm_blobs", "gmm_moons", "gmm_digits", "gmm_moons_gradient"):
        plan = lower(load_spec(ROOT / "specs" / f"{name}.yaml"))
        assert plan.family == "mixture"
