"""A flow's held-out likelihood metrics (and `gencompile score` of a dequantized flow) are
refused, with the real cause, where they would not be the data's: a dequantization that reads
continuous values as a few levels (the NLL of a coarsened copy), and held-out values outside
the flow's support (a logit transform's domain, the dequantization's levels), whose NLL is
infinite and used to surface as "nan ... the model diverged"."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import RunError

CONFIG = {"metrics": ["nll", "bits_per_dim"], "importance_samples": 4}


def held_out(x_val: np.ndarray, x_train: np.ndarray | None = None) -> SimpleNamespace:
    """A vector data set whose min-max `scale` is fitted on `x_train` (default: x_val)."""
    from gencompile.runtime.preprocessing import Preprocessor

    fitted = Preprocessor.fit(x_val if x_train is None else x_train, "vector", scale=(0.0, 1.0))
    return SimpleNamespace(
        x_val=fitted.transform(x_val),
        element_shape=x_val.shape[1:],
        preprocessor=fitted,
        feature_names=("width", "height"),
        source={"type": "npz", "path": "data.npz"},
    )


def dequantized(bins: int) -> SimpleNamespace:
    from gencompile.runtime import flows

    return SimpleNamespace(dequantization=flows.UniformDequantization(bins), transforms=[])


def test_a_dequantized_flow_refuses_the_nll_of_continuous_values() -> None:
    from gencompile.runtime.flow import likelihood_metrics

    moons = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(RunError) as caught:
        likelihood_metrics(dequantized(4), held_out(moons), CONFIG)
    message = str(caught.value)
    assert message.startswith("nll and bits_per_dim: the held-out values "), message
    assert "coarsened copy of the data" in message
    assert "no model.dequantization for continuous values" in message
    assert message.endswith("or remove nll and bits_per_dim from evaluation.metrics")


def test_values_on_the_dequantizations_levels_pass_its_checks() -> None:
    from gencompile.runtime.flow import check_support
    from gencompile.runtime.metrics.levels import check_dequantized_levels

    model = dequantized(17)
    grid = np.random.default_rng(0).integers(0, 17, (40, 2)) / 16.0
    data = SimpleNamespace(x_val=grid.astype(np.float32), preprocessor=None)
    check_support(model, data, ["nll"])
    check_dequantized_levels(model.dequantization, data.x_val, ["nll"])


def test_held_out_values_outside_the_logit_domain_name_the_cause_not_divergence() -> None:
    from gencompile.runtime import flows
    from gencompile.runtime.flow import likelihood_metrics

    train = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    rows = np.array([[0.5, 0.5], [3.0, 0.5], [0.2, 0.4], [4.0, 0.9]])  # 2 beyond width's range
    model = SimpleNamespace(dequantization=None, transforms=[flows.Logit(alpha=0.05)])
    with pytest.raises(RunError) as caught:
        likelihood_metrics(model, held_out(rows, train), {**CONFIG, "metrics": ["nll"]})
    assert str(caught.value) == (
        "nll: 2 of 4 held-out examples lie outside the values the model gives any "
        "probability: the flow's logit transform is defined on (-0.05556, 1.056) only (the "
        "model's units), so their likelihood is 0 and the NLL infinite (the first is example "
        "1; feature(s) width lie beyond the training split's range (width: 0..1), which "
        "data.preprocessing.scale maps onto [0, 1]; a flow without the logit transform "
        "scores such values finitely), or remove nll from evaluation.metrics"
    )


def test_a_dequantized_flow_names_values_beyond_its_levels_as_outside() -> None:
    """Beyond the levels, not merged into the top one: the support's message comes first."""
    from gencompile.runtime.flow import likelihood_metrics

    train = np.array([[0.0, 0.0], [16.0, 16.0]])
    rows = np.array([[4.0, 8.0], [20.0, 8.0]])
    with pytest.raises(RunError, match=r"^nll and bits_per_dim: 1 of 2 held-out examples lie "):
        likelihood_metrics(dequantized(17), held_out(rows, train), CONFIG)


def test_score_refuses_a_dequantized_flow_of_continuous_values() -> None:
    from gencompile.runtime.scores import _flow

    moons = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(RunError) as caught:
        _flow(dequantized(4), held_out(moons), CONFIG)
    message = str(caught.value)
    assert message.startswith("the scores: the held-out values "), message
    assert "coarsened copy of the data" in message
    assert message.endswith(
        "or without model.dequantization for continuous values (the flow's exact density)"
    )


def test_a_non_finite_metric_does_not_claim_the_training_diverged() -> None:
    from gencompile.runtime.metrics.results import Metrics

    with pytest.raises(RunError) as caught:
        Metrics().add("nll", math.nan, {})
    message = str(caught.value)
    assert "so the model diverged" not in message
    assert "training loss stayed finite" in message
    assert "beyond the training split's range" in message and "history.csv" in message


FLOW_SPEC = """\
spec_version: 1
name: flow-logit-cauchy
seed: 1
data:
  source: {type: npz, path: cauchy.npz}
  validation_split: 0.2
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: flow
  base: {type: normal}
  transforms:
    - {type: logit, alpha: 0.05}
    - {type: affine_coupling, hidden: [8], mask: alternating, repeat: 1}
training: {epochs: 1, optimizer: {type: adam, learning_rate: 1.0e-3}}
evaluation: {metrics: [nll]}
"""


def test_a_run_whose_held_out_values_leave_the_logit_domain_says_so(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding's reproduction: heavy-tailed held-out values beyond the training range.
    The refusal needs only the data and the flow's structure, so it comes before training
    (`evaluate.check`): it used to come after the epochs, leaving a failed run without
    weights."""
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(3).standard_cauchy((2000, 2)).astype(np.float32)
    np.savez(tmp_path / "cauchy.npz", x=x)
    (tmp_path / "spec.yaml").write_text(FLOW_SPEC)
    code, _, err = run_cli("train", "spec.yaml", "--quiet", "--runs-dir", "runs")
    assert code == 1
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert line.startswith("error: nll: 2 of 400 held-out examples lie outside "), line
    assert "logit transform is defined on" in line and "feature(s) x0 lie beyond" in line
    assert "diverged" not in line
    (run,) = (tmp_path / "runs").glob("*/*")
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert not (run / "history.csv").exists()  # no epoch was spent on it
    assert not (run / "checkpoints").exists()
