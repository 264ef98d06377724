"""What a diffusion model may be asked to sample with, checked before TensorFlow starts: in
the spec (located at the field, with what to change) and in `gencompile sample`'s options.

- guidance needs the unconditional denoiser that label dropout trains;
- a sampler config is checked and completed as the spec's `model.sampler` is
  (`sampler_configs.resolve_sampler`, the runtime's check).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from gencompile import sampler_configs
from gencompile.compiler.lower import lower
from gencompile.errors import RunError, SpecError
from gencompile.sample_options import model_options, sampler_config
from gencompile.spec import load_spec_text
from gencompile.spec.families.diffusion import Sampler

FILE = "spec.yaml"
BASE = """\
spec_version: 1
name: limits
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [-1.0, 1.0]}
model:
  family: diffusion
  denoiser: {type: mlp, hidden: [16]}
"""
COSINE = {"type": "cosine", "offset": 0.008, "max_beta": 0.999}
LINEAR = {"type": "linear", "beta_start": 1.0e-4, "beta_end": 0.02}


def problem_at(text: str, path: str):
    """The one problem lowering `BASE + text` reports at `path`."""
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(BASE + text, FILE))
    found = [p for p in info.value.problems if p.path == path]
    assert len(found) == 1, "\n".join(str(p) for p in info.value.problems)
    return found[0]


def lowers(text: str):
    return lower(load_spec_text(BASE + text, FILE))


def lock(model: dict) -> dict:
    return {"family": "diffusion", "resolved_spec": {"model": model}}


# --------------------------------------------------------------------------- guidance


def test_guidance_without_label_dropout_is_refused_at_the_field():
    """label_dropout 0 never trains the null class: the default guidance_scale 2 would
    extrapolate from it; only guidance_scale 1 (conditional samples) is sound."""
    text = "  conditional: {num_classes: 10, label_dropout: 0.0}\n"
    problem = problem_at(text, "model.conditional.guidance_scale")
    assert problem.line == BASE.count("\n") + 1 and problem.file == FILE
    assert "guidance_scale 2 samples with unconditional + 2 x" in problem.message
    assert "never trained" in problem.message
    assert "guidance_scale: 1" in problem.hint and "label_dropout > 0 (e.g. 0.1)" in problem.hint
    scale0 = "  conditional: {num_classes: 10, label_dropout: 0.0, guidance_scale: 0}\n"
    assert "guidance_scale 0" in problem_at(scale0, "model.conditional.guidance_scale").message
    plan = lowers("  conditional: {num_classes: 10, label_dropout: 0.0, guidance_scale: 1}\n")
    assert plan.model.guidance_scale == 1.0 and plan.model.label_dropout == 0.0


def test_guidance_one_is_the_sample_option_of_a_model_trained_without_label_dropout():
    model = {"sampler": {"type": "ddim", "steps": 50, "eta": 0.0}, "timesteps": 100}
    model |= {"schedule": LINEAR, "conditional": {"num_classes": 10, "label_dropout": 0.0}}
    options = model_options("diffusion", lock(model), {"guidance": 1.0}, Path("run"))
    assert options == {"guidance_scale": 1.0}
    for scale in (0.0, 2.0):
        with pytest.raises(RunError) as refused:
            model_options("diffusion", lock(model), {"guidance": scale}, Path("run"))
        said = str(refused.value)
        assert f"--guidance {scale:g} mixes in the unconditional denoiser" in said
        assert "(model.conditional.label_dropout: 0)" in said and "use --guidance 1" in said


# --------------------------------------------------------------------------- configs

SPEC_SAMPLER = TypeAdapter(Sampler)


@pytest.mark.parametrize("kind", sampler_configs.SAMPLERS)
def test_a_config_of_a_type_alone_takes_the_specs_defaults(kind):
    spec = SPEC_SAMPLER.validate_python({"type": kind}).model_dump(mode="json")
    assert sampler_configs.resolve_sampler({"type": kind}) == spec == sampler_configs.defaults(kind)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"steps": 10}, "a sampler config needs a 'type': one of ddpm, ddim"),
        ({"type": "dpm_solve"}, "unknown type 'dpm_solve' (did you mean 'dpm_solver'?)"),
        ({"type": "ddim", "step": 25}, "unknown setting 'step' (did you mean 'steps'?)"),
        ({"type": "euler", "steps": 10, "eta": 1.0}, "'eta' is a setting of ddim, not of euler"),
        ({"type": "ddim", "steps": 10, "eta": 3.0}, "eta must be a number from 0 to 1 (got 3.0)"),
        ({"type": "dpm_solver", "rho": 2.0}, "'rho' is a setting of euler and heun"),
        ({"type": "ddim", "steps": 10.9}, "steps must be a whole number >= 1 (got 10.9)"),
        ({"type": "ddim", "steps": 10.0}, "steps must be a whole number >= 1 (got 10.0)"),
        ({"type": "heun", "steps": 0}, "steps must be a whole number >= 1 (got 0)"),
        ({"type": "heun", "rho": float("inf")}, "rho must be a number > 0 (got inf)"),
        ({"type": "ddim", "eta": True}, "eta must be a number from 0 to 1 (got True)"),
    ],
)
def test_configs_the_spec_refuses_are_refused_with_their_fault(config, words):
    with pytest.raises(ValueError) as refused:
        sampler_configs.resolve_sampler(config)
    assert words in str(refused.value) and f"Received: config={config!r}" in str(refused.value)
    if config.get("type") != "ddpm":  # the spec's DDPM takes no steps at all
        with pytest.raises(ValidationError):
            SPEC_SAMPLER.validate_python(config)


def test_equal_configs_resolve_alike_and_ddpm_may_stride():
    assert sampler_configs.resolve_sampler({"eta": 0, "steps": 10, "type": "ddim"}) == {
        "type": "ddim",
        "steps": 10,
        "eta": 0.0,
    }
    assert sampler_configs.resolve_sampler({"type": "ddpm", "steps": 20}) == {
        "type": "ddpm",
        "steps": 20,
    }


@pytest.mark.parametrize(
    "given",
    [{"sampler": kind} for kind in sampler_configs.SAMPLERS]
    + [{"sampler": "ddim", "eta": 0.5, "steps": 7}, {"sampler": "ddpm", "steps": 9}, {"steps": 3}],
)
def test_the_sample_commands_configs_are_valid_configs(given):
    model = {"sampler": {"type": "heun", "steps": 25, "rho": 5.0}, "timesteps": 1000}
    model["schedule"] = COSINE
    config = sampler_config(model, given)
    assert sampler_configs.resolve_sampler(config) == config
