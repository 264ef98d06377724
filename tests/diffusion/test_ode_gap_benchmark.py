"""benchmarks/diffusion_ode_gap.py: a run reused from --work must hold the variant's model."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "diffusion_swissroll.yaml"


@pytest.fixture(scope="module")
def gap() -> ModuleType:
    # benchmarks/ is no package: its scripts import `harness` and each other by name. Off
    # sys.path again afterwards: benchmarks/diffusion_swissroll.py is named like the spec.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("diffusion_ode_gap")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def write_lock(folder: Path, overrides: tuple[str, ...]) -> None:
    from gencompile.continuation import resolved  # as a lock holds it: every default filled

    locked = resolved(load_spec(SPEC, list(overrides)))
    (folder / "spec.lock.json").write_text(json.dumps({"resolved_spec": locked}))


def test_a_run_trained_from_the_variants_spec_is_reused(gap: ModuleType, tmp_path: Path):
    overrides = ("evaluation.metrics=[denoising_loss]", "model.prediction=v")
    write_lock(tmp_path, overrides)
    gap.harness.check_reused(tmp_path, SPEC, overrides)  # returns: nothing to object to


def test_a_run_trained_from_another_spec_stops_the_benchmark(gap: ModuleType, tmp_path: Path):
    write_lock(tmp_path, ("evaluation.metrics=[denoising_loss]", "model.prediction=v"))
    with pytest.raises(SystemExit, match="trained from another spec or budget"):
        gap.harness.check_reused(tmp_path, SPEC, ("evaluation.metrics=[denoising_loss]",))


def test_every_variant_is_a_valid_spec_with_a_distinct_folder(gap: ModuleType):
    keys = [variant.key for variant in gap.VARIANTS]
    assert len(set(keys)) == len(keys) and keys[0] == "baseline"
    for variant in gap.VARIANTS:
        load_spec(SPEC, list(variant.overrides))  # raises on a misspelt override


def test_the_ode_column_takes_the_most_steps_each_schedule_allows(gap: ModuleType):
    """DDIM over all 1000 timesteps on the linear schedule, over 996 (from t = 995) on the
    cosine one, where 1000 steps are refused; the other samplers' configs are unchanged."""
    from gencompile import noise_schedules

    ode = dict(gap.SAMPLERS)["ODE (DDIM, most steps)"]
    for schedule, most in (
        ({"type": "linear", "beta_start": 1e-4, "beta_end": 0.02}, 1000),
        ({"type": "cosine", "offset": 0.008, "max_beta": 0.999}, 996),
    ):
        alpha_bars = noise_schedules.schedule_alpha_bars(schedule, 1000)
        assert gap.most_steps(ode, alpha_bars) == {"type": "ddim", "steps": most, "eta": 0.0}
        assert gap.most_steps({"type": "ddpm"}, alpha_bars) == {"type": "ddpm"}
