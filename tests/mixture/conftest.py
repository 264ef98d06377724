"""Fixtures of the mixture tests: generated `model.py` modules, imported from a temp folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: {name}
seed: 5
data:
  source: {{type: builtin, name: blobs, n_samples: 1000, n_features: {features}, centers: 3}}
model:
  family: mixture
  components: {components}
  covariance: {covariance}
  algorithm: {{type: em, max_iter: 50, tol: 0.0, init: {init}}}
  reg_covar: {reg_covar}
"""


@pytest.fixture(scope="session")
def generated_mixture(tmp_path_factory):
    """generated_mixture(covariance, components, features) -> the generated model module."""
    cache: dict[tuple, object] = {}

    def make(covariance, components=3, features=4, init="kmeans", reg_covar=1e-6):
        key = (covariance, components, features, init, reg_covar)
        if key in cache:
            return cache[key]
        # One package per variant: each registers its own serializable class name.
        name = f"gmm-test-{len(cache)}-{covariance}"
        folder = tmp_path_factory.mktemp(name)
        spec_file = folder / "spec.yaml"
        spec_file.write_text(
            SPEC.format(
                name=name,
                features=features,
                components=components,
                covariance=covariance,
                init=init,
                reg_covar=reg_covar,
            )
        )
        loaded = load_spec(spec_file)
        plan = lower(loaded)
        source = render_project(loaded, plan)[f"{plan.package}/model.py"]
        path = Path(folder) / "model.py"
        path.write_text(source)
        module_name = f"{plan.package}_model"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        cache[key] = module
        return module

    return make


def correlated_data(n: int, features: int, centers: int, seed: int = 0) -> np.ndarray:
    """Clusters with random correlated covariances (float64)."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(centers):
        mixing = rng.normal(size=(features, features)) * 0.7
        center = rng.normal(scale=4.0, size=features)
        parts.append(center + rng.normal(size=(n // centers, features)) @ mixing)
    return np.concatenate(parts)[rng.permutation(n // centers * centers)]


@pytest.fixture(scope="session")
def make_data():
    return correlated_data
