"""Benchmark: training on 2 local workers (`multi_worker`) against 1 process, in one run.

Part 1, throughput. A dense VAE (784-512-256-32, Bernoulli likelihood, batch 256) on
60,000 synthetic 784-feature examples (95% for training), trained `--epochs` epochs by three whole
`gencompile train` commands: one process with strategy `none` and 1 intra-op thread; one
process with 2 intra-op threads (all the cores of this machine); and `--workers 2` with 1
intra-op thread each. Each configuration trains twice, for 1 epoch and for 1 + `--epochs`
epochs: examples/s is the training examples of the extra epochs / the difference of the
chief's fit seconds (metrics.json `train_seconds`), so tracing and start-up are not
counted; the longer command's wall time is reported too. The final weights of the
2-worker run are compared with the 1-process run's (the same global batch), beside the
1-process runs with 1 and 2 threads (the same training in another summation order).

Part 2, EM. The gmm_em benchmark's mixture (n = 400,000, d = 32, k = 32, full
covariances, batches of 8192), EM from the same initial parameters for `--iterations`
iterations: one process with 1 intra-op thread, one with 2, and 2 workers with 1 each
(their sufficient statistics all-reduced). Reported: the median seconds per iteration (the
first, with tracing, not counted) and the final mean log-likelihood of each, which must be
the same to float64 rounding: EM's statistics are sums, exact under any split.

    .venv/bin/python benchmarks/workers.py           # ~20 minutes on 2 cores (3 rounds)
    .venv/bin/python benchmarks/workers.py --quick   # a smoke check

The markdown report goes to benchmarks/results/workers.md (--output to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from gmm_em import PACKAGE as EM_PACKAGE
from gmm_em import prepare
from harness import listed, median, utc_stamp, write_result

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEED = 0

VAE_SPEC = """\
spec_version: 1
name: vae-workers
seed: 0
data:
  source: {type: npy, path: x.npy}
  validation_split: 0.05
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 32
  prior: {type: normal}
  encoder: {mlp: [512, 256], activation: relu}
  decoder: {mlp: [256, 512], activation: relu}
  likelihood: {type: bernoulli}
training:
  epochs: 1
  optimizer: {type: adam, learning_rate: 1.0e-3}
  checkpoint: {every_epochs: 1000}
evaluation:
  metrics: [elbo]
output:
  samples: {count: 16, format: npz, every_epochs: 0}
"""
CONFIGS = {  # name -> (intra-op threads of each process, workers or None for one process)
    "1 process, 1 thread": (1, None),
    "1 process, 2 threads": (2, None),
    "2 workers, 1 thread each": (1, 2),
}


def environment(threads: int) -> dict[str, str]:
    """TensorFlow's intra-op pool; the inter-op pool keeps its default (collective
    operations need several inter-op threads to meet)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return {**env, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "3"}


# ====================================================================== part 1: throughput


def throughput_data(folder: Path, rows: int) -> None:
    """Digit-like sparse values in [0, 1]: 784 features, most of them 0."""
    rng = np.random.default_rng(SEED)
    x = rng.random((rows, 784), dtype=np.float32)
    x[x < 0.8] = 0.0
    np.save(folder / "x.npy", x)


def train_vae(folder: Path, name: str, epochs: int) -> dict[str, Any]:
    threads, workers = CONFIGS[name]
    short = run_train(folder, threads, workers, 1)
    long = run_train(folder, threads, workers, 1 + epochs)
    examples = round(len(np.load(folder / "x.npy", mmap_mode="r")) * 0.95) * epochs
    return {
        "examples_per_second": examples / (long["train_seconds"] - short["train_seconds"]),
        "train_seconds": long["train_seconds"],
        "command_seconds": long["command_seconds"],
        "weights": long["weights"],
    }


def run_train(folder: Path, threads: int, workers: int | None, epochs: int) -> dict[str, Any]:
    """One whole `gencompile train` command: its fit seconds, wall time and weights."""
    runs = f"runs-{threads}-{workers}-{epochs}"
    command = [sys.executable, "-m", "gencompile", "train", "spec.yaml", "--quiet"]
    command += ["--runs-dir", runs, "--epochs", str(epochs)]
    command += ["--workers", str(workers)] if workers else []
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=environment(threads), capture_output=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stderr.decode()[-3000:]}")
    (run,) = (folder / runs / "vae-workers").iterdir()
    record = json.loads((run / "metrics.json").read_text())
    return {
        "train_seconds": record["train_seconds"],
        "command_seconds": wall,
        "weights": str(run / "model.weights.h5"),
    }


def weights_difference(first: str, second: str) -> float:
    """The largest, over tensors, of max |a - b| / max |a|."""
    import h5py

    def arrays(path: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with h5py.File(path) as handle:
            handle.visititems(
                lambda key, item: (
                    found.__setitem__(key, item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
        return found

    a, b = arrays(first), arrays(second)
    return max(
        float(np.max(np.abs(a[key] - b[key])) / (np.max(np.abs(a[key])) or 1.0)) for key in a
    )


# ====================================================================== part 2: EM


def em_child(folder: Path, iterations: int) -> None:
    """One EM fit (one process, or one worker of the cluster in TF_CONFIG): the generated
    train.py's set-up, the benchmark's initial parameters, then `model.fit`."""
    from gencompile.runtime import cluster

    distributed = bool(os.environ.get("TF_CONFIG"))
    if distributed:
        cluster.multi_worker_strategy()  # before TensorFlow runs any operation
    import keras

    from gencompile.generated import import_generated
    from gencompile.runtime import mixture, repro, training
    from gencompile.runtime.data import load_data

    project = folder / ("project-multi" if distributed else "project")
    model_module = import_generated(project, EM_PACKAGE, "model")
    train_module = import_generated(project, EM_PACKAGE, "train")
    repro.set_seed(model_module.SEED, deterministic=train_module.TRAINING["deterministic"])
    data = load_data(train_module.DATA, seed=model_module.SEED)
    model = training.build_and_compile(
        model_module.build_model, train_module.TRAINING, data, epochs=iterations
    )
    start = np.load(folder / "start.npz")
    cholesky = mixture.precisions_cholesky(start["covariances"], "full").numpy()
    model.set_parameters(start["weights"], start["means"], cholesky)
    stamps: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: stamps.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()),
    )
    model.fit(
        cluster.shard_by_example(data.epochs(0, iterations)),
        epochs=iterations,
        steps_per_epoch=data.steps_per_epoch,
        callbacks=[clock, *model.training_callbacks()],  # the M-step between epochs
        shuffle=False,
        verbose=0,
    )
    log_likelihood = float(np.mean(mixture.log_likelihood(model, data.x_train)))
    print("RESULT " + json.dumps({"seconds": np.diff(stamps).tolist(), "ll": log_likelihood}))


def prepare_em(folder: Path, args: argparse.Namespace) -> None:
    """The gmm_em benchmark's data, initial parameters and project (batches of 8192), and
    the same project built for `multi_worker`."""
    from gencompile.compiler.project import build
    from gencompile.spec import load_spec

    prepare(folder, argparse.Namespace(**vars(args), batch_size=8192))
    multi = ["training.distribution.strategy=multi_worker"]
    build(load_spec(folder / "spec.yaml", multi), folder / "project-multi")


def fit_em(folder: Path, name: str, iterations: int) -> dict[str, Any]:
    from gencompile.local_cluster import free_loopback_ports, tf_config

    threads, workers = CONFIGS[name]
    command = [sys.executable, __file__, "--em-child", str(folder), "--iterations"]
    command.append(str(iterations))
    ports = free_loopback_ports(workers or 1)
    configs = [tf_config(ports, i) for i in range(workers)] if workers else [None]
    processes = [
        subprocess.Popen(
            command,
            env={**environment(threads), **({"TF_CONFIG": config} if config else {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    outputs = [process.communicate() for process in processes]
    results = []
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"{name} failed:\n{stderr[-3000:]}")
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    chief = results[0]
    return {
        "iteration_seconds": statistics.median(chief["seconds"][1:]),
        "log_likelihood": chief["ll"],
        "every_worker_ll": [result["ll"] for result in results],
    }


# ====================================================================== report


Rounds = dict[str, list[dict[str, Any]]]  # configuration -> its result in each round


def in_rounds(measure: Callable[[str], dict[str, Any]], rounds: int) -> Rounds:
    """Every configuration once a round, the order rotating each round, so load from
    elsewhere on the machine lands on all of them alike instead of on whichever one ran
    while it lasted (one sequential pass gave 1 thread = 2 threads once)."""
    names = list(CONFIGS)
    found: Rounds = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            print(f"round {number + 1}/{rounds}: {name}", flush=True)
            found[name].append(measure(name))
    return found


def round_ratios(found: Rounds, key: str, top: str, bottom: str) -> list[float]:
    """found[top][key] / found[bottom][key], round by round (each pair ran back to back)."""
    return [a[key] / b[key] for a, b in zip(found[top], found[bottom], strict=True)]


def ratio_text(values: list[float]) -> str:
    """The median of per-round ratios, then every round's."""
    return f"{median(values):.2f}x (per round {listed(values, 2)})"


def render(part1: Rounds, part2: Rounds, args: argparse.Namespace) -> str:
    stamp = utc_stamp()
    base, wide, two = CONFIGS
    rate, seconds = "examples_per_second", "iteration_seconds"
    speedup = ratio_text(round_ratios(part1, rate, two, base))
    against_wide = ratio_text(round_ratios(part1, rate, two, wide))
    threads = ratio_text(round_ratios(part1, rate, wide, base))
    em_speedup = ratio_text(round_ratios(part2, seconds, base, two))
    em_wide = ratio_text(round_ratios(part2, seconds, wide, two))
    reference_ll = part2[base][0]["log_likelihood"]
    worst_ll = max(
        abs(ll - reference_ll) / abs(reference_ll)
        for results in part2.values()
        for result in results
        for ll in result["every_worker_ll"]
    )
    lines = [
        "# workers: 2 local workers (multi_worker) against 1 process",
        "",
        f"`{' '.join(['benchmarks/workers.py', *sys.argv[1:]])}` ({stamp})",
        "",
        f"## Throughput: dense VAE, {args.rows:,} x 784, batch 256, 1 + {args.epochs} epochs",
        "",
        "| configuration | examples/s (steady) | fit s | whole command s |",
        "|---|---:|---:|---:|",
    ]
    for name, results in part1.items():
        lines.append(
            f"| {name} | {median(r[rate] for r in results):,.0f} | "
            f"{median(r['train_seconds'] for r in results):.1f} | "
            f"{median(r['command_seconds'] for r in results):.1f} |"
        )
    lines += [
        "",
        f"**2 workers x 1 thread / 1 process x 1 thread: {speedup} examples/s**; against 1 "
        f"process using both cores (2 threads): {against_wide}; 2 threads / 1 thread in one "
        f"process: {threads}.",
        f"- final weights, max relative difference: 2 workers against 1 process (same global "
        f"batch) {weights_difference(part1[two][0]['weights'], part1[base][0]['weights']):.1e}"
        f"; 1 process with 2 threads against 1 thread (the same training, another summation "
        f"order) "
        f"{weights_difference(part1[wide][0]['weights'], part1[base][0]['weights']):.1e}: "
        "Adam carries rounding differences forward over the steps, so after hundreds of "
        "steps neither is close; the equivalence tests compare 3 steps",
        "",
        f"## EM: n = {args.n:,}, d = {args.d}, k = {args.k}, full covariances, "
        f"{args.iterations} iterations",
        "",
        "| configuration | s / EM iteration | final mean log-likelihood |",
        "|---|---:|---:|",
    ]
    for name, results in part2.items():
        lines.append(
            f"| {name} | {median(r[seconds] for r in results):.3f} | "
            f"{results[0]['log_likelihood']:.10f} |"
        )
    lines += [
        "",
        f"**2 workers x 1 thread / 1 process x 1 thread: {em_speedup} faster per "
        f"iteration**; against 1 process with 2 threads: {em_wide}.",
        f"- log-likelihood, every worker of every configuration against 1 process: max "
        f"relative difference {worst_ll:.1e} (EM's statistics are sums, all-reduced)",
        "",
        f"How it was measured: every configuration in fresh processes, {args.rounds} "
        "round(s), each running every configuration once in an order that rotates by round; "
        "the ratios are medians of the per-round ratios (the tables: medians), on "
        f"this machine ({os.cpu_count()} CPUs, Python {platform.python_version()}); threads "
        "are TensorFlow's intra-op pool (`TF_NUM_INTRAOP_THREADS`), tf.data keeps its own. "
        "Throughput: whole `gencompile train` commands (`--workers 2` for the workers), "
        "examples/s from the chief's fit time in metrics.json. EM: the generated project's "
        "set-up and `model.fit` in each process, from the same initial parameters, timed "
        "between epoch ends; the first iteration (tracing) not counted. A shared machine "
        "moves absolute times: compare ratios.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--output", type=Path, default=RESULTS / "workers.md")
    parser.add_argument("--em-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=6, help="EM iterations")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (quick: 1)")
    args = parser.parse_args(argv)
    sizes = {"rows": 60_000, "epochs": 2, "n": 400_000, "d": 32, "k": 32}
    if args.quick:
        sizes = {"rows": 4_000, "epochs": 1, "n": 20_000, "d": 8, "k": 4}
        args.iterations = min(args.iterations, 3)
        args.rounds = 1
    for key, value in sizes.items():
        setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.em_child:
        em_child(args.em_child, args.iterations)
        return
    with tempfile.TemporaryDirectory(prefix="gencompile-workers-bench-") as scratch:
        folder = Path(scratch)
        (folder / "vae").mkdir()
        throughput_data(folder / "vae", args.rows)
        (folder / "vae" / "spec.yaml").write_text(VAE_SPEC)
        part1 = in_rounds(lambda name: train_vae(folder / "vae", name, args.epochs), args.rounds)
        (folder / "em").mkdir()
        prepare_em(folder / "em", args)
        part2 = in_rounds(lambda name: fit_em(folder / "em", name, args.iterations), args.rounds)
        report = render(part1, part2, args)
    if args.quick:  # a smoke check: shown, not kept
        print(report)
    else:
        write_result(args.output, report)


if __name__ == "__main__":
    main()
