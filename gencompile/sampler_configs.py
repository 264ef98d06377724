"""A diffusion model's samplers and their settings, in plain Python.

One table, read everywhere a sampler config is made or taken: the spec's `model.sampler`
models take their defaults from it (`spec/families/diffusion`), `gencompile sample
--sampler` starts from them, and the runtime's `Sampler` (`model.sample(sampler=...)`,
`Sampler.with_config`) checks each config it is given with `resolve_sampler`: a missing or
unknown type, an unknown setting and a value out of the spec's range are a ValueError
naming it, a missing setting takes the spec's default. No dependencies: `gencompile eject`
vendors it with the runtime, which never imports the spec.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

SAMPLERS = ("ddpm", "ddim", "dpm_solver", "euler", "heun")
DEFAULT_RHO = 7.0  # Karras et al.'s spacing of the sigmas
# DPM-Solver++'s multistep orders (Lu et al. 2022: 2M and 3M) and its grids of noise levels:
# evenly spaced in lambda = log(alpha / sigma) (Lu et al.'s "logSNR"), Karras et al.'s
# rho-spaced sigmas (rho = DEFAULT_RHO; diffusers' use_karras_sigmas), or evenly spaced
# timesteps (Lu et al.'s "time_uniform").
DPM_SOLVER_ORDERS = (2, 3)
SPACINGS = ("log_snr", "karras", "time_uniform")

# Each sampler's settings besides `type`, with the spec's defaults. DDPM's `steps` is no
# spec field: DDPM visits every timestep unless a caller asks for fewer (strided).
SETTINGS: dict[str, dict[str, Any]] = {
    "ddpm": {"steps": None},
    "ddim": {"steps": 50, "eta": 0.0},
    "dpm_solver": {"steps": 20, "order": 2, "spacing": "log_snr"},
    "euler": {"steps": 50, "rho": DEFAULT_RHO},
    "heun": {"steps": 25, "rho": DEFAULT_RHO},
}


def defaults(kind: str) -> dict[str, Any]:
    """The `model.sampler` config of this type with every setting at the spec's default."""
    return {"type": kind, **{k: v for k, v in SETTINGS[kind].items() if v is not None}}


def _steps(value: Any) -> int | None:
    if isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 1:
        return int(value)
    return None


def _real(low: float, high: float, low_open: bool) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if not isinstance(value, Real) or isinstance(value, bool):
            return None
        value = float(value)
        above = value > low if low_open else value >= low
        return value if math.isfinite(value) and above and value <= high else None

    return check


def _order(value: Any) -> int | None:
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value) if int(value) in DPM_SOLVER_ORDERS else None
    return None


def _spacing(value: Any) -> str | None:
    return value if isinstance(value, str) and value in SPACINGS else None


# setting -> (check: the value as stored, or None when refused; what the spec allows)
CHECKS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "steps": (_steps, "a whole number >= 1"),
    "eta": (_real(0.0, 1.0, low_open=False), "a number from 0 to 1"),
    "rho": (_real(0.0, math.inf, low_open=True), "a number > 0"),
    "order": (_order, f"one of {', '.join(map(str, DPM_SOLVER_ORDERS))}"),
    "spacing": (_spacing, f"one of {', '.join(SPACINGS)}"),
}
# settings whose values are names: a misspelt one is answered with the closest
CHOICES: dict[str, tuple[str, ...]] = {"spacing": SPACINGS}


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_sampler(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` checked as the spec checks `model.sampler`, its missing settings set to the
    spec's defaults: {"type": "dpm_solver"} -> {"type": "dpm_solver", "steps": 20, "order":
    2, "spacing": "log_snr"}. Equal configs resolve to equal dicts (steps and order ints, eta
    and rho floats)."""
    received = f"Received: config={dict(config) if isinstance(config, Mapping) else config!r}"
    if not isinstance(config, Mapping):
        raise ValueError(f"a sampler config is a dict with a 'type'. {received}")
    kind = config.get("type")
    if kind not in SETTINGS:
        what = "needs a 'type'" if kind is None else f"has an unknown type {kind!r}"
        hint = _did_you_mean(kind, list(SAMPLERS)) if isinstance(kind, str) else ""
        raise ValueError(f"a sampler config {what}{hint}: one of {', '.join(SAMPLERS)}. {received}")
    takes = list(SETTINGS[kind])
    for key in config:
        if key == "type" or key in takes:
            continue
        owners = [other for other in SAMPLERS if key in SETTINGS[other]]
        if owners:
            why = f"{key!r} is a setting of {' and '.join(owners)}, not of {kind}"
        else:
            why = f"unknown setting {key!r}{_did_you_mean(str(key), takes)}"
        raise ValueError(f"{kind} sampler: {why}; it takes {', '.join(takes)}. {received}")
    resolved: dict[str, Any] = {"type": kind}
    for key, default in SETTINGS[kind].items():
        value = config.get(key, default)
        if value is None:
            continue  # DDPM: every timestep
        check, allowed = CHECKS[key]
        stored = check(value)
        if stored is None:
            named = key in CHOICES and isinstance(value, str)
            hint = _did_you_mean(value, list(CHOICES[key])) if named else ""
            raise ValueError(
                f"{kind} sampler: {key} must be {allowed} (got {value!r}){hint}. {received}"
            )
        resolved[key] = stored
    return resolved
