"""Fixtures of the GAN tests: small generated GANs, compiled from spec text and imported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec_text

BASE = """\
spec_version: 1
name: {name}
seed: 5
data:
  source: {{type: builtin, name: {data}}}
  preprocessing: {preprocessing}
  batch_size: 32
model:
  family: gan
  latent_dim: 4
  generator: {generator}
  discriminator: {discriminator}
{model}
training:
  epochs: 1
{training}
"""


class Generated(SimpleNamespace):
    module: ModuleType
    training: dict[str, Any]


@pytest.fixture(scope="session")
def generated_gan(tmp_path_factory):
    """generated_gan(model="...", ...) -> (the generated model module, its training config)."""
    cache: dict[tuple, Generated] = {}

    def make(
        model: str = "",
        data: str = "ring8",
        preprocessing: str = "{standardize: true}",
        generator: str = "{mlp: [16]}",
        discriminator: str = "{mlp: [16]}",
        training: str = "",
    ) -> Generated:
        key = (model, data, preprocessing, generator, discriminator, training)
        if key in cache:
            return cache[key]
        # One package per variant: each registers its own serializable class name.
        name = f"gan-test-{len(cache)}"
        text = BASE.format(
            name=name,
            data=data,
            preprocessing=preprocessing,
            generator=generator,
            discriminator=discriminator,
            model=model,
            training=training,
        )
        loaded = load_spec_text(text)
        plan = lower(loaded)
        folder = tmp_path_factory.mktemp(name)
        path = Path(folder) / "model.py"
        path.write_text(render_project(loaded, plan)[f"{plan.package}/model.py"])
        module_name = f"{plan.package}_model"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        cache[key] = Generated(module=module, training=plan.training)
        return cache[key]

    return make
