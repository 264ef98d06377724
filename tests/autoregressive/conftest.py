"""Tiny generated autoregressive models, built by the real compiler and imported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

TEXT_SPEC = """\
spec_version: 1
name: {name}
seed: 1
data:
  source: {{type: builtin, name: arithmetic, n_samples: 400}}
  batch_size: 16
model:
  family: autoregressive
  context_length: 16
  network: {network}
  teacher_forcing: {teacher_forcing}
training:
  epochs: 1
"""

IMAGE_SPEC = """\
spec_version: 1
name: {name}
seed: 1
data:
  source: {{type: builtin, name: digits}}
  preprocessing: {{scale: [0.0, 1.0]}}
  batch_size: 32
model:
  family: autoregressive
  network: {network}
training:
  epochs: 1
{evaluation}"""

NETWORKS = {
    "lstm": "{type: lstm, units: 16, embedding_dim: 8, layers: 2}",
    "gru": "{type: gru, units: 16, embedding_dim: 8}",
    "transformer": "{type: transformer, layers: 2, d_model: 16, heads: 2, dropout: 0.1}",
    "transformer_sinusoidal": (
        "{type: transformer, layers: 1, d_model: 16, heads: 4, positions: sinusoidal}"
    ),
    "pixelcnn": "{type: pixelcnn, filters: 8, layers: 2, kernel_size: 5,"
    " likelihood: {type: categorical, bins: 17}}",
    "pixelcnn_bernoulli": "{type: pixelcnn, filters: 8, layers: 1, kernel_size: 3,"
    " likelihood: {type: bernoulli}}",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ModuleType]:
    """`generated(kind, teacher_forcing=1.0)`: the imported model module of a tiny project."""
    from gencompile.compiler.project import build
    from gencompile.generated import import_generated
    from gencompile.spec import load_spec_text

    root = tmp_path_factory.mktemp("generated")
    cache: dict[tuple[str, float], ModuleType] = {}

    def make(kind: str, teacher_forcing: float = 1.0) -> ModuleType:
        if (kind, teacher_forcing) not in cache:
            name = f"ar-{kind.replace('_', '-')}-{int(teacher_forcing * 100)}"
            template = IMAGE_SPEC if kind.startswith("pixelcnn") else TEXT_SPEC
            text = template.format(
                name=name,
                network=NETWORKS[kind],
                teacher_forcing=teacher_forcing,
                # Bernoulli pixels on the digits' 17 levels have no exact NLL to report.
                evaluation="evaluation: {metrics: []}\n" if kind.endswith("bernoulli") else "",
            )
            directory = Path(root / name)
            result = build(load_spec_text(text), directory)
            module = import_generated(directory, result.plan.package, "model")
            module.PLAN = result.plan  # what the compiler planned, for the tests to compare
            cache[kind, teacher_forcing] = module
        return cache[kind, teacher_forcing]

    return make
