"""A Monte Carlo score (a VAE's importance samples, a dequantized flow's uniform draws, a
diffusion model's noise) must depend on the example alone: the same row scores the same
alone, anywhere in a file, and whatever the batch size. The models are built, not trained:
the property holds for any weights."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

BASE = """\
spec_version: 1
name: {name}
seed: 3
data:
  source: {source}
  preprocessing: {{scale: [0.0, 1.0]}}
model:
{model}
evaluation: {{metrics: [], importance_samples: 5}}
"""
DIGITS = "{type: builtin, name: digits}"
MOONS = "{type: builtin, name: moons, n_samples: 500}"
CASES = {
    "vae": (MOONS, """\
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: gaussian, sigma: learned}"""),
    "vae_iaf": (MOONS, """\
  family: vae
  latent_dim: 2
  posterior: {type: iaf, steps: 2, hidden: [8], context: 4}
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: gaussian, sigma: learned}"""),
    "diffusion": (MOONS, """\
  family: diffusion
  timesteps: 40
  sampler: {type: ddpm}
  denoiser: {type: mlp, hidden: [16], time_embedding: 8}"""),
    "flow_dequantized": (DIGITS, """\
  family: flow
  base: {type: normal}
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit, alpha: 0.05}
    - {type: affine_coupling, hidden: [8], mask: checkerboard, repeat: 1}"""),
}  # fmt: skip


def built_model(case: str, folder: Path) -> tuple[Any, Any]:
    """The untrained model of `case` and the data-like object `scorer` reads."""
    from gencompile.compiler.project import build
    from gencompile.generated import import_generated
    from gencompile.spec import load_spec_text

    source, model = CASES[case]
    name = f"positions-{case.replace('_', '-')}"
    result = build(load_spec_text(BASE.format(name=name, source=source, model=model)), folder)
    module = import_generated(folder, result.plan.package, "model")
    shape = (8, 8, 1) if source == DIGITS else (2,)
    levels = np.random.default_rng(0).integers(0, 17, (40, *shape)) / 16  # the digits' 17
    data = SimpleNamespace(
        kind="image" if source == DIGITS else "vector",
        element_shape=shape,
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
        x_val=levels.astype(np.float32),  # held-out values a dequantized flow's check reads
    )
    return module.build_model(), data


@pytest.mark.parametrize("case", list(CASES))
def test_a_rows_score_is_its_own(case: str, tmp_path: Path, monkeypatch) -> None:
    from gencompile.runtime import flow, scores, vae

    model, data = built_model(case, tmp_path / case)
    kind, score = scores.scorer(model, case.split("_")[0], data, {"importance_samples": 5})
    rng = np.random.default_rng(4)
    others = rng.random((300, *data.element_shape)).astype(np.float32)
    if case == "flow_dequantized":
        others = np.round(others * 16) / 16  # the data's 17 levels
    row = others[:1].copy()
    alone = score(row, None)
    for at in (0, 7, 150, 299):  # the same row among others, at several places
        mixed = others.copy()
        mixed[at] = row[0]
        np.testing.assert_allclose(score(mixed, None)[at], alone, rtol=2e-6, err_msg=f"row {at}")
    for small in (3, 64):  # smaller batches (each module's own batch size)
        monkeypatch.setattr(scores, "BATCH", small)
        monkeypatch.setattr(vae, "MAX_ROWS", small * 5)
        monkeypatch.setattr(flow, "MAX_ROWS", small * 5)
        found = score(np.concatenate([others[:100], row]), None)[100]
        np.testing.assert_allclose(found, alone, rtol=2e-6, err_msg=f"batches of {small}")
    assert np.isfinite(alone).all() and kind.name
