"""What a diffusion model may be asked to sample with, checked before TensorFlow starts: in
the spec (located at the field, with what to change) and in `gencompile sample`'s options.

- guidance needs the unconditional denoiser that label dropout trains;
- DDIM, strided DDPM and the ODE solvers take at most as many steps as fit below the
  noisiest timestep with lambda >= LAMBDA_MIN (`noise_schedules.max_sampling_steps`);
- float32 must hold both ends of the schedule's alpha_bar;
- a sampler config is checked and completed as the spec's `model.sampler` is
  (`sampler_configs.resolve_sampler`, the runtime's check).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from gencompile import noise_schedules, sampler_configs
from gencompile.compiler.lower import lower
from gencompile.errors import RunError, SpecError
from gencompile.sample_options import model_options, sampler_config
from gencompile.spec import load_spec, load_spec_text
from gencompile.spec.families.diffusion import Sampler

ROOT = Path(__file__).resolve().parents[2]
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


# --------------------------------------------------------------------------- steps


def test_the_cosine_schedule_of_1000_timesteps_takes_at_most_996_steps():
    alpha_bars = noise_schedules.schedule_alpha_bars(COSINE, 1000)
    assert noise_schedules.max_sampling_steps(alpha_bars) == 996
    lambdas = [noise_schedules.lambda_of(a) for a in alpha_bars]
    assert lambdas[995] >= noise_schedules.LAMBDA_MIN > lambdas[996]
    linear = noise_schedules.schedule_alpha_bars(LINEAR, 1000)
    assert noise_schedules.max_sampling_steps(linear) == 1000  # lambda(999) = -5.06


@pytest.mark.parametrize("kind", ["ddim", "dpm_solver", "euler", "heun"])
def test_steps_beyond_the_clipped_start_are_located(kind):
    problem = problem_at(f"  sampler: {{type: {kind}, steps: 997}}\n", "model.sampler.steps")
    assert "cannot take 997 steps on this cosine schedule of 1000 timesteps" in problem.message
    assert "after t = 995 have log(alpha / sigma) < -5.1" in problem.message
    assert "use at most 996 steps" in problem.hint and "{type: ddpm}" in problem.hint
    lowers(f"  sampler: {{type: {kind}, steps: 996}}\n")
    lowers("  sampler: {type: ddpm}\n")  # every timestep, from T - 1: on any schedule


def test_the_steps_option_is_refused_beyond_the_clipped_start():
    model = {"sampler": {"type": "ddim", "steps": 50, "eta": 0.0}, "timesteps": 1000}
    model |= {"schedule": COSINE, "conditional": None}
    for given in ({"steps": 997}, {"sampler": "dpm_solver", "steps": 1000}):
        with pytest.raises(RunError, match=r"give 1 to 996$") as refused:
            model_options("diffusion", lock(model), given, Path("run"))
        assert "takes at most 996 steps on this model's cosine schedule" in str(refused.value)
    with pytest.raises(RunError, match=r"give 1 to 996, or 1000 \(every timestep\)"):
        model_options("diffusion", lock(model), {"sampler": "ddpm", "steps": 998}, Path("r"))
    for steps in (996, 1000):  # strided from t = 995, or every timestep from 999
        options = model_options("diffusion", lock(model), {"sampler": "ddpm", "steps": steps}, "r")
        assert options == {"sampler": {"type": "ddpm", "steps": steps}}
    assert model_options("diffusion", lock(model), {"steps": 996}, "r")["sampler"]["steps"] == 996


def test_another_samplers_default_steps_fit_the_schedule():
    """`--sampler euler` on a cosine schedule of 40 timesteps: its default 50 steps become
    the most that fit, which `gencompile latent`'s DDIM takes too."""
    from gencompile.latent import _deterministic_sampler

    model = {"sampler": {"type": "ddpm"}, "timesteps": 40, "schedule": COSINE}
    most = noise_schedules.max_sampling_steps(noise_schedules.schedule_alpha_bars(COSINE, 40))
    assert most < 40
    options = model_options("diffusion", lock(model), {"sampler": "euler"}, Path("run"))
    assert options == {"sampler": {"type": "euler", "steps": most, "rho": 7.0}}
    assert _deterministic_sampler(model) == {"type": "ddim", "steps": most, "eta": 0.0}


# --------------------------------------------------------------------------- float32


@pytest.mark.parametrize(
    ("model", "path", "message", "hint"),
    [
        (
            "  schedule: {type: linear, beta_start: 1.0e-8, beta_end: 0.02}\n",
            "model.schedule.beta_start",
            "alpha_bar_0 = 1 - 1e-08 rounds to 1 in float32",
            "raise beta_start to at least 3e-08",
        ),
        (
            "  timesteps: 20000\n  schedule: {type: cosine, offset: 0.0}\n",
            "model.schedule.offset",
            "alpha_bar_0 = 1 - 6.17e-09 rounds to 1 in float32",
            "raise offset (usually 0.008) or use fewer timesteps",
        ),
        (
            "  timesteps: 20000\n  schedule: {type: linear}\n  sampler: {type: ddpm}\n",
            "model.schedule.beta_end",
            "alpha_bar_19999 = 1.3e-88 is below float32's smallest normal number",
            "use fewer timesteps or a smaller beta_end",
        ),
        (
            "  schedule: {type: sigmoid, start: -3, end: 100}\n",
            "model.schedule.end",
            "every beta must lie in (0, 1)",
            "lower end or raise tau",
        ),
        (
            "  schedule: {type: sigmoid, start: -60, end: 3}\n",
            "model.schedule.start",
            "every beta must lie in (0, 1)",
            "raise start (usually -3) or use fewer timesteps",
        ),
    ],
    ids=[
        "linear-beta-start",
        "cosine-offset-0",
        "linear-20000",
        "sigmoid-end-100",
        "sigmoid-start",
    ],
)
def test_schedules_float32_cannot_hold_are_located(model, path, message, hint):
    problem = problem_at(model, path)
    assert message in problem.message and hint in problem.hint


def test_schedules_at_the_edge_of_float32_lower():
    lowers("  schedule: {type: linear, beta_start: 3.0e-8, beta_end: 0.02}\n")
    lowers("  timesteps: 8632\n  schedule: {type: linear}\n  sampler: {type: ddpm}\n")
    problem_at("  timesteps: 8633\n  schedule: {type: linear}\n", "model.schedule.beta_end")
    for path in sorted((ROOT / "specs").glob("*diffusion*.yaml")):
        lower(load_spec(path))


def test_float32_trouble_is_the_rounding_of_the_ends():
    assert noise_schedules.float32_trouble([1 - 2**-25, 0.5]) is not None  # a tie: to 1
    assert noise_schedules.float32_trouble([1 - 2**-24, 0.5]) is None
    assert noise_schedules.float32_trouble([0.9, 2.0**-126]) is None
    assert noise_schedules.float32_trouble([0.9, 2.0**-127])[0] == "end"  # a denormal


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
        ({"type": "dpm_solver", "order": 4}, "order must be one of 2, 3 (got 4)"),
        ({"type": "dpm_solver", "order": 3.0}, "order must be one of 2, 3 (got 3.0)"),
        ({"type": "dpm_solver", "order": True}, "order must be one of 2, 3 (got True)"),
        (
            {"type": "dpm_solver", "spacing": "karas"},
            "spacing must be one of log_snr, karras, time_uniform (got 'karas') "
            "(did you mean 'karras'?)",
        ),
        ({"type": "dpm_solver", "spacing": 7}, "spacing must be one of log_snr, karras"),
        ({"type": "heun", "order": 3}, "'order' is a setting of dpm_solver, not of heun"),
        ({"type": "euler", "spacing": "karras"}, "'spacing' is a setting of dpm_solver"),
        ({"type": "dpm_solver", "orders": 3}, "unknown setting 'orders' (did you mean 'order'?)"),
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
    assert sampler_configs.resolve_sampler({"type": "dpm_solver", "order": 3}) == {
        "type": "dpm_solver",
        "steps": 20,
        "order": 3,
        "spacing": "log_snr",
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
