"""The Mutual Information Gap (MIG, Chen et al. 2018): how far each known generative
factor is captured by one latent alone.

For each factor v_k: the mutual information I(z_j; v_k) of every latent z_j (the encoder's
mean, discretised into equal-width bins) with the factor, the gap between the two largest,
divided by the factor's entropy H(v_k); MIG is the mean over the factors. It lies in
[0, 1]: 1 when every factor is encoded by one latent that tells it exactly and no other
latent tells anything about it. Mutual information is scikit-learn's `mutual_info_score`
(nats), as in disentanglement_lib.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import mutual_info_score

from gencompile.errors import RunError
from gencompile.runtime.metrics.results import Metrics, held_out

BINS = 20  # equal-width bins per latent, as disentanglement_lib's default


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of `codes` (N, L) as the index of its equal-width bin over its range."""
    binned = np.empty(codes.shape, np.int64)
    for j in range(codes.shape[1]):  # one pass per latent, not per example
        edges = np.histogram_bin_edges(codes[:, j], bins=bins)
        binned[:, j] = np.digitize(codes[:, j], edges[1:-1])
    return binned


def mutual_information(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(L, K) mutual information, in nats, between every binned latent and every factor."""
    return np.array(
        [
            [mutual_info_score(factors[:, k], binned[:, j]) for k in range(factors.shape[1])]
            for j in range(binned.shape[1])
        ]
    )


def mutual_information_gap(
    codes: np.ndarray, factors: np.ndarray, names: tuple[str, ...], bins: int = BINS
) -> tuple[float, dict[str, float]]:
    """(MIG, each factor's normalised gap) of latent `codes` (N, L) against integer
    `factors` (N, K) named `names`."""
    if codes.shape[1] < 2:
        raise RunError(
            f"mig compares the two latents most informative of each factor, but z has "
            f"{codes.shape[1]} dimension; use model.latent_dim >= 2"
        )
    bad = ~np.isfinite(codes).all(axis=1)
    if bad.any():  # NumPy's binning would stop with "autodetected range of [nan, nan]"
        raise RunError(
            f"mig: the encoder's means of {int(bad.sum())} of {len(codes)} held-out examples "
            "are NaN or infinite: the model diverged; look at the run's history.csv and train "
            "again with a lower learning_rate or clipnorm"
        )
    entropies = np.array([mutual_info_score(f, f) for f in factors.T])  # H(v_k) = I(v_k; v_k)
    constant = [name for name, h in zip(names, entropies, strict=True) if h <= 0]
    if constant:
        raise RunError(
            f"mig divides by each factor's entropy, but factor(s) {', '.join(constant)} take "
            "a single value on the held-out split; keep every value of them in the data "
            "(remove data.source.classes) or drop mig from evaluation.metrics"
        )
    information = mutual_information(discretize(codes, bins), factors)
    top_two = np.sort(information, axis=0)[::-1][:2]  # (2, K): the largest and the second
    gaps = (top_two[0] - top_two[1]) / entropies
    return float(gaps.mean()), dict(zip(names, (float(g) for g in gaps), strict=True))


def check_factors(data: Any) -> None:
    """Refuse mig of data without known factors or without a held-out split."""
    if data.factors_val is None:
        source = data.source
        what = source.get("name", source.get("type", "this data"))
        raise RunError(
            f"mig needs the generative factors of the held-out examples, and {what!r} has "
            "none; train on data.source: {type: builtin, name: shapes2d} (its factors: "
            "shape, scale, x, y), or drop mig from evaluation.metrics"
        )
    if len(data.x_val) == 0:
        raise RunError("mig is computed on the held-out split: set data.validation_split > 0")


def mig_metric(model: Any, data: Any) -> Metrics:
    """MIG of the encoder's means of the held-out examples against their known factors;
    a data set without known factors is refused, with advice."""
    from gencompile.runtime.latent import VaeSpace  # imports TensorFlow

    check_factors(data)
    codes = VaeSpace(model, data.element_shape).encode(data.x_val, data.y_val)
    value, per_factor = mutual_information_gap(codes, data.factors_val, data.factor_names)
    metrics = Metrics()
    # gap_per_factor: a result, which `compare` ignores (report.RESULT_KEYS)
    how = held_out(data.x_val, latent="z_mean", bins=BINS, gap_per_factor=per_factor)
    metrics.add("mig", value, how)
    return metrics
