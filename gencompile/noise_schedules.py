"""A diffusion model's noise schedule in plain Python, and the limits it sets on sampling.

One definition each, read by every place that needs it: the spec's lowering
(`compiler/families/diffusion`, which imports neither NumPy nor TensorFlow), `gencompile
sample`'s options (checked before TensorFlow starts) and the runtime's samplers
(`runtime.diffusion`, `runtime.diffusion_solvers`, which hold these schedules as float64
arrays). No dependencies: `gencompile eject` vendors it with the runtime.

- `max_sampling_steps`: DDIM, strided DDPM and the ODE solvers start at the noisiest
  timestep whose lambda = log(alpha / sigma) is at least LAMBDA_MIN, so they take at most
  that timestep + 1 steps. (DDPM through every timestep starts at T - 1 on any schedule:
  its fresh noise damps its first step.)
- `float32_trouble`: a schedule whose alpha_bar_0 rounds to 1 or whose alpha_bar_{T-1}
  rounds below float32's smallest normal number, the precision the model samples in, gives
  NaN samples (1 - alpha_bar_0 = 0 and alpha_bar_{T-1} = 0 are divided by).
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Sequence
from typing import Any

# DDIM and the solvers start no noisier than this lambda = log(alpha / sigma): diffusers'
# value of DPMSolverMultistepScheduler's lambda_min_clipped for the cosine schedule.
# x_T ~ N(0, I) is still the marginal there to alpha ~ 0.006; a linear 1e-4..0.02 schedule
# ends at -5.06, so its grids still start at T - 1.
LAMBDA_MIN = -5.1
FLOAT32_TINY = 2.0**-126  # float32's smallest normal number (~1.2e-38)


# --------------------------------------------------------------------------- schedules


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> list[float]:
    """beta_t evenly spaced from beta_start to beta_end (Ho et al. 2020)."""
    step = (beta_end - beta_start) / (timesteps - 1)
    return [*(i * step + beta_start for i in range(timesteps - 1)), beta_end]


def _clipped_betas(alpha_bar: list[float], max_beta: float) -> list[float]:
    """beta_t = 1 - alpha_bar(t + 1) / alpha_bar(t), clipped to max_beta (NaN where
    alpha_bar(t) = 0, as NumPy's division gives)."""
    betas = []
    for before, after in itertools.pairwise(alpha_bar):
        ratio = after / before if before else math.nan
        betas.append(min(1.0 - ratio, max_beta) if ratio == ratio else math.nan)
    return betas


def cosine_betas(timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> list[float]:
    """alpha_bar = f(t) / f(0), f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)."""

    def f(u: float) -> float:
        c = math.cos((u / timesteps + offset) / (1.0 + offset) * math.pi / 2.0)
        return c * c

    first = f(0.0)
    return _clipped_betas([f(float(t)) / first for t in range(timesteps + 1)], max_beta)


def sigmoid_betas(
    timesteps: int,
    start: float = -3.0,
    end: float = 3.0,
    tau: float = 1.0,
    max_beta: float = 0.999,
) -> list[float]:
    """alpha_bar = (v(end) - v(t / T (end - start) + start)) / (v(end) - v(start)),
    v(z) = sigmoid(z / tau)."""

    def sigmoid(z: float) -> float:
        try:
            return 1.0 / (1.0 + math.exp(-z))
        except OverflowError:  # exp(-z) beyond float64: NumPy's inf, so 0
            return 0.0

    v_start, v_end = sigmoid(start / tau), sigmoid(end / tau)
    alpha_bar = [
        (v_end - sigmoid((t / timesteps * (end - start) + start) / tau)) / (v_end - v_start)
        for t in range(timesteps + 1)
    ]
    return _clipped_betas(alpha_bar, max_beta)


def betas_of(config: dict[str, Any], timesteps: int) -> list[float]:
    """The betas of a resolved `model.schedule` config."""
    kind = config["type"]
    if kind == "linear":
        return linear_betas(timesteps, config["beta_start"], config["beta_end"])
    if kind == "cosine":
        return cosine_betas(timesteps, config["offset"], config["max_beta"])
    if kind == "sigmoid":
        return sigmoid_betas(
            timesteps, config["start"], config["end"], config["tau"], config["max_beta"]
        )
    raise ValueError(f"unknown noise schedule {kind!r}; expected linear, cosine or sigmoid")


def alpha_bars_of(betas: Sequence[float]) -> list[float]:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s)."""
    alpha_bars, product = [], 1.0
    for beta in betas:
        product *= 1.0 - beta
        alpha_bars.append(product)
    return alpha_bars


def schedule_alpha_bars(config: dict[str, Any], timesteps: int) -> list[float]:
    """alpha_bar_0 .. alpha_bar_{T-1} of a resolved `model.schedule` config."""
    return alpha_bars_of(betas_of(config, timesteps))


# --------------------------------------------------------------------------- limits


def lambda_of(alpha_bar: float) -> float:
    """lambda = log(alpha / sigma) = log(alpha_bar / (1 - alpha_bar)) / 2."""
    if alpha_bar <= 0.0:
        return -math.inf
    if alpha_bar >= 1.0:
        return math.inf
    return 0.5 * (math.log(alpha_bar) - math.log1p(-alpha_bar))


def max_sampling_steps(alpha_bars: Sequence[float]) -> int:
    """The most steps DDIM (any eta), strided DDPM and the ODE solvers take: one per
    timestep from the noisiest whose lambda is at least LAMBDA_MIN (T - 1 when every one
    is) down to 0.

    Schedules that end near alpha_bar = 0 (cosine, sigmoid: beta clipped to 0.999) put a
    jump in lambda into their last timesteps (cosine: 3.5, to alpha ~ 5e-5): a sampler's
    first step from there multiplies an epsilon model's error by sqrt(alpha_bar' /
    alpha_bar) (~30 for the cosine's), and the ODE carries that error to the samples.
    """
    for t in range(len(alpha_bars) - 1, 0, -1):  # lambda decreases with t
        if lambda_of(float(alpha_bars[t])) >= LAMBDA_MIN:
            return t + 1
    return 1


def steps_limit_reason(most: int, timesteps: int) -> str:
    """Why `most` steps are the most a strided sampler takes, in words."""
    if most >= timesteps:
        return f"the noise process has {timesteps} timesteps"
    return (
        f"the schedule's timesteps after t = {most - 1} have log(alpha / sigma) < "
        f"{LAMBDA_MIN:g} (alpha_bar near 0), where a first step would multiply the "
        "denoiser's error"
    )


def float32(value: float) -> float:
    """`value` rounded to the nearest float32, as the model's constants are."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def float32_trouble(alpha_bars: Sequence[float]) -> tuple[str, str] | None:
    """("start" | "end", what goes wrong) when float32 cannot hold an end of the schedule,
    else None: alpha_bar_0 rounding to 1 makes 1 - alpha_bar_0 = 0 (the last sampling
    step divides by it), alpha_bar_{T-1} below float32's smallest normal number is 0 on a
    CPU that flushes denormals (the first DDPM step divides by sqrt(alpha_bar), and the
    Min-SNR weight of SNR = 0 is 0 / 0). Between the two, SNR_t = alpha_bar / (1 -
    alpha_bar) is finite and positive at every timestep, and so is every Min-SNR weight."""
    first, last = float(alpha_bars[0]), float(alpha_bars[-1])
    if float32(first) >= 1.0:
        return (
            "start",
            f"alpha_bar_0 = 1 - {1.0 - first:.3g} rounds to 1 in float32, the precision the "
            "model samples in, so 1 - alpha_bar_0 = 0 and sampling's last step divides by it "
            "(NaN samples)",
        )
    if not float32(last) >= FLOAT32_TINY:  # NaN included
        return (
            "end",
            f"alpha_bar_{len(alpha_bars) - 1} = {last:.2g} is below float32's smallest normal "
            "number (1.2e-38) and becomes 0 in the model, which divides by it (NaN samples "
            "and Min-SNR weights)",
        )
    return None
