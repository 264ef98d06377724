"""Sample-time options of `gencompile sample`, checked against the run's family before
TensorFlow starts, and turned into the keyword arguments of the model's own `sample`.

    temperature   vae, flow, mixture: scale of the prior's (base's, components') standard
                  deviation; gan: scale of z; autoregressive: the softmax temperature
    truncation    gan: the truncation trick (a normal z redrawn beyond psi standard
                  deviations; a uniform z scaled toward the middle of its range)
    top_k, top_p  autoregressive: the next-token filters; vq_vae: the same filters on the
                  prior's next code (temperature too)
    sampler, steps, eta, guidance
                  diffusion: the reverse process (ddpm | ddim | dpm_solver | euler |
                  heun), its step count and DDIM noise, and the classifier-free
                  guidance scale (conditional models)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gencompile import noise_schedules, sampler_configs
from gencompile.errors import UsageRefusal

# The largest seed of the draws, for `sample`, `latent`, `impute` and `/sample` alike: a
# spec's own seed range (spec.base.Seed, 0..2**31 - 1), so any run's seed is one of them.
SEED_MAX = 2**31 - 1


def check_seed(seed: int | None, option: str = "--seed") -> None:
    """Refuse a seed outside 0..SEED_MAX (the command line's options refuse it first)."""
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise UsageRefusal(f"{option} {seed}: a seed is an integer in 0..{SEED_MAX}")


# The largest --temperature (`sample`, `/sample` alike): beyond it a prior's spread
# overflows float32 and the draws are infinite or no number at all.
TEMPERATURE_MAX = 100.0
# The largest --top-k: the model takes an int32 (beyond, k wrapped around to no filter).
TOP_K_MAX = 2**31 - 1
# The largest --truncation: a normal z has nothing to redraw beyond ~38 standard deviations,
# and a uniform z is scaled by it as by a temperature (beyond 100 its spread overflows).
TRUNCATION_MAX = 100.0
# The largest --guidance: the model takes the scale as a float32 (beyond, it is infinite).
GUIDANCE_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max
# The largest value of the other bounded real options, and what lies beyond it.
REAL_LIMITS: dict[str, tuple[float, str]] = {
    "truncation": (TRUNCATION_MAX, "a normal z has nothing left to truncate"),
    "guidance": (GUIDANCE_MAX, "it is no float32 and the samples are no numbers"),
}

# The range of each bounded option of `gencompile sample`, both ends included (None: no
# upper bound). The command line refuses a value outside it in one line, before a run is
# opened; the reals that scale draws start at 1e-6, as a temperature of 0 divides by 0.
RANGES: dict[str, tuple[float, float | None]] = {
    "n": (1, None),
    "seed": (0, SEED_MAX),
    "temperature": (1e-6, TEMPERATURE_MAX),
    "truncation": (1e-6, TRUNCATION_MAX),
    "steps": (1, None),
    "eta": (0.0, 1.0),
    "guidance": (0.0, GUIDANCE_MAX),
    "length": (1, None),
    "top_k": (0, TOP_K_MAX),
    "top_p": (1e-6, 1.0),
}


def out_of_range(given: dict[str, Any]) -> str | None:
    """The first option of `given` outside its `RANGES`, as `--steps must be at least 1
    (got 0)`; or None."""
    for option, value in given.items():
        if option not in RANGES or value is None:
            continue
        least, most = RANGES[option]
        name = "-n" if option == "n" else flag(option)
        if value != value:  # nan: in no range
            return f"{name} {value}: give a finite number"
        if most is None and value < least:
            return f"{name} must be at least {_shown(least)} (got {_shown(value)})"
        if most is not None and not least <= value <= most:
            return f"{name} must be in {_shown(least)}..{_shown(most)} (got {_shown(value)})"
    return None


def _shown(value: float) -> str:
    """A limit or value as written: 2147483647 and 1.5 in full, 3.40282e+38 shortened."""
    if isinstance(value, int):
        return str(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else f"{value:g}"


# The options that are real numbers: each must be a finite one.
REAL_OPTIONS = ("temperature", "truncation", "top_p", "eta", "guidance")


def check_real_options(given: dict[str, Any]) -> None:
    """Refuse a non-finite real option (`inf`, `nan`), a temperature outside
    (0, TEMPERATURE_MAX], and a truncation or guidance beyond its `REAL_LIMITS`, before
    anything is drawn (the command line's options refuse them first; this guards the
    Python API)."""
    for option in REAL_OPTIONS:
        value = given.get(option)
        if value is not None and not math.isfinite(float(value)):
            raise UsageRefusal(f"{flag(option)} {value}: give a finite number")
    temperature = given.get("temperature")
    if temperature is not None and not 0 < float(temperature) <= TEMPERATURE_MAX:
        raise UsageRefusal(
            f"--temperature {temperature}: give a temperature in (0, {TEMPERATURE_MAX:g}]; "
            "beyond it the prior's spread overflows and the samples are no numbers"
        )
    for option, (most, beyond) in REAL_LIMITS.items():
        value = given.get(option)
        if value is not None and float(value) > most:
            raise UsageRefusal(f"{flag(option)} {value}: give at most {most:g}; beyond it {beyond}")


# Which families each option has a meaning for.
FAMILIES: dict[str, tuple[str, ...]] = {
    "temperature": ("vae", "flow", "mixture", "gan", "autoregressive", "vq_vae"),
    "truncation": ("gan",),
    "top_k": ("autoregressive", "vq_vae"),
    "top_p": ("autoregressive", "vq_vae"),
    "length": ("autoregressive",),
    "sampler": ("diffusion",),
    "steps": ("diffusion",),
    "eta": ("diffusion",),
    "guidance": ("diffusion",),
}

# What an option does where it has a meaning (for the refusals elsewhere).
MEANING = {
    "temperature": "it scales the spread of a prior, or the softmax of a language model",
    "truncation": "it is the GAN truncation trick on the latent z",
    "top_k": "it keeps the k likeliest next tokens of an autoregressive model",
    "top_p": "it keeps the likeliest next tokens of an autoregressive model up to mass p",
    "length": "it sets how many tokens a language model writes",
    "sampler": "it chooses the reverse process of a diffusion model",
    "steps": "it sets the denoising steps of a diffusion model's sampler",
    "eta": "it sets the noise of a diffusion model's DDIM steps",
    "guidance": "it is the classifier-free guidance scale of a conditional diffusion model",
}

# What each family takes instead.
TAKES = {
    "vae": "--temperature",
    "flow": "--temperature",
    "mixture": "--temperature",
    "gan": "--temperature or --truncation",
    "diffusion": "--sampler, --steps, --eta or (conditional) --guidance",
    "autoregressive": "--temperature, --top-k or --top-p",
    "vq_vae": "--temperature, --top-k or --top-p (of the prior over its codes)",
}

SAMPLERS = sampler_configs.SAMPLERS


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def model_options(family: str, lock: dict[str, Any], given: dict[str, Any], run: Path) -> dict:
    """The keyword arguments of the model's `sample` for the options `given` (None-free),
    or a UsageRefusal naming the option, the family and what to use instead."""
    check_real_options(given)
    for option in given:
        if family not in FAMILIES[option]:
            raise UsageRefusal(
                f"{flag(option)} has no meaning for a {family} model ({run}): "
                f"{MEANING[option]}; a {family} model takes {TAKES[family]}"
            )
    if family == "diffusion":
        return diffusion_options(lock["resolved_spec"]["model"], given, run)
    return dict(given)


def diffusion_options(model: dict[str, Any], given: dict[str, Any], run: Path) -> dict:
    """`sampler` (a model.sampler config: the spec's, changed by --sampler/--steps/--eta)
    and `guidance_scale` for a diffusion model's `sample`."""
    options: dict[str, Any] = {}
    if {"sampler", "steps", "eta"} & set(given):
        options["sampler"] = sampler_config(model, given)
    if "guidance" in given:
        conditional = model.get("conditional")
        if conditional is None:
            raise UsageRefusal(
                f"--guidance steers samples toward their class: {run} is an unconditional "
                f"diffusion model; it takes --sampler, --steps and --eta"
            )
        scale = float(given["guidance"])
        if float(conditional.get("label_dropout", 0.0)) <= 0.0 and scale != 1.0:
            raise UsageRefusal(
                f"--guidance {scale:g} mixes in the unconditional denoiser (unconditional + "
                f"{scale:g} x (conditional - unconditional)), and {run} was trained without "
                "label dropout (model.conditional.label_dropout: 0), so it never learnt one; "
                "use --guidance 1 (conditional samples), or train with label_dropout > 0 "
                "(e.g. 0.1) to guide"
            )
        options["guidance_scale"] = scale
    return options


def sampler_config(model: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The spec's sampler with --sampler, --steps and --eta applied, checked: another
    sampler starts from the spec's defaults for its type, its steps at most the schedule
    allows (`noise_schedules.max_sampling_steps`, as the runtime checks)."""
    spec = dict(model["sampler"])
    timesteps = int(model["timesteps"])
    alpha_bars = noise_schedules.schedule_alpha_bars(model["schedule"], timesteps)
    most = noise_schedules.max_sampling_steps(alpha_bars)
    kind = given.get("sampler", spec["type"])
    if kind not in SAMPLERS:
        raise UsageRefusal(f"--sampler {kind}: choose one of {', '.join(SAMPLERS)}")
    if kind == spec["type"]:
        config = spec
    else:
        config = sampler_configs.defaults(kind)
        if "steps" in config:
            config["steps"] = min(config["steps"], most)
    if "eta" in given:
        if kind != "ddim":
            raise UsageRefusal(
                f"--eta sets the noise of DDIM steps; the {kind} sampler's noise is fixed "
                f"({'by the noise schedule' if kind == 'ddpm' else 'at none: it solves an ODE'})"
                ": add --sampler ddim"
            )
        config["eta"] = float(given["eta"])
    if "steps" in given:
        steps = int(given["steps"])
        every = kind == "ddpm" and steps == timesteps  # DDPM through every timestep
        if not (1 <= steps <= most or every):
            raise UsageRefusal(steps_refusal(steps, kind, most, timesteps, model["schedule"]))
        config["steps"] = steps
    return config


def steps_refusal(
    steps: int, kind: str, most: int, timesteps: int, schedule: dict[str, Any]
) -> str:
    """Why `--steps` is refused, and the steps the model takes."""
    if most == timesteps:
        return (
            f"--steps {steps}: this model's noise process has {timesteps} timesteps; "
            f"give 1 to {timesteps}"
        )
    return (
        f"--steps {steps}: {kind} takes at most {most} steps on this model's "
        f"{schedule['type']} schedule of {timesteps} timesteps, as "
        f"{noise_schedules.steps_limit_reason(most, timesteps)}; give 1 to {most}"
        + (f", or {timesteps} (every timestep)" if kind == "ddpm" else "")
    )
