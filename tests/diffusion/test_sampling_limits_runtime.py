"""The runtime side of `test_sampling_limits.py`: the samplers apply the same rules as the
spec and `gencompile sample` (one definition each, in `gencompile.noise_schedules` and
`gencompile.sampler_configs`), so a config built by hand is refused alike."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gencompile import noise_schedules
from gencompile.runtime import diffusion, diffusion_solvers
from tests.diffusion.test_diffusion_solvers import COSINE, LINEAR, X_T, gaussian_denoiser

SIGMOID = diffusion.NoiseSchedule(noise_schedules.sigmoid_betas(1000))


# --------------------------------------------------------------------------- steps


@pytest.mark.parametrize(
    "config",
    [
        {"type": "ddim", "eta": 0.0},
        {"type": "ddim", "eta": 1.0},
        {"type": "dpm_solver"},
        {"type": "euler"},
        {"type": "heun"},
        {"type": "ddpm"},  # strided: fewer steps than timesteps
    ],
    ids=["ddim", "ddim-eta1", "dpm_solver", "euler", "heun", "ddpm-strided"],
)
def test_samplers_refuse_steps_that_would_start_above_the_clipped_start(config) -> None:
    """Cosine, T = 1000: lambda >= -5.1 down from t = 995, so 996 steps at most. Before,
    997..1000 steps started at t = 996..999 (alpha_bar down to 2.4e-9), where more steps
    gave worse samples."""
    denoise = gaussian_denoiser(COSINE, "epsilon")
    for steps in (997, 999):
        with pytest.raises(ValueError, match=r"steps must be in \[1, 996\] \(the schedule's"):
            diffusion.Sampler(denoise, COSINE, {**config, "steps": steps}, "epsilon", (1,))
    most = diffusion.Sampler(denoise, COSINE, {**config, "steps": 996}, "epsilon", (1,))
    assert most.timesteps[0] == 995 and len(most.timesteps) == 996


def test_ddpm_through_every_timestep_starts_at_t_minus_1_on_any_schedule() -> None:
    denoise = gaussian_denoiser(COSINE, "epsilon")
    for config in ({"type": "ddpm"}, {"type": "ddpm", "steps": 1000}):
        sampler = diffusion.Sampler(denoise, COSINE, config, "epsilon", (1,))
        np.testing.assert_array_equal(sampler.timesteps, np.arange(999, -1, -1))
    with pytest.raises(ValueError, match=r"steps must be in \[1, 996\]"):
        diffusion.Sampler(denoise, COSINE, {"type": "ddpm", "steps": 998}, "epsilon", (1,))


@pytest.mark.parametrize(
    ("schedule", "most"),
    [(COSINE, 996), (SIGMOID, 999), (LINEAR, 1000)],
    ids=["cosine", "sigmoid", "linear"],
)
def test_the_most_steps_are_one_per_timestep_from_the_solvers_start(schedule, most) -> None:
    lambdas = diffusion_solvers.lambdas_of(schedule.alpha_bars)
    assert noise_schedules.max_sampling_steps(schedule.alpha_bars) == most
    assert lambdas[most - 1] >= diffusion_solvers.LAMBDA_MIN
    assert most == schedule.timesteps or lambdas[most] < diffusion_solvers.LAMBDA_MIN
    for kind in diffusion_solvers.SOLVERS:
        visited = diffusion_solvers.solver_timesteps(kind, schedule.alpha_bars, most)
        np.testing.assert_array_equal(visited, np.arange(most - 1, -1, -1))


@pytest.mark.parametrize(
    ("config", "timesteps"),
    [
        ({"type": "linear", "beta_start": 1.0e-4, "beta_end": 0.02}, 1000),
        ({"type": "linear", "beta_start": 1.0e-3, "beta_end": 0.05}, 40),
        ({"type": "cosine", "offset": 0.008, "max_beta": 0.999}, 250),
        ({"type": "cosine", "offset": 0.008, "max_beta": 0.999}, 4000),
        ({"type": "sigmoid", "start": -3.0, "end": 3.0, "tau": 1.0, "max_beta": 0.999}, 1000),
        ({"type": "sigmoid", "start": -1.5, "end": 2.7, "tau": 0.6, "max_beta": 0.99}, 300),
    ],
)
def test_the_plain_python_schedule_is_the_runtimes(config, timesteps) -> None:
    """The compiler and `gencompile sample` decide with `noise_schedules` (no NumPy); the
    model samples with `NoiseSchedule`: the same alpha_bars, bit for bit, so the same step
    limit."""
    plain = noise_schedules.schedule_alpha_bars(config, timesteps)
    runtime = diffusion.NoiseSchedule.from_config(config, timesteps).alpha_bars
    np.testing.assert_array_equal(plain, runtime)
    assert noise_schedules.max_sampling_steps(plain) == noise_schedules.max_sampling_steps(runtime)


# --------------------------------------------------------------------------- float32


@pytest.mark.parametrize(
    ("betas", "words"),
    [
        (noise_schedules.linear_betas(1000, 1e-8, 0.02), "alpha_bar_0 = 1 - 1e-08 rounds to 1"),
        (noise_schedules.cosine_betas(20000, offset=0.0), "alpha_bar_0 = 1 - 6.17e-09 rounds to 1"),
        (noise_schedules.linear_betas(20000, 1e-4, 0.02), "alpha_bar_19999 = 1.3e-88 is below"),
    ],
    ids=["linear-beta-start-1e-8", "cosine-offset-0-T20000", "linear-T20000"],
)
def test_a_schedule_float32_cannot_hold_is_refused_not_sampled_into_nan(betas, words) -> None:
    with pytest.raises(ValueError, match="cannot sample in float32") as refused:
        diffusion.NoiseSchedule(betas)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    "betas",
    [
        noise_schedules.linear_betas(1000, 3e-8, 0.02),
        noise_schedules.linear_betas(8000, 1e-4, 0.02),
    ],
    ids=["linear-beta-start-3e-8", "linear-T8000"],
)
def test_schedules_at_the_edge_of_float32_sample_and_weigh_finitely(betas) -> None:
    """alpha_bar_0 = 1 - 2^-24 and alpha_bar_{T-1} = 7e-36 in float32: no NaN."""
    schedule = diffusion.NoiseSchedule(betas)
    t = tf.range(schedule.timesteps)
    for prediction in diffusion.PREDICTIONS:
        assert np.all(np.isfinite(schedule.min_snr_weight(t, prediction, 5.0).numpy()))
    denoise = gaussian_denoiser(schedule, "epsilon")
    for config in ({"type": "ddpm"}, {"type": "ddim", "steps": 20}, {"type": "dpm_solver"}):
        for clip in (None, (-1.0, 1.0)):
            sampler = diffusion.Sampler(denoise, schedule, config, "epsilon", (1,), clip)
            assert np.all(np.isfinite(sampler(X_T, tf.constant([0, 0])).numpy())), config


# --------------------------------------------------------------------------- configs


def test_sampling_time_configs_are_checked_and_take_the_specs_defaults() -> None:
    base = diffusion.Sampler(
        gaussian_denoiser(LINEAR, "epsilon"), LINEAR, {"type": "ddim", "steps": 50}, "epsilon", (1,)
    )
    assert base.config == {"type": "ddim", "steps": 50, "eta": 0.0}
    assert len(base.with_config({"type": "dpm_solver"}).timesteps) == 20  # not 1000
    assert base.with_config({"type": "ddim", "eta": 0.5}).eta == 0.5
    assert base.with_config({"type": "ddim", "steps": 50, "eta": 0}) is base
    a = base.with_config({"type": "ddim", "steps": 10, "eta": 0.0})
    assert base.with_config({"eta": 0, "steps": 10, "type": "ddim"}) is a
    for config, words in (
        ({"type": "ddim", "step": 25}, "unknown setting 'step' (did you mean 'steps'?)"),
        ({"type": "euler", "steps": 10, "eta": 1.0}, "'eta' is a setting of ddim"),
        ({"type": "ddpm", "steps": 10, "eta": 0.0}, "'eta' is a setting of ddim"),
        ({"type": "ddim", "steps": 10, "eta": 3.0}, "eta must be a number from 0 to 1"),
        ({"type": "ddim", "steps": 10.9}, "steps must be a whole number >= 1 (got 10.9)"),
        ({"steps": 10}, "a sampler config needs a 'type'"),
    ):
        with pytest.raises(ValueError) as refused:
            base.with_config(config)
        assert words in str(refused.value)
        with pytest.raises(ValueError):
            diffusion.Sampler(base.denoise, LINEAR, config, "epsilon", (1,))
    assert len(base._variants) == 3  # dpm_solver, ddim eta 0.5, ddim 10
