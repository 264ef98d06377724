"""The runtime side of `test_sampling_limits.py`: the samplers apply the same rules as the
spec and `gencompile sample` (one definition, in `gencompile.sampler_configs`), so a config
built by hand is refused alike."""

from __future__ import annotations

import pytest

from gencompile.runtime import diffusion
from tests.diffusion.test_diffusion_solvers import LINEAR, gaussian_denoiser

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
