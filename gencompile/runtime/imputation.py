"""Missing values filled by a VAE or a normalizing flow, through their public methods.

Both work in model space (the run's preprocessing applied) on an array with NaN where a
value is missing, start the missing cells at the training mean, and never change an
observed cell. Rows are processed together, `CHUNK` at a time; the only Python loop is
over iterations, each one compiled TensorFlow.

- VAE, pseudo-Gibbs sampling (Rezende et al. 2014, sec. 5; Mattei & Frellsen 2018): draw
  z ~ q(z | x) (the encoder's Gaussian, through the model's own `posterior` when it has one,
  such as a flow posterior's steps), decode, and replace the missing cells with the
  likelihood's mean; the chain approaches p(x_missing | x_observed). The answer is the
  average of the chain's missing cells over its second half, the Monte Carlo estimate of
  E[x_missing | x_observed] (the completion with the least expected squared error).
- Flow, MAP completion: maximise the exact log p(x_observed, x_missing) over the missing
  cells with Adam, the observed ones held fixed. On dequantized (discrete) data the search
  runs in the dequantized cube, through a sigmoid so it stays inside it, observed values at
  the middle of their bin; the answer is read back as discrete levels.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.progress import progress_bar

CHUNK = 4096  # rows imputed together: bounds the memory of one step

__all__ = ["CHUNK", "flow_map_completion", "vae_pseudo_gibbs"]


def vae_pseudo_gibbs(
    model: keras.Model, x: np.ndarray, start: np.ndarray, iterations: int, seed: int
) -> np.ndarray:
    """Fill the NaNs of `x` (n, *shape) by pseudo-Gibbs sampling with the VAE `model`.

    `start` (the element shape) is where the missing cells begin, the training mean. The
    same `seed` gives the same answer: the latent draws are stateless, keyed by the seed,
    the chunk and the iteration.
    """
    step = _gibbs_step(model)
    burn_in = iterations // 2  # the first half moves away from the start and is discarded

    def fill(rows: np.ndarray, chunk: int, update: Any) -> np.ndarray:
        missing = tf.constant(np.isnan(rows))
        current = tf.constant(np.where(np.isnan(rows), start, rows).astype(np.float32))
        total = tf.zeros_like(current)
        for i in range(iterations):
            key = tf.constant([seed, chunk * iterations + i], dtype=tf.int64)
            current = step(current, missing, key)
            if i >= burn_in:
                total += current
            update(i + 1)
        average = (total / (iterations - burn_in)).numpy()
        return np.where(np.isnan(rows), average, rows)  # observed cells exactly as given

    return _by_chunks(x, fill, iterations, f"imputing: pseudo-Gibbs, {iterations} iterations")


def flow_map_completion(
    model: keras.Model, x: np.ndarray, start: np.ndarray, iterations: int, learning_rate: float
) -> np.ndarray:
    """Fill the NaNs of `x` (n, *shape) with the flow `model`'s MAP completion.

    Adam maximises sum_rows log p(x) over the missing cells only, starting at `start`; the
    sum keeps each row's gradient its own (rows do not interact). Deterministic.
    """
    dequantization = model.dequantization

    def fill(rows: np.ndarray, chunk: int, update: Any) -> np.ndarray:
        missing = np.isnan(rows)
        initial = np.broadcast_to(start, rows.shape).astype(np.float32)
        observed = np.nan_to_num(rows).astype(np.float32)
        if dequantization is not None:  # discrete levels -> the middle of their bin
            observed = ((dequantization.levels(observed) + 0.5) / dequantization.bins).numpy()
            initial = (dequantization.levels(initial) + 0.5) / dequantization.bins
            initial = tf.math.log(initial / (1.0 - initial)).numpy()  # sigmoid^-1
        free = keras.Variable(initial, name="missing_cells")
        optimizer = keras.optimizers.Adam(learning_rate)
        optimizer.build([free])
        step = _map_step(model, optimizer, free, tf.constant(missing), tf.constant(observed))
        for i in range(iterations):
            step()
            update(i + 1)
        completed = _completed(free, tf.constant(missing), tf.constant(observed), dequantization)
        if dequantization is not None:
            completed = dequantization.quantize(completed)
        return np.where(missing, np.asarray(completed), rows)

    return _by_chunks(x, fill, iterations, f"imputing: MAP, {iterations} Adam steps")


def _by_chunks(x: np.ndarray, fill: Any, iterations: int, what: str) -> np.ndarray:
    """`fill(rows, chunk_index, update)` on the rows of `x` that miss something, CHUNK at a
    time; complete rows are returned as they are."""
    x = np.asarray(x, np.float32)
    incomplete = np.flatnonzero(np.isnan(x).reshape(len(x), -1).any(axis=1))
    filled = x.copy()
    chunks = range(0, len(incomplete), CHUNK)
    with progress_bar(what, iterations * len(chunks), "iterations") as update:
        for chunk, begin in enumerate(chunks):
            rows = incomplete[begin : begin + CHUNK]
            done = chunk * iterations
            filled[rows] = fill(x[rows], chunk, lambda i, done=done: update(done + i))
    return filled


def _gibbs_step(model: keras.Model) -> Any:
    # Without AutoGraph, as Keras traces train_step: the graph has no tensor-dependent
    # branches, and converting every function the model calls is slow.
    @tf.function(autograph=False, reduce_retracing=True)
    def step(current: tf.Tensor, missing: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        z = _posterior_draw(model, current, seed)
        mean = model.likelihood.mean(model.decode(z, None, training=False))
        return tf.where(missing, tf.cast(mean, tf.float32), current)  # observed cells stay

    return step


def _posterior_draw(model: keras.Model, x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One z ~ q(z | x) per row, its noise keyed by `seed` (float32)."""
    if hasattr(model, "posterior"):
        # The model's own draw: with a flow posterior (IAF, planar, radial) z = f(mu + sigma
        # eps), where `encode` gives f(mu) and the base sigma, which cannot be recombined.
        eps = tf.random.stateless_normal((tf.shape(x)[0], model.prior.latent_dim), seed=seed)
        z, _ = model.posterior(x, None, training=False, draws=1, noise=eps)
        return tf.cast(z, tf.float32)
    z_mean, z_log_var = model.encode(x, None, training=False)
    # Under mixed precision the networks answer in float16; the chain stays in float32.
    z_mean, z_log_var = tf.cast(z_mean, tf.float32), tf.cast(z_log_var, tf.float32)
    eps = tf.random.stateless_normal(tf.shape(z_mean), seed=seed)
    return z_mean + tf.exp(0.5 * z_log_var) * eps  # a Gaussian posterior


def _completed(free: Any, missing: tf.Tensor, observed: tf.Tensor, dequantization: Any) -> Any:
    """The rows with the missing cells taken from `free` (squashed into the dequantized
    cube on discrete data), the observed ones from `observed`."""
    values = tf.sigmoid(free) if dequantization is not None else tf.convert_to_tensor(free)
    return tf.where(missing, values, observed)


def _map_step(
    model: keras.Model, optimizer: Any, free: Any, missing: tf.Tensor, observed: tf.Tensor
) -> Any:
    dequantization = model.dequantization

    @tf.function(autograph=False)
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            completed = _completed(free, missing, observed, dequantization)
            loss = -tf.reduce_sum(model.log_prob(completed, training=False))
        # tf.where routes no gradient to the observed cells: Adam leaves them in place.
        optimizer.apply([tape.gradient(loss, free)], [free])
        return loss

    return step
