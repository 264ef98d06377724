"""Probability distributions shared by generated models.

Generated code calls these functions and classes by name, so their signatures are a contract
with the templates. Everything here works on float32 tensors inside `tf.function`: no Python
loops over samples, no numpy in the graph path. Randomness always comes from a
`keras.random.SeedGenerator` (or an int seed) so that runs are reproducible.

Conventions:
- `log_prob` of an observation likelihood sums over every non-batch axis and returns `[B]`.
- Likelihood parameters: with `num_params == 1` the parameter tensor has the shape of `x`;
  with `num_params == P > 1` it has shape `x.shape + (P,)`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import keras
import tensorflow as tf

LOG_2PI: float = math.log(2.0 * math.pi)

Tensor = tf.Tensor
Seed = Any  # keras.random.SeedGenerator, an int, or None (see keras.random)

__all__ = [
    "LOG_2PI",
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "Likelihood",
    "Logistic",
    "MixtureOfGaussiansPrior",
    "StandardNormalPrior",
    "diag_normal_log_prob",
    "make_likelihood",
    "make_prior",
    "reparameterize",
]


def _f32(x: Any) -> Tensor:
    """Cast to float32: the runtime's numerics are float32 even under mixed precision."""
    return tf.cast(x, tf.float32)


def _sum_except_batch(values: Tensor) -> Tensor:
    """Sum over all axes but the first; reshaping keeps it rank-agnostic inside tf.function."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def diag_normal_log_prob(z: Any, mean: Any, log_var: Any) -> Tensor:
    """log N(z; mean, diag(exp(log_var))), summed over the last axis -> `[B]`.

    Works in log-variance space so an encoder's raw output never goes through a log.
    """
    z, mean, log_var = _f32(z), _f32(mean), _f32(log_var)
    log_density = -0.5 * (LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var))
    return tf.reduce_sum(log_density, axis=-1)


def reparameterize(mean: Any, log_var: Any, seed: Seed | None = None, noise: Any = None) -> Tensor:
    """Draw z = mean + exp(log_var / 2) * eps so gradients flow to mean and log_var.

    eps ~ N(0, I) is drawn with `seed`, or given as `noise` (under a distribution strategy,
    a replica's rows of one draw for the global batch)."""
    mean, log_var = _f32(mean), _f32(log_var)
    if noise is None:
        noise = keras.random.normal(tf.shape(mean), dtype="float32", seed=seed)
    return mean + tf.exp(0.5 * log_var) * _f32(noise)


# --------------------------------------------------------------------------------------
# Observation likelihoods p(x | params)
# --------------------------------------------------------------------------------------


class Likelihood:
    """Base of observation models p(x | params) whose params a decoder outputs.

    Plain Python objects (no weights): generated code constructs them from literal
    arguments, and `get_config()` returns those arguments so `cls(**config)` rebuilds them.
    """

    name: ClassVar[str] = ""
    num_params: int = 1

    def log_prob(self, x: Any, params: Any) -> Tensor:
        """log p(x | params) summed over every non-batch axis -> `[B]`."""
        raise NotImplementedError

    def mean(self, params: Any) -> Tensor:
        """Expected value of x (x-shaped): what sample grids show, free of pixel noise."""
        raise NotImplementedError

    def sample(self, params: Any, seed: Seed) -> Tensor:
        """One draw of x (x-shaped)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Likelihood:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Likelihood) or type(self) is not type(other):
            return NotImplemented
        return self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


class Bernoulli(Likelihood):
    """Bernoulli pixels parameterised by logits.

    log_prob is x * logits - softplus(logits), i.e. minus the sigmoid cross-entropy, computed
    without a sigmoid-then-log so large logits do not lose precision. For non-binary x in
    [0, 1] (e.g. grey-scale intensities) this is the negative binary cross-entropy, which is
    not a normalised log-density of continuous x: the common "continuous targets with BCE"
    practice, comparable only between models that make the same choice.
    """

    name = "bernoulli"
    num_params = 1

    def log_prob(self, x: Any, params: Any) -> Tensor:
        logits = _f32(params)
        per_element = -tf.nn.sigmoid_cross_entropy_with_logits(labels=_f32(x), logits=logits)
        return _sum_except_batch(per_element)

    def mean(self, params: Any) -> Tensor:
        return tf.sigmoid(_f32(params))

    def sample(self, params: Any, seed: Seed) -> Tensor:
        probs = tf.sigmoid(_f32(params))
        u = keras.random.uniform(tf.shape(probs), dtype="float32", seed=seed)
        return tf.cast(u < probs, tf.float32)


class Gaussian(Likelihood):
    """Gaussian observation noise, either with a learned per-element scale or a fixed sigma.

    `sigma="learned"`: params[..., 0] is the mean and params[..., 1] a raw value mapped to
    scale = softplus(raw) + min_scale; the floor keeps the density bounded, so the model
    cannot gain unbounded likelihood by collapsing the scale on constant pixels.
    `sigma=<float>`: a fixed scale; params is the mean and has x's shape.
    """

    name = "gaussian"

    def __init__(self, sigma: str | float = "learned", min_scale: float = 1e-3) -> None:
        learned = sigma == "learned"
        positive = isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma > 0
        if not (learned or positive):
            raise ValueError(
                f"Gaussian sigma must be 'learned' or a float > 0. Received: sigma={sigma!r}"
            )
        if not min_scale >= 0:
            raise ValueError(f"Gaussian min_scale must be >= 0. Received: min_scale={min_scale!r}")
        self.sigma: str | float = sigma if isinstance(sigma, str) else float(sigma)
        self.min_scale = float(min_scale)
        self.num_params = 2 if self.learned else 1

    @property
    def learned(self) -> bool:
        return self.sigma == "learned"

    def _loc_scale(self, params: Any) -> tuple[Tensor, Tensor]:
        params = _f32(params)
        if self.learned:
            return params[..., 0], tf.nn.softplus(params[..., 1]) + self.min_scale
        return params, tf.fill(tf.shape(params), tf.constant(self.sigma, tf.float32))

    def log_prob(self, x: Any, params: Any) -> Tensor:
        loc, scale = self._loc_scale(params)
        z = (_f32(x) - loc) / scale
        per_element = -0.5 * tf.square(z) - tf.math.log(scale) - 0.5 * LOG_2PI
        return _sum_except_batch(per_element)

    def mean(self, params: Any) -> Tensor:
        return self._loc_scale(params)[0]

    def sample(self, params: Any, seed: Seed) -> Tensor:
        loc, scale = self._loc_scale(params)
        return loc + scale * keras.random.normal(tf.shape(loc), dtype="float32", seed=seed)

    def get_config(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "min_scale": self.min_scale}


class Categorical(Likelihood):
    """Discretised intensities: x in [0, 1] is class round(x * (bins - 1)), params are logits.

    Lets a decoder express multi-modal pixel distributions (PixelCNN-style 256-way softmax).
    mean() and sample() map back to [0, 1] so pictures look like the data.
    """

    name = "categorical"

    def __init__(self, bins: int = 256) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"Categorical bins must be an int >= 2. Received: bins={bins!r}")
        self.bins = bins
        self.num_params = bins

    def rounded(self, x: Any) -> Tensor:
        """round(x * (bins - 1)), not yet clipped: a value that rounds outside 0..bins-1 has
        probability 0 (the likelihood's support, `runtime.scores`)."""
        return tf.round(_f32(x) * float(self.bins - 1))

    def levels(self, x: Any) -> Tensor:
        """The bin of each value of x: `rounded`, clipped to the bins (int32)."""
        return tf.cast(tf.clip_by_value(self.rounded(x), 0.0, float(self.bins - 1)), tf.int32)

    def log_prob(self, x: Any, params: Any) -> Tensor:
        per_element = -tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=self.levels(x), logits=_f32(params)
        )
        return _sum_except_batch(per_element)

    def mean(self, params: Any) -> Tensor:
        values = tf.linspace(0.0, 1.0, self.bins)
        return tf.reduce_sum(tf.nn.softmax(_f32(params), axis=-1) * values, axis=-1)

    def sample(self, params: Any, seed: Seed) -> Tensor:
        logits = _f32(params)
        flat = tf.reshape(logits, [-1, self.bins])
        idx = keras.random.categorical(flat, 1, dtype="int32", seed=seed)
        values = tf.cast(idx, tf.float32) / float(self.bins - 1)
        return tf.reshape(values, tf.shape(logits)[:-1])

    def get_config(self) -> dict[str, Any]:
        return {"bins": self.bins}


class Logistic(Likelihood):
    """Continuous logistic density: params[..., 0] = loc, params[..., 1] = log_scale.

    log_scale is clipped below at -7 (scale ~ 1e-3) so the density stays bounded.
    """

    name = "logistic"
    num_params = 2
    min_log_scale: ClassVar[float] = -7.0

    def _loc_scale(self, params: Any) -> tuple[Tensor, Tensor]:
        params = _f32(params)
        return params[..., 0], tf.maximum(params[..., 1], self.min_log_scale)

    def log_prob(self, x: Any, params: Any) -> Tensor:
        loc, log_scale = self._loc_scale(params)
        z = (_f32(x) - loc) * tf.exp(-log_scale)
        # log f(z) = -z - 2 softplus(-z) is symmetric and overflow-free for either sign of z.
        per_element = -z - 2.0 * tf.nn.softplus(-z) - log_scale
        return _sum_except_batch(per_element)

    def mean(self, params: Any) -> Tensor:
        return self._loc_scale(params)[0]

    def sample(self, params: Any, seed: Seed) -> Tensor:
        loc, log_scale = self._loc_scale(params)
        u = keras.random.uniform(tf.shape(loc), minval=1e-6, maxval=1.0 - 1e-6, seed=seed)
        return loc + tf.exp(log_scale) * (tf.math.log(u) - tf.math.log1p(-u))


LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Bernoulli, Gaussian, Categorical, Logistic)
}


def make_likelihood(config: dict[str, Any]) -> Likelihood:
    """Build a likelihood from `{"type": ..., **args}`, the form the compiler emits."""
    args = dict(config)
    kind = args.pop("type", None)
    if kind not in LIKELIHOODS:
        raise ValueError(
            f"Unknown likelihood type {kind!r}; expected one of {sorted(LIKELIHOODS)}. "
            f"Received: config={config!r}"
        )
    try:
        return LIKELIHOODS[kind](**args)
    except TypeError as exc:  # unexpected keyword: name it like the other errors do
        raise ValueError(
            f"Bad arguments for likelihood {kind!r}: {exc}. Received: config={config!r}"
        ) from exc


# --------------------------------------------------------------------------------------
# Latent priors p(z)
# --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="gencompile")
class StandardNormalPrior(keras.layers.Layer):
    """p(z) = N(0, I). A layer (without weights) so every prior plugs into a model alike."""

    analytic_kl: ClassVar[bool] = True

    def __init__(self, latent_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.built = True

    def log_prob(self, z: Any) -> Tensor:
        z = _f32(z)
        return tf.reduce_sum(-0.5 * (LOG_2PI + tf.square(z)), axis=-1)

    def sample(self, n: Any, seed: Seed, temperature: Any = 1.0) -> Tensor:
        """z ~ N(0, temperature^2 I): `temperature` scales the standard deviation."""
        return temperature * keras.random.normal((n, self.latent_dim), dtype="float32", seed=seed)

    def call(self, z: Any) -> Tensor:
        return self.log_prob(z)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim}


@keras.saving.register_keras_serializable(package="gencompile")
class MixtureOfGaussiansPrior(keras.layers.Layer):
    """Learned mixture prior p(z) = sum_k pi_k N(z; mu_k, diag(exp(log_var_k))).

    A richer prior narrows the gap between the aggregate posterior and p(z) (VampPrior-like
    motivation); its KL has no closed form, so models use `monte_carlo_kl` with it.
    Means start at a seeded N(0, 1) draw so components are distinct and runs reproducible.
    """

    analytic_kl: ClassVar[bool] = False

    def __init__(self, latent_dim: int, components: int, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(components) < 1:
            raise ValueError(f"components must be >= 1. Received: components={components!r}")
        self.latent_dim = int(latent_dim)
        self.components = int(components)
        self.seed = int(seed)
        shape = (self.components, self.latent_dim)
        self.means = self.add_weight(
            shape=shape,
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
            dtype="float32",
            name="means",
        )
        self.log_vars = self.add_weight(
            shape=shape, initializer="zeros", dtype="float32", name="log_vars"
        )
        self.logits = self.add_weight(
            shape=(self.components,), initializer="zeros", dtype="float32", name="logits"
        )
        self.built = True

    def component_log_probs(self, z: Any) -> Tensor:
        """log pi_k + log N(z; mu_k, sigma_k) for every component -> `[B, K]`."""
        z = _f32(z)[:, None, :]
        log_weights = tf.nn.log_softmax(self.logits)
        return diag_normal_log_prob(z, self.means, self.log_vars) + log_weights

    def log_prob(self, z: Any) -> Tensor:
        return tf.reduce_logsumexp(self.component_log_probs(z), axis=-1)

    def sample(self, n: Any, seed: Seed, temperature: Any = 1.0) -> Tensor:
        """A component k ~ pi, then z ~ N(mu_k, temperature^2 sigma_k^2): `temperature`
        scales each component's standard deviation (its means stay)."""
        logits = tf.tile(self.logits[None, :], [n, 1])
        k = keras.random.categorical(logits, 1, dtype="int32", seed=seed)[:, 0]
        mean = tf.gather(self.means, k)
        log_var = tf.gather(self.log_vars, k)
        eps = keras.random.normal(tf.shape(mean), dtype="float32", seed=seed)
        return reparameterize(mean, log_var, noise=temperature * eps)

    def call(self, z: Any) -> Tensor:
        return self.log_prob(z)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "components": self.components,
            "seed": self.seed,
        }


PRIORS: dict[str, type[keras.layers.Layer]] = {
    "normal": StandardNormalPrior,
    "mixture_of_gaussians": MixtureOfGaussiansPrior,
}


def make_prior(config: dict[str, Any], latent_dim: int) -> keras.layers.Layer:
    """Build a prior from `{"type": ..., **args}`, the form the compiler emits."""
    args = dict(config)
    kind = args.pop("type", None)
    if kind not in PRIORS:
        raise ValueError(
            f"Unknown prior type {kind!r}; expected one of {sorted(PRIORS)}. "
            f"Received: config={config!r}"
        )
    try:
        return PRIORS[kind](latent_dim=latent_dim, **args)
    except TypeError as exc:
        raise ValueError(
            f"Bad arguments for prior {kind!r}: {exc}. Received: config={config!r}"
        ) from exc
