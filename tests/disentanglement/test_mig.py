"""The Mutual Information Gap: 1 for latents that are the factors, 0 for noise, and a
refusal, with advice, where it cannot be computed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import shapes2d
from gencompile.runtime.metrics.mig import discretize, mig_metric, mutual_information_gap

NAMES = shapes2d.FACTOR_NAMES


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return shapes2d.factors(5000, seed=0)


def test_latents_equal_to_the_factors_score_one(factors: np.ndarray) -> None:
    # Each factor in its own latent (scaled, shifted, in another order), plus a noise latent.
    rng = np.random.default_rng(1)
    latents = np.column_stack(
        [
            factors[:, 2] * 0.3 - 1,
            rng.normal(size=len(factors)),
            factors[:, 0],
            factors[:, 3],
            5 * factors[:, 1],
        ]
    ).astype(np.float32)
    score, gaps = mutual_information_gap(latents, factors, NAMES)
    assert score > 0.97
    assert set(gaps) == set(NAMES) and min(gaps.values()) > 0.97


def test_noise_latents_score_zero(factors: np.ndarray) -> None:
    latents = np.random.default_rng(2).normal(size=(len(factors), 6))
    score, _ = mutual_information_gap(latents, factors, NAMES)
    assert 0.0 <= score < 0.03


def test_a_factor_spread_over_two_latents_has_no_gap(factors: np.ndarray) -> None:
    # x in two latents at once: the best two tell it equally, the gap is ~0; y alone: ~1
    noise = np.random.default_rng(3).normal(size=(len(factors), 2))
    latents = np.column_stack([factors[:, 2], factors[:, 2], factors[:, 3], noise])
    _, gaps = mutual_information_gap(latents, factors, NAMES)
    assert gaps["x"] < 0.01 and gaps["y"] > 0.97


def test_discretize_bins_each_latent_over_its_range() -> None:
    codes = np.column_stack([np.linspace(0, 1, 100), np.linspace(-50, 50, 100)])
    binned = discretize(codes, bins=20)
    assert binned.min() == 0 and binned.max() == 19
    np.testing.assert_array_equal(binned[:, 0], binned[:, 1])  # the same ranks either way
    assert np.all(np.bincount(binned[:, 0]) == 5)


def test_a_constant_factor_is_refused(factors: np.ndarray) -> None:
    squares = factors[factors[:, 0] == 0]
    with pytest.raises(RunError, match="shape take a single value"):
        mutual_information_gap(squares[:, 1:3].astype(float), squares, NAMES)


def test_non_finite_codes_are_refused_with_advice(factors: np.ndarray) -> None:
    codes = factors[:, :2].astype(float)
    codes[0, 1] = np.nan  # a diverged encoder: NumPy's binning would stop with a traceback
    with pytest.raises(RunError, match="means of 1 of 5000 held-out examples are NaN") as info:
        mutual_information_gap(codes, factors, NAMES)
    assert "history.csv" in str(info.value) and "learning_rate" in str(info.value)


def test_a_single_latent_is_refused(factors: np.ndarray) -> None:
    with pytest.raises(RunError, match="latent_dim >= 2"):
        mutual_information_gap(factors[:, :1].astype(float), factors, NAMES)


def test_data_without_factors_is_refused_with_advice() -> None:
    digits = SimpleNamespace(
        factors_val=None, source={"type": "builtin", "name": "digits"}, x_val=np.zeros((5, 8))
    )
    with pytest.raises(RunError, match=r"'digits' has none.*name: shapes2d") as info:
        mig_metric(None, digits)
    assert "drop mig from evaluation.metrics" in str(info.value)
