"""Denoising diffusion for generated projects: schedules, parameterisations, samplers, metrics.

Notation (Ho et al. 2020; timesteps are 0-based here, t = 0 .. T-1):

    beta_t             the variance the forward process adds at step t
    alpha_bar_t        prod_{s <= t} (1 - beta_s): what is left of the signal at step t
    q(x_t | x_0)       N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
                       i.e. x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
    SNR_t              alpha_bar_t / (1 - alpha_bar_t)

A denoiser sees (x_t, t) and predicts one of three equivalent quantities:

    epsilon   the noise eps
    x0        the clean example x_0
    v         sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0  (Salimans & Ho 2022)

Given x_t, each determines the other two (`x0_and_epsilon`, `convert`), which is how the
samplers work with any of them. Besides DDPM and DDIM, the probability-flow ODE solvers
of `diffusion_solvers` (DPM-Solver++ 2M, Euler, Heun) sample the same model. Samplers run
the whole reverse process as one traced `tf.function` (a `tf.while_loop` over the visited
timesteps), so sampling does not retrace per step or per batch size; each step's noise is a
stateless function of (seed, t).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gencompile.noise_schedules import betas_of, float32_trouble
from gencompile.runtime import diffusion_solvers
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.results import Metrics, held_out
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.splits import labelled_batches, mean_of
from gencompile.sampler_configs import SAMPLERS as SAMPLERS  # ddpm, ddim and the solvers
from gencompile.sampler_configs import resolve_sampler

PREDICTIONS = ("epsilon", "v", "x0")


# --------------------------------------------------------------------------- schedules


class NoiseSchedule:
    """The forward process of a beta schedule: alpha_bar_t and what follows from it.

    Computed in float64 with NumPy, held as float32 constants for the model's graphs: a
    schedule whose ends float32 cannot hold (alpha_bar_0 rounding to 1, alpha_bar_{T-1}
    to 0; `gencompile.noise_schedules.float32_trouble`) is refused, as the spec refuses it.
    """

    def __init__(self, betas: np.ndarray):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or len(betas) < 2 or not np.all((betas > 0) & (betas < 1)):
            raise ValueError(f"betas must be a vector of values in (0, 1), got {betas!r}")
        self.timesteps = len(betas)
        self.betas = betas
        self.alpha_bars = np.cumprod(1.0 - betas)
        trouble = float32_trouble(self.alpha_bars)
        if trouble is not None:
            raise ValueError(f"this noise schedule cannot sample in float32: {trouble[1]}")
        self._alpha_bars = tf.constant(self.alpha_bars, tf.float32)
        self._sqrt_alpha_bars = tf.constant(np.sqrt(self.alpha_bars), tf.float32)
        self._sqrt_one_minus_alpha_bars = tf.constant(np.sqrt(1.0 - self.alpha_bars), tf.float32)
        # Indexed by t + 1: t = -1 stands for the data itself (alpha_bar = 1).
        self._alpha_bars_or_one = tf.constant(np.concatenate([[1.0], self.alpha_bars]), tf.float32)

    @classmethod
    def from_config(cls, config: dict[str, Any], timesteps: int) -> NoiseSchedule:
        return cls(np.asarray(betas_of(config, timesteps)))

    def alpha_bar(self, t: Any, rank: int = 1) -> tf.Tensor:
        """alpha_bar_t for a batch of timesteps, shaped (batch, 1, ...) to broadcast over
        examples of `rank` axes (batch axis included)."""
        values = tf.gather(self._alpha_bars, t)
        return tf.reshape(values, [-1] + [1] * (rank - 1))

    def alpha_bar_or_one(self, t: Any) -> tf.Tensor:
        """alpha_bar_t of timesteps t >= -1, where t = -1 (the data) gives 1."""
        return tf.gather(self._alpha_bars_or_one, t + 1)

    def q_sample(self, x0: Any, t: Any, noise: Any) -> tf.Tensor:
        """x_t ~ q(x_t | x_0): sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        shape = [-1] + [1] * (len(x0.shape) - 1)  # one coefficient per example
        signal = tf.reshape(tf.gather(self._sqrt_alpha_bars, t), shape)
        noise_scale = tf.reshape(tf.gather(self._sqrt_one_minus_alpha_bars, t), shape)
        return signal * x0 + noise_scale * noise

    def target(self, prediction: str, x0: Any, noise: Any, t: Any) -> tf.Tensor:
        """What a denoiser of this parameterisation must output at (x_t, t)."""
        return prediction_target(prediction, x0, noise, self.alpha_bar(t, len(x0.shape)))

    def min_snr_weight(self, t: Any, prediction: str, gamma: float) -> tf.Tensor:
        """Per-example Min-SNR-gamma loss weights (batch,) for this parameterisation."""
        return min_snr_weight(tf.gather(self._alpha_bars, t), prediction, gamma)


# --------------------------------------------------------------------------- parameterisations
# Every function takes alpha_bar broadcastable against x; any float dtype (float64 in tests).


def v_from_x0_and_epsilon(x0: Any, eps: Any, alpha_bar: Any) -> Any:
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0."""
    return ops.sqrt(alpha_bar) * eps - ops.sqrt(1.0 - alpha_bar) * x0


def x0_from_epsilon(x_t: Any, eps: Any, alpha_bar: Any) -> Any:
    """x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)."""
    return (x_t - ops.sqrt(1.0 - alpha_bar) * eps) / ops.sqrt(alpha_bar)


def epsilon_from_x0(x_t: Any, x0: Any, alpha_bar: Any) -> Any:
    """eps = (x_t - sqrt(alpha_bar) x_0) / sqrt(1 - alpha_bar)."""
    return (x_t - ops.sqrt(alpha_bar) * x0) / ops.sqrt(1.0 - alpha_bar)


def x0_from_v(x_t: Any, v: Any, alpha_bar: Any) -> Any:
    """x_0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v."""
    return ops.sqrt(alpha_bar) * x_t - ops.sqrt(1.0 - alpha_bar) * v


def epsilon_from_v(x_t: Any, v: Any, alpha_bar: Any) -> Any:
    """eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v."""
    return ops.sqrt(1.0 - alpha_bar) * x_t + ops.sqrt(alpha_bar) * v


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; expected one of {PREDICTIONS}")


def prediction_target(prediction: str, x0: Any, eps: Any, alpha_bar: Any) -> Any:
    """The training target of a denoiser that predicts `prediction`."""
    _check_prediction(prediction)
    if prediction == "epsilon":
        return eps
    if prediction == "x0":
        return x0
    return v_from_x0_and_epsilon(x0, eps, alpha_bar)


def x0_and_epsilon(prediction: str, output: Any, x_t: Any, alpha_bar: Any) -> tuple[Any, Any]:
    """(x_0, eps) implied by a denoiser's output at x_t."""
    _check_prediction(prediction)
    if prediction == "epsilon":
        return x0_from_epsilon(x_t, output, alpha_bar), output
    if prediction == "x0":
        return output, epsilon_from_x0(x_t, output, alpha_bar)
    return x0_from_v(x_t, output, alpha_bar), epsilon_from_v(x_t, output, alpha_bar)


def convert(output: Any, x_t: Any, alpha_bar: Any, source: str, destination: str) -> Any:
    """A denoiser output of one parameterisation expressed in another (at the same x_t)."""
    x0, eps = x0_and_epsilon(source, output, x_t, alpha_bar)
    return prediction_target(destination, x0, eps, alpha_bar)


def min_snr_weight(alpha_bar: Any, prediction: str, gamma: float) -> Any:
    """Min-SNR-gamma weights (Hang et al. 2023): the x_0 error weighted by min(SNR_t, gamma),
    expressed for the parameterisation's own error: / SNR for epsilon, / (SNR + 1) for v."""
    _check_prediction(prediction)
    snr = alpha_bar / (1.0 - alpha_bar)
    clipped = ops.minimum(snr, gamma)
    if prediction == "epsilon":
        return clipped / snr
    if prediction == "v":
        return clipped / (snr + 1.0)
    return clipped


# --------------------------------------------------------------------------- guidance


def classifier_free_guidance(conditional: Any, unconditional: Any, scale: Any) -> Any:
    """unconditional + scale (conditional - unconditional) (Ho & Salimans 2022).

    scale 0 gives the unconditional output, 1 the conditional one, > 1 pushes further
    toward the class. Outputs of any parameterisation mix alike: each is affine in the
    others at a fixed x_t.
    """
    return unconditional + scale * (conditional - unconditional)


# --------------------------------------------------------------------------- sampling


def sampling_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """The timesteps a sampler visits, descending from T - 1 ("trailing" spacing).

    steps = T visits every timestep; fewer are evenly spaced, always starting from the
    noisiest one (Lin et al. 2024). The last visited step maps straight to x_0.
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    return (np.round(np.arange(timesteps, 0, -timesteps / steps)).astype(np.int64) - 1)[:steps]


def strided_timesteps(alpha_bars: np.ndarray, steps: int) -> np.ndarray:
    """The timesteps DDIM, DDPM with fewer steps than timesteps, and DDIM inversion (in
    reverse) visit: spaced as `sampling_timesteps`, from the timestep the ODE solvers start
    at (`diffusion_solvers.first_sampling_timestep`: T - 1 unless the schedule ends below
    lambda = LAMBDA_MIN, as the cosine and sigmoid ones do, where a first x_0 estimate from
    alpha_bar ~ 5e-5 would multiply an epsilon model's error 30-140 fold). More steps than
    fit below that start are refused (cosine, T = 1000: at most 996); DDPM through every
    timestep, from T - 1, is `sampling_timesteps(T, T)`."""
    first = diffusion_solvers.first_sampling_timestep(alpha_bars, steps)
    return sampling_timesteps(first + 1, steps)


def ddpm_step(x_t: Any, x0: Any, alpha_bar: Any, alpha_bar_prev: Any, noise: Any) -> tf.Tensor:
    """One ancestral step: x_prev ~ q(x_prev | x_t, x_0), the Gaussian posterior.

    mean = sqrt(ab_prev) beta / (1 - ab) x_0 + sqrt(alpha) (1 - ab_prev) / (1 - ab) x_t
    variance = beta (1 - ab_prev) / (1 - ab), with alpha = ab / ab_prev and beta = 1 - alpha
    (Ho et al. 2020, eqs. 6-7; the variance is 0 on the last step, where ab_prev = 1).
    """
    alpha = alpha_bar / alpha_bar_prev
    beta = 1.0 - alpha
    mean = (tf.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar)) * x0 + (
        tf.sqrt(alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    ) * x_t
    variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    return mean + tf.sqrt(variance) * noise


def ddim_step(
    x0: Any, eps: Any, alpha_bar: Any, alpha_bar_prev: Any, eta: Any, noise: Any
) -> tf.Tensor:
    """One DDIM step (Song et al. 2021, eq. 12):

    x_prev = sqrt(ab_prev) x_0 + sqrt(1 - ab_prev - sigma^2) eps + sigma z,
    sigma = eta sqrt((1 - ab_prev) / (1 - ab)) sqrt(1 - ab / ab_prev).
    eta = 0 is deterministic; eta = 1 over every timestep is the DDPM ancestral sampler.
    """
    sigma = (
        eta
        * tf.sqrt((1.0 - alpha_bar_prev) / (1.0 - alpha_bar))
        * tf.sqrt(1.0 - alpha_bar / alpha_bar_prev)
    )
    direction = tf.sqrt(tf.maximum(1.0 - alpha_bar_prev - tf.square(sigma), 0.0))
    return tf.sqrt(alpha_bar_prev) * x0 + direction * eps + sigma * noise


Denoise = Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


class Sampler:
    """The learned reverse process, from x_T ~ N(0, I) to samples, as one compiled loop.

    `denoise(x_t, t, labels, guidance_scale)` is the model's (EMA, guided) denoiser; it
    returns the output of the parameterisation `prediction`. `config` is a `model.sampler`
    config: {"type": "ddpm"} (optionally "steps": S, strided), {"type": "ddim", "steps": S,
    "eta": eta}, or an ODE solver of `diffusion_solvers`: {"type": "dpm_solver", "steps":
    S, "order": 2 | 3, "spacing": "log_snr" | "karras" | "time_uniform"}, {"type": "euler" |
    "heun", "steps": S, "rho": rho}; it is checked as the spec checks
    it and completed with the spec's defaults (`gencompile.sampler_configs.resolve_sampler`: a
    ValueError names a bad key or value). With `clip_range`, each step's x_0 estimate is
    clipped to it (and eps recomputed to match).
    """

    def __init__(
        self,
        denoise: Denoise,
        schedule: NoiseSchedule,
        config: dict[str, Any],
        prediction: str,
        data_shape: tuple[int, ...],
        clip_range: tuple[float, float] | None = None,
    ):
        _check_prediction(prediction)
        config = resolve_sampler(config)
        self.kind = config["type"]
        self.denoise = denoise
        self.schedule = schedule
        self.prediction = prediction
        self.data_shape = tuple(int(d) for d in data_shape)
        self.clip_range = None if clip_range is None else tuple(float(v) for v in clip_range)
        self.config = config
        # DDPM visits every timestep unless told fewer (strided ancestral sampling, e.g.
        # `gencompile sample --sampler ddpm --steps 50`).
        steps = config.get("steps", schedule.timesteps)
        self.eta = 1.0 if self.kind == "ddpm" else config.get("eta", 0.0)
        if self.kind in diffusion_solvers.SOLVERS:
            rho = config.get("rho", diffusion_solvers.DEFAULT_RHO)  # dpm_solver: the default
            self.timesteps = diffusion_solvers.solver_timesteps(
                self.kind, schedule.alpha_bars, steps, rho, config.get("spacing")
            )
        elif self.kind == "ddpm" and steps == schedule.timesteps:  # every one, from T - 1
            self.timesteps = sampling_timesteps(schedule.timesteps, steps)
        else:  # DDIM, and strided DDPM: from the solvers' start
            self.timesteps = strided_timesteps(schedule.alpha_bars, steps)
        self.traces = 0  # how often the loop was traced (once per sampler)
        self._variants: dict[str, Sampler] = {}  # other configs, by `with_config`
        # Without AutoGraph, as Keras traces train_step: the loop is an explicit
        # tf.while_loop and every branch is on Python values; converting took most of a trace.
        self._loop = tf.function(
            self._reverse_process,
            autograph=False,
            input_signature=[
                tf.TensorSpec((None, *self.data_shape), tf.float32, name="x_T"),
                tf.TensorSpec((2,), tf.int32, name="seed"),
                tf.TensorSpec((None,), tf.int32, name="labels"),
                tf.TensorSpec((), tf.float32, name="guidance_scale"),
            ],
        )

    @property
    def steps(self) -> int:
        """Denoiser evaluations per sample (twice as many rows when guided): one per visited
        timestep, and for Heun one more at the end of each step but the last."""
        if self.kind == "heun":
            return 2 * len(self.timesteps) - 1
        return len(self.timesteps)

    def with_config(self, config: dict[str, Any] | None) -> Sampler:
        """This sampler, or one over the same denoiser and schedule with another
        `model.sampler` config (another kind, step count or eta, chosen at sampling time;
        checked and completed as `__init__` does). Each config is traced once and kept, so
        drawing in chunks does not retrace."""
        if config is None:
            return self
        resolved = resolve_sampler(config)
        if resolved == self.config:
            return self
        key = repr(sorted(resolved.items()))
        if key not in self._variants:
            self._variants[key] = Sampler(
                self.denoise,
                self.schedule,
                resolved,
                self.prediction,
                self.data_shape,
                self.clip_range,
            )
        return self._variants[key]

    def sample(
        self, num_samples: int, seed: Any, labels: Any = None, guidance_scale: float = 0.0
    ) -> tf.Tensor:
        """`num_samples` samples from x_T ~ N(0, I); one seed ((2,) int32) fixes them all."""
        x_T = tf.random.stateless_normal((num_samples, *self.data_shape), seed=seed)
        return self(x_T, seed, labels, guidance_scale)

    def __call__(
        self, x_T: Any, seed: Any, labels: Any = None, guidance_scale: float = 0.0
    ) -> tf.Tensor:
        """Run the reverse process from x_T; each step's noise is a function of (seed, t)."""
        x_T = tf.convert_to_tensor(x_T, tf.float32)
        num_samples = x_T.shape[0]  # None inside a graph of any batch (the SavedModel's)
        if labels is None:
            labels = tf.zeros(tf.shape(x_T)[:1], tf.int32)
        labels = tf.cast(tf.convert_to_tensor(labels), tf.int32)
        if num_samples is not None and labels.shape != (num_samples,):
            raise ValueError(f"need one label per sample ({num_samples}), got {labels.shape}")
        return self._loop(
            x_T, tf.cast(seed, tf.int32), labels, tf.constant(guidance_scale, tf.float32)
        )

    def _step(self, x_t, t, t_prev, labels, guidance_scale, seed) -> tf.Tensor:
        """x_t -> x_{t_prev}: denoise, estimate (x_0, eps), take the sampler's step."""
        batch = tf.shape(x_t)[0]
        output = tf.cast(self.denoise(x_t, tf.fill([batch], t), labels, guidance_scale), x_t.dtype)
        alpha_bar = self.schedule.alpha_bar_or_one(t)
        alpha_bar_prev = self.schedule.alpha_bar_or_one(t_prev)
        x0, eps = x0_and_epsilon(self.prediction, output, x_t, alpha_bar)
        if self.clip_range is not None:
            x0 = tf.clip_by_value(x0, *self.clip_range)
            eps = epsilon_from_x0(x_t, x0, alpha_bar)
        noise = tf.random.stateless_normal(
            tf.shape(x_t), seed=tf.random.experimental.stateless_fold_in(seed, t)
        )
        if self.kind == "ddpm":
            return ddpm_step(x_t, x0, alpha_bar, alpha_bar_prev, noise)
        return ddim_step(x0, eps, alpha_bar, alpha_bar_prev, self.eta, noise)

    def _data_prediction(self, x_t, t, labels, guidance_scale) -> tf.Tensor:
        """D(x_t): the denoiser's x_0 estimate at timestep t, clipped like every step's."""
        batch = tf.shape(x_t)[0]
        output = tf.cast(self.denoise(x_t, tf.fill([batch], t), labels, guidance_scale), x_t.dtype)
        x0, _ = x0_and_epsilon(self.prediction, output, x_t, self.schedule.alpha_bar_or_one(t))
        if self.clip_range is not None:
            x0 = tf.clip_by_value(x0, *self.clip_range)
        return x0

    def _solve(self, x, labels, guidance_scale) -> tf.Tensor:
        """An ODE solver over the visited timesteps, then the last step to sigma = 0, where
        every solver's step is x_0 = D(x)."""
        visited = tf.constant(self.timesteps, tf.int32)
        alpha_bars = self.schedule.alpha_bars[self.timesteps]  # float64, exact

        def denoise(x_t: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
            return self._data_prediction(x_t, visited[i], labels, guidance_scale)

        x = diffusion_solvers.integrate(
            self.kind,
            x,
            np.sqrt(alpha_bars),
            np.sqrt(1.0 - alpha_bars),
            denoise,
            self.config.get("order", 2),
        )
        return denoise(x, tf.constant(len(self.timesteps) - 1))

    def _reverse_process(self, x, seed, labels, guidance_scale) -> tf.Tensor:
        self.traces += 1  # Python side effect: runs only while tracing
        if self.kind in diffusion_solvers.SOLVERS:
            return self._solve(x, labels, guidance_scale)
        visited = tf.constant(self.timesteps, tf.int32)
        following = tf.concat([visited[1:], [-1]], axis=0)  # -1: the last step gives x_0

        def more(i: tf.Tensor, x_t: tf.Tensor) -> tf.Tensor:
            return i < len(self.timesteps)

        def body(i: tf.Tensor, x_t: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x_prev = self._step(x_t, visited[i], following[i], labels, guidance_scale, seed)
            return i + 1, x_prev

        _, x = tf.while_loop(
            more,
            body,
            (tf.constant(0), x),
            shape_invariants=(tf.TensorShape(()), tf.TensorShape((None, *self.data_shape))),
        )
        return x


def sampling_seed(seed: int | None, generator: keras.random.SeedGenerator) -> tf.Tensor:
    """A (2,) int32 sampling seed: from `seed` if given, else the next from `generator`."""
    if seed is not None:
        return tf.constant([int(seed), 0], tf.int32)
    return tf.cast(keras.random.randint((2,), 0, 2**31 - 1, seed=generator), tf.int32)


# --------------------------------------------------------------------------- metrics

EVALUATION_TIMESTEPS = 20  # held-out examples are noised at the middle of this many strata


def denoising_loss(
    model: keras.Model,
    x: Any,
    y: np.ndarray | None,
    seed: int = 0,
    levels: int = EVALUATION_TIMESTEPS,
    batch_size: int = 512,
) -> float:
    """The model's training loss on held-out data, for the network that samples (EMA).

    The timesteps are cut into `levels` equal strata and each example is noised at the
    middle of each, with noise fixed by `seed`: a deterministic, low-variance estimate of
    the training loss's expectation over t ~ U{0, ..., T - 1}. The split `x` is read batch
    by batch, once per stratum, each batch's noise drawn in turn from one generator: the
    draws a whole-split array of noise per stratum would hold, without holding it.
    """
    network = getattr(model, "ema_denoiser", None) or model.denoiser
    timesteps = model.schedule.timesteps
    strata = min(levels, timesteps)
    grid = ((np.arange(strata) + 0.5) * timesteps / strata).astype(np.int32)
    rng = np.random.default_rng(seed)

    # Without AutoGraph, as Keras traces train_step: converting every function the model
    # calls took most of the trace; the graph is the same (no tensor-dependent branches).
    @tf.function(reduce_retracing=True, autograph=False)
    def loss(x0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor, labels: Any) -> tf.Tensor:
        return model.denoising_loss(network, x0, t, noise, labels)

    def per_batch() -> Iterator[np.ndarray]:
        for level in grid:
            for rows, yb in labelled_batches(x, y, batch_size):
                noise = tf.constant(rng.standard_normal(rows.shape).astype(np.float32))
                t = tf.fill([len(rows)], tf.constant(level, tf.int32))
                labels = None if yb is None else tf.constant(yb, tf.int32)
                yield np.asarray(loss(tf.constant(rows), t, noise, labels))

    return mean_of(per_batch())


@evaluation()
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """`denoising_loss` on the held-out split (the loss as trained, of the EMA network,
    stratified over the timesteps), then the sample-quality metrics."""
    metrics = Metrics()
    if "denoising_loss" in config["metrics"] and len(data.x_val):
        network = "ema" if getattr(model, "ema_denoiser", None) is not None else "online"
        how = held_out(
            data.x_val,
            network=network,
            timestep_strata=min(EVALUATION_TIMESTEPS, model.schedule.timesteps),
            noise_seed=0,
        )
        metrics.add("denoising_loss", denoising_loss(model, data.x_val, data.y_val), how)
    return metrics.merge(sample_quality(model, data, config))
