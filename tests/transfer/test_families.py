"""init_from in every family: each example spec starts from a parent run of itself."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.runs import train
from tests.conftest import quick

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["training.steps_per_epoch=2", "evaluation.metrics=[]"]

# spec -> (extra overrides of the child, the networks expected among what it took)
CASES = {
    # Only the generator: its EMA copy follows it, the discriminator starts fresh.
    "gan_ring8": (["model.init_from.networks=[generator]"], {"generator", "ema_generator"}),
    "diffusion_swissroll": ([], {"denoiser", "ema_denoiser"}),
    "charlm_arithmetic": ([], {"network"}),
    # The first transform only: a flow's networks are its transforms.
    "flow_moons": (["model.init_from.networks=[coupling_1]"], {"coupling_1"}),
    "gmm_blobs": ([], {"mixture"}),
}


def parent_and_child(tmp_path: Path, spec: str, child_overrides: list[str]) -> tuple[Path, Path]:
    path = ROOT / "specs" / f"{spec}.yaml"
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(path, quick(path, QUICK), epochs=1, run_dir=parent, quiet=True)
    overrides = quick(path, [*QUICK, f"model.init_from.run={parent}", *child_overrides])
    train(path, overrides, epochs=1, run_dir=child, quiet=True)
    return parent, child


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(CASES))
def test_a_family_starts_from_its_parent(tmp_path: Path, spec: str) -> None:
    overrides, networks = CASES[spec]
    _, child = parent_and_child(tmp_path, spec, overrides)
    report = json.loads((child / "init_from.json").read_text())
    taken = {label.split(".")[0] for label in report["taken"]}
    assert taken == networks
    assert report["fresh"] == []


@pytest.mark.slow
def test_em_continues_from_a_fitted_mixture(tmp_path: Path) -> None:
    """A mixture fitted to convergence is a fixed point of EM: one more iteration from its
    parameters on the same data leaves them where they were."""
    path = ROOT / "specs" / "gmm_blobs.yaml"
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(path, ["evaluation.metrics=[]"], epochs=60, run_dir=parent, quiet=True)
    overrides = ["evaluation.metrics=[]", f"model.init_from.run={parent}"]
    train(path, overrides, epochs=1, run_dir=child, quiet=True)
    with (
        h5py.File(parent / "model.weights.h5") as before,
        h5py.File(child / "model.weights.h5") as after,
    ):
        for key in before["vars"]:
            if before["vars"][key].shape:
                np.testing.assert_allclose(
                    after["vars"][key][()], before["vars"][key][()], rtol=1e-3, atol=1e-4
                )


@pytest.mark.slow
def test_a_conditional_diffusion_model_adds_its_label_embedding_fresh(tmp_path: Path) -> None:
    """From an unconditional parent with strict: false: everything but the class embedding
    is taken (it adds to the time embedding, so no other shape changes)."""
    path = ROOT / "specs" / "diffusion_digits.yaml"
    small = [*QUICK, "model.denoiser={type: mlp, hidden: [32, 32]}", "model.sampler.steps=5"]
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(path, small, epochs=1, run_dir=parent, quiet=True)
    conditional = [
        *small,
        "model.conditional={num_classes: 10, guidance_scale: 2.0}",
        f"model.init_from={{run: {parent}, strict: false}}",
    ]
    train(path, conditional, epochs=1, run_dir=child, quiet=True)
    report = json.loads((child / "init_from.json").read_text())
    assert [entry["layer"] for entry in report["fresh"]] == [
        "denoiser.class_embedding",
        "ema_denoiser.class_embedding",
    ]
    assert "denoiser.prediction" in report["taken"]
