"""A VAE's stated parameter count (the model card's "parameters", `explain`'s memory
estimate) is every weight the built model trains: the networks, the posterior flow's steps
and a learned prior (mixture means and weights, VampPrior pseudo-inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.project import build, total_params
from gencompile.compiler.resources import estimate_memory
from gencompile.generated import import_generated
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[2]

# spec, overrides: a flow posterior of each kind, a mixture prior, a VampPrior on images
CASES = {
    "iaf": (
        "vae_digits_iaf",
        ["model.posterior={type: iaf, steps: 2, hidden: [8, 6], context: 5}"],
    ),
    "planar": ("vae_moons", ["model.posterior={type: planar, steps: 3}"]),
    "radial": ("vae_moons", ["model.posterior={type: radial, steps: 3}"]),
    "mixture-prior": ("vae_moons", ["model.prior={type: mixture_of_gaussians, components: 7}"]),
    "vamp": ("vae_digits", ["model.prior={type: vamp, pseudo_inputs: 9}"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stated_parameters_are_the_built_models_trainable_weights(tmp_path, case):
    spec, overrides = CASES[case]
    built = build(load_spec(REPO / "specs" / f"{spec}.yaml", overrides), tmp_path)
    model = import_generated(tmp_path, built.plan.package, "model").build_model()
    trained = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    networks = sum(n.params for n in built.plan.networks)
    assert trained > networks  # the case has weights outside the networks
    assert total_params(built.plan) == trained
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"| parameters | {trained:,} |" in readme
    assert estimate_memory(built.plan).parameters == trained
