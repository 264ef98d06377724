"""Fixtures of the VAE variant tests: generated `model.py` modules of the tiny digits VAE
(tests/conftest.py's TINY_VAE) with `--set` overrides, imported from a temporary folder."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec
from tests.conftest import TINY_VAE


@pytest.fixture(scope="session")
def generated_vae(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ModuleType]:
    """generated_vae(*overrides) -> the generated model module of TINY_VAE with those
    overrides (`model.posterior={type: iaf}`), one package per distinct set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cache: dict[tuple[str, ...], ModuleType] = {}

    def make(*overrides: str) -> ModuleType:
        if overrides in cache:
            return cache[overrides]
        name = f"vae-variant-test-{len(cache)}"
        folder = tmp_path_factory.mktemp(name)
        spec_file = folder / "spec.yaml"
        spec_file.write_text(TINY_VAE.replace("name: tiny-vae", f"name: {name}"))
        loaded = load_spec(spec_file, list(overrides))
        plan = lower(loaded)
        path = Path(folder) / "model.py"
        path.write_text(render_project(loaded, plan)[f"{plan.package}/model.py"])
        module_name = f"{plan.package}_model"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        cache[overrides] = module
        return module

    return make
