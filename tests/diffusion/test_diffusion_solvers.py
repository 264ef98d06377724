"""The fast samplers (DPM-Solver++ 2M, Euler, Heun) and the sigmoid schedule.

The solvers are checked on 1-D Gaussian data x_0 ~ N(MU, S^2), whose denoiser is known in
closed form, E[x_0 | x_t] = MU + alpha S^2 / (alpha^2 S^2 + sigma^2) (x_t - alpha MU), and
whose probability-flow ODE has an exact solution: in x~ = x / alpha, s = sigma / alpha,
x~(s) - MU = (x~(s_0) - MU) sqrt((S^2 + s^2) / (S^2 + s_0^2)). The exact denoiser is fed
instead of a network, so what is left is the solver's discretisation error.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from gencompile import noise_schedules
from gencompile.runtime import diffusion, diffusion_solvers
from gencompile.sampler_configs import SPACINGS

MU, S = 0.5, 0.4


def exact_x0(x_t, alpha, sigma):
    return MU + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (x_t - alpha * MU)


def exact_flow(x_start, alpha_start, sigma_start, alpha_end, sigma_end):
    """The probability-flow ODE's solution carried from one noise level to another."""
    s_start, s_end = sigma_start / alpha_start, sigma_end / alpha_end
    scale = np.sqrt((S**2 + s_end**2) / (S**2 + s_start**2))
    return alpha_end * (MU + (x_start / alpha_start - MU) * scale)


def continuous_grid(kind: str, points: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, sigma) of a variance-preserving process from s = 80 down to s = 0.02, spaced
    as the solver spaces a model's timesteps (Karras' rho = 7, or uniform in lambda)."""
    s_min, s_max = 0.02, 80.0
    if kind == "dpm_solver":
        s = np.exp(-diffusion_solvers.log_snr_lambdas(-np.log(s_max), -np.log(s_min), points))
    else:
        s = diffusion_solvers.karras_sigmas(s_min, s_max, points)
    alpha = 1.0 / np.sqrt(1.0 + s**2)
    return alpha, s * alpha


def solve_exactly_denoised(kind: str, points: int, x_start: np.ndarray, order: int = 2) -> float:
    """Largest error of the solver's end point against the exact ODE solution (float64)."""
    alphas, sigmas = continuous_grid(kind, points)
    table_alpha, table_sigma = tf.constant(alphas), tf.constant(sigmas)

    def denoise(x: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
        return exact_x0(x, table_alpha[i], table_sigma[i])

    x = tf.constant(x_start, tf.float64)
    solved = diffusion_solvers.integrate(kind, x, alphas, sigmas, denoise, order).numpy()
    expected = exact_flow(x_start, alphas[0], sigmas[0], alphas[-1], sigmas[-1])
    return float(np.max(np.abs(solved - expected)))


@pytest.mark.parametrize(("kind", "order"), [("euler", 1), ("heun", 2), ("dpm_solver", 2)])
def test_solver_error_shrinks_at_the_solvers_order(kind: str, order: int) -> None:
    x_start = np.linspace(-3.0, 3.0, 7)
    points = np.array([16, 32, 64, 128])
    errors = [solve_exactly_denoised(kind, int(n), x_start) for n in points]
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    slope = -np.polyfit(np.log(points), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.2), (errors, slope)


def test_dpm_solver_3m_is_closer_to_the_flow_than_2m_and_its_error_shrinks_faster() -> None:
    """Lu et al.'s multistep order 3 (as diffusers and k-diffusion write it) from 16 to 128
    points: measured errors 1.4-2.9x below 2M's, slope 2.3 (2M: 2.0). Not 3: its first
    steps are of lower order, and its own step's local error is O(h^3) (below)."""
    x_start = np.linspace(-3.0, 3.0, 7)
    points = np.array([16, 32, 64, 128])
    second, third = (
        [solve_exactly_denoised("dpm_solver", int(n), x_start, order) for n in points]
        for order in (2, 3)
    )
    assert all(b < a for a, b in itertools.pairwise(third)), third
    assert all(t < s / 1.3 for s, t in zip(second, third, strict=True)), (second, third)
    slopes = [-np.polyfit(np.log(points), np.log(e), 1)[0] for e in (second, third)]
    assert slopes[1] > slopes[0] + 0.2 and slopes[1] > 2.2, slopes


def lambda_point(lam: float) -> tuple[float, float]:
    """(alpha, sigma) of a variance-preserving process at lambda = log(alpha / sigma)."""
    alpha = 1.0 / np.sqrt(1.0 + np.exp(-2.0 * lam))
    return alpha, alpha * np.exp(-lam)


def one_step_errors(h: float) -> tuple[float, float]:
    """The 2M and 3M steps' errors over one step of size h in lambda from the exact flow,
    given the exact D at the exact points h and 2 h before (a local error)."""
    x_far = np.linspace(-3.0, 3.0, 7)
    far = lambda_point(-3.0)
    points = [lambda_point(-1.0 + h * k) for k in (-2, -1, 0, 1)]
    xs = [exact_flow(x_far, *far, *point) for point in points]
    before, previous, denoised = (exact_x0(x, *p) for x, p in zip(xs[:3], points[:3], strict=True))
    step = (*points[2], *points[3])
    gap = tf.constant(h, tf.float64)
    second = diffusion_solvers.dpm_solver_2m_step(xs[2], denoised, previous, *step, gap, gap, False)
    third = diffusion_solvers.dpm_solver_3m_step(
        xs[2], denoised, previous, before, *step, gap, gap, gap
    )
    return tuple(float(np.abs(np.asarray(x) - xs[3]).max()) for x in (second, third))


def test_dpm_solver_3m_steps_local_error_is_smaller_than_2ms_and_of_the_same_order() -> None:
    """Halving h divides both local errors by ~8 (O(h^3); measured 8.2-8.6 and 9.2-11.6)
    where a third-order step's would fall ~16-fold: the references' D2 term carries half of
    its Taylor weight. The 3M step's error is still 3.3-5.3x below 2M's."""
    errors = np.array([one_step_errors(h) for h in (0.2, 0.1, 0.05)])
    assert np.all(errors[:, 1] < errors[:, 0] / 3), errors
    falls = errors[:-1] / errors[1:]
    assert np.all((falls > 7.0) & (falls < 13.0)), falls


def test_euler_is_ddims_deterministic_step() -> None:
    rng = np.random.default_rng(0)
    x, x0 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    alpha_bar, alpha_bar_prev = 0.3, 0.7
    alpha, sigma = np.sqrt(alpha_bar), np.sqrt(1 - alpha_bar)
    alpha_next, sigma_next = np.sqrt(alpha_bar_prev), np.sqrt(1 - alpha_bar_prev)
    eps = (x - alpha * x0) / sigma
    euler = diffusion_solvers.euler_step(x, x0, alpha, sigma, alpha_next, sigma_next)
    ab, ab_prev = tf.constant(alpha_bar, tf.float64), tf.constant(alpha_bar_prev, tf.float64)
    ddim = diffusion.ddim_step(x0, eps, ab, ab_prev, tf.constant(0.0, tf.float64), np.zeros_like(x))
    np.testing.assert_allclose(euler, np.asarray(ddim), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- the Sampler

LINEAR = diffusion.NoiseSchedule(noise_schedules.linear_betas(1000, 1e-4, 0.02))


def gaussian_denoiser(schedule: diffusion.NoiseSchedule, prediction: str):
    """The exact denoiser of N(MU, S^2), answering in `prediction`'s parameterisation."""

    def denoise(x_t, t, labels, guidance_scale):
        alpha_bar = tf.reshape(schedule.alpha_bar(t), [-1, 1])
        x0 = exact_x0(x_t, tf.sqrt(alpha_bar), tf.sqrt(1.0 - alpha_bar))
        eps = diffusion.epsilon_from_x0(x_t, x0, alpha_bar)
        return diffusion.prediction_target(prediction, x0, eps, alpha_bar)

    return denoise


X_T = tf.constant(np.linspace(-3.0, 3.0, 13).reshape(-1, 1), tf.float32)


def exact_samples(schedule: diffusion.NoiseSchedule) -> np.ndarray:
    """Where the ODE carries X_T, taken at the noisiest timestep, to the data (s = 0)."""
    ab = schedule.alpha_bars[-1]
    return MU + S * (X_T.numpy() - np.sqrt(ab) * MU) / np.sqrt(ab * S**2 + 1.0 - ab)


# Largest error of the samples of an exactly denoised N(MU, S^2) against the exact flow at
# about 20 denoiser calls (DDIM: 0.20); measured 0.0175, 0.18, 0.038.
SAMPLERS = [
    ({"type": "dpm_solver", "steps": 20}, 0.025),
    ({"type": "euler", "steps": 20}, 0.25),
    ({"type": "heun", "steps": 25}, 0.05),
]


@pytest.mark.parametrize(("config", "tolerance"), SAMPLERS)
def test_samplers_follow_the_flow_whatever_the_parameterisation(config, tolerance) -> None:
    """Each prediction converts exactly to D(x_t), so the samples agree to float32 rounding."""
    drawn = {}
    for prediction in diffusion.PREDICTIONS:
        sampler = diffusion.Sampler(
            gaussian_denoiser(LINEAR, prediction), LINEAR, config, prediction, (1,)
        )
        drawn[prediction] = sampler(X_T, tf.constant([0, 0])).numpy()
    for prediction in ("v", "x0"):
        np.testing.assert_allclose(drawn[prediction], drawn["epsilon"], rtol=0, atol=1e-5)
    error = np.abs(drawn["epsilon"] - exact_samples(LINEAR)).max()
    assert error < tolerance


def test_dpm_solver_is_closer_to_the_flow_than_ddim_at_the_same_calls() -> None:
    errors = {}
    for kind in ("ddim", "dpm_solver"):
        sampler = diffusion.Sampler(
            gaussian_denoiser(LINEAR, "epsilon"),
            LINEAR,
            {"type": kind, "steps": 10},
            "epsilon",
            (1,),
        )
        errors[kind] = np.abs(
            sampler(X_T, tf.constant([0, 0])).numpy() - exact_samples(LINEAR)
        ).max()
    assert errors["dpm_solver"] < errors["ddim"] / 3, errors


def test_solvers_count_their_denoiser_calls_and_ignore_the_seed() -> None:
    calls = []

    def counting(x_t, t, labels, guidance_scale):
        calls.append(1)  # runs once per call site while tracing, then never
        return gaussian_denoiser(LINEAR, "epsilon")(x_t, t, labels, guidance_scale)

    heun = diffusion.Sampler(counting, LINEAR, {"type": "heun", "steps": 6}, "epsilon", (1,))
    assert heun.steps == 11 and len(heun.timesteps) == 6
    first = heun(X_T, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(first, heun(X_T, tf.constant([9, 9])).numpy())
    assert heun.traces == 1 and len(calls) == 3  # step, corrector, last step: not unrolled


COSINE = diffusion.NoiseSchedule(noise_schedules.cosine_betas(1000))


@pytest.mark.parametrize("kind", diffusion_solvers.SOLVERS)
def test_solvers_on_a_schedule_ending_at_zero_do_not_amplify_the_denoisers_error(kind) -> None:
    """The cosine schedule's last timestep has alpha ~ 5e-5 (lambda -9.9): a first step
    from there multiplied an epsilon error of 0.02 ~30-fold, which moved the samples of
    N(MU, S^2) by 0.24-4.2. Starting at lambda >= LAMBDA_MIN, they move by ~0.05."""
    exact = gaussian_denoiser(COSINE, "epsilon")

    def slightly_wrong(x_t, t, labels, guidance_scale):
        return exact(x_t, t, labels, guidance_scale) + 0.02

    config = {"type": kind, "steps": 25 if kind == "heun" else 20}
    drawn = {}
    for name, denoise in (("exact", exact), ("wrong", slightly_wrong)):
        sampler = diffusion.Sampler(denoise, COSINE, config, "epsilon", (1,))
        drawn[name] = sampler(X_T, tf.constant([0, 0])).numpy()
    lambdas = diffusion_solvers.lambdas_of(COSINE.alpha_bars)
    start = sampler.timesteps[0]
    assert lambdas[start] >= diffusion_solvers.LAMBDA_MIN > lambdas[start + 1]
    assert np.abs(drawn["wrong"] - drawn["exact"]).max() < 0.1  # before: 0.24 to 4.2


@pytest.mark.parametrize(
    ("kind", "spacing"),
    [*((kind, None) for kind in diffusion_solvers.SOLVERS), *(("dpm_solver", s) for s in SPACINGS)],
)
@pytest.mark.parametrize("steps", [1, 2, 20, 50, 1000])
def test_solver_timesteps_are_distinct_descending_and_span_the_schedule(
    kind, spacing, steps
) -> None:
    visited = diffusion_solvers.solver_timesteps(kind, LINEAR.alpha_bars, steps, spacing=spacing)
    assert len(visited) == steps and visited[0] == 999
    assert np.all(np.diff(visited) < 0) and visited.min() >= 0
    if steps > 1:
        assert visited[-1] == 0


def test_dpm_solver_timesteps_are_evenly_spaced_in_log_snr() -> None:
    visited = diffusion_solvers.solver_timesteps("dpm_solver", LINEAR.alpha_bars, 20)
    lambdas = diffusion_solvers.lambdas_of(LINEAR.alpha_bars[visited])
    gaps = np.diff(lambdas)
    # rounding to whole timesteps moves each gap by little where timesteps are dense
    assert np.all(gaps > 0) and np.ptp(gaps[:-3]) < 0.1 * gaps.mean()


def test_dpm_solvers_spacings_are_its_default_karras_and_evenly_spaced_timesteps() -> None:
    alpha_bars = COSINE.alpha_bars
    grid = {
        s: diffusion_solvers.solver_timesteps("dpm_solver", alpha_bars, 20, 7.0, s)
        for s in SPACINGS
    }
    np.testing.assert_array_equal(
        grid["log_snr"], diffusion_solvers.solver_timesteps("dpm_solver", COSINE.alpha_bars, 20)
    )
    # karras: the sigmas euler and heun visit (one grid function per spacing)
    np.testing.assert_array_equal(
        grid["karras"], diffusion_solvers.solver_timesteps("euler", COSINE.alpha_bars, 20)
    )
    # time_uniform: from the first solver timestep (995 on the cosine) to 0, evenly spaced
    assert grid["time_uniform"][0] == 995 and grid["time_uniform"][-1] == 0
    assert np.ptp(np.diff(grid["time_uniform"])) <= 1
    assert len({tuple(g) for g in grid.values()}) == 3  # three distinct grids
    # evenly spaced timesteps are the sparsest at low noise (before the last: 2, 6 and 52)
    assert max(grid["log_snr"][-2], grid["karras"][-2]) < grid["time_uniform"][-2] / 5


def test_karras_sigmas_fall_from_the_largest_to_the_smallest_as_rho_spaces_them() -> None:
    sigmas = diffusion_solvers.karras_sigmas(0.002, 80.0, 10, rho=7.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == pytest.approx(0.002)
    np.testing.assert_allclose(np.diff(sigmas ** (1 / 7)), np.diff(sigmas ** (1 / 7))[0])


def diffusers_dpm_solver_2m(x, visited_alpha_bars, data_prediction):
    """diffusers' DPMSolverMultistepScheduler (dpmsolver++, midpoint, final_sigmas_type
    "zero") written out in sigma terms over the given timesteps: a first-order first step,
    then D0 + D1 / 2 with D1 = (m0 - m1) / r0, and a first-order last step to sigma = 0."""
    sigmas = np.append(np.sqrt((1 - visited_alpha_bars) / visited_alpha_bars), 0.0)
    outputs = []
    for i in range(len(visited_alpha_bars)):
        m0 = data_prediction(x, i)
        outputs.append(m0)
        alpha_s, sigma_s = 1 / np.sqrt(sigmas[i] ** 2 + 1), sigmas[i] / np.sqrt(sigmas[i] ** 2 + 1)
        if sigmas[i + 1] == 0.0:
            return m0  # (sigma_t / sigma_s) x - alpha_t (e^-h - 1) m0 with sigma_t = 0
        alpha_t = 1 / np.sqrt(sigmas[i + 1] ** 2 + 1)
        sigma_t = sigmas[i + 1] * alpha_t
        h = np.log(alpha_t / sigma_t) - np.log(alpha_s / sigma_s)
        blended = m0
        if i > 0:
            previous = sigmas[i - 1] / np.sqrt(sigmas[i - 1] ** 2 + 1)
            alpha_p = 1 / np.sqrt(sigmas[i - 1] ** 2 + 1)
            r0 = (np.log(alpha_s / sigma_s) - np.log(alpha_p / previous)) / h
            blended = m0 + 0.5 * (m0 - outputs[-2]) / r0
        x = (sigma_t / sigma_s) * x - alpha_t * np.expm1(-h) * blended
    raise AssertionError("the last sigma is 0")


def diffusers_dpm_solver_3m(x, visited_alpha_bars, data_prediction):
    """diffusers' DPMSolverMultistepScheduler with solver_order=3 (dpmsolver++, midpoint,
    lower_order_final, final_sigmas_type "zero") in lambda terms: first order on the first
    step, 2M on the second, then multistep_dpm_solver_third_order_update; a 2M step on the
    last but one of fewer than 15 steps, and a first-order last step to sigma = 0."""
    alpha = np.sqrt(visited_alpha_bars)
    sigma = np.sqrt(1 - visited_alpha_bars)
    lam = np.log(alpha) - np.log(sigma)
    count = len(visited_alpha_bars)
    m = []
    for i in range(count):
        m.append(data_prediction(x, i))
        if i == count - 1:
            return m[-1]
        h = lam[i + 1] - lam[i]
        first = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * np.expm1(-h) * m[-1]
        if i == 0:
            x = first
        elif i == 1 or (i == count - 2 and count < 15):
            r0 = (lam[i] - lam[i - 1]) / h
            x = first - 0.5 * alpha[i + 1] * np.expm1(-h) * (m[-1] - m[-2]) / r0
        else:
            r0, r1 = (lam[i] - lam[i - 1]) / h, (lam[i - 1] - lam[i - 2]) / h
            d1_0, d1_1 = (m[-1] - m[-2]) / r0, (m[-2] - m[-3]) / r1
            d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            x = (
                first
                + alpha[i + 1] * (np.expm1(-h) / h + 1.0) * d1
                - alpha[i + 1] * ((np.expm1(-h) + h) / h**2 - 0.5) * d2
            )
    raise AssertionError("the last step returns")


@pytest.mark.parametrize("steps", [2, 10, 20])
def test_dpm_solver_sampler_matches_diffusers_multistep_update(steps: int) -> None:
    """On the same timesteps (ours) and a nonlinear data prediction, the Sampler's
    dpm_solver is diffusers' DPM-Solver++ 2M step for step, the last to x_0 = D included."""
    schedule = diffusion.NoiseSchedule(noise_schedules.linear_betas(1000, 1e-4, 0.02))

    def x0_of(x, alpha_bar, tanh=np.tanh):  # any smooth function of (x_t, t) will do
        return tanh(1.5 * x) * (1.0 - 0.5 * alpha_bar) + 0.3 * alpha_bar

    def denoise(x_t, t, labels, guidance_scale):
        alpha_bar = tf.reshape(tf.cast(schedule.alpha_bar(t), x_t.dtype), [-1, 1])
        return diffusion.epsilon_from_x0(x_t, x0_of(x_t, alpha_bar, tf.tanh), alpha_bar)

    sampler = diffusion.Sampler(
        denoise, schedule, {"type": "dpm_solver", "steps": steps}, "epsilon", (1,)
    )
    ours = sampler(X_T, tf.constant([0, 0])).numpy()
    alpha_bars = schedule.alpha_bars[sampler.timesteps]
    theirs = diffusers_dpm_solver_2m(
        X_T.numpy().astype(np.float64), alpha_bars, lambda x, i: x0_of(x, alpha_bars[i])
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [3, 10, 20])
def test_dpm_solver_3m_sampler_matches_diffusers_third_order_update(spacing, steps) -> None:
    """As above with solver_order=3, on each spacing's timesteps (10 steps: the 2M step
    before the last one)."""
    schedule = diffusion.NoiseSchedule(noise_schedules.linear_betas(1000, 1e-4, 0.02))

    def x0_of(x, alpha_bar, tanh=np.tanh):
        return tanh(1.5 * x) * (1.0 - 0.5 * alpha_bar) + 0.3 * alpha_bar

    def denoise(x_t, t, labels, guidance_scale):
        alpha_bar = tf.reshape(tf.cast(schedule.alpha_bar(t), x_t.dtype), [-1, 1])
        return diffusion.epsilon_from_x0(x_t, x0_of(x_t, alpha_bar, tf.tanh), alpha_bar)

    config = {"type": "dpm_solver", "steps": steps, "order": 3, "spacing": spacing}
    sampler = diffusion.Sampler(denoise, schedule, config, "epsilon", (1,))
    ours = sampler(X_T, tf.constant([0, 0])).numpy()
    alpha_bars = schedule.alpha_bars[sampler.timesteps]
    theirs = diffusers_dpm_solver_3m(
        X_T.numpy().astype(np.float64), alpha_bars, lambda x, i: x0_of(x, alpha_bars[i])
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)
    second = diffusion.Sampler(denoise, schedule, {**config, "order": 2}, "epsilon", (1,))
    if steps > 3:  # from the third step on the orders differ
        assert np.abs(second(X_T, tf.constant([0, 0])).numpy() - ours).max() > 1e-4


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("source", diffusion.PREDICTIONS)
@pytest.mark.parametrize("destination", diffusion.PREDICTIONS)
def test_prediction_conversions_round_trip(source, destination) -> None:
    """Over every noise level of a schedule, the last (alpha_bar near 0) and the first (near
    1, where x_0 -> eps divides by sigma ~ 0.01) included. In float64: in float32 that
    division alone costs 1e-5 at t = 0, which is why the samplers convert once per step."""
    rng = np.random.default_rng(3)
    alpha_bar = diffusion.NoiseSchedule(noise_schedules.sigmoid_betas(1000)).alpha_bars.reshape(
        -1, 1
    )
    x_t = tf.constant(rng.normal(size=(1000, 4)), tf.float64)
    output = tf.constant(rng.normal(size=(1000, 4)), tf.float64)
    there = diffusion.convert(output, x_t, tf.constant(alpha_bar), source, destination)
    back = diffusion.convert(there, x_t, tf.constant(alpha_bar), destination, source)
    np.testing.assert_allclose(back.numpy(), output.numpy(), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- sigmoid schedule


def chen_sigmoid_gamma(u: np.ndarray, start: float, end: float, tau: float) -> np.ndarray:
    """Chen (2023), Algorithm 1's sigmoid_schedule, written out independently."""
    v_start, v_end = 1 / (1 + np.exp(-start / tau)), 1 / (1 + np.exp(-end / tau))
    output = 1 / (1 + np.exp(-(u * (end - start) + start) / tau))
    return (v_end - output) / (v_end - v_start)


@pytest.mark.parametrize(("start", "end", "tau"), [(-3.0, 3.0, 1.0), (0.0, 3.0, 1.1), (-3, 3, 0.5)])
def test_sigmoid_schedule_is_monotone_in_the_unit_interval(start, end, tau) -> None:
    config = {"type": "sigmoid", "start": start, "end": end, "tau": tau, "max_beta": 0.999}
    schedule = diffusion.NoiseSchedule.from_config(config, 1000)
    alpha_bars = schedule.alpha_bars
    assert np.all((alpha_bars > 0) & (alpha_bars < 1)) and np.all(np.diff(alpha_bars) < 0)
    assert np.all(schedule.betas <= 0.999)
    steps = np.arange(1, 1000)  # the last step's beta is clipped
    np.testing.assert_allclose(
        alpha_bars[:-1], chen_sigmoid_gamma(steps / 1000, start, end, tau), rtol=1e-10
    )
