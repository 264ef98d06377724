"""bic and aic of a variational mixture are refused: they penalise a maximum-likelihood fit by
its free parameters, and a Bayesian mixture switches components off instead (counting every
offered one overstated its BIC by thousands; scikit-learn defines none for it)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import RunError, SpecError
from gencompile.spec import load_spec

BASE = """\
spec_version: 1
name: bgmm
data:
  source: {type: builtin, name: blobs, n_samples: 400, n_features: 3, centers: 2}
model:
  family: mixture
  components: 6
  algorithm: {type: ALGORITHM}
"""


def lowered(tmp_path: Path, algorithm: str, metrics: str | None = None):
    path = tmp_path / "spec.yaml"
    text = BASE.replace("ALGORITHM", algorithm)
    if metrics is not None:
        text += f"evaluation:\n  metrics: {metrics}\n"
    path.write_text(text)
    return lower(load_spec(path, []))


def test_bic_and_aic_of_a_variational_mixture_are_located_refusals(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        lowered(tmp_path, "variational", "[nll, bic, aic]")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, lines
    for line, (metric, column) in zip(lines, [("bic", 18), ("aic", 23)], strict=True):
        assert line.startswith(f"{tmp_path / 'spec.yaml'}:10:{column}: evaluation.metrics["), line
        assert f"{metric} counts the free parameters of a maximum-likelihood fit" in line
        assert "BayesianGaussianMixture has no" in line
        assert f"remove {metric}: compare mixtures by their held-out nll" in line
        assert "lower_bound" in line


def test_a_variational_mixture_defaults_to_the_nll_alone(tmp_path: Path) -> None:
    assert lowered(tmp_path, "variational").evaluation["metrics"] == ["nll"]


@pytest.mark.parametrize("algorithm", ["em", "gradient"])
def test_maximum_likelihood_fits_keep_bic_and_aic(tmp_path: Path, algorithm: str) -> None:
    assert lowered(tmp_path, algorithm).evaluation["metrics"] == ["nll", "bic", "aic"]
    assert lowered(tmp_path, algorithm, "[bic]").evaluation["metrics"] == ["bic"]


def test_an_older_lock_asking_for_them_is_refused_at_evaluation() -> None:
    from gencompile.runtime.mixture import evaluate

    variational = SimpleNamespace(posterior=object())  # what marks a variational mixture
    data = SimpleNamespace(
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
        element_shape=(3,),
        x_val=[],
        x_train=[[0.0, 0.0, 0.0]],
    )
    with pytest.raises(RunError) as caught:
        evaluate.__wrapped__(variational, data, {"metrics": ["bic", "aic"]})
    assert str(caught.value).startswith("bic and aic: a variational mixture switches")
    assert "--metrics nll" in str(caught.value)
