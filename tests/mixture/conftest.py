"""Fixtures of the mixture tests: generated `model.py` modules, imported from a temp folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.runtime import mixture
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
  algorithm: {algorithm}
  reg_covar: {reg_covar}
"""

ALGORITHMS = {
    "em": "{{type: em, max_iter: 50, tol: 0.0, init: {init}}}",
    "gradient": "{{type: gradient, init: {init}}}",
    # EM from the best of 4 starts (tol 0: every iteration of each)
    "em_starts": "{{type: em, max_iter: 15, tol: 0.0, init: {init}, n_init: 4}}",
    # variational EM (tol 0: every iteration), under either prior of the weights
    "variational_process": "{{type: variational, max_iter: 50, tol: 0.0, init: {init}, "
    "weight_concentration_prior_type: dirichlet_process}}",
    "variational_distribution": "{{type: variational, max_iter: 50, tol: 0.0, init: {init}, "
    "weight_concentration_prior_type: dirichlet_distribution}}",
}


@pytest.fixture(scope="session")
def generated_mixture(tmp_path_factory):
    """generated_mixture(covariance, components, features, ...) -> the generated model module.

    `algorithm` is "em" (EM, tol 0) or "gradient" (maximum likelihood by an optimizer).
    """
    cache: dict[tuple, object] = {}

    def make(covariance, components=3, features=4, init="kmeans", reg_covar=1e-6, algorithm="em"):
        key = (covariance, components, features, init, reg_covar, algorithm)
        if key in cache:
            return cache[key]
        # One package per variant: each registers its own serializable class name.
        name = f"gmm-test-{len(cache)}-{covariance}-{algorithm}"
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
                algorithm=ALGORITHMS[algorithm].format(init=init),
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


def poor_start(x: np.ndarray, covariance: str, components: int = 3, seed: int = 1):
    """Deliberately poor initial parameters: random data points as means, unit-ish covariances.

    Returns (weights, means, covariances), the covariances in the type's own shape.
    """
    rng = np.random.default_rng(seed)
    k, d = components, x.shape[1]
    weights = rng.dirichlet(np.ones(k) * 5)
    means = x[rng.choice(len(x), k, replace=False)]
    variances = 1.0 + rng.uniform(size=k)
    covariances = {
        "full": variances[:, None, None] * np.eye(d)[None],
        "tied": np.eye(d) * 2.0,
        "diag": variances[:, None] * np.ones((k, d)),
        "spherical": variances,
    }[covariance]
    return weights, means, covariances


def run_em(model, x: np.ndarray, iterations: int, batch_size: int = 256) -> None:
    """`iterations` epochs of the generated train_step, M-steps between them."""
    if not model.compiled:
        model.compile(optimizer="sgd")
    dataset = tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(batch_size)
    model.fit(dataset, epochs=iterations, callbacks=[mixture.EMStep()], shuffle=False, verbose=0)


def mean_log_likelihood(model, x: np.ndarray) -> float:
    return float(np.mean(mixture.log_likelihood(model, x.astype("float32"))))


@pytest.fixture(scope="session")
def em():
    """Helpers of the EM tests: em.poor_start, em.run_em, em.mean_log_likelihood."""
    return SimpleNamespace(
        poor_start=poor_start, run_em=run_em, mean_log_likelihood=mean_log_likelihood
    )
