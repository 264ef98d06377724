"""Benchmark: one EM iteration of a generated Gaussian mixture against scikit-learn's.

One run of this script

1. draws a mixture data set (`--n` examples, `--d` features, `--k` clusters with random full
   covariances, float32 as the generated model's data pipeline delivers it) and one set of
   initial parameters (k random rows as means, the data's covariance for every component,
   equal weights), both saved to a temporary folder;
2. writes a spec for that data (`{type: npy}` source, no validation split, full
   covariances, EM with tol 0 so every iteration runs) and builds it with the library, as
   `gencompile build` would;
3. in `--rounds` interleaved rounds, runs each contender in a fresh subprocess (the order
   alternating between rounds), each doing `--iterations` EM iterations from the same
   initial parameters:
   - generated: the generated `train.py`'s steps 1-3 (`repro.set_seed`, `load_data`,
     `training.build_and_compile`), `model.set_parameters(...)`, then `model.fit` on
     `data.epochs(...)` with the model's own callbacks (the M-step between epochs);
   - sklearn: `GaussianMixture(covariance_type="full", tol=0, max_iter=...)` with
     `weights_init`, `means_init` and `precisions_init`, `fit` on the same rows as float64;
   - sklearn-float32 (with `--sklearn-float32`): the same fit on the float32 rows, which
     scikit-learn keeps in float32;
4. reports the median seconds per EM iteration, the ratio generated / sklearn, the final
   mean log-likelihood of each and their relative difference, and the peak memory of
   each process; prints a markdown report and writes it to `benchmarks/results/gmm_em.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/gmm_em.py              # n=400000, d=32, k=32, 3 rounds
    .venv/bin/python benchmarks/gmm_em.py --threads 1  # the same, one thread each
    .venv/bin/python benchmarks/gmm_em.py --quick      # n=20000, d=16, k=8: a smoke check

Time per iteration. The generated model: a callback reads the clocks at each epoch's end;
an iteration is the time between two epoch ends (the M-step at the epoch's start, then the
E-step and statistics over every batch). scikit-learn: a subclass of `GaussianMixture`
whose `_m_step` reads the clocks after calling scikit-learn's own (nothing else changes);
an iteration is the time between two M-step ends. The first iteration of each is not
counted (tracing for TensorFlow; for scikit-learn it includes the initialisation). Wall
time and CPU time (`time.process_time`, every thread of the process) are both reported:
on a shared machine the CPU time moves less. `--threads` sets the threads of both (the
BLAS/OpenMP threads of numpy, TensorFlow's intra- and inter-op pools).

Memory. Each contender runs in its own process: the peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, the high-water mark the kernel keeps, so
memory that numpy or TensorFlow allocate outside Python's allocator counts too), and the
resident size just before fitting (`VmRSS` of `/proc/self/status`, after imports, data
and model are in memory), so the difference is what fitting added.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from harness import listed, load_average, machine_line, utc_stamp, write_result

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PACKAGE = "gmm_em_bench"
SEED = 0
REG_COVAR = 1e-6
TARGET_RATIO = 0.25  # generated / sklearn seconds per iteration
AGREEMENT = 1e-3  # relative difference of the final mean log-likelihoods

SPEC = """\
spec_version: 1
name: gmm-em-bench
description: benchmark data, {n} x {d}, full-covariance EM with {k} components
seed: {seed}
data:
  source: {{type: npy, path: {path}}}
  validation_split: 0.0
  batch_size: {batch_size}
model:
  family: mixture
  components: {k}
  covariance: full
  algorithm: {{type: em, max_iter: {iterations}, tol: 0.0, init: random}}
  reg_covar: {reg_covar}
"""


# ====================================================================== data and start


def mixture_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """n rows of a k-cluster Gaussian mixture in d dimensions with random full covariances."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) / np.sqrt(d) + 0.5 * np.eye(d)[None]
    labels = rng.integers(0, k, size=n)
    x = np.empty((n, d), np.float32)
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        x[rows] = centers[c] + rng.normal(size=(len(rows), d)) @ mixing[c]
    return x


def initial_parameters(x: np.ndarray, k: int, seed: int) -> dict[str, np.ndarray]:
    """k distinct random rows as means, the data's covariance everywhere, equal weights."""
    rng = np.random.default_rng(seed + 1)
    data = x.astype(np.float64)
    covariance = np.cov(data, rowvar=False) + REG_COVAR * np.eye(x.shape[1])
    return {
        "weights": np.full(k, 1.0 / k),
        "means": data[rng.choice(len(data), k, replace=False)],
        "covariances": np.broadcast_to(covariance, (k, *covariance.shape)).copy(),
    }


# ====================================================================== the workers


def rss_mb() -> float:
    """The current resident set size of this process (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def run_generated(folder: Path, iterations: int, threads: int) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

    from gencompile.generated import import_generated
    from gencompile.runtime import mixture, repro, training
    from gencompile.runtime.data import load_data

    tf.get_logger().setLevel("ERROR")
    project = folder / "project"
    model_module = import_generated(project, PACKAGE, "model")
    train_module = import_generated(project, PACKAGE, "train")
    # The generated train.py's steps 1-3.
    repro.set_seed(model_module.SEED, deterministic=train_module.TRAINING["deterministic"])
    data = load_data(train_module.DATA, seed=model_module.SEED)
    model = training.build_and_compile(
        model_module.build_model, train_module.TRAINING, data, epochs=iterations
    )
    start = np.load(folder / "start.npz")
    model.set_parameters(
        start["weights"],
        start["means"],
        mixture.precisions_cholesky(start["covariances"], "full").numpy(),
    )

    class EpochEnds(keras.callbacks.Callback):
        """(wall, CPU) clock readings at the start of training and at each epoch's end."""

        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[tuple[float, float]] = []

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.stamps.append(clocks())

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.stamps.append(clocks())

    clock = EpochEnds()
    before = rss_mb()
    model.fit(
        data.epochs(0, iterations),
        epochs=iterations,
        steps_per_epoch=data.steps_per_epoch,
        callbacks=[clock, *model.training_callbacks()],  # the M-step between epochs
        shuffle=False,
        verbose=0,
    )
    # lapses[0]: the first epoch, with tracing
    lapses = np.diff(np.array(clock.stamps), axis=0)
    log_likelihood = float(np.mean(mixture.log_likelihood(model, data.x_train)))
    return {
        "seconds": lapses[:, 0].tolist(),
        "cpu_seconds": lapses[:, 1].tolist(),
        "log_likelihood": log_likelihood,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "batches": int(data.steps_per_epoch),
    }


def clocks() -> tuple[float, float]:
    """Wall time, and CPU time of every thread of this process."""
    return time.perf_counter(), time.process_time()


def run_sklearn(folder: Path, iterations: int, dtype: str) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    class StampedGaussianMixture(GaussianMixture):
        """GaussianMixture with a clock reading after each M-step; nothing else changes."""

        def _m_step(self, *args: Any, **kwargs: Any) -> None:
            super()._m_step(*args, **kwargs)
            self.stamps.append(clocks())

    x = np.load(folder / "x.npy").astype(dtype)
    start = np.load(folder / "start.npz")
    model = StampedGaussianMixture(
        len(start["weights"]),
        covariance_type="full",
        tol=0.0,  # every iteration runs
        reg_covar=REG_COVAR,
        max_iter=iterations,
        init_params="random_from_data",  # cheap; the *_init values replace its estimates
        weights_init=start["weights"],
        means_init=start["means"],
        precisions_init=np.linalg.inv(start["covariances"]),
        random_state=SEED,
    )
    before = rss_mb()
    model.stamps = [clocks()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x)
    if len(model.stamps) != iterations + 1:
        raise RuntimeError(f"expected {iterations} M-steps, saw {len(model.stamps) - 1}")
    lapses = np.diff(np.array(model.stamps), axis=0)  # lapses[0] includes the initialisation
    return {
        "seconds": lapses[:, 0].tolist(),
        "cpu_seconds": lapses[:, 1].tolist(),
        "log_likelihood": float(model.score(x)),
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
    }


def worker(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if args.worker == "generated":
        result = run_generated(folder, args.iterations, args.threads)
    else:
        result = run_sklearn(folder, args.iterations, args.worker.split("-")[-1])
    print("RESULT " + json.dumps(result))


# ====================================================================== orchestration

CONTENDERS = {
    "generated": "generated",
    "sklearn": "sklearn-float64",
    "sklearn-float32": "sklearn-float32",
}


def run_contender(name: str, folder: Path, iterations: int, threads: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        CONTENDERS[name],
        "--folder",
        str(folder),
        "--iterations",
        str(iterations),
        "--threads",
        str(threads),
    ]
    # The BLAS threads of numpy (scikit-learn); TensorFlow's pools are set in the worker.
    blas = {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env = {**os.environ, **blas, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["iteration_seconds"] = statistics.median(result["seconds"][1:])
    result["iteration_cpu_seconds"] = statistics.median(result["cpu_seconds"][1:])
    return result


def prepare(folder: Path, args: argparse.Namespace) -> int:
    """Data, initial parameters and the built project in `folder`; the batch count."""
    from gencompile.compiler.project import build
    from gencompile.spec import load_spec

    x = mixture_data(args.n, args.d, args.k, SEED)
    np.save(folder / "x.npy", x)
    np.savez(folder / "start.npz", **initial_parameters(x, args.k, SEED))
    spec = folder / "spec.yaml"
    spec.write_text(
        SPEC.format(
            n=args.n,
            d=args.d,
            k=args.k,
            seed=SEED,
            path=json.dumps(str(folder / "x.npy")),
            batch_size=args.batch_size,
            iterations=args.iterations,
            reg_covar=REG_COVAR,
        )
    )
    build(load_spec(spec), folder / "project")
    return -(-args.n // args.batch_size)


def render(
    rounds: list[dict[str, dict[str, Any]]],
    args: argparse.Namespace,
    batches: int,
    loads: list[str],
    command: str,
) -> str:
    names = list(rounds[0])

    def median(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in rounds)

    def ratios(key: str, reference: str = "sklearn") -> tuple[float, list[float]]:
        """generated / reference: of the medians over rounds, and per round."""
        per_round = [r["generated"][key] / r[reference][key] for r in rounds]
        return median("generated", key) / median(reference, key), per_round

    wall, wall_rounds = ratios("iteration_seconds")
    cpu, cpu_rounds = ratios("iteration_cpu_seconds")
    ll = {name: median(name, "log_likelihood") for name in names}
    agreement = abs(ll["generated"] - ll["sklearn"]) / abs(ll["sklearn"])
    stamp = utc_stamp()

    lines = [
        "# gmm_em: generated EM vs scikit-learn's GaussianMixture",
        "",
        f"`{command}` ({stamp})",
        "",
        f"n = {args.n}, d = {args.d}, k = {args.k}, full covariances, {args.iterations} EM "
        f"iterations from the same initial parameters, {args.threads} thread(s) each; the "
        f"generated model uses batches of {args.batch_size} ({batches} per iteration).",
        "",
        "| contender | wall s / EM iteration | CPU s / EM iteration | final mean "
        "log-likelihood | peak RSS (MB) | RSS added by fitting (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        added = median(name, "peak_rss_mb") - median(name, "rss_before_mb")
        lines.append(
            f"| {name} | {median(name, 'iteration_seconds'):.3f} | "
            f"{median(name, 'iteration_cpu_seconds'):.3f} | {ll[name]:.6f} | "
            f"{median(name, 'peak_rss_mb'):.0f} | {added:.0f} |"
        )
    verdict = "meets" if wall <= TARGET_RATIO else "misses"
    lines += [
        "",
        f"**ratio generated / sklearn, wall time per iteration: {wall:.3f}** ({verdict} the "
        f"target <= {TARGET_RATIO}; per round {listed(wall_rounds)})",
        "",
        f"- CPU time per iteration (all threads of each process): ratio {cpu:.3f} (per round "
        f"{listed(cpu_rounds)}); steadier than wall time when other processes share the cores",
        f"- final mean log-likelihood, |generated - sklearn| / |sklearn| = {agreement:.2e} "
        f"({'within' if agreement <= AGREEMENT else 'OUTSIDE'} {AGREEMENT:g})",
    ]
    if "sklearn-float32" in names:
        wall32, _ = ratios("iteration_seconds", "sklearn-float32")
        cpu32, _ = ratios("iteration_cpu_seconds", "sklearn-float32")
        lines.append(
            f"- against scikit-learn fitting the float32 rows in float32: ratio {wall32:.3f} "
            f"(wall), {cpu32:.3f} (CPU)"
        )
    lines += [
        "",
        "How it was measured:",
        "",
        "- Each contender runs in a fresh subprocess per round, the order alternating between "
        f"rounds; {len(rounds)} round(s); a round's figure is the median of its iterations, "
        "the table's the median over rounds.",
        "- generated: the spec is built by the library; the generated `train.py`'s set-up, "
        "`model.set_parameters(...)` with the initial parameters, then `model.fit` on "
        "`data.epochs(...)` with the model's callbacks. An iteration is the time between two "
        "epoch ends (the M-step, then the E-step and statistics over every batch, with the "
        "data pipeline's threads); the first epoch (tracing) is not counted.",
        "- sklearn: `GaussianMixture(covariance_type='full', tol=0)` with the same "
        "`weights_init`, `means_init`, `precisions_init`, `fit` on the same rows in float64, "
        "through a subclass whose `_m_step` reads the clocks after calling scikit-learn's; an "
        "iteration is the time between two M-step ends (its E-step, M-step and lower bound); "
        "the first (which includes the initialisation) is not counted.",
        f"- threads: {args.threads} for each (`OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS` for "
        "numpy; TensorFlow's intra- and inter-op pools; tf.data keeps its own threads).",
        "- final mean log-likelihood: the generated model's `log_prob` (float64) over the "
        "data; `GaussianMixture.score`.",
        "- memory: `ru_maxrss` of each subprocess (peak resident set, all allocators) and "
        "`VmRSS` just before fitting (imports, data and model loaded); TensorFlow's runtime "
        "alone is several hundred MB of the generated model's baseline.",
        f"- {machine_line(frameworks=False)}; load average after "
        "each round: " + "; ".join(loads) + " (a shared machine moves absolute times: compare "
        "ratios).",
        "",
        "## Per round",
        "",
        "| round | contender | wall s / iteration | CPU s / iteration | wall s of each "
        "iteration | final mean log-likelihood | peak RSS (MB) | RSS before fit (MB) |",
        "|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for i, result in enumerate(rounds, start=1):
        for name in names:
            r = result[name]
            times = ", ".join(f"{s:.2f}" for s in r["seconds"])
            lines.append(
                f"| {i} | {name} | {r['iteration_seconds']:.3f} | "
                f"{r['iteration_cpu_seconds']:.3f} | {times} | {r['log_likelihood']:.6f} | "
                f"{r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="examples (default 400000)")
    parser.add_argument("--d", type=int, default=None, help="features (default 32)")
    parser.add_argument("--k", type=int, default=None, help="components (default 32)")
    parser.add_argument("--iterations", type=int, default=6, help="EM iterations per fit")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--batch-size", type=int, default=8192, help="generated model's batch")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads of each contender: BLAS/OpenMP for sklearn, TensorFlow's intra- and "
        "inter-op pools for the generated model (default: the CPU count)",
    )
    parser.add_argument(
        "--sklearn-float32", action="store_true", help="also time sklearn on float32 rows"
    )
    parser.add_argument("--quick", action="store_true", help="n=20000, d=16, k=8, 2 rounds")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    parser.add_argument("--worker", choices=sorted(CONTENDERS.values()), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = {"n": 20000, "d": 16, "k": 8}
    full = {"n": 400000, "d": 32, "k": 32}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick and "--rounds" not in (argv or sys.argv):
        args.rounds = 2
    if args.iterations < 2:
        parser.error("--iterations must be at least 2 (the first is not timed)")
    return args


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0.0
    names = ["generated", "sklearn"] + (["sklearn-float32"] if args.sklearn_float32 else [])
    rounds: list[dict[str, dict[str, Any]]] = []
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gmm-em-bench-") as tmp:
        folder = Path(tmp)
        batches = prepare(folder, args)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            results = {}
            for name in order:
                results[name] = run_contender(name, folder, args.iterations, args.threads)
                print(
                    f"round {r + 1} {name}: {results[name]['iteration_seconds']:.3f} s/iteration, "
                    f"log-likelihood {results[name]['log_likelihood']:.6f}",
                    flush=True,
                )
            rounds.append({name: results[name] for name in names})
            loads.append(load_average())
    command = "benchmarks/gmm_em.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = render(rounds, args, batches, loads, command.strip())
    output = args.output or RESULTS / ("gmm_em.quick.md" if args.quick else "gmm_em.md")
    write_result(output, report)
    return statistics.median(
        r["generated"]["iteration_seconds"] / r["sklearn"]["iteration_seconds"] for r in rounds
    )


if __name__ == "__main__":
    main()
