"""A Gaussian mixture fitted by EM, written by hand with scikit-learn (what one would use).

The same model, data and budget as `specs/gmm_blobs.yaml`: 10,000 blobs in 16 dimensions
(8 centres, std 1.5, seed 3), a seeded 10 % held out, standardized with the training
split's statistics; 8 full-covariance components, k-means initialisation, at most 100 EM
iterations, tolerance 1e-4, reg_covar 1e-6. Scores the held-out NLL in nats per example
and BIC/AIC on the training split, both in the data's original units; keeps the fitted
parameters and a scatter plot of 1000 samples (first two features); prints one JSON line.

    python benchmarks/handwritten/gmm_em.py [--epochs 100] [--output DIR]

`--epochs` is the EM iteration cap (the spec's algorithm.max_iter), as `gencompile train
--epochs` sets it for a mixture.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

SEED = 3
COMPONENTS = 8
NUM_SAMPLES = 1000


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, held-out) standardized, and the training mean and std to undo it."""
    x, _ = make_blobs(
        n_samples=10_000, n_features=16, centers=8, cluster_std=1.5, random_state=SEED
    )
    x = x.astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_val = math.floor(len(x) * 0.1 + 0.5)
    x_train, x_val = x[order[n_val:]], x[order[:n_val]]
    mean, std = x_train.astype(np.float64).mean(0), x_train.astype(np.float64).std(0)
    scale = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return scale(x_train), scale(x_val), mean, std


def save_samples(samples: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(samples[:, 0], samples[:, 1], s=2)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="EM iterations at most")
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/gmm_em"))
    args = parser.parse_args()
    start = time.perf_counter()
    x_train, x_val, mean, std = load_split()
    gmm = GaussianMixture(
        COMPONENTS,
        covariance_type="full",
        tol=1e-4,
        reg_covar=1e-6,
        max_iter=args.epochs,
        init_params="kmeans",
        random_state=SEED,
    )
    gmm.fit(x_train)
    trained = time.perf_counter()
    shift = float(np.log(std).sum())  # log|dx/dy| of undoing the standardization
    total = float(gmm.score_samples(x_train).sum()) - len(x_train) * shift
    params = gmm._n_parameters()
    metrics = {
        "nll": float(-gmm.score_samples(x_val).mean()) + shift,
        "bic": -2.0 * total + params * math.log(len(x_train)),
        "aic": -2.0 * total + 2.0 * params,
        "iterations": int(gmm.n_iter_),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.output / "gmm.npz",
        weights=gmm.weights_,
        means=gmm.means_,
        covariances=gmm.covariances_,
    )
    samples, _ = gmm.sample(NUM_SAMPLES)
    save_samples(samples * std + mean, args.output / "samples.png")
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "mixture", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
