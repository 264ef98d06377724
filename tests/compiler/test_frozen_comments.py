"""The comment of a frozen network names only what it has: batch norms that keep their
moving statistics, spectral norms that keep their kernels (both held by the runtime)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "gencompile" / "specs"
GAN_CONV = Path(__file__).resolve().parent / "fixtures" / "gan" / "conv.yaml"  # G: batch norm
BATCH_NORM = "batch-norm layers keep their moving statistics"
SPECTRAL_NORM = "spectral-norm layers keep their kernels and vector u"


def builder_of(spec: str | Path, network: str, *overrides: str) -> str:
    loaded = load_spec(SPECS / spec, overrides)
    plan = lower(loaded)
    model = render_project(loaded, plan)[f"{plan.package}/model.py"]
    start = model.index(f"def build_{network}(")
    return model[start : model.index("\ndef ", start + 1)]


@pytest.mark.parametrize(
    ("spec", "network", "overrides", "has_batch_norm", "has_spectral_norm"),
    [
        ("gan_ring8.yaml", "discriminator", ("model.discriminator.freeze=true",), False, False),
        ("dcgan_digits.yaml", "discriminator", ("model.discriminator.freeze=true",), False, True),
        (
            "dcgan_digits.yaml",
            "generator",
            ("model.generator.freeze=true", "training.fine_tune.unfreeze_after_epochs=3"),
            False,
            False,
        ),
        (GAN_CONV, "generator", ("model.generator.freeze=true",), True, False),
        (
            GAN_CONV,
            "generator",
            ("model.generator.freeze=true", "training.fine_tune.unfreeze_after_epochs=3"),
            True,
            False,
        ),
    ],
)
def test_a_frozen_network_comment_names_the_layers_it_has(
    spec: str | Path,
    network: str,
    overrides: tuple[str, ...],
    has_batch_norm: bool,
    has_spectral_norm: bool,
) -> None:
    builder = builder_of(spec, network, *overrides)
    assert "# Frozen " in builder
    assert (BATCH_NORM in builder) == has_batch_norm
    assert (SPECTRAL_NORM in builder) == has_spectral_norm
    assert ("layers.BatchNormalization" in builder) == has_batch_norm
