"""A Gaussian mixture fitted by EM, written by hand in TensorFlow (the Keras user's version).

The same model, data and budget as `specs/gmm_blobs.yaml`: 10,000 blobs in 16 dimensions
(8 centres, std 1.5, seed 3), a seeded 10 % held out, standardized with the training
split's statistics; 8 full-covariance components, k-means initialisation (scikit-learn's
KMeans, one run), at most 100 EM iterations, tolerance 1e-4 on the mean log-likelihood,
reg_covar 1e-6. Each E and M step is one compiled TensorFlow function over the whole
training split. Scores the held-out NLL in nats per example and BIC/AIC on the training
split, in the data's original units; keeps the fitted parameters and a scatter plot of
1000 samples (first two features); prints one JSON line.

    python benchmarks/handwritten/gmm_em_tf.py [--epochs 100] [--output DIR]

`--epochs` is the EM iteration cap, as `gencompile train --epochs` sets it for a mixture.
`gmm_em.py` is the same model with scikit-learn's GaussianMixture.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

SEED = 3
COMPONENTS = 8
TOL = 1e-4
REG_COVAR = 1e-6
NUM_SAMPLES = 1000
LOG_2PI = math.log(2.0 * math.pi)


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
    return (x_train - mean) / std, (x_val - mean) / std, mean, std


@tf.function
def log_joint(x, log_weights, means, precision_cholesky):
    """log w_k + log N(x | mu_k, Sigma_k) for every example and component: (n, k)."""
    y = tf.einsum("nd,kde->nke", x, precision_cholesky)
    y -= tf.einsum("kd,kde->ke", means, precision_cholesky)[None]
    log_det = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(precision_cholesky)), -1)
    dims = tf.cast(tf.shape(x)[1], x.dtype)
    return log_weights - 0.5 * (dims * LOG_2PI + tf.reduce_sum(y**2, -1)) + log_det


@tf.function
def e_step(x, log_weights, means, precision_cholesky):
    """Mean log-likelihood of x and the responsibilities (n, k)."""
    joint = log_joint(x, log_weights, means, precision_cholesky)
    log_norm = tf.reduce_logsumexp(joint, axis=1, keepdims=True)
    return tf.reduce_mean(log_norm), tf.exp(joint - log_norm)


@tf.function
def m_step(x, responsibilities):
    """Weights, means and precision Cholesky factors from the responsibilities."""
    counts = tf.reduce_sum(responsibilities, 0) + 10 * np.finfo(np.float64).eps
    means = tf.einsum("nk,nd->kd", responsibilities, x) / counts[:, None]
    diff = x[None] - means[:, None]  # (k, n, d)
    weighted = tf.transpose(responsibilities)[..., None] * diff
    covariances = tf.einsum("knd,kne->kde", weighted, diff) / counts[:, None, None]
    covariances += REG_COVAR * tf.eye(tf.shape(x)[1], dtype=x.dtype)
    cholesky = tf.linalg.cholesky(covariances)
    identity = tf.broadcast_to(tf.eye(tf.shape(x)[1], dtype=x.dtype), tf.shape(covariances))
    precision_cholesky = tf.linalg.matrix_transpose(
        tf.linalg.triangular_solve(cholesky, identity, lower=True)
    )
    log_weights = tf.math.log(counts / tf.reduce_sum(counts))
    return log_weights, means, precision_cholesky


def fit(x: tf.Tensor, max_iter: int) -> tuple[tuple[tf.Tensor, ...], int]:
    """EM from a k-means start; stops when the mean log-likelihood moves less than TOL."""
    labels = KMeans(COMPONENTS, n_init=1, random_state=SEED).fit(x.numpy()).labels_
    params = m_step(x, tf.one_hot(labels, COMPONENTS, dtype=x.dtype))
    previous = -np.inf
    for iteration in range(1, max_iter + 1):
        mean_log_likelihood, responsibilities = e_step(x, *params)
        params = m_step(x, responsibilities)
        if abs(float(mean_log_likelihood) - previous) < TOL:
            return params, iteration
        previous = float(mean_log_likelihood)
    return params, max_iter


def sample(params: tuple[tf.Tensor, ...], count: int) -> np.ndarray:
    log_weights, means, precision_cholesky = (p.numpy() for p in params)
    rng = np.random.default_rng(SEED)
    components = rng.choice(COMPONENTS, size=count, p=np.exp(log_weights))
    covariance_cholesky = np.linalg.inv(precision_cholesky).transpose(0, 2, 1)
    noise = rng.standard_normal((count, means.shape[1]))
    return means[components] + np.einsum("nde,ne->nd", covariance_cholesky[components], noise)


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
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/gmm_em_tf"))
    args = parser.parse_args()
    start = time.perf_counter()
    x_train, x_val, mean, std = load_split()
    x_train, x_val = tf.constant(x_train), tf.constant(x_val)
    params, iterations = fit(x_train, args.epochs)
    trained = time.perf_counter()
    shift = float(np.log(std).sum())  # log|dx/dy| of undoing the standardization
    train_ll = float(e_step(x_train, *params)[0])
    total = len(x_train) * (train_ll - shift)
    dims = x_train.shape[1]
    n_params = COMPONENTS - 1 + COMPONENTS * dims + COMPONENTS * dims * (dims + 1) // 2
    metrics = {
        "nll": -float(e_step(x_val, *params)[0]) + shift,
        "bic": -2.0 * total + n_params * math.log(len(x_train)),
        "aic": -2.0 * total + 2.0 * n_params,
        "iterations": iterations,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    names = ("log_weights", "means", "precision_cholesky")
    np.savez(args.output / "gmm.npz", **{n: p.numpy() for n, p in zip(names, params, strict=True)})
    save_samples(sample(params, NUM_SAMPLES) * std + mean, args.output / "samples.png")
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "mixture", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
