"""The variational mixture's spec: sklearn's defaults resolved, located errors, a tiny run."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.runs import train
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
spec_version: 1
name: bgmm
data:
  source: {type: builtin, name: blobs, n_samples: 400, n_features: 3, centers: 2}
model:
  family: mixture
  components: 6
  covariance: diag
  algorithm:
    type: variational
"""


def lowered(tmp_path: Path, text: str = "", overrides: list[str] | None = None):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + text)
    return lower(load_spec(path, overrides or []))


def test_defaults_are_sklearns(tmp_path):
    plan = lowered(tmp_path)
    m, v = plan.model, plan.model.variational
    assert (m.algorithm, m.max_iter, m.tol, m.init) == ("variational", 100, 1e-3, "kmeans")
    assert v.process is True
    assert v.weight_concentration_prior == pytest.approx(1 / 6)  # 1 / n_components
    assert (v.mean_precision_prior, v.degrees_of_freedom_prior) == (1.0, 3.0)  # 1, features
    assert v.covariance_prior is None  # the data's, computed when training starts
    assert plan.training["epochs"] == 100
    assert "variational Bayesian EM" in plan.loss_in_words
    assert "Dirichlet-process" in plan.loss_in_words


def test_explicit_priors_reach_the_generated_code(tmp_path):
    text = (
        "    weight_concentration_prior_type: dirichlet_distribution\n"
        "    weight_concentration_prior: 0.5\n"
        "    degrees_of_freedom_prior: 4.5\n"
        "    covariance_prior: [1.0, 2.0, 3.0]\n"
    )
    plan = lowered(tmp_path, text)
    v = plan.model.variational
    assert (v.process, v.weight_concentration_prior, v.degrees_of_freedom_prior) == (
        False,
        0.5,
        4.5,
    )
    assert v.covariance_prior == (1.0, 2.0, 3.0)
    from gencompile.compiler.project import render_project

    source = render_project(load_spec(tmp_path / "spec.yaml"), plan)["bgmm/model.py"]
    assert "DIRICHLET_PROCESS = False" in source
    assert "COVARIANCE_PRIOR = (1.0, 2.0, 3.0)" in source
    assert "class BayesianGaussianMixture(keras.Model)" in source


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            "    weight_concentration_prior_type: dirichlet\n",
            "spec.yaml:11:",
            "weight_concentration_prior_type",
        ),
        ("    mean_precision_prior: -1.0\n", "spec.yaml:11:", "must be > 0"),
        ("    degrees_of_freedom_prior: 1.5\n", "spec.yaml:11:", "greater than features - 1 = 2"),
        (
            "    covariance_prior: [1.0, 2.0]\n",
            "spec.yaml:11:",
            "has 2 variances but the data has 3",
        ),
        ("    n_initt: 3\n", "spec.yaml:11:", "n_initt"),
    ],
)
def test_bad_priors_are_located_errors(tmp_path, text, where, words):
    with pytest.raises(SpecError) as caught:
        lowered(tmp_path, text)
    message = str(caught.value)
    assert where in message and words in message, message


def test_tiny_training_run_logs_the_lower_bound(tmp_path):
    run_dir = tmp_path / "run"
    overrides = [
        "data.source.n_samples=600",
        "model.algorithm.max_iter=4",
        "output.samples.count=50",
    ]
    train(ROOT / "specs" / "bgmm_blobs.yaml", overrides, run_dir=run_dir, quiet=True)
    with (run_dir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    bounds = [float(row["lower_bound"]) for row in rows]
    assert len(bounds) == 4
    assert all(later >= earlier - 1e-6 for earlier, later in itertools.pairwise(bounds))  # ascent
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"nll"}  # no bic or aic: a variational fit has no parameter count
    how = json.loads((run_dir / "metrics.json").read_text())["computed_with"]["nll"]
    assert 1 <= how["effective_components"] <= 16
    report = (run_dir / "report.md").read_text()
    assert f"{how['effective_components']} effective components" in report
