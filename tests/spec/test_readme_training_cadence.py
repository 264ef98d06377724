"""README's Benchmarks paragraph on what `gencompile train` adds to a bare `model.fit`
states the cadence of validation and checkpoints as the spec's defaults and
`specs/vae_digits.yaml` set it (not "each epoch": auto validation skips epochs)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gencompile.spec.training import Checkpoint, TrainingSpec

ROOT = Path(__file__).resolve().parents[2]


def _paragraph() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"`gencompile train` adds on top.*?bare `model\.fit`", readme, re.S)
    assert found is not None, "README no longer says what gencompile train adds to model.fit"
    return " ".join(found.group(0).split())


def test_the_benchmark_paragraph_states_the_validation_and_checkpoint_cadence() -> None:
    said = _paragraph()
    validation = TrainingSpec.model_fields["validation_every_epochs"].default
    assert f"`training.validation_every_epochs` (default `{validation}`" in said
    assert f"(10 in this spec, default {Checkpoint.model_fields['every_epochs'].default})" in said
    assert f"`every_seconds` (default {Checkpoint.model_fields['every_seconds'].default:g};" in said
    spec = yaml.safe_load((ROOT / "specs" / "vae_digits.yaml").read_text(encoding="utf-8"))
    assert spec["training"]["checkpoint"]["every_epochs"] == 10
    assert "validation_every_epochs" not in spec["training"]  # auto, as the paragraph says
