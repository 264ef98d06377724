"""Benchmark: the generated `flow_moons` RealNVP against a hand-written Keras RealNVP.

One run of this script

1. builds `specs/flow_moons.yaml` with the library into a temporary directory, imports the
   generated model and trains it the way the generated `train.py` does (`repro.set_seed`,
   `load_data`, `training.build_and_compile`, `model.fit` on `data.epochs(...)`);
2. trains a hand-written RealNVP in the style of keras.io's `examples/generative/real_nvp.py`
   with the same size and budget: six affine couplings with alternating masks, each with a
   Dense 256 - Dense 256 network and shift / log-scale heads (the log-scale bounded by
   2 tanh(s / 2)), a N(0, I) base, the same optimizer, batches, epochs and seeds;
3. times training throughput (steps/s) of both: the two trainings alternate every
   `--chunk-epochs` epochs (`fit` resumed with `initial_epoch`) so machine load hits both
   alike, each fit's first epoch (tracing) is not timed, and `--rounds` rounds repeat it
   with another seed; a paired check then times the two compiled train steps in
   alternating blocks;
4. scores both on the same held-out split: -mean log p(x) in nats per example, in the
   data's original units (the standardization's log-Jacobian subtracted);
5. prints a markdown table and writes it to `benchmarks/results/flow_moons.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/flow_moons.py            # full: the spec's 300 epochs x 4 rounds
    .venv/bin/python benchmarks/flow_moons.py --quick    # smoke check: 20 epochs x 2 rounds

The hand-written model imports nothing from `gencompile.runtime` except the data loader
(so both see the same arrays and batches) and `repro.set_seed`.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import keras
import numpy as np
import tensorflow as tf
from harness import (
    Contender,
    check_matches,
    forget_script_folder,
    fresh_start,
    load_average,
    machine_line,
    median,
    paired_blocks,
    spread,
    step_runner,
    train_interleaved,
    utc_stamp,
    write_result,
)
from keras import layers, ops

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runtime import training
from gencompile.runtime.data import DataBundle, load_data
from gencompile.runtime.flow import evaluate as generated_evaluate
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "flow_moons.yaml"
RESULTS = REPO / "benchmarks" / "results"
LOG_2PI = math.log(2.0 * math.pi)

# The hand-written model's hyperparameters, written out as keras.io would. `check_parity`
# compares them with the generated project's resolved config so the two cannot drift.
SEED = 42
DIMS = 2
NUM_COUPLINGS = 6
HIDDEN = 256
CLAMP = 2.0  # log-scale = CLAMP * tanh(raw / CLAMP)
LEARNING_RATE = 1e-3
BATCH_SIZE = 256

PAIRED_BLOCKS = 40
PAIRED_STEPS = 20


# ====================================================================== the reference RealNVP
# Written in the style of keras.io/examples/generative/real_nvp.py: a builder for each
# coupling's network, a RealNVP model whose call() runs the couplings, its own train_step.


def build_reference_coupling() -> keras.Model:
    """Shift t and raw log-scale s of the masked-out half, from the masked input."""
    inputs = keras.Input(shape=(DIMS,))
    x = layers.Dense(HIDDEN, activation="relu")(inputs)
    x = layers.Dense(HIDDEN, activation="relu")(x)
    # Keras's default (glorot) heads, as the generated dense couplings (head_init: auto).
    t = layers.Dense(DIMS)(x)
    s = layers.Dense(DIMS)(x)
    return keras.Model(inputs, [t, s])


class ReferenceRealNVP(keras.Model):
    def __init__(self, num_coupling_layers: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_coupling_layers = num_coupling_layers
        # [1, 0], [0, 1], ...: 1 marks the half a coupling passes through and conditions on.
        self.masks = np.array([[1, 0], [0, 1]] * (num_coupling_layers // 2), dtype="float32")
        self.layers_list = [build_reference_coupling() for _ in range(num_coupling_layers)]
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def call(self, x: Any) -> tuple[Any, Any]:
        """Data -> latent: z and log |det dz/dx| per example."""
        log_det = ops.zeros(ops.shape(x)[:1])
        for i in range(self.num_coupling_layers):
            mask = self.masks[i]
            reversed_mask = 1.0 - mask
            t, s = self.layers_list[i](x * mask)
            s = CLAMP * ops.tanh(s / CLAMP) * reversed_mask
            t = t * reversed_mask
            x = x * ops.exp(s) + t
            log_det = log_det + ops.sum(s, axis=1)
        return x, log_det

    def log_likelihood(self, x: Any) -> Any:
        z, log_det = self(x)
        return ops.sum(-0.5 * (ops.square(z) + LOG_2PI), axis=1) + log_det

    def train_step(self, data: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            loss = -ops.mean(self.log_likelihood(data))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def reference_nll(model: ReferenceRealNVP, data: DataBundle) -> float:
    """Held-out -mean log p(x) in nats, in the data's original units."""
    log_p = tf.function(model.log_likelihood)(tf.constant(data.x_val)).numpy()
    return float(-np.mean(log_p.astype(np.float64))) - data.preprocessor.log_det_jacobian


# ====================================================================== the generated model


@dataclass
class Generated:
    train: ModuleType
    model: ModuleType


def build_generated(directory: Path, overrides: list[str]) -> Generated:
    built = build(load_spec(SPEC, overrides), directory)
    train_module = import_generated(directory, built.plan.package, "train")
    return Generated(train_module, importlib.import_module(f"{built.plan.package}.model"))


def check_parity(gen: Generated) -> None:
    """Fail loudly if the spec no longer matches the hand-written model."""
    t = gen.train.TRAINING
    found = {
        "seed": gen.train.SEED,
        "data_shape": tuple(gen.model.DATA_SHAPE),
        "base": gen.model.BASE,
        "optimizer": t["optimizer"]["type"],
        "learning_rate": t["optimizer"]["learning_rate"],
        "clipping": (t["optimizer"]["clipnorm"], t["optimizer"]["global_clipnorm"]),
        "batch_size": gen.train.DATA["batch_size"],
        "schedule": t["schedule"],
        "strategy": t["distribution"]["strategy"],
    }
    expected = {
        "seed": SEED,
        "data_shape": (DIMS,),
        "base": "normal",
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "clipping": (None, None),
        "batch_size": BATCH_SIZE,
        "schedule": None,
        "strategy": "none",
    }
    check_matches(found, expected, "RealNVP")
    model = gen.train.build_model()
    couplings = [t for t in model.transforms if type(t).__name__ == "AffineCoupling"]
    shapes = [
        [tuple(w.shape) for w in c.network.weights]
        for c in couplings
        if c.mask_kind == "alternating" and c.scale == "tanh" and c.clamp == CLAMP
    ]
    reference = [tuple(w.shape) for w in build_reference_coupling().weights]
    if len(couplings) != len(model.transforms) or shapes != [reference] * NUM_COUPLINGS:
        raise SystemExit(f"the generated flow is not {NUM_COUPLINGS} couplings like the reference")
    if [c.parity for c in couplings] != [0, 1] * (NUM_COUPLINGS // 2):
        raise SystemExit("the generated couplings' masks do not alternate like the reference's")


def paired_epoch_ratio(generated: Contender, reference: Contender) -> float:
    """Median over epochs of reference / generated epoch time (same epoch, adjacent in time)."""
    gen, ref = generated.clock.wall_by_epoch(), reference.clock.wall_by_epoch()
    return median(ref[e] / gen[e] for e in sorted(set(gen) & set(ref)))


def generated_contender(gen: Generated, seed: int, epochs: int) -> Contender:
    """Steps 1-3 of the generated train.py, then bare `model.fit` (step 4 without the
    run-directory extras: validation, checkpoints, history; the reference has none)."""
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)
    model = training.build_and_compile(gen.train.build_model, gen.train.TRAINING, data, epochs)
    return Contender("generated", model, data)


def reference_contender(gen: Generated, seed: int, epochs: int) -> Contender:
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)  # the same arrays and batches
    model = ReferenceRealNVP(NUM_COUPLINGS)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        # the generated project's steps per compiled call, so both run the same loop
        steps_per_execution=training.steps_per_execution(gen.train.TRAINING, data, epochs),
    )
    return Contender("reference", model, data)


def paired_step_ms(
    contenders: list[Contender], blocks: int, steps: int, seed: int
) -> tuple[dict[str, float], float]:
    """Median ms per compiled train step of each model, and the median over block pairs of
    the speed ratio generated/reference. Each pair runs the two models back to back in a
    random order, so bursts of load from elsewhere land on both alike."""
    runners = {c.name: step_runner(c.model, c.data) for c in contenders}
    times, _ = paired_blocks(runners, blocks, steps, rng=np.random.default_rng(seed))
    ratios = [r / g for g, r in zip(times["generated"], times["reference"], strict=True)]
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}, statistics.median(
        ratios
    )


# ====================================================================== the run


@dataclass
class Trial:
    """One training of one model in one round, and its held-out score."""

    name: str
    steps_per_second: float  # steps per epoch / median epoch wall time
    cpu_ms_per_step: float  # median epoch CPU time (this process, all threads) per step
    nll: float
    final_loss: float
    params: int
    step_ms: float = float("nan")  # paired compiled-step check: median block, ms per step


@dataclass
class Round:
    number: int
    seed: int
    generated: Trial
    reference: Trial
    epoch_ratio: float  # median over epochs of the paired speed ratio generated/reference
    step_ratio: float  # median over block pairs of the same ratio, compiled steps


def score(contender: Contender) -> Trial:
    if contender.name == "generated":
        config = {"metrics": ["nll"], "importance_samples": 1}
        nll = generated_evaluate(contender.model, contender.data, config)["nll"]
    else:
        nll = reference_nll(contender.model, contender.data)
    return Trial(
        contender.name,
        contender.steps_per_second(),
        contender.cpu_ms_per_step(),
        nll,
        contender.losses[-1],
        contender.model.count_params(),
    )


def summary(rounds: list[Round]) -> dict[str, float]:
    """The figures of the table: medians over rounds."""
    med = statistics.median
    return {
        "epoch_ratio": med(r.epoch_ratio for r in rounds),
        "step_ratio": med(r.step_ratio for r in rounds),
        "cpu_ratio": med(r.reference.cpu_ms_per_step / r.generated.cpu_ms_per_step for r in rounds),
        "generated_rate": med(r.generated.steps_per_second for r in rounds),
        "reference_rate": med(r.reference.steps_per_second for r in rounds),
    }


def render(rounds: list[Round], args: argparse.Namespace, n_val: int, loads: list[str]) -> str:
    figures = summary(rounds)
    gen = [r.generated for r in rounds]
    ref = [r.reference for r in rounds]
    delta = [r.generated.nll - r.reference.nll for r in rounds]
    stamp = utc_stamp()
    command = " ".join([".venv/bin/python", "benchmarks/flow_moons.py", *args.argv])

    def per_round(key: str) -> str:
        return ", ".join(f"{getattr(r, key):.3f}" for r in rounds)

    lines = [
        "# flow_moons: generated vs hand-written Keras RealNVP",
        "",
        f"`{command}` ({stamp})",
        "",
        "| model | parameters | steps/s (median epoch) | CPU ms/step | held-out NLL (nats) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {ts[0].params:,} | "
            f"{statistics.median(t.steps_per_second for t in ts):.1f} | "
            f"{statistics.median(t.cpu_ms_per_step for t in ts):.3f} | "
            f"{spread([t.nll for t in ts])} |"
            for name, ts in (("generated", gen), ("reference", ref))
        ),
        "",
        f"**speed ratio generated/reference: {figures['epoch_ratio']:.3f}** (target >= 0.95): "
        "median over rounds of the median over epochs of the paired ratio "
        f"(per round {per_round('epoch_ratio')})",
        "",
        f"- paired compiled-step check: ratio {figures['step_ratio']:.3f} (per round "
        f"{per_round('step_ratio')}); {statistics.median(t.step_ms for t in gen):.3f} vs "
        f"{statistics.median(t.step_ms for t in ref):.3f} ms/step",
        f"- CPU time per step, ratio reference/generated: {figures['cpu_ratio']:.3f}; "
        "ratio of the median epoch rates: "
        f"{figures['generated_rate'] / figures['reference_rate']:.3f}",
        f"- NLL generated - reference: {spread(delta, 4)} nats (per round "
        + ", ".join(f"{d:+.4f}" for d in delta)
        + ")",
        "",
        "How it was measured:",
        "",
        f"- Both models see the same data arrays and batches, seeds and initial weights (checked), "
        f"and train {args.epochs} epochs of batch {BATCH_SIZE} with `model.fit` (Adam, learning "
        f"rate {LEARNING_RATE:g}); the two trainings alternate every {args.chunk_epochs} "
        f"epochs (fit resumed with initial_epoch, the order flipping each time); "
        f"{args.rounds} round(s), round r seeding with {SEED} + r - 1 and building the "
        "generated model first in odd rounds, the reference first in even ones.",
        "- speed: each fit's first epoch (tracing, set-up) is not timed; every other epoch is "
        "timed from the end of the previous one. The ratio pairs epoch e of the two models, "
        "run seconds apart, and takes the median over epochs: load from other processes "
        "moves both alike. Paired check: after training, the compiled train steps in "
        f"{PAIRED_BLOCKS} block pairs of {PAIRED_STEPS} steps, random order within each pair.",
        f"- NLL: -mean log p(x) on the {n_val} held-out points, exact for a flow, in the "
        "data's original units (the standardization's log-Jacobian subtracted); mean ± sd "
        "over rounds. The generated model is scored by `gencompile.runtime.flow.evaluate` "
        "(what its train.py reports), the reference by its own code.",
        f"- {machine_line()}; load average (1, 5, 15 min) "
        f"at the start {loads[0]}, at the end {loads[-1]}: a shared machine moves absolute "
        "rates, compare ratios.",
        "",
        "## Per round",
        "",
        "| round | model | seed | steps/s | CPU ms/step | paired ms/step | NLL | final loss |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.number + 1} | {t.name} | {r.seed} | {t.steps_per_second:.1f} | "
            f"{t.cpu_ms_per_step:.3f} | {t.step_ms:.3f} | {t.nll:.4f} | {t.final_loss:.4f} |"
            for r in rounds
            for t in (r.generated, r.reference)
        ),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    spec = load_spec(SPEC).spec
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="per training (the spec's)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (4)")
    parser.add_argument("--chunk-epochs", type=int, default=2, help="alternate every N (2)")
    parser.add_argument("--quick", action="store_true", help="20 epochs, 2 rounds")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.epochs = args.epochs or (20 if args.quick else spec.training.epochs)
    args.rounds = args.rounds or (2 if args.quick else 4)
    if args.epochs < 2 or args.chunk_epochs < 2:
        parser.error("--epochs and --chunk-epochs must be >= 2 (a fit's first epoch is untimed)")
    if args.output is None:
        args.output = RESULTS / ("flow_moons.quick.md" if args.quick else "flow_moons.md")
    return args


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark; returns the generated/reference speed ratio."""
    forget_script_folder()
    args = parse_args(argv)
    loads = [load_average()]
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-flow-moons-") as tmp:
        gen = build_generated(Path(tmp) / "flow_moons", [])
        check_parity(gen)
        for number in range(args.rounds):
            seed = SEED + number
            # Which model is built (and so first allocates its memory and threads) alternates.
            if number % 2 == 0:
                generated = generated_contender(gen, seed, args.epochs)
                reference = reference_contender(gen, seed, args.epochs)
            else:
                reference = reference_contender(gen, seed, args.epochs)
                generated = generated_contender(gen, seed, args.epochs)
            start = zip(
                generated.model.trainable_weights, reference.model.trainable_weights, strict=True
            )
            if not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in start):
                raise SystemExit("the two models do not start from the same weights")
            contenders = [generated, reference]
            train_interleaved(contenders, args.epochs, args.chunk_epochs, flip=number)
            scores = [score(c) for c in contenders]  # before the paired check trains further
            step_ms, step_ratio = paired_step_ms(contenders, PAIRED_BLOCKS, PAIRED_STEPS, seed)
            for trial in scores:
                trial.step_ms = step_ms[trial.name]
            epoch_ratio = paired_epoch_ratio(generated, reference)
            done = Round(number, seed, *scores, epoch_ratio, step_ratio)
            rounds.append(done)
            print(
                f"round {number + 1}/{args.rounds}: steps/s {done.generated.steps_per_second:.1f}"
                f" vs {done.reference.steps_per_second:.1f}, paired epoch ratio "
                f"{done.epoch_ratio:.3f}, step ratio {done.step_ratio:.3f}, NLL "
                f"{done.generated.nll:.4f} vs {done.reference.nll:.4f} (load {load_average()})",
                flush=True,
            )
        n_val = len(generated.data.x_val)
    loads.append(load_average())
    doc = render(rounds, args, n_val, loads)
    write_result(args.output, doc)
    return summary(rounds)["epoch_ratio"]


if __name__ == "__main__":
    main()
