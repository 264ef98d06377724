"""Sample-quality statistics as their reference papers define them (NumPy and SciPy only).

Every function compares real data (or its features) with generated samples:

- `frechet_distance`: ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) between the
  Gaussians fitted to two feature sets (Heusel et al. 2017), in float64 with SciPy's matrix
  square root and the reference implementation's checks on its imaginary part.
- `kernel_inception_distance`: the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets (Binkowski et al. 2018).
- `inception_score`: exp(E_x KL(p(y|x) || p(y))) over splits (Salimans et al. 2016).
- `precision_recall`: improved precision and recall with k-nearest-neighbour balls
  (Kynkaanniemi et al. 2019).
- `energy_distance`: sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) (Szekely and Rizzo), SciPy's
  definition extended to several dimensions.
- `mode_coverage`: modes captured and the share of high-quality samples within three
  standard deviations of the nearest mode (VEEGAN, PacGAN).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist

ROWS_PER_BLOCK = 2048  # pairwise distances are computed this many rows at a time


# What the messages call the two sides: their argument names mean nothing to a user.
REAL, FAKE = "the real examples", "the samples"


def _as_float64(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name}: need at least 2 rows of features, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


# --------------------------------------------------------------------------- Frechet


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a feature set, as FID's reference code fits them."""
    features = _as_float64(features, "features")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different dimensions: {mu1.shape} and {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Features that are constant (a ReLU unit never active) make the product singular;
        # SciPy warns, and the checks below decide whether the root is usable.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            # Offset both diagonals, as the reference implementation does.
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(covmean.imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"the matrix square root has a large imaginary component ({largest:.3g}): "
                "the covariances are too ill-conditioned; use more samples"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_of(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


# --------------------------------------------------------------------------- KID


@dataclass(frozen=True)
class Estimate:
    mean: float
    std: float


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3: diagonal terms left out."""
    d = x.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        base = a @ b.T / d + 1.0
        return base * base * base  # much faster than a float power

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> Estimate:
    """KID: mean and standard deviation of the unbiased MMD^2 over random subsets.

    Each subset draws `subset_size` rows of each set without replacement (fewer when a set
    is smaller), as the reference implementation does.
    """
    real, fake = _as_float64(real, REAL), _as_float64(fake, FAKE)
    size = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2_unbiased(
                real[rng.choice(len(real), size, replace=False)],
                fake[rng.choice(len(fake), size, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    return Estimate(float(values.mean()), float(values.std()))


# --------------------------------------------------------------------------- Inception Score


def inception_score(probabilities: np.ndarray, splits: int = 10) -> Estimate:
    """exp(mean KL(p(y|x) || p(y))) in each of `splits` parts; mean and std over parts.
    The parts end at i * n // splits, as in Salimans et al.'s code (openai/improved-gan)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"need at least {splits} rows of class probabilities, got {p.shape}")
    p = _as_float64(p, "probabilities")  # NaN rows (diverged samples) would give NaN
    scores = []
    n = len(p)
    for part in (p[i * n // splits : (i + 1) * n // splits] for i in range(splits)):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: classes a sample gives no probability contribute nothing.
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(math.exp(terms.sum(axis=1).mean()))
    return Estimate(float(np.mean(scores)), float(np.std(scores)))


# --------------------------------------------------------------------------- precision/recall


def _row_blocks(n: int) -> Iterator[slice]:
    for start in range(0, n, ROWS_PER_BLOCK):
        yield slice(start, min(start + ROWS_PER_BLOCK, n))


def kth_neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"need more than k = {k} rows, got {len(x)}")
    radii = np.empty(len(x))
    for rows in _row_blocks(len(x)):
        distances = cdist(x[rows], x)
        # Column 0 after partitioning is the row itself (distance 0); the k-th other is k.
        radii[rows] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _inside_any_ball(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(points), dtype=bool)
    for rows in _row_blocks(len(points)):
        inside[rows] = (cdist(points[rows], centres) <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision (fakes inside the real manifold) and recall (reals inside the fake
    manifold); each manifold is the union of balls reaching every point's k-th neighbour."""
    real, fake = _as_float64(real, REAL), _as_float64(fake, FAKE)
    precision = _inside_any_ball(fake, real, kth_neighbour_distances(real, k)).mean()
    recall = _inside_any_ball(real, fake, kth_neighbour_distances(fake, k)).mean()
    return float(precision), float(recall)


# --------------------------------------------------------------------------- energy distance


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    total = sum(cdist(a[rows], b).sum() for rows in _row_blocks(len(a)))
    return float(total / (len(a) * len(b)))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) with Euclidean norms over all pairs (V-statistics):
    equal to `scipy.stats.energy_distance` for one-dimensional samples."""
    x, y = _as_float64(x, REAL), _as_float64(y, FAKE)
    squared = 2.0 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)
    return math.sqrt(max(squared, 0.0))


# --------------------------------------------------------------------------- mode coverage


@dataclass(frozen=True)
class ModeCoverage:
    modes_captured: int
    modes: int
    high_quality_fraction: float
    per_mode: np.ndarray  # high-quality samples nearest each mode


def mode_coverage(
    samples: np.ndarray, centres: np.ndarray, std: float, threshold: float = 3.0
) -> ModeCoverage:
    """A sample is high quality within `threshold` standard deviations of its nearest mode;
    a mode is captured when at least one high-quality sample is nearest to it."""
    samples = _as_float64(samples, FAKE)
    distances = cdist(samples, np.asarray(centres, dtype=np.float64))
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= threshold * std
    per_mode = np.bincount(nearest[good], minlength=len(centres))
    return ModeCoverage(
        modes_captured=int((per_mode > 0).sum()),
        modes=len(centres),
        high_quality_fraction=float(good.mean()),
        per_mode=per_mode,
    )
