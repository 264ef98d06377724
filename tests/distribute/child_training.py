"""Training as the generated train.py does it, for the distribution tests' child processes.

`built_module` builds a case's spec under a strategy (`one_device`: the case as one device
trains it); `trained` seeds, loads the data, builds, compiles and fits as `train.main` does
(without evaluation and artifacts); `weights` and `relative_difference` compare the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gencompile.compiler.project import build
from gencompile.runs import import_generated
from gencompile.runtime import cluster, repro, training
from gencompile.runtime.data import load_data
from gencompile.spec import load_spec


def built_module(case: dict[str, Any], strategy: str, folder: Path) -> Any:
    """Build the case's spec with `strategy` into `folder`; its generated train module."""
    name = f"{case['name']}-{strategy}".replace("_", "-")
    overrides = [
        *case["overrides"],
        f"training.distribution.strategy={strategy}",
        f"name={name}",
        "output.samples.every_epochs=0",
    ]
    built = build(load_spec(case["spec"], overrides), folder, force=True)
    return import_generated(folder, built.plan.package)


def one_device(case: dict[str, Any]) -> dict[str, Any]:
    """The case as one device trains it: with its "single_device_steps" an epoch, if any
    (the steps of the strategy's epochs when they leave out a last batch)."""
    steps = case.get("single_device_steps")
    fixed = [] if steps is None else [f"training.steps_per_epoch={steps}"]
    return {**case, "overrides": [*case["overrides"], *fixed]}


def trained(module: Any, run_dir: Path, epochs: int | None = None, resume: bool = False) -> Any:
    """A model trained as the generated train.py does (fresh seeds, data and model), for
    `epochs` or the spec's training.epochs."""
    epochs = epochs or module.TRAINING["epochs"]
    repro.set_seed(module.SEED, deterministic=module.TRAINING["deterministic"])
    data = load_data(module.DATA, seed=module.SEED)
    model = training.build_and_compile(module.build_model, module.TRAINING, data, epochs)
    first = training.resume_point(model, run_dir) if resume else 0
    writes = cluster.output_dir(run_dir)  # the run folder, except on a worker of a cluster
    fitted = training.fit(model, data, module.TRAINING, module.OUTPUT, writes, epochs, True, first)
    model.epochs_trained = max(len(values) for values in fitted.history.values())
    model.fitted_history = fitted.history
    model.split_sizes = (len(data.x_train), len(data.x_val))
    model.x_val = data.x_val
    return model


def weights(model: Any) -> list[np.ndarray]:
    """Every float weight: networks, moving averages, EM statistics, optimizer slots."""
    values = [np.asarray(v.numpy()) for v in [*model.weights, *model.optimizer.variables]]
    return [v for v in values if v.dtype.kind == "f" and v.size]


def relative_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """The largest, over tensors, of max |a - b| / max |a| (0 for two all-zero tensors)."""
    assert len(first) == len(second)
    worst = 0.0
    for a, b in zip(first, second, strict=True):
        assert a.shape == b.shape
        scale = float(np.max(np.abs(a)))
        diff = float(np.max(np.abs(a - b)))
        worst = max(worst, diff / scale if scale else diff)
    return worst
