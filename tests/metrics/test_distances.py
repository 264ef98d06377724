"""Each statistic against a closed form or a direct computation that shares no code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from gencompile.runtime.metrics.distances import (
    energy_distance,
    frechet_distance,
    frechet_distance_of,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
    mode_coverage,
    polynomial_mmd2_unbiased,
    precision_recall,
)


def _random_covariance(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _symmetric_sqrt(s: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(s)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).standard_normal((500, 12))
    assert frechet_distance_of(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)


def test_frechet_distance_of_general_gaussians_matches_the_symmetric_form() -> None:
    # Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2): the same quantity computed another way.
    rng = np.random.default_rng(1)
    s1, s2 = _random_covariance(rng, 6), _random_covariance(rng, 6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    root1 = _symmetric_sqrt(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(
        s1 + s2 - 2 * _symmetric_sqrt(root1 @ s2 @ root1)
    )
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_from_samples_converges_to_the_closed_form() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, size=(200_000, 2))
    b = rng.normal([3.0, 0.0], [2.0, 1.0], size=(200_000, 2))
    # 9 from the means, (2 - 1)^2 = 1 from the first variance.
    assert frechet_distance_of(a, b) == pytest.approx(10.0, rel=0.01)
    mu, sigma = gaussian_statistics(b)
    np.testing.assert_allclose(mu, [3.0, 0.0], atol=0.02)
    np.testing.assert_allclose(np.diag(sigma), [4.0, 1.0], rtol=0.02)


def test_frechet_distance_refuses_statistics_of_different_sizes() -> None:
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_frechet_distance_survives_fewer_samples_than_dimensions() -> None:
    rng = np.random.default_rng(3)
    value = frechet_distance_of(rng.standard_normal((5, 20)), rng.standard_normal((5, 20)) + 1)
    assert math.isfinite(value) and value > 0


def _mmd2_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_polynomial_mmd_matches_a_direct_double_sum() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((9, 3)) + 0.5
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_loops(x, y), rel=1e-12)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(5)
    # Many small independent replicates: the unbiased estimator averages to zero within
    # its standard error, whereas keeping the diagonal would bias it upwards by ~ 2/n.
    replicates = np.array(
        [
            polynomial_mmd2_unbiased(rng.standard_normal((20, 4)), rng.standard_normal((20, 4)))
            for _ in range(2000)
        ]
    )
    standard_error = replicates.std() / math.sqrt(len(replicates))
    assert abs(replicates.mean()) < 3 * standard_error
    same = kernel_inception_distance(
        rng.standard_normal((3000, 8)), rng.standard_normal((3000, 8)), subsets=20
    )
    shifted = kernel_inception_distance(
        rng.standard_normal((3000, 8)), rng.standard_normal((3000, 8)) + 0.5, subsets=20
    )
    assert abs(same.mean) < 0.01 and same.std > 0
    assert shifted.mean > 0.1 > 10 * abs(same.mean)


def test_kid_uses_smaller_subsets_when_sets_are_small() -> None:
    rng = np.random.default_rng(6)
    estimate = kernel_inception_distance(rng.standard_normal((50, 3)), rng.standard_normal((80, 3)))
    assert math.isfinite(estimate.mean) and math.isfinite(estimate.std)


def test_inception_score_closed_forms() -> None:
    uniform = np.full((100, 10), 0.1)
    assert inception_score(uniform).mean == pytest.approx(1.0)
    one_hot = np.eye(10)[np.arange(1000) % 10]  # confident and evenly spread: IS = classes
    score = inception_score(one_hot)
    assert score.mean == pytest.approx(10.0) and score.std == pytest.approx(0.0)


def test_inception_score_matches_scipy_entropy() -> None:
    p = np.random.default_rng(7).dirichlet(np.ones(5) * 0.3, size=400)
    marginal = p.mean(axis=0)
    expected = math.exp(np.mean([stats.entropy(row, marginal) for row in p]))
    assert inception_score(p, splits=1).mean == pytest.approx(expected, rel=1e-10)


def test_inception_score_splits_as_the_reference_does() -> None:
    """Salimans et al.'s code (openai/improved-gan, inception_score/model.py) cuts the n
    rows at i * n // splits; np.array_split puts the longer parts first instead, which
    gives another score when n is not a multiple of splits (103 rows: 11 + 10 + ...)."""
    p = np.random.default_rng(0).dirichlet(np.ones(7) * 0.3, size=103)
    n, splits, scores = len(p), 10, []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        scores.append(math.exp(np.mean([stats.entropy(row, marginal) for row in part])))
    estimate = inception_score(p, splits=splits)
    assert estimate.mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert estimate.std == pytest.approx(np.std(scores), rel=1e-10)


def test_inception_score_refuses_non_finite_probabilities() -> None:
    # One diverged sample (NaN probabilities) would make the score NaN, silently.
    p = np.random.default_rng(7).dirichlet(np.ones(5), size=100)
    p[5] = np.nan
    with pytest.raises(ValueError, match="probabilities holds NaN or infinite values"):
        inception_score(p)


def test_precision_recall_of_identical_sets_is_one() -> None:
    x = np.random.default_rng(8).standard_normal((300, 5))
    assert precision_recall(x, x) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero() -> None:
    rng = np.random.default_rng(9)
    assert precision_recall(rng.standard_normal((200, 2)), rng.standard_normal((200, 2)) + 50) == (
        0.0,
        0.0,
    )


def test_precision_recall_matches_a_nearest_neighbours_computation() -> None:
    rng = np.random.default_rng(10)
    real = rng.standard_normal((400, 3))
    fake = 0.5 * rng.standard_normal((300, 3)) + [0.5, 0.0, 0.0]  # narrower: recall drops

    def coverage(points: np.ndarray, manifold: np.ndarray) -> float:
        # k + 1 neighbours: the first is the point itself.
        radii = NearestNeighbors(n_neighbors=4).fit(manifold).kneighbors(manifold)[0][:, 3]
        return float((cdist(points, manifold) <= radii).any(axis=1).mean())

    precision, recall = precision_recall(real, fake, k=3)
    assert precision == pytest.approx(coverage(fake, real))
    assert recall == pytest.approx(coverage(real, fake))
    assert precision > recall


def test_energy_distance_in_one_dimension_is_scipys() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal(300), rng.standard_normal(250) * 2 + 1
    assert energy_distance(x[:, None], y[:, None]) == pytest.approx(
        stats.energy_distance(x, y), rel=1e-10
    )


def test_energy_distance_is_zero_for_identical_sets_and_grows_with_a_shift() -> None:
    x = np.random.default_rng(12).standard_normal((500, 2))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-7)
    assert energy_distance(x, x + 1.0) > energy_distance(x, x + 0.1) > 0


def test_mode_coverage_of_the_exact_centres_is_every_mode_at_full_quality() -> None:
    angles = 2 * np.pi * np.arange(8) / 8
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    coverage = mode_coverage(np.repeat(centres, 3, axis=0), centres, std=0.01)
    assert (coverage.modes_captured, coverage.modes) == (8, 8)
    assert coverage.high_quality_fraction == 1.0
    assert coverage.per_mode.tolist() == [3] * 8


def test_mode_coverage_counts_collapsed_and_stray_samples() -> None:
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = np.array([[0.0, 0.02], [0.01, 0.0], [0.5, 0.5], [1.0, 0.04]])
    coverage = mode_coverage(samples, centres, std=0.01)  # 3 sigma = 0.03
    assert coverage.modes_captured == 1  # [1.0, 0.04] is 0.04 from its mode: not captured
    assert coverage.high_quality_fraction == pytest.approx(0.5)


def test_the_spec_and_the_runtime_know_the_same_sample_metrics() -> None:
    from gencompile.runtime.metrics.samples import SAMPLE_METRICS as COMPUTED
    from gencompile.spec.evaluation import SAMPLE_METRICS as ACCEPTED

    assert COMPUTED == ACCEPTED
