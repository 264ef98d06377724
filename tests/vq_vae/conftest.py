"""The example VQ-VAE spec built small by the real compiler, and its model imported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "vq_vae_digits.yaml"
# Tiny sizes: a run of these trains in seconds.
TINY = [
    "model.prior.filters=8",
    "model.prior.layers=1",
    "model.prior.epochs=1",
    "model.quantizer.codebook_size=8",
    "model.quantizer.embedding_dim=4",
    "data.batch_size=256",
    "evaluation.num_samples=128",
]
EMA = ["model.quantizer.type=ema", "model.quantizer.decay=0.9"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ModuleType]:
    """`generated(ema=False)`: the imported model module of the tiny example project."""
    from gencompile.compiler.project import build
    from gencompile.generated import import_generated
    from gencompile.spec import load_spec

    root = tmp_path_factory.mktemp("vq-generated")
    cache: dict[bool, ModuleType] = {}

    def make(ema: bool = False) -> ModuleType:
        if ema not in cache:
            name = "vq-tiny-ema" if ema else "vq-tiny"
            overrides = [*TINY, *(EMA if ema else []), f"name={name}"]
            directory = root / name
            result = build(load_spec(SPEC, overrides), directory)
            cache[ema] = import_generated(directory, result.plan.package, "model")
        return cache[ema]

    return make
