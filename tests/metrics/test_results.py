"""`Metrics` holds numbers only: a NaN or infinite metric stops the evaluation with advice
instead of reaching metrics.json as NaN or Infinity, which strict JSON readers reject."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime.metrics.results import Metrics
from gencompile.runtime.metrics.samples import sample_quality


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_a_non_finite_metric_is_refused_naming_it(value: float) -> None:
    metrics = Metrics()
    with pytest.raises(RunError, match=r"^iwae_nll is (nan|inf|-inf): the model's samples") as info:
        metrics.add("iwae_nll", value, {"split": "validation"})
    assert "diverged" in str(info.value) and "history.csv" in str(info.value)
    assert metrics == {} and metrics.computed_with == {}


def test_merging_a_non_finite_metric_is_refused() -> None:
    with pytest.raises(RunError, match=r"^elbo is nan"):
        Metrics().merge({"elbo": float("nan")})


class Diverged:
    def sample(self, count: int) -> np.ndarray:
        return np.full((count, 2), np.nan, np.float32)


VECTORS = SimpleNamespace(
    x_val=np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32),
    preprocessor=SimpleNamespace(inverse=lambda x: x),
    source={"type": "builtin", "name": "moons"},
    kind="vector",
)


def test_non_finite_samples_stop_sample_quality_with_advice() -> None:
    config = {"metrics": ["energy_distance", "precision_recall"], "num_samples": 20}
    with pytest.raises(RunError, match="energy_distance, precision_recall: the model's samples"):
        sample_quality(Diverged(), VECTORS, config)
