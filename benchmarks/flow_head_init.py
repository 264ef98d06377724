"""Benchmark: zero-initialised against glorot-initialised coupling heads, at a fixed budget.

Why `head_init: auto` starts a vector flow's shift and log-scale heads at Keras's
glorot_uniform rather than at zero (the identity). The model is the hand-written RealNVP of
`benchmarks/handwritten/flow_moons.py` (six couplings of 256-256 relu, log-scale bounded by
2 tanh(s / 2), Adam 1e-3, batches of 256, two moons), trained `--epochs` epochs for each
seed in `--seeds` twice: once with zero head kernels, once with glorot_uniform ones, nothing
else changed. Both are scored by the exact held-out NLL in nats (original units).

Seeds matter a lot at a small budget (one seed's NLL moves by 0.3 nats), so the claim is
about the distribution over seeds: the mean, the median and the paired wins.

    .venv/bin/python benchmarks/flow_head_init.py                 # 20 epochs, seeds 1-10
    .venv/bin/python benchmarks/flow_head_init.py --epochs 5 --seeds 1 2   # smoke check
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import harness
import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _load_handwritten():
    # By path: benchmarks/flow_moons.py (the per-step benchmark) shares the module name.
    spec = importlib.util.spec_from_file_location(
        "handwritten_flow", HERE / "handwritten" / "flow_moons.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handwritten = _load_handwritten()
INITS = ("zeros", "glorot_uniform")


def coupling_network(head_init: str) -> keras.Model:
    """The hand-written coupling network, with the heads' kernels started at `head_init`."""
    inputs = keras.Input(shape=(2,))
    x = layers.Dense(handwritten.HIDDEN, activation="relu")(inputs)
    x = layers.Dense(handwritten.HIDDEN, activation="relu")(x)
    t = layers.Dense(2, kernel_initializer=head_init)(x)
    s = layers.Dense(2, kernel_initializer=head_init)(x)
    return keras.Model(inputs, [t, s])


def held_out_nll(head_init: str, seed: int, epochs: int) -> float:
    """Train the hand-written RealNVP from `seed` and return its held-out NLL (nats)."""
    handwritten.SEED = seed  # the split, the shuffle and the weights all follow it
    handwritten.coupling_network = lambda: coupling_network(head_init)
    keras.utils.set_random_seed(seed)
    x_train, x_val, std = handwritten.load_split()
    dataset = (
        tf.data.Dataset.from_tensor_slices(x_train)
        .shuffle(len(x_train), seed=seed)
        .batch(handwritten.BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    flow = handwritten.RealNVP()
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    flow.fit(dataset, epochs=epochs, verbose=0)
    log_p = ops.convert_to_numpy(flow.log_likelihood(x_val)).astype(np.float64)
    return float(-log_p.mean() + np.log(std).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--output", type=Path, default=RESULTS / "flow_head_init.md")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/flow_head_init.py", *sys.argv[1:]])
    start_load = harness.load_average()
    nll = {init: [] for init in INITS}
    for seed in args.seeds:
        for init in INITS:
            nll[init].append(held_out_nll(init, seed, args.epochs))
        print(f"seed {seed}: " + ", ".join(f"{i} {nll[i][-1]:.3f}" for i in INITS), flush=True)
    zeros, glorot = nll["zeros"], nll["glorot_uniform"]
    wins = sum(g < z for g, z in zip(glorot, zeros, strict=True))
    rows = [
        [seed, f"{z:.3f}", f"{g:.3f}", f"{g - z:+.3f}"]
        for seed, z, g in zip(args.seeds, zeros, glorot, strict=True)
    ]
    summary = [
        [name, f"{statistics.mean(v):.3f}", f"{harness.median(v):.3f}", f"{max(v):.3f}"]
        for name, v in (("zeros", zeros), ("glorot_uniform", glorot))
    ]
    text = "\n".join(
        [
            "# Coupling heads: zeros vs glorot_uniform at a fixed budget (two moons)",
            "",
            f"`{command}` ({harness.utc_stamp()})",
            "",
            f"The hand-written RealNVP, {args.epochs} epochs, {len(args.seeds)} seeds; held-out"
            " NLL in nats (lower is better). Only the heads' initial kernels differ.",
            "",
            harness.render_table(summary, ["head init", "mean", "median", "worst"]),
            "",
            f"**glorot_uniform lower on {wins} of {len(args.seeds)} seeds**; mean difference"
            f" {statistics.mean(glorot) - statistics.mean(zeros):+.3f} nats.",
            "",
            harness.render_table(rows, ["seed", "zeros", "glorot_uniform", "difference"]),
            "",
            f"{harness.machine_line()}; load average at the start {start_load}, at the end"
            f" {harness.load_average()}. Only quality is measured: load does not change it.",
            "",
        ]
    )
    harness.write_result(args.output, text)


if __name__ == "__main__":
    main()
