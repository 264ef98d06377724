"""DDIM's and strided DDPM's timesteps: trailing spacing, from the timestep the ODE solvers
start at.

On a schedule that ends at alpha_bar ~ 0 (cosine: 5e-5 at t = 999), a first DDIM step from
T - 1 multiplied an epsilon model's error ~30-140 fold, and so did a first DDPM step when it
strides (fewer steps than timesteps). DDIM, its noisy (eta > 0) and guided paths, DDIM
inversion and strided DDPM now start at the noisiest timestep with lambda >= LAMBDA_MIN, as
the solvers do; on the linear 1e-4..0.02 schedule that is still T - 1. DDPM through every
timestep starts at T - 1 on any schedule.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import yaml

from gencompile import noise_schedules
from gencompile.runtime import diffusion, diffusion_solvers
from gencompile.runtime.latent import ddim_invert
from tests.diffusion.test_diffusion_solvers import COSINE, LINEAR, X_T, gaussian_denoiser

SPECS = Path(__file__).resolve().parents[2] / "specs"
SIGMOID = diffusion.NoiseSchedule(noise_schedules.sigmoid_betas(1000))


@pytest.mark.parametrize("steps", [1, 10, 50, 1000])
def test_strided_timesteps_on_the_linear_schedule_are_unchanged(steps: int) -> None:
    """lambda at t = 999 is -5.06 >= LAMBDA_MIN: the grid is the old one from T - 1."""
    visited = diffusion.strided_timesteps(LINEAR.alpha_bars, steps)
    np.testing.assert_array_equal(visited, diffusion.sampling_timesteps(1000, steps))
    assert visited[0] == 999


def test_the_swissroll_specs_ddim_grid_is_unchanged() -> None:
    """specs/diffusion_swissroll.yaml's 50 DDIM steps visit 999, 979, ..., 19 as before, so
    its samples (same weights, same steps) stay bit-identical."""
    model = yaml.safe_load((SPECS / "diffusion_swissroll.yaml").read_text())["model"]
    assert model["sampler"] == {"type": "ddim", "steps": 50, "eta": 0.0}
    schedule = diffusion.NoiseSchedule.from_config(model["schedule"], model["timesteps"])
    np.testing.assert_array_equal(
        diffusion.strided_timesteps(schedule.alpha_bars, 50), np.arange(999, 0, -20)
    )


@pytest.mark.parametrize(("schedule", "first"), [(COSINE, 995), (SIGMOID, 998)])
def test_ddim_starts_where_the_solvers_do_on_schedules_ending_at_zero(schedule, first) -> None:
    lambdas = diffusion_solvers.lambdas_of(schedule.alpha_bars)
    visited = diffusion.strided_timesteps(schedule.alpha_bars, 50)
    assert visited[0] == first
    assert lambdas[first] >= diffusion_solvers.LAMBDA_MIN > lambdas[first + 1]
    for kind in diffusion_solvers.SOLVERS:
        assert diffusion_solvers.solver_timesteps(kind, schedule.alpha_bars, 20)[0] == first
    # only the start moves: the trailing spacing over timesteps 0..first
    np.testing.assert_array_equal(visited, diffusion.sampling_timesteps(first + 1, 50))
    assert visited[-1] == 19 and np.all(np.isin(np.diff(visited), [-20, -19]))
    # at most one step per timestep below the clipped start, and no more
    np.testing.assert_array_equal(
        diffusion.strided_timesteps(schedule.alpha_bars, first + 1), np.arange(first, -1, -1)
    )
    for steps in (first + 2, 1000, 1001):
        with pytest.raises(ValueError, match=rf"steps must be in \[1, {first + 1}\]"):
            diffusion.strided_timesteps(schedule.alpha_bars, steps)


@pytest.mark.parametrize(
    "config",
    [
        {"type": "ddim", "steps": 50, "eta": 0.0},
        {"type": "ddim", "steps": 50, "eta": 0.5},
        {"type": "ddpm", "steps": 20},
    ],
    ids=["ddim-eta0", "ddim-eta0.5", "ddpm-20"],
)
def test_strided_sampling_on_the_cosine_schedule_does_not_amplify_an_epsilon_models_error(
    config,
) -> None:
    """An epsilon error of 0.02 on the exact denoiser of N(MU, S^2): from t = 999 (alpha
    ~ 5e-5) DDIM's 50 steps moved the samples by 4.9 (eta 0) and 2.0 (eta 0.5), DDPM's 20
    by 0.42; from t = 995, by 0.080, 0.050 and 0.027 (DDPM through all 1000: 0.025)."""
    exact = gaussian_denoiser(COSINE, "epsilon")

    def slightly_wrong(x_t, t, labels, guidance_scale):
        return exact(x_t, t, labels, guidance_scale) + 0.02

    drawn = {}
    for name, denoise in (("exact", exact), ("wrong", slightly_wrong)):
        sampler = diffusion.Sampler(denoise, COSINE, config, "epsilon", (1,))
        drawn[name] = sampler(X_T, tf.constant([3, 4])).numpy()
    assert sampler.timesteps[0] == 995
    assert np.abs(drawn["wrong"] - drawn["exact"]).max() < 0.1


def test_every_strided_path_visits_the_same_grid() -> None:
    """DDIM with eta 0 and eta > 0, a guided call with labels, a `with_config` variant, DDPM
    with as many steps, and DDIM inversion all evaluate the denoiser at strided_timesteps
    and nowhere else; DDPM through every timestep visits them all, from T - 1."""
    exact = gaussian_denoiser(COSINE, "epsilon")
    seen: list[int] = []

    def record(t: tf.Tensor) -> tf.Tensor:
        seen.append(int(t.numpy()[0]))
        return t

    def recording(x_t, t, labels, guidance_scale):
        t = tf.py_function(record, [t], tf.int32)
        return exact(x_t, tf.ensure_shape(t, [None]), labels, guidance_scale)

    expected = list(diffusion.strided_timesteps(COSINE.alpha_bars, 20))
    base = diffusion.Sampler(recording, COSINE, {"type": "ddim", "steps": 20}, "epsilon", (1,))
    calls = {
        "eta 0": lambda: base(X_T, tf.constant([0, 0])),
        "eta 0.5": lambda: base.with_config({"type": "ddim", "steps": 20, "eta": 0.5})(
            X_T, tf.constant([0, 0])
        ),
        "guided": lambda: base(X_T, tf.constant([0, 0]), tf.fill([13], 3), 2.5),
        "ddpm 20": lambda: base.with_config({"type": "ddpm", "steps": 20})(
            X_T, tf.constant([0, 0])
        ),
    }
    for name, call in calls.items():
        seen.clear()
        call()
        assert seen == expected, name
    seen.clear()
    base.with_config({"type": "ddpm"})(X_T, tf.constant([0, 0]))
    assert seen == list(range(999, -1, -1))
    seen.clear()
    model = SimpleNamespace(schedule=COSINE, denoise=recording)
    ddim_invert(model, base, X_T, None, 0.0)
    assert seen == expected[::-1]
