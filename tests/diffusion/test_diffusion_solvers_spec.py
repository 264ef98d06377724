"""The fast samplers and the sigmoid schedule in the spec language: validation located at
the spec line, lowering into the plan, the words `explain` prints, and the sample-time
`--sampler` choices. No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import RunError, SpecError
from gencompile.sample_options import model_options
from gencompile.spec import load_spec_text

FILE = "spec.yaml"
SPEC = """\
spec_version: 1
name: solvers
data:
  source: {type: builtin, name: moons}
  preprocessing: {standardize: true}
model:
  family: diffusion
  timesteps: 100
  schedule: {schedule}
  denoiser: {type: mlp, hidden: [16]}
  sampler: {sampler}
"""


def spec_text(sampler: str, schedule: str = "{type: linear}") -> str:
    return SPEC.replace("{sampler}", sampler).replace("{schedule}", schedule)


def lowered(sampler: str, schedule: str = "{type: linear}"):
    return lower(load_spec_text(spec_text(sampler, schedule), FILE))


def problems(sampler: str, schedule: str = "{type: linear}"):
    with pytest.raises(SpecError) as info:
        lowered(sampler, schedule)
    return info.value.problems


@pytest.mark.parametrize(
    ("sampler", "resolved", "calls", "words"),
    [
        (
            "{type: dpm_solver}",
            {"type": "dpm_solver", "steps": 20, "order": 2, "spacing": "log_snr"},
            20,
            ["DPM-Solver++ 2M", "second-order", "20 of the 100 timesteps", "log-SNR"],
        ),
        (
            "{type: dpm_solver, steps: 15, order: 3, spacing: karras}",
            {"type": "dpm_solver", "steps": 15, "order": 3, "spacing": "karras"},
            15,
            ["DPM-Solver++ 3M", "order-3 multistep", "15 of the 100 timesteps", "Karras' sigmas"],
        ),
        (
            "{type: dpm_solver, spacing: time_uniform}",
            {"type": "dpm_solver", "steps": 20, "order": 2, "spacing": "time_uniform"},
            20,
            ["DPM-Solver++ 2M", "20 of the 100 timesteps, evenly spaced (deterministic)"],
        ),
        (
            "{type: euler, steps: 30}",
            {"type": "euler", "steps": 30, "rho": 7.0},
            30,
            ["Euler's method (first order)", "sigma space", "rho 7", "30 denoiser calls"],
        ),
        (
            "{type: heun, steps: 10, rho: 5}",
            {"type": "heun", "steps": 10, "rho": 5.0},
            19,
            ["Heun's method (second order)", "rho 5", "19 denoiser calls"],
        ),
    ],
)
def test_solvers_lower_with_their_defaults_calls_and_words(sampler, resolved, calls, words):
    plan = lowered(sampler)
    assert plan.model.sampler == resolved and plan.model.sampling_steps == calls
    said = plan.extra["sampling"]
    assert all(w in said for w in words), said


def test_sigmoid_schedule_resolves_and_is_described():
    plan = lowered("{type: dpm_solver}", "{type: sigmoid, start: 0, tau: 1.1}")
    assert plan.model.schedule == {
        "type": "sigmoid",
        "start": 0.0,
        "end": 3.0,
        "tau": 1.1,
        "max_beta": 0.999,
    }
    assert "100 steps of a sigmoid schedule (from 0 to 3, tau 1.1)" in plan.loss_in_words


def located(found, path: str, text: str, needle: str):
    matching = [p for p in found if p.path == path]
    assert len(matching) == 1, "\n".join(str(p) for p in found)
    line = text[: text.index(needle)].count("\n") + 1
    assert matching[0].line == line and matching[0].file == FILE
    return matching[0]


def test_solver_steps_above_the_timesteps_are_located():
    found = problems("{type: dpm_solver, steps: 150}")
    problem = located(found, "model.sampler.steps", spec_text("x"), "  sampler:")
    assert "DPM-Solver++ 2M cannot take 150 steps through 100 timesteps" in problem.message
    assert "at most 100 steps" in problem.hint


def test_sigmoid_end_below_start_is_located():
    schedule = "{type: sigmoid, start: 2, end: -1}"
    found = problems("{type: euler}", schedule)
    problem = located(found, "model.schedule.end", spec_text("x", schedule), "  schedule:")
    assert "end (-1) must be larger than start (2)" in problem.message


@pytest.mark.parametrize(
    ("sampler", "schedule", "path", "words"),
    [
        ("{type: heun, rho: 0}", "{type: linear}", "model.sampler.rho", "must be > 0.0 (got 0)"),
        ("{type: dpm_solver, eta: 0.5}", "{type: linear}", "model.sampler.eta", "eta"),
        ("{type: dpm_solver}", "{type: sigmoid, tau: -1}", "model.schedule.tau", "must be > 0"),
        ("{type: dpm_solve}", "{type: linear}", "model.sampler.type", "dpm_solver"),
    ],
)
def test_bad_values_are_refused_when_validating(sampler, schedule, path, words):
    with pytest.raises(SpecError) as info:
        load_spec_text(spec_text(sampler, schedule), FILE)
    found = [p for p in info.value.problems if p.path == path]
    listing = "\n".join(str(p) for p in info.value.problems)
    assert found, listing
    assert words in found[0].message + " " + (found[0].hint or ""), listing


def test_explain_describes_the_solver(run_cli, tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text("{type: dpm_solver, steps: 15}", "{type: sigmoid}"))
    code, out, err = run_cli("explain", str(spec))
    text = " ".join(out.split())
    assert code == 0, err
    assert "DPM-Solver++ 2M" in text and "15 of the 100 timesteps" in text
    assert "sigmoid schedule" in text


# --------------------------------------------------------------------------- sample time


LINEAR_SCHEDULE = {"type": "linear", "beta_start": 1.0e-4, "beta_end": 0.02}


def lock(sampler: dict) -> dict:
    model = {"timesteps": 40, "schedule": LINEAR_SCHEDULE, "sampler": sampler, "conditional": None}
    return {"family": "diffusion", "resolved_spec": {"model": model}}


DPM_SOLVER = {"type": "dpm_solver", "order": 2, "spacing": "log_snr"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"sampler": "dpm_solver", "steps": 20}, DPM_SOLVER | {"steps": 20}),
        ({"sampler": "dpm_solver"}, DPM_SOLVER | {"steps": 20}),
        ({"sampler": "euler"}, {"type": "euler", "steps": 40, "rho": 7.0}),  # 50 > timesteps
        ({"sampler": "heun", "steps": 8}, {"type": "heun", "steps": 8, "rho": 7.0}),
    ],
)
def test_sampler_option_switches_to_a_solver(given, expected):
    options = model_options("diffusion", lock({"type": "ddpm"}), given, Path("run"))
    assert options == {"sampler": expected}


def test_a_solver_spec_keeps_its_settings_when_only_steps_change():
    spec = {"type": "heun", "steps": 25, "rho": 5.0}
    options = model_options("diffusion", lock(spec), {"steps": 12}, Path("run"))
    assert options == {"sampler": {"type": "heun", "steps": 12, "rho": 5.0}}
    assert spec["steps"] == 25  # the lock is left as it was


def test_a_dpm_solver_spec_keeps_its_order_and_spacing_when_only_steps_change():
    spec = {"type": "dpm_solver", "steps": 20, "order": 3, "spacing": "karras"}
    options = model_options("diffusion", lock(spec), {"steps": 12}, Path("run"))
    assert options == {"sampler": {**spec, "steps": 12}}


def test_eta_is_refused_for_a_solver():
    with pytest.raises(
        RunError, match=r"dpm_solver sampler's noise is fixed .* add --sampler ddim"
    ):
        model_options(
            "diffusion", lock({"type": "ddpm"}), {"sampler": "dpm_solver", "eta": 0.5}, Path("r")
        )


@pytest.mark.parametrize("solver", ["dpm_solver", "euler", "heun"])
def test_latent_commands_encode_a_solver_model_by_ddim_with_eta_0(solver: str):
    """DDIM inversion runs DDIM's steps backwards; a model sampled by an ODE solver is
    encoded and decoded by DDIM (eta 0) over its own denoiser, at most its timesteps."""
    from gencompile.latent import _deterministic_sampler

    model = {"sampler": {"type": solver, "steps": 20}, "timesteps": 30, "schedule": LINEAR_SCHEDULE}
    assert _deterministic_sampler(model) == {"type": "ddim", "steps": 30, "eta": 0.0}
    model["timesteps"] = 1000
    assert _deterministic_sampler(model) == {"type": "ddim", "steps": 50, "eta": 0.0}
    assert _deterministic_sampler({"sampler": {"type": "ddim", "steps": 10, "eta": 0.0}}) is None
