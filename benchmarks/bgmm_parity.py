"""Benchmark: the generated variational mixture against scikit-learn's BayesianGaussianMixture.

One run of this script

1. draws blobs (`--n` examples, `--d` features, `--centers` clusters, float32 as the
   generated model's data pipeline delivers them, standardized) and offers `--k`
   components, more than the clusters, so the priors have components to switch off;
2. for each covariance type (full, diag, spherical, tied) and each prior of the weights
   (dirichlet_process, dirichlet_distribution), builds the generated model from a spec (as
   `gencompile build` renders it) and fits it, then fits scikit-learn's
   `BayesianGaussianMixture` with the same options: the same k-means start (the spec's seed
   is scikit-learn's random_state), tol and max_iter, and scikit-learn's default priors on
   both sides;
   - generated: `model.initialize` (the priors from the data, k-means, the first M-step),
     then `model.fit` over batches of `--batch-size` with the model's own callbacks (the
     M-step between epochs, the stop on the lower bound);
   - sklearn: `fit` on the same rows as float64;
3. reports, per case, the largest relative difference between the two lower bounds over
   the iterations both ran, the iterations each ran, the effective number of components
   (posterior mean weight above 1 %) of each, and the wall time of each fit with their
   ratio; prints a markdown report and writes it to `benchmarks/results/bgmm_parity.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/bgmm_parity.py            # n=10000, d=8, 6 blobs, k=12
    .venv/bin/python benchmarks/bgmm_parity.py --quick    # n=2000, max_iter 20: a smoke check

Both sides run in this one process, one after the other, on the same data; on a shared
machine the wall times move with the load (printed in the report), the bounds do not.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
from harness import (
    forget_script_folder,
    load_average,
    machine_line,
    render_table,
    utc_stamp,
    write_result,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SEED = 0
COVARIANCES = ("full", "diag", "spherical", "tied")
PRIORS = ("dirichlet_process", "dirichlet_distribution")
EFFECTIVE_WEIGHT = 1e-2
TARGET = 1e-6  # relative agreement of the lower bounds

SPEC = """\
spec_version: 1
name: bgmm-parity-{index}
seed: {seed}
data:
  source: {{type: builtin, name: blobs, n_samples: 100, n_features: {d}, centers: 2}}
model:
  family: mixture
  components: {k}
  covariance: {covariance}
  algorithm:
    type: variational
    weight_concentration_prior_type: {prior}
    max_iter: {max_iter}
    tol: {tol}
    init: kmeans
"""


def blobs(n: int, d: int, centers: int) -> np.ndarray:
    """Standardized blobs, rounded to float32 (what the generated model reads)."""
    from sklearn.datasets import make_blobs

    x, _ = make_blobs(n_samples=n, n_features=d, centers=centers, random_state=SEED)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32)


def generated_module(folder: Path, index: int, **options: Any) -> ModuleType:
    """The generated model.py of a variational spec, imported from `folder`."""
    from gencompile.compiler.lower import lower
    from gencompile.compiler.project import render_project
    from gencompile.spec import load_spec

    spec_file = folder / f"spec{index}.yaml"
    spec_file.write_text(SPEC.format(index=index, seed=SEED, **options))
    loaded = load_spec(spec_file)
    plan = lower(loaded)
    path = folder / f"{plan.package}_model.py"
    path.write_text(render_project(loaded, plan)[f"{plan.package}/model.py"])
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def fit_generated(module: ModuleType, x: np.ndarray, batch_size: int, max_iter: int):
    import tensorflow as tf

    start = time.perf_counter()
    model = module.build_model()
    model.compile(optimizer="sgd")  # no optimizer steps: EM's M-step sets the parameters
    model.initialize(SimpleNamespace(x_train=x))
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    history = model.fit(
        dataset, epochs=max_iter, callbacks=model.training_callbacks(), shuffle=False, verbose=0
    )
    seconds = time.perf_counter() - start
    return model, np.asarray(history.history["lower_bound"]), seconds


def fit_sklearn(x: np.ndarray, covariance: str, prior: str, k: int, max_iter: int, tol: float):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    reference = BayesianGaussianMixture(
        n_components=k,
        covariance_type=covariance,
        weight_concentration_prior_type=prior,
        max_iter=max_iter,
        tol=tol,
        init_params="kmeans",
        random_state=SEED,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(x.astype(np.float64))
    return reference, np.ravel(reference.lower_bounds_), time.perf_counter() - start


def main() -> None:
    forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--centers", type=int, default=6)
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="n=2000, max_iter 20")
    args = parser.parse_args()
    if args.quick:
        args.n, args.max_iter = 2000, 20
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    x = blobs(args.n, args.d, args.centers)
    rows, worst = [], 0.0
    with tempfile.TemporaryDirectory() as folder:
        for index, (covariance, prior) in enumerate((c, p) for c in COVARIANCES for p in PRIORS):
            module = generated_module(
                Path(folder), index, d=args.d, k=args.k, covariance=covariance, prior=prior,
                max_iter=args.max_iter, tol=args.tol,
            )  # fmt: skip
            model, ours, our_seconds = fit_generated(module, x, args.batch_size, args.max_iter)
            reference, theirs, their_seconds = fit_sklearn(
                x, covariance, prior, args.k, args.max_iter, args.tol
            )
            common = min(len(ours), len(theirs))
            gap = float(np.max(np.abs(ours[:common] - theirs[:common]) / np.abs(theirs[:common])))
            worst = max(worst, gap)
            effective = int(np.sum(model.component_weights.numpy() > EFFECTIVE_WEIGHT))
            theirs_effective = int(np.sum(reference.weights_ > EFFECTIVE_WEIGHT))
            rows.append(
                [
                    covariance,
                    prior,
                    f"{gap:.1e}",
                    f"{theirs[-1]:.4f}",
                    f"{len(ours)} / {len(theirs)}",
                    f"{effective} / {theirs_effective}",
                    f"{our_seconds:.2f} / {their_seconds:.2f}",
                    f"{our_seconds / their_seconds:.2f}",
                ]
            )
            print(*rows[-1], sep="  ", flush=True)
    command = "python benchmarks/bgmm_parity.py" + (" --quick" if args.quick else "")
    table = render_table(
        rows,
        [
            "covariance",
            "weight prior",
            "max rel. bound difference",
            "sklearn final bound",
            "iterations (ours / sklearn)",
            "effective components (ours / sklearn)",
            "wall s (ours / sklearn)",
            "time ratio",
        ],
        "llrrrrrr",
    )
    verdict = "meets" if worst <= TARGET else "misses"
    title = "generated variational mixture vs scikit-learn's BayesianGaussianMixture"
    report = f"""# bgmm_parity: {title}

`{command}` ({utc_stamp()})

n = {args.n} standardized blobs in d = {args.d} ({args.centers} clusters, float32 rows), k = \
{args.k} components offered, tol {args.tol:g} on the lower bound, max_iter {args.max_iter}, \
the same k-means start (random_state {SEED}) and scikit-learn's default priors on both \
sides; the generated model reads batches of {args.batch_size}. {machine_line()}; load \
average {load_average()} (a shared machine: the wall times are noisy, the bounds are not).

{table}

**Largest relative difference of the lower bounds, over every iteration of every case: \
{worst:.1e}** ({verdict} the target {TARGET:g}).

- max rel. bound difference: max over the iterations both ran of |ours - sklearn| / |sklearn|
  (the generated model logs its bound per epoch as `lower_bound` in history.csv).
- effective components: posterior mean weights above {EFFECTIVE_WEIGHT:g}.
- wall s: initialisation (priors from the data, k-means, first M-step) and every iteration;
  the generated side includes Keras' fit and tf.function tracing, scikit-learn's is numpy.
"""
    write_result(RESULTS / "bgmm_parity.md", report)


if __name__ == "__main__":
    main()
