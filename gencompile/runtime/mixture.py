"""Gaussian mixtures for generated projects: log-densities, EM statistics, metrics.

The parameters are those of scikit-learn's `GaussianMixture`, with the covariances held as
the Cholesky factors of their inverses (`precisions_cholesky`, P with P P^T = Sigma^-1):
their log-determinant is a sum of logs, and a sample is one triangular solve. Their shapes
follow the covariance type:

    full       (k, d, d)   one covariance per component
    tied       (d, d)      one covariance shared by every component
    diag       (k, d)      a diagonal covariance per component
    spherical  (k,)        one variance per component

Parameters, log-densities and the statistics EM accumulates over an epoch are float64. EM
subtracts squared means from summed second moments; in float32 that cancellation and the
log-determinants of nearly singular covariances drift by more than the 1e-3 relative
agreement with scikit-learn (which computes in float64) that the tests hold us to.

A mixture fitted by gradient descent keeps free parameters instead (`precision_factor`,
`add_to_covariance`): logits, means, and log-Cholesky factors of the precisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.progress import progress_bar
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.results import (
    Metrics,
    density_bits_per_dim,
    density_caveat,
    held_out,
)
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.splits import batches, head, mean_of

DTYPE = tf.float64
# scikit-learn adds 10 machine epsilons to each component's weight, so that an empty
# component divides by a tiny number rather than by zero; we do the same to match it.
EMPTY_COMPONENT_GUARD = 10 * np.finfo(np.float64).eps
EVAL_BATCH = 4096  # rows of a split read and scored at a time
INIT_EXAMPLES = 100_000  # training examples the initialisation (k-means, random) reads
# XLA fuses an E-step into one pass over the batch, ~10x faster on a CPU, but compiles for
# 1-2 s per batch shape (the last, smaller batch is a second one): it pays back from about
# this many batches per EM iteration. Below, the E-step runs inside train_step's graph.
XLA_MIN_BATCHES = 64


def e_step_with_xla(batches_per_epoch: int) -> bool:
    """Whether a mixture compiles its E-step with XLA, for epochs of this many batches."""
    return batches_per_epoch >= XLA_MIN_BATCHES


def precision_shape(covariance: str, components: int, features: int) -> tuple[int, ...]:
    return {
        "full": (components, features, features),
        "tied": (features, features),
        "diag": (components, features),
        "spherical": (components,),
    }[covariance]


def second_moment_shape(covariance: str, components: int, features: int) -> tuple[int, ...]:
    """Shape of the accumulated sum of x x^T (or x^2) the M-step needs."""
    return {
        "full": (components, features, features),
        "tied": (features, features),  # unweighted: sum over all examples of x x^T
        "diag": (components, features),
        "spherical": (components, features),
    }[covariance]


# --------------------------------------------------------------------------- densities
#
# A Gaussian is an exponential family: log w_k + log N(x | mu_k, Sigma_k) = phi(x) . h_k,
# where phi(x) = [1, x, second-order terms] are the sufficient statistics of one example
# and h_k the component's natural parameters (with log w_k and the normalising constant
# as the coefficient of the 1). So the log-joint of a batch and every component is one
# matrix product, phi(X) H, and the statistics the M-step needs are another, r^T phi(X).
# With full covariances each costs k d(d+1)/2 multiply-adds per example, half as many as
# computing (x - mu_k) P_k for every k, and both are large products that run at the
# processor's speed. The price is the expansion x^T A x - 2 mu^T A x + mu^T A mu: in
# float64 it loses digits as (offset / spread)^2, about 1e-7 nats when the data's offset is
# 1e4 times a component's spread; standardized data are far from that.


def quadratic_pairs(features: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i <= j, row by row: the order of the products x_i x_j in the features."""
    return np.triu_indices(features)


def gaussian_features(x, covariance: str):
    """phi(x) for each example: [1, x, x_i x_j for i <= j] (full, tied) or [1, x, x^2]."""
    if covariance in ("full", "tied"):
        d = x.shape[-1]
        # Row i of the upper triangle of x x^T, for each i: d(d+1)/2 products in all.
        second_order = [x[:, i : i + 1] * x[:, i:] for i in range(d)]
    else:
        second_order = [tf.square(x)]
    return tf.concat([tf.ones_like(x[:, :1]), x, *second_order], axis=1)


def natural_parameters(log_weights, means, precisions_cholesky, covariance: str):
    """H with phi(x) H = log w_k + log N(x | mu_k, Sigma_k): shape (len(phi), k).

    With A_k = P_k P_k^T the precision matrix, log N = log det P_k - (d/2) log(2 pi)
    - (1/2) (x^T A_k x - 2 mu_k^T A_k x + mu_k^T A_k mu_k): the constant, linear (A_k mu_k)
    and quadratic (-A_k / 2, off-diagonal pairs counted twice) coefficients of phi(x).
    """
    k, d = means.shape
    p = tf.convert_to_tensor(precisions_cholesky, DTYPE)
    if covariance in ("full", "tied"):
        precision = tf.broadcast_to(tf.matmul(p, p, transpose_b=True), (k, d, d))
        linear = tf.reduce_sum(precision * means[:, None, :], axis=2)
        i, j = quadratic_pairs(d)
        pairs = tf.gather(tf.reshape(precision, (k, d * d)), i * d + j, axis=1)
        quadratic = pairs * np.where(i == j, -0.5, -1.0)
        log_det = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(p)), axis=-1)
    else:  # diag, spherical: P holds the square roots of the precisions' diagonals
        roots = tf.broadcast_to(p[:, None] if covariance == "spherical" else p, (k, d))
        linear = tf.square(roots) * means
        quadratic = -0.5 * tf.square(roots)
        log_det = tf.reduce_sum(tf.math.log(roots), axis=1)
    mahalanobis_of_mean = tf.reduce_sum(linear * means, axis=1)  # mu_k^T A_k mu_k
    constant = (
        log_weights
        + tf.broadcast_to(log_det, (k,))
        - 0.5 * (d * math.log(2.0 * math.pi) + mahalanobis_of_mean)
    )
    return tf.transpose(tf.concat([constant[:, None], linear, quadratic], axis=1))


# --------------------------------------------------------------------------- EM


def statistics_from_features(features, responsibilities, covariance: str, dims: int):
    """A batch's sufficient statistics, all from one matrix product r^T phi(X).

    They are sum_n r_nk, sum_n r_nk x_n and the second moments: sum_n r_nk x_n x_n^T (full),
    the unweighted sum_n x_n x_n^T (tied), or sum_n r_nk x_n^2 (diag, spherical).
    """
    moments = tf.matmul(responsibilities, features, transpose_a=True)  # (k, len(phi))
    counts, sums, second = moments[:, 0], moments[:, 1 : dims + 1], moments[:, dims + 1 :]
    if covariance in ("full", "tied"):
        # Unfold the upper triangle into symmetric d x d matrices.
        i, j = quadratic_pairs(dims)
        position = np.zeros((dims, dims), np.int64)
        position[i, j] = position[j, i] = np.arange(len(i))
        if covariance == "tied":  # sum_k r_nk = 1 (to rounding): the plain sum of x_n x_n^T
            second = tf.reduce_sum(second, axis=0)
        second = tf.gather(second, position, axis=-1)
    return counts, sums, second


def estimate_parameters(counts, sums, second, covariance: str, reg_covar: float):
    """The M-step: weights, means and precision Cholesky factors from the statistics."""
    counts = counts + EMPTY_COMPONENT_GUARD
    weights = counts / tf.reduce_sum(counts)
    means = sums / counts[:, None]
    if covariance == "full":
        outer = means[:, :, None] * means[:, None, :]
        covariances = second / counts[:, None, None] - outer
        covariances += reg_covar * tf.eye(tf.shape(means)[1], dtype=DTYPE)[None]
    elif covariance == "tied":
        outer = tf.matmul(means * counts[:, None], means, transpose_a=True)
        covariances = (second - outer) / tf.reduce_sum(counts)
        covariances += reg_covar * tf.eye(tf.shape(means)[1], dtype=DTYPE)
    else:
        covariances = second / counts[:, None] - tf.square(means) + reg_covar
        if covariance == "spherical":
            covariances = tf.reduce_mean(covariances, axis=1)
    return weights, means, precisions_cholesky(covariances, covariance)


def precisions_cholesky(covariances, covariance: str):
    """P with P P^T = Sigma^-1 (upper triangular for full and tied, as scikit-learn's)."""
    covariances = tf.convert_to_tensor(covariances, DTYPE)
    if covariance in ("full", "tied"):
        lower = tf.linalg.cholesky(covariances)
        identity = tf.broadcast_to(tf.eye(tf.shape(lower)[-1], dtype=DTYPE), tf.shape(lower))
        return tf.linalg.matrix_transpose(tf.linalg.triangular_solve(lower, identity, lower=True))
    return tf.math.rsqrt(covariances)


def statistics_from_responsibilities(x: np.ndarray, resp: np.ndarray, covariance: str, batch=4096):
    """Statistics of a whole array given its responsibilities (for the initialisation)."""
    totals = None
    for start in range(0, len(x), batch):
        features = gaussian_features(tf.constant(x[start : start + batch], DTYPE), covariance)
        rb = tf.constant(resp[start : start + batch], DTYPE)
        parts = statistics_from_features(features, rb, covariance, x.shape[1])
        totals = parts if totals is None else [t + p for t, p in zip(totals, parts, strict=True)]
    return totals


def initial_statistics(
    x_train: Any, components: int, init: str, seed: int, covariance: str, features: int
) -> list[Any]:
    """The statistics of the first M-step: responsibilities (`initial_responsibilities`) of
    the training split's first INIT_EXAMPLES examples, all of them when it holds fewer. Its
    first rows are a seeded random subset (the split is a seeded permutation); reading no
    more keeps the memory of k-means flat in the data's size, loaded or streamed alike."""
    x = np.reshape(head(x_train, INIT_EXAMPLES), (-1, features)).astype("float64")
    responsibilities = initial_responsibilities(x, components, init, seed)
    return statistics_from_responsibilities(x, responsibilities, covariance)


def check_components(x: np.ndarray, components: int) -> None:
    """An example for each component, as k-means and scikit-learn need; `x` holds the whole
    training split whenever it has fewer examples than INIT_EXAMPLES (over 4096, the most
    components a spec allows)."""
    if len(x) < components:
        raise RunError(
            f"model.components={components} needs at least {components} training examples, "
            f"but the training split holds {len(x)}; lower model.components or use more data"
        )


def initial_responsibilities(x: np.ndarray, components: int, init: str, seed: int) -> np.ndarray:
    """One-hot k-means labels, or random responsibilities (scikit-learn's two inits)."""
    check_components(x, components)
    if init == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(components, n_init=1, random_state=seed).fit(x).labels_
        return np.eye(components)[labels]
    if init == "random":
        resp = np.random.default_rng(seed).uniform(size=(len(x), components))
        return resp / resp.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown initialisation {init!r}; expected kmeans or random")


def starts_statistics(
    x_train: Any, components: int, init: str, seed: int, covariance: str, features: int, starts: int
) -> list[list[Any]]:
    """The first M-step's statistics of each of `starts` starts, drawn as scikit-learn's
    `n_init` draws them: in turn, from one `np.random.RandomState(seed)` (k-means seeded
    by it, or its uniform responsibilities). Start 0 of a k-means init is the single start
    `initial_statistics` makes; a random init's starts use scikit-learn's generator."""
    x = np.reshape(head(x_train, INIT_EXAMPLES), (-1, features)).astype("float64")
    random_state = np.random.RandomState(seed)
    made = []
    check_components(x, components)
    for _ in range(starts):
        if init == "kmeans":
            from sklearn.cluster import KMeans

            labels = KMeans(components, n_init=1, random_state=random_state).fit(x).labels_
            responsibilities = np.eye(components)[labels]
        elif init == "random":
            responsibilities = random_state.uniform(size=(len(x), components))
            responsibilities /= responsibilities.sum(axis=1, keepdims=True)
        else:
            raise ValueError(f"unknown initialisation {init!r}; expected kmeans or random")
        made.append(statistics_from_responsibilities(x, responsibilities, covariance))
    return made


def converge(model: keras.Model, x_train: Any, e_step: Any, max_iter: int, tol: float) -> float:
    """EM on the whole training split from the model's current parameters, as training
    would run it (one pass per iteration, stopping on `tol`); the last iteration's mean
    log-likelihood, scikit-learn's final `lower_bound` of a start.

    `e_step` is the generated module's, compiled once here and fed the split's batches as
    the metrics read them: starting a tf.data iterator for every pass cost 50-500 ms on a
    loaded 2-core machine, against about 1 ms for the E-step of a small batch.
    """
    step = tf.function(e_step)
    features = model.means.shape[-1]
    previous = -np.inf
    for _ in range(max_iter):
        natural_parameters = model.natural_parameters()
        for xb in batches(x_train, EVAL_BATCH):
            x = tf.constant(np.reshape(xb, (-1, features)), DTYPE)
            log_px, statistics = step(x, natural_parameters)
            for total, part in zip(model.statistics, statistics, strict=True):
                total.assign_add(part)
            model.log_likelihood_total.assign_add(tf.reduce_sum(log_px))
        current = model.epoch_log_likelihood()
        model.m_step()
        if abs(current - previous) < tol:
            break
        previous = current
    return current


# --------------------------------------------------------------------------- gradient


def precision_factor(free, covariance: str):
    """The precision Cholesky factor P of a mixture's free parameters (log-Cholesky).

    Full and tied: the upper triangle of `free`, its diagonal exponentiated, so that any
    real values give an upper-triangular P with a positive diagonal and P P^T is positive
    definite (what lies below the diagonal is ignored). Diag and spherical: exp(free).
    """
    free = tf.convert_to_tensor(free, DTYPE)
    if covariance in ("full", "tied"):
        upper = tf.linalg.band_part(free, 0, -1)
        return tf.linalg.set_diag(upper, tf.exp(tf.linalg.diag_part(free)))
    return tf.exp(free)


def free_precision(factor, covariance: str):
    """The inverse of `precision_factor`: log on the diagonal, zeros below it."""
    factor = tf.convert_to_tensor(factor, DTYPE)
    if covariance in ("full", "tied"):
        upper = tf.linalg.band_part(factor, 0, -1)
        return tf.linalg.set_diag(upper, tf.math.log(tf.linalg.diag_part(factor)))
    return tf.math.log(factor)


def add_to_covariance(factor, reg_covar: float, covariance: str):
    """Q with Q Q^T = (Sigma + reg_covar I)^-1, given P with P P^T = Sigma^-1.

    What EM's `reg_covar` does to each covariance, done to a precision factor: as
    Sigma + r I = P^-T (I + r P^T P) P^-1, Q = P C^-T where C C^T = I + r P^T P. Q is upper
    triangular with a positive diagonal like P, and the covariance it stands for is never
    smaller than r in any direction, so no component can collapse onto a point. A negative
    r removes what a positive one added (when the result is still positive definite).
    """
    p = tf.convert_to_tensor(factor, DTYPE)
    if covariance in ("full", "tied"):
        identity = tf.eye(tf.shape(p)[-1], dtype=DTYPE)
        c = tf.linalg.cholesky(identity + reg_covar * tf.matmul(p, p, transpose_a=True))
        # Q C^T = P, i.e. C Q^T = P^T: one lower-triangular solve.
        return tf.linalg.matrix_transpose(
            tf.linalg.triangular_solve(c, tf.linalg.matrix_transpose(p), lower=True)
        )
    return p * tf.math.rsqrt(1.0 + reg_covar * tf.square(p))


# --------------------------------------------------------------------------- sampling


def sample_gaussians(means, precisions_cholesky, covariance: str, components, noise):
    """x = mu_c + Sigma_c^(1/2) z for the chosen components c and standard normal z."""
    mu = tf.gather(means, components)
    if covariance == "full":
        p = tf.gather(precisions_cholesky, components)
        # Sigma = (P P^T)^-1, so Sigma^(1/2) z solves P^T y = z (P^T is lower triangular).
        y = tf.linalg.triangular_solve(tf.linalg.matrix_transpose(p), noise[..., None])
        return mu + y[..., 0]
    if covariance == "tied":
        p = tf.linalg.matrix_transpose(precisions_cholesky)
        y = tf.linalg.triangular_solve(tf.broadcast_to(p, (tf.shape(noise)[0], *p.shape)),
                                       noise[..., None])  # fmt: skip
        return mu + y[..., 0]
    p = tf.gather(precisions_cholesky, components)
    if covariance == "spherical":
        p = p[:, None]
    return mu + noise / p


# --------------------------------------------------------------------------- imputation


def dense_covariances(precisions_cholesky, covariance: str, components: int, features: int):
    """The (k, d, d) covariance matrices, whatever the covariance type stores."""
    p = tf.convert_to_tensor(precisions_cholesky, DTYPE)
    if covariance in ("full", "tied"):
        covariances = tf.linalg.inv(tf.matmul(p, p, transpose_b=True))
        return tf.broadcast_to(covariances, (components, features, features))
    variances = 1.0 / tf.square(p)
    if covariance == "spherical":
        variances = tf.broadcast_to(variances[:, None], (components, features))
    return tf.linalg.diag(variances)


def impute(x, weights, means, precisions_cholesky, covariance: str) -> np.ndarray:
    """Fill the NaNs of x (n, d) with E[x_missing | x_observed] under the mixture.

    Closed-form Gaussian conditioning, per component k: the posterior p(k | x_o) uses the
    marginal N(x_o | mu_o, S_oo), and E[x_m | x_o, k] = mu_m + S_mo S_oo^-1 (x_o - mu_o).
    Rows miss different entries, so each row's S_oo is embedded in a d x d matrix with
    ones on the missing diagonal (and zeros off it): one batched Cholesky serves every
    missing pattern. A row with nothing observed gets the mixture's mean.
    """
    x = np.asarray(x, np.float64)
    k, d = means.shape
    covariances = dense_covariances(precisions_cholesky, covariance, k, d)
    rows = max(1, 2**22 // (k * d * d))  # bounds the (rows, k, d, d) intermediates
    filled = []
    with progress_bar("imputing", len(x), "rows") as update:
        for start in range(0, len(x), rows):
            filled.append(_impute_rows(x[start : start + rows], weights, means, covariances))
            update(start + len(filled[-1]))
    return np.concatenate(filled) if filled else x.copy()


def _impute_rows(x: np.ndarray, weights, means, covariances) -> np.ndarray:
    observed = tf.constant(~np.isnan(x), DTYPE)  # (n, d): 1 where x is known
    x0 = tf.constant(np.nan_to_num(x), DTYPE)
    pair = observed[:, :, None] * observed[:, None, :]  # (n, d, d)
    embedded = pair[:, None] * covariances[None] + tf.linalg.diag(1.0 - observed)[:, None]
    cholesky = tf.linalg.cholesky(embedded)  # (n, k, d, d)
    diff = observed[:, None, :] * (x0[:, None, :] - means[None])  # (n, k, d), 0 where missing
    solved = tf.linalg.cholesky_solve(cholesky, diff[..., None])[..., 0]  # S_oo^-1 (x_o - mu_o)
    log_det = 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(cholesky)), axis=-1)
    quadratic = tf.reduce_sum(diff * solved, axis=-1)
    observed_dims = tf.reduce_sum(observed, axis=1, keepdims=True)
    log_joint = tf.math.log(weights)[None] - 0.5 * (
        observed_dims * math.log(2.0 * math.pi) + log_det + quadratic
    )
    posterior = tf.nn.softmax(log_joint, axis=1)  # p(k | x_o)
    # mu + S_(:,o) S_oo^-1 (x_o - mu_o): the conditional mean (and x itself where observed).
    conditional = means[None] + tf.einsum("kij,nkj->nki", covariances, solved)
    mean = tf.reduce_sum(posterior[:, :, None] * conditional, axis=1)
    return np.where(np.isnan(x), mean.numpy(), x)


# --------------------------------------------------------------------------- callbacks


class EMStep(keras.callbacks.Callback):
    """Applies the M-step between epochs, from the statistics the epoch accumulated.

    It runs at the start of the next epoch and at the end of training (not at the end of
    the epoch) so that a checkpoint written at an epoch's end holds the statistics with
    the parameters they were computed under: a resumed run then takes the same step.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.m_step()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.model.m_step()


class Converged(keras.callbacks.Callback):
    """Stops training when the mean log-likelihood changes by less than `tol` (as sklearn).

    Both values come from the model's state, not from this callback's memory: the epoch's
    `log_likelihood_total` (summed by train_step) and the `previous_log_likelihood` the
    M-step recorded from the epoch before. Checkpoints hold that state, so a resumed run
    stops at the same iteration as an uninterrupted one.
    """

    def __init__(self, tol: float):
        super().__init__()
        self.tol = tol
        self.converged_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        previous = keras.ops.convert_to_numpy(self.model.previous_log_likelihood)  # mirrored too
        change = abs(self.model.epoch_log_likelihood() - float(previous))
        if change < self.tol:  # (after the first iteration: previous is then -1.8e308)
            self.converged_epoch = epoch
            self.model.stop_training = True


# --------------------------------------------------------------------------- metrics


def log_likelihood(model: keras.Model, x: Any, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Per-example log p(x) in the model's units (float64)."""
    parts = list(log_likelihood_batches(model, x, batch_size))
    return np.concatenate(parts) if parts else np.zeros((0,))


def log_likelihood_batches(
    model: keras.Model, x: Any, batch_size: int = EVAL_BATCH
) -> Iterator[np.ndarray]:
    """`log_likelihood` batch by batch, reading the split `x` as it goes."""
    for xb in batches(x, batch_size):
        yield np.asarray(model.log_prob(tf.constant(xb)), np.float64)


EFFECTIVE_WEIGHT = 1e-2  # a component counts as used above this posterior mean weight


def fit_record(model: keras.Model) -> dict[str, Any]:
    """What metrics.json records of the fit beside each metric: which of EM's n_init starts
    won, and the components a variational mixture kept (weights above EFFECTIVE_WEIGHT):
    results of the fit, not settings of the metric, so `compare` ignores them
    (report.RESULT_KEYS)."""
    record: dict[str, Any] = {}
    if hasattr(model, "chosen_start"):  # EM's best of n_init starts
        finals = np.asarray(model.start_log_likelihoods, np.float64)
        record["em_start"] = {
            "chosen": int(np.asarray(model.chosen_start)),
            "of": len(finals),
            "final_log_likelihoods": [float(value) for value in finals],
        }
    if hasattr(model, "posterior"):  # variational: the posterior decides what it uses
        weights = np.asarray(model.component_weights, np.float64)
        record["effective_components"] = int(np.sum(weights > EFFECTIVE_WEIGHT))
    return record


def _check_maximum_likelihood(model: keras.Model, criteria: list[str]) -> None:
    """bic and aic penalise a maximum-likelihood fit by its free parameters; a variational
    mixture has no such count (validation refuses them first; this guards an older lock)."""
    if criteria and hasattr(model, "posterior"):
        asked = " and ".join(criteria)
        raise RunError(
            f"{asked}: a variational mixture switches components off through its posterior "
            "weights, so it has no count of free parameters to penalise (scikit-learn's "
            "BayesianGaussianMixture has no bic or aic either); compare its held-out nll "
            "(gencompile evaluate RUN --metrics nll) or the lower_bound in history.csv"
        )


def check_criteria(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse bic/aic of a variational mixture and bits_per_dim of a density at discrete
    levels: structure and data only, so training asks it first."""
    wanted = config["metrics"]
    _check_maximum_likelihood(model, [m for m in wanted if m in ("bic", "aic")])
    if len(data.x_val) and "bits_per_dim" in wanted and density_caveat(data):
        raise density_bits_per_dim("a Gaussian mixture", "it has no discrete form here")


@evaluation(check_criteria)
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The configured metrics, in nats and in the data's original units.

    `nll` and `bits_per_dim` are held out (validation split); `bic` and `aic` are the
    information criteria of an EM or gradient fit, computed on the training split as
    scikit-learn does (a variational mixture has none).
    On data with known discrete levels `nll` is a density at the levels (its caveat says
    so) and `bits_per_dim` is refused: a Gaussian mixture gives no probability of a level.
    """
    wanted = config["metrics"]
    check_criteria(model, data, config)
    shift = data.preprocessor.log_det_jacobian  # log |dy/dx| of the affine preprocessing
    dims = int(np.prod(data.element_shape))
    fitted = fit_record(model)
    metrics = Metrics()
    if len(data.x_val) and ({"nll", "bits_per_dim"} & set(wanted)):
        caveat = density_caveat(data)  # a density at discrete levels is no probability
        nll = -mean_of(log_likelihood_batches(model, data.x_val)) - shift
        how = {**held_out(data.x_val, exact=True, **caveat), **fitted}
        if "nll" in wanted:
            metrics.add("nll", nll, how)
        if "bits_per_dim" in wanted:
            metrics.add("bits_per_dim", nll / (dims * math.log(2)), how)
    if {"bic", "aic"} & set(wanted):
        n = len(data.x_train)
        total = sum(float(np.sum(part)) for part in log_likelihood_batches(model, data.x_train))
        total += n * shift
        params = model.num_free_parameters()
        how = {"split": "train", "examples": n, "free_parameters": int(params), **fitted}
        if "bic" in wanted:
            metrics.add("bic", -2.0 * total + params * math.log(n), how)
        if "aic" in wanted:
            metrics.add("aic", -2.0 * total + 2.0 * params, how)
    return metrics.merge(sample_quality(model, data, config))
