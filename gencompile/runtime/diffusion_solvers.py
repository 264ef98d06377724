"""Fast deterministic samplers: solvers of the probability-flow ODE of a diffusion model.

The model's variance-preserving process writes x_t = alpha_t x_0 + sigma_t eps with
alpha_t = sqrt(alpha_bar_t) and sigma_t = sqrt(1 - alpha_bar_t). Its probability-flow ODE
carries x_T ~ N(0, I) to the data deterministically; every solver here sees the denoiser
only through its data prediction D(x_t) = E[x_0 | x_t] (any parameterisation converts to
it exactly) and takes one of two views of the same ODE:

- Karras et al. (2022): in x~ = x / alpha and s = sigma / alpha (the model's noise
  schedule mapped to sigmas), dx~/ds = (x~ - D) / s = eps_hat. `euler` is one evaluation
  per step (on the same timesteps it is exactly DDIM with eta = 0); `heun` corrects it
  with the slope at the step's end (second order, two evaluations per step). Their noise
  levels are Karras' rho-spaced sigmas.
- Lu et al. (2022), DPM-Solver++ 2M and 3M: an exponential integrator in lambda =
  log(alpha / sigma) (half the log-SNR) of the data prediction, second order by reusing
  the previous step's D, 3M adding a second difference of the two before (multistep: one
  evaluation per step; the first steps, without that history, take the lower orders; see
  `dpm_solver_3m_step` on its order). Its noise levels are uniform in lambda by default,
  or Karras' rho-spaced sigmas, or uniform in the timestep.

A discrete-time denoiser is only defined at its integer timesteps, so each grid is mapped to
the nearest distinct timesteps and the solvers use those timesteps' exact alpha and sigma.
The grid starts at the noisiest timestep whose lambda is at least LAMBDA_MIN (diffusers'
lambda_min_clipped): a schedule that ends at alpha_bar ~ 0 would otherwise amplify the
denoiser's error ~30-fold on the first step. The last step goes to sigma = 0, where every
solver's step is x_0 = D(x) (first order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

# LAMBDA_MIN: DDIM and the solvers start no noisier than this lambda = log(alpha / sigma);
# the rule is defined in gencompile.noise_schedules, for the spec and the CLI too.
from gencompile.noise_schedules import LAMBDA_MIN as LAMBDA_MIN
from gencompile.noise_schedules import max_sampling_steps, steps_limit_reason
from gencompile.sampler_configs import (
    DEFAULT_RHO,  # Karras et al.'s spacing of the sigmas
    DPM_SOLVER_ORDERS,
    SPACINGS,
)

SOLVERS = ("dpm_solver", "euler", "heun")
# DPM-Solver++ 3M over fewer steps than this takes a second-order step before its final
# (first-order) one, as diffusers' lower_order_final does: stabler with few steps.
LOWER_ORDER_FINAL = 15
# Each solver's grid unless told another (the spec offers the choice for dpm_solver only).
OWN_SPACING = {"dpm_solver": "log_snr", "euler": "karras", "heun": "karras"}

# denoise(x, i): the data prediction D at the solver's i-th grid point.
DataPrediction = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


# --------------------------------------------------------------------------- grids


def karras_sigmas(
    sigma_min: float, sigma_max: float, steps: int, rho: float = DEFAULT_RHO
) -> np.ndarray:
    """`steps` sigmas from sigma_max down to sigma_min, evenly spaced in sigma^(1 / rho)
    (Karras et al. 2022, eq. 5): denser at low noise, where the ODE bends most."""
    ramp = np.linspace(0.0, 1.0, steps) if steps > 1 else np.zeros(1)
    top, bottom = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return (top + ramp * (bottom - top)) ** rho


def log_snr_lambdas(lambda_min: float, lambda_max: float, steps: int) -> np.ndarray:
    """`steps` values of lambda = log(alpha / sigma) evenly spaced from lambda_min (the
    noisiest) up to lambda_max (Lu et al. 2022's "logSNR" time steps)."""
    return np.linspace(lambda_min, lambda_max, steps) if steps > 1 else np.full(1, lambda_min)


def distinct_descending(fractional: np.ndarray, timesteps: int) -> np.ndarray:
    """Fractional timesteps (descending) rounded to distinct integer timesteps.

    Where rounding would visit a timestep twice (many steps near t = 0), the later one
    moves down by one, and never so far that the remaining steps run out of timesteps.
    """
    steps = len(fractional)
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    rounded = np.clip(np.round(fractional), 0, timesteps - 1).astype(np.int64)
    chosen = np.empty(steps, np.int64)
    chosen[0] = max(rounded[0], steps - 1)
    for i in range(1, steps):
        chosen[i] = max(min(rounded[i], chosen[i - 1] - 1), steps - 1 - i)
    return chosen


def karras_sigmas_of(alpha_bars: np.ndarray) -> np.ndarray:
    """The schedule mapped to sigmas: s_t = sigma_t / alpha_t = sqrt((1 - ab) / ab)."""
    return np.sqrt((1.0 - alpha_bars) / alpha_bars)


def lambdas_of(alpha_bars: np.ndarray) -> np.ndarray:
    """lambda_t = log(alpha_t / sigma_t) = log SNR_t / 2."""
    return 0.5 * (np.log(alpha_bars) - np.log1p(-alpha_bars))


def first_sampling_timestep(alpha_bars: np.ndarray, steps: int) -> int:
    """The noisiest timestep DDIM (any eta), strided DDPM and every solver here start
    from: the last whose lambda is at least LAMBDA_MIN (T - 1 when every one is). `steps`
    must fit below it: from 1 to `max_sampling_steps` (gencompile.noise_schedules), else a
    ValueError naming the most (the one check, for every caller).

    Schedules that end near alpha_bar = 0 (cosine, sigmoid: beta clipped to 0.999) put a
    jump in lambda into their last timesteps (cosine: 3.5, to alpha ~ 5e-5): a sampler's
    first step from there multiplies an epsilon model's error by sqrt(alpha_bar' /
    alpha_bar) (~30 for the cosine's; D = (x - sigma eps) / alpha), and the ODE carries
    that error to the samples.
    """
    most = max_sampling_steps(alpha_bars)
    if not 1 <= steps <= most:
        reason = steps_limit_reason(most, len(alpha_bars))
        raise ValueError(f"steps must be in [1, {most}] ({reason}), got {steps}")
    return most - 1


def solver_timesteps(
    kind: str,
    alpha_bars: np.ndarray,
    steps: int,
    rho: float = DEFAULT_RHO,
    spacing: str | None = None,
) -> np.ndarray:
    """The descending timesteps a solver visits: `steps` of them, from the first solver
    timestep (T - 1 unless the schedule's end is below LAMBDA_MIN) down to 0.

    `spacing` (default: the solver's own, OWN_SPACING) places them: "karras" (euler and
    heun's), Karras' rho-spaced sigmas between the smallest and largest visited; "log_snr"
    (dpm_solver's), lambdas evenly spaced between theirs; "time_uniform", timesteps evenly
    spaced. Each is mapped to the timestep at the same noise level (interpolated, then
    rounded to distinct timesteps).
    """
    if kind not in SOLVERS:
        raise ValueError(f"unknown solver {kind!r}; expected one of {SOLVERS}")
    spacing = OWN_SPACING[kind] if spacing is None else spacing
    alpha_bars = np.asarray(alpha_bars, np.float64)
    alpha_bars = alpha_bars[: first_sampling_timestep(alpha_bars, steps) + 1]
    timesteps = len(alpha_bars)
    t = np.arange(timesteps, dtype=np.float64)
    if spacing == "karras":
        log_sigmas = np.log(karras_sigmas_of(alpha_bars))  # increasing in t
        grid = karras_sigmas(np.exp(log_sigmas[0]), np.exp(log_sigmas[-1]), steps, rho)
        fractional = np.interp(np.log(grid), log_sigmas, t)
    elif spacing == "log_snr":
        lambdas = lambdas_of(alpha_bars)  # decreasing in t
        grid = log_snr_lambdas(lambdas[-1], lambdas[0], steps)
        fractional = np.interp(grid, lambdas[::-1], t[::-1])
    elif spacing == "time_uniform":
        fractional = np.linspace(t[-1], 0.0, steps) if steps > 1 else t[-1:]
    else:
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
    return distinct_descending(fractional, timesteps)


# --------------------------------------------------------------------------- steps
# Each takes x at (alpha, sigma) and returns x at (alpha_next, sigma_next); any float dtype.


def euler_step(x: Any, denoised: Any, alpha: Any, sigma: Any, alpha_next: Any, sigma_next: Any):
    """x~' = x~ + (s' - s) eps_hat with eps_hat = (x~ - D) / s; in x's own space this is
    alpha' D + sigma' eps_hat, DDIM's deterministic step (Karras et al. 2022, sec. 4)."""
    eps = (x - alpha * denoised) / sigma
    return alpha_next * denoised + sigma_next * eps


def heun_step(
    x: Any,
    denoised: Any,
    alpha: Any,
    sigma: Any,
    alpha_next: Any,
    sigma_next: Any,
    denoise_next: Callable[[Any], Any],
):
    """Heun's method (Karras et al. 2022, Algorithm 1): an Euler step to s', then the step
    again with the mean of the slopes eps_hat at both ends."""
    eps = (x - alpha * denoised) / sigma
    x_euler = alpha_next * denoised + sigma_next * eps
    eps_next = (x_euler - alpha_next * denoise_next(x_euler)) / sigma_next
    slope = 0.5 * (eps + eps_next)
    return alpha_next * (x / alpha + (sigma_next / alpha_next - sigma / alpha) * slope)


def dpm_solver_2m_step(
    x: Any,
    denoised: Any,
    previous: Any,
    alpha: Any,
    sigma: Any,
    alpha_next: Any,
    sigma_next: Any,
    h: Any,
    h_previous: Any,
    first: Any,
):
    """One DPM-Solver++ 2M step (Lu et al. 2022, Algorithm 2) over h = lambda' - lambda:

    x' = (sigma' / sigma) x - alpha' (e^-h - 1) D~,
    D~ = D + (D - D_prev) / (2 r), r = h_prev / h (first order, D~ = D, on the first step).
    """
    correction = tf.where(first, tf.zeros_like(h), h / (2.0 * h_previous))
    blended = denoised + correction * (denoised - previous)
    return (sigma_next / sigma) * x - alpha_next * tf.math.expm1(-h) * blended


def dpm_solver_3m_step(
    x: Any,
    denoised: Any,
    previous: Any,
    before: Any,
    alpha: Any,
    sigma: Any,
    alpha_next: Any,
    sigma_next: Any,
    h: Any,
    h_previous: Any,
    h_before: Any,
):
    """One third-order DPM-Solver++ multistep step (Lu et al. 2022, multistep order 3 in the
    data prediction; diffusers' `multistep_dpm_solver_third_order_update`) from D, D_prev and
    D_before, h = lambda' - lambda and the two gaps before it (r0 = h_prev / h, r1 =
    h_before / h):

    x' = (sigma' / sigma) x - alpha' phi1 D + alpha' phi2 D1 - alpha' phi3 D2,
    phi1 = e^-h - 1, phi2 = phi1 / h + 1, phi3 = phi2 / h - 1 / 2,
    D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1), D2 = (D1_0 - D1_1) / (r0 + r1),
    D1_0 = (D - D_prev) / r0, D1_1 = (D_prev - D_before) / r1.

    It needs two earlier steps: `integrate` takes dpm_solver_2m_step for the first two.
    As both references write it, D2 (~ h^2 D'' / 2) carries half the weight a Taylor
    expansion of D in lambda gives it (-2 alpha' phi3): its local error is O(h^3), not
    O(h^4), smaller than 2M's but of the same order (measured on a 1-D Gaussian).
    """
    r0, r1 = h_previous / h, h_before / h
    slope, slope_previous = (denoised - previous) / r0, (previous - before) / r1
    d1 = slope + (r0 / (r0 + r1)) * (slope - slope_previous)
    d2 = (slope - slope_previous) / (r0 + r1)
    phi1 = tf.math.expm1(-h)
    phi2 = phi1 / h + 1.0
    phi3 = phi2 / h - 0.5
    return (sigma_next / sigma) * x - alpha_next * (phi1 * denoised - phi2 * d1 + phi3 * d2)


# --------------------------------------------------------------------------- the loop


def integrate(
    kind: str,
    x: tf.Tensor,
    alphas: Any,
    sigmas: Any,
    denoise: DataPrediction,
    order: int = 2,
) -> tf.Tensor:
    """Carry x from the first grid point to the last (every sigma > 0) with the solver
    `kind`, as one `tf.while_loop`. `denoise(x, i)` is the data prediction at point i;
    `order` is dpm_solver's (2M or 3M; the others ignore it).

    Denoiser evaluations: one per step for euler and dpm_solver, two for heun.
    """
    if kind not in SOLVERS:
        raise ValueError(f"unknown solver {kind!r}; expected one of {SOLVERS}")
    if order not in DPM_SOLVER_ORDERS:
        raise ValueError(f"order must be one of {DPM_SOLVER_ORDERS}, got {order!r}")
    dtype = x.dtype
    alphas = tf.constant(np.asarray(alphas, np.float64), dtype)
    sigmas = tf.constant(np.asarray(sigmas, np.float64), dtype)
    lambdas = tf.math.log(alphas) - tf.math.log(sigmas)
    transitions = int(alphas.shape[0]) - 1

    def lower_order(i: tf.Tensor) -> tf.Tensor:
        """3M takes 2M's step (first order on the first) until two earlier D are known,
        and, with fewer than LOWER_ORDER_FINAL steps, on its last step before sigma = 0."""
        last = i == transitions - 1 if transitions + 1 < LOWER_ORDER_FINAL else False
        return tf.logical_or(i < 2, last)

    def more(i: tf.Tensor, x: tf.Tensor, previous: tf.Tensor, before: tf.Tensor) -> tf.Tensor:
        return i < transitions

    def body(
        i: tf.Tensor, x: tf.Tensor, previous: tf.Tensor, before: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        alpha, sigma, alpha_next, sigma_next = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        denoised = denoise(x, i)
        if kind == "euler":
            x_next = euler_step(x, denoised, alpha, sigma, alpha_next, sigma_next)
        elif kind == "heun":
            x_next = heun_step(
                x, denoised, alpha, sigma, alpha_next, sigma_next, lambda y: denoise(y, i + 1)
            )
        else:
            h = lambdas[i + 1] - lambdas[i]
            h_previous = lambdas[i] - lambdas[tf.maximum(i - 1, 0)]
            second = dpm_solver_2m_step(
                x, denoised, previous, alpha, sigma, alpha_next, sigma_next, h, h_previous, i == 0
            )
            if order == 2:
                x_next = second
            else:
                h_before = lambdas[tf.maximum(i - 1, 0)] - lambdas[tf.maximum(i - 2, 0)]
                x_next = tf.cond(
                    lower_order(i),
                    lambda: second,
                    lambda: dpm_solver_3m_step(
                        x,
                        denoised,
                        previous,
                        before,
                        alpha,
                        sigma,
                        alpha_next,
                        sigma_next,
                        h,
                        h_previous,
                        h_before,
                    ),
                )
        return i + 1, x_next, denoised, previous

    shape = tf.TensorShape([None, *x.shape[1:]])
    _, x, _, _ = tf.while_loop(
        more,
        body,
        (tf.constant(0), x, tf.zeros_like(x), tf.zeros_like(x)),
        shape_invariants=(tf.TensorShape(()), shape, shape, shape),
    )
    return x
