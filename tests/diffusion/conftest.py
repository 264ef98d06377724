"""Fixtures of the diffusion tests: generated `model.py` modules, imported from a temp folder."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: {name}
seed: 3
data:
  source: {{type: builtin, name: ring8, n_samples: 2000}}
  preprocessing: {preprocessing}
model:
  family: diffusion
{model}
"""


@pytest.fixture(scope="session")
def generated_diffusion(tmp_path_factory):
    """generated_diffusion(model_yaml, preprocessing) -> the generated model module whose
    spec has that `model:` body (ring8 data, with labels for conditional models)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cache: dict[str, object] = {}

    def make(model: str, preprocessing: str = "{standardize: true}"):
        key = f"{model}|{preprocessing}"
        if key in cache:
            return cache[key]
        name = f"diffusion-test-{len(cache)}"  # one package per variant: its own class name
        folder = tmp_path_factory.mktemp(name)
        spec_file = folder / "spec.yaml"
        body = "".join(f"  {line}\n" for line in model.strip().splitlines())
        text = SPEC.format(name=name, model=body.rstrip("\n"), preprocessing=preprocessing)
        spec_file.write_text(text)
        loaded = load_spec(spec_file)
        plan = lower(loaded)
        path = Path(folder) / "model.py"
        path.write_text(render_project(loaded, plan)[f"{plan.package}/model.py"])
        module_name = f"{plan.package}_model"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        cache[key] = module
        return module

    return make
