"""The latent space of a trained model: paths between codes, traversal grids, and each
family's map between examples and codes (`gencompile latent`).

Codes are flat float32 rows `(N, D)` whatever the family's latent shape; examples are in the
model's preprocessed units. Every map runs batch by batch on whole tensors.

- VAE: the code of x is the encoder's mean; a code decodes to the likelihood's mean.
- flow: z = f(x) exactly, and x = f^-1(z); on dequantized data x is read at the middle of
  its bin ((k + 1/2) / bins), and decoded codes are quantized back to the data's levels.
- GAN: codes are the generator's inputs; there is no encoder.
- diffusion: the code is the starting noise x_T. A deterministic DDIM sampler (eta = 0)
  decodes it, and DDIM inversion (the same steps run backwards) encodes an example.
- mixture: the space is the data space itself; its landmarks are the component means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import diffusion
from gencompile.runtime.vamp_prior import VampPrior

BATCH = 512


def linear_path(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """(R, D) start and end codes -> (R, steps, D): (1 - t) a + t b at t = 0..1."""
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[:, None]
    path = (1.0 - t) * a + t * b
    path[:, 0], path[:, -1] = a[:, 0], b[:, 0]  # the ends are the codes, bit for bit
    return path.astype(np.float32)


def slerp_path(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation: the great-circle arc from a to b, its norm moving linearly
    between theirs (codes drawn from a Gaussian prior live near a sphere, not inside it).
    Where a and b are (anti)parallel the arc is undefined and the path is linear."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm_a, norm_b = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    unit_a = a64 / np.maximum(norm_a, 1e-12)[:, None]
    unit_b = b64 / np.maximum(norm_b, 1e-12)[:, None]
    omega = np.arccos(np.clip(np.sum(unit_a * unit_b, axis=1), -1.0, 1.0))[:, None, None]
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    sin = np.sin(omega)
    safe = np.where(sin > 1e-6, sin, 1.0)
    direction = (
        np.sin((1.0 - t) * omega) * unit_a[:, None] + np.sin(t * omega) * unit_b[:, None]
    ) / safe
    norms = (1.0 - t) * norm_a[:, None, None] + t * norm_b[:, None, None]
    path = np.where(sin > 1e-6, direction * norms, linear_path(a64, b64, steps))
    path[:, 0], path[:, -1] = a64, b64
    return path.astype(np.float32)


PATHS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "linear": linear_path,
    "slerp": slerp_path,
}


def traversal_grid(center: np.ndarray, dims: list[int], values: np.ndarray) -> np.ndarray:
    """(len(dims), len(values), D): row i is `center` with dimension dims[i] set to each of
    `values`, every other dimension left as it is."""
    center = np.asarray(center, np.float32).reshape(-1)
    grid = np.broadcast_to(center, (len(dims), len(values), center.size)).copy()
    grid[np.arange(len(dims)), :, dims] = np.asarray(values, np.float32)[None, :]
    return grid


def _labels(y: np.ndarray | None, start: int, stop: int) -> tf.Tensor | None:
    return None if y is None else tf.constant(np.asarray(y[start:stop]), tf.int32)


def _batched(
    fn: Callable[[tf.Tensor, tf.Tensor | None], Any], x: np.ndarray, y: np.ndarray | None
) -> np.ndarray:
    """`fn` over rows of `x` (and labels `y`) BATCH at a time, as one float32 array."""
    parts = [
        np.asarray(fn(tf.constant(x[s : s + BATCH], tf.float32), _labels(y, s, s + BATCH)))
        for s in range(0, len(x), BATCH)
    ]
    return np.concatenate(parts).astype(np.float32)


class LatentSpace:
    """A family's latent space as `gencompile latent` uses it: `encode(x, y)` (families with
    an encoder), `decode(z, y)`, `draw(count, seed)` from the prior (families with one) and
    `center()`, the prior's centre. The CLI refuses, from the lock, every action that needs
    a method a family lacks."""

    what = "latent code"  # what a code is, in words, for titles

    def __init__(self, model: keras.Model, data_shape: tuple[int, ...]):
        self.model = model
        self.data_shape = tuple(int(d) for d in data_shape)


class VaeSpace(LatentSpace):
    what = "the encoder's mean"

    def encode(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        return _batched(lambda xb, yb: self.model.encode(xb, yb, training=False)[0], x, y)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        def mean(zb: tf.Tensor, yb: tf.Tensor | None) -> tf.Tensor:
            params = self.model.decode(zb, yb, training=False)
            return tf.cast(self.model.likelihood.mean(params), tf.float32)

        return _batched(mean, z, y)

    def draw(self, count: int, seed: int) -> np.ndarray:
        generator = keras.random.SeedGenerator(seed)
        return np.asarray(self.model.prior.sample(count, seed=generator), np.float32)

    def center(self) -> np.ndarray:
        prior = self.model.prior
        if hasattr(prior, "means"):  # a mixture prior: the weighted mean of its components
            weights = tf.nn.softmax(prior.logits)[:, None]
            return np.asarray(tf.reduce_sum(weights * prior.means, axis=0), np.float32)
        if isinstance(prior, VampPrior):  # the posteriors at its pseudo-inputs, equally weighted
            means, _ = prior.components()
            return np.asarray(tf.reduce_mean(means, axis=0), np.float32)
        return np.zeros(prior.latent_dim, np.float32)


class FlowSpace(LatentSpace):
    what = "z = f(x), exactly"

    def encode(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        quantizer = self.model.dequantization

        def forward(xb: tf.Tensor, yb: Any) -> tf.Tensor:
            if quantizer is not None:  # the middle of each example's bin
                xb = (quantizer.levels(xb) + 0.5) / quantizer.bins
            z, _ = self.model.forward(xb, training=False)
            return tf.reshape(z, (tf.shape(z)[0], -1))

        return _batched(forward, x, None)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        quantizer = self.model.dequantization
        shape = self.model.base.shape

        def inverse(zb: tf.Tensor, yb: Any) -> tf.Tensor:
            x = self.model.inverse(tf.reshape(zb, (-1, *shape)))
            return x if quantizer is None else quantizer.quantize(x)

        return _batched(inverse, z, None)

    def draw(self, count: int, seed: int) -> np.ndarray:
        z = self.model.base.sample(count, seed=keras.random.SeedGenerator(seed))
        return np.asarray(z, np.float32).reshape(count, -1)

    def center(self) -> np.ndarray:
        return np.zeros(int(np.prod(self.model.base.shape)), np.float32)


class GanSpace(LatentSpace):
    what = "the generator's input z"

    def __init__(
        self, model: keras.Model, data_shape: tuple[int, ...], center: np.ndarray | None = None
    ):
        super().__init__(model, data_shape)
        self._center = None if center is None else np.asarray(center, np.float32)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        if y is None:
            return _batched(lambda zb, yb: self.model.generate(zb), z, None)
        return _batched(lambda zb, yb: self.model.generate(zb, yb), z, y)

    def draw(self, count: int, seed: int) -> np.ndarray:
        z = self.model.sample_latent(count, seed=keras.random.SeedGenerator(seed))
        return np.asarray(z, np.float32)

    def center(self) -> np.ndarray:
        if self._center is None:  # the caller knows the prior (the lock), or never asks
            raise ValueError("this GanSpace was made without its prior's centre")
        return self._center


class DiffusionSpace(LatentSpace):
    """Codes are x_T, of the data's shape, flattened; decoded by a deterministic DDIM
    sampler (eta = 0), the only kind that can be run backwards to encode: the model's own
    when it is one, else `sampler` (a DDIM config over the same denoiser and schedule)."""

    def __init__(
        self,
        model: keras.Model,
        data_shape: tuple[int, ...],
        guidance: float = 0.0,
        sampler: dict[str, Any] | None = None,
    ):
        super().__init__(model, data_shape)
        self.guidance = float(guidance)
        self.sampler = model.sampler.with_config(sampler)
        steps = len(self.sampler.timesteps)
        self.what = f"the starting noise x_T (DDIM, eta 0, {steps} steps)"

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        seed = tf.constant([0, 0], tf.int32)  # only a stochastic sampler reads it

        def run(zb: tf.Tensor, yb: tf.Tensor | None) -> tf.Tensor:
            return self.sampler(tf.reshape(zb, (-1, *self.data_shape)), seed, yb, self.guidance)

        return _batched(run, z, y)

    def encode(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        def invert(xb: tf.Tensor, yb: tf.Tensor | None) -> tf.Tensor:
            z = ddim_invert(self.model, self.sampler, xb, yb, self.guidance)
            return tf.reshape(z, (tf.shape(z)[0], -1))

        return _batched(invert, x, y)

    def draw(self, count: int, seed: int) -> np.ndarray:
        x_T = tf.random.stateless_normal((count, *self.data_shape), seed=[int(seed), 0])
        return np.asarray(x_T, np.float32).reshape(count, -1)

    def center(self) -> np.ndarray:
        return np.zeros(int(np.prod(self.data_shape)), np.float32)


def ddim_invert(
    model: keras.Model, sampler: Any, x0: tf.Tensor, labels: Any, guidance: float
) -> tf.Tensor:
    """x_0 -> x_T by the deterministic DDIM steps of `sampler` in reverse (Song et al. 2021,
    sec. 4.3): at each visited timestep, going up, the denoiser's eps at the level reached
    so far carries the example's x_0 estimate to the next noise level."""
    # up to the sampler's first timestep (DDIM's: T - 1 unless the schedule ends below
    # lambda = LAMBDA_MIN), so that decoding starts where encoding stopped
    ascending = [int(t) for t in sampler.timesteps[::-1]]
    batch = tf.shape(x0)[0]
    if labels is None:
        labels = tf.zeros((batch,), tf.int32)
    x = tf.cast(x0, tf.float32)
    alpha_bar = tf.constant(1.0)  # the level of x: clean
    for t in ascending:
        alpha_next = model.schedule.alpha_bar_or_one(tf.constant(t))
        output = tf.cast(model.denoise(x, tf.fill([batch], t), labels, guidance), tf.float32)
        _, eps = diffusion.x0_and_epsilon(sampler.prediction, output, x, alpha_next)
        x0_hat = (x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)
        x = tf.sqrt(alpha_next) * x0_hat + tf.sqrt(1.0 - alpha_next) * eps
        alpha_bar = alpha_next
    return x


class MixtureSpace(LatentSpace):
    """A mixture has no continuous code: the space is the data's, flattened; its landmarks
    are the component means, and an example's latent is its responsibilities p(k | x)."""

    what = "the data space (component means as landmarks)"

    def encode(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(x, np.float32).reshape(len(x), -1)

    def decode(self, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(z, np.float32).reshape(len(z), *self.data_shape)

    def means(self) -> np.ndarray:
        return np.asarray(self.model.means, np.float32)

    def responsibilities(self, x: np.ndarray) -> np.ndarray:
        return _batched(lambda xb, yb: self.model.responsibilities(xb), x, None)

    def center(self) -> np.ndarray:
        weights = np.asarray(self.model.component_weights, np.float64)[:, None]
        return (weights * self.means()).sum(axis=0).astype(np.float32)
