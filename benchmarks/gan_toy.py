"""Benchmark: generated GANs on the toy mixtures, and against a hand-written Keras GAN.

One run of this script

1. quality: trains `specs/gan_ring8.yaml` and `specs/gan_grid25.yaml` through the real
   pipeline (`gencompile.runs.train`: compiler, generated project, `training.fit` with its
   validation pass, checkpoints and health callback), draws 2500 samples from each trained
   run (`gencompile.sampling.sample`, in data units) and counts the modes captured and the share
   of high-quality samples (`mode_coverage` with the data's std: within 3 std of a mode);
2. speed: trains the generated `gan_ring8` model and a hand-written GAN in the style of
   keras.io's `examples/generative/wgan_gp.py` (builder functions, a `train_step` with two
   tapes and an inner tape for the penalty, two `Mean` trackers) with the same networks,
   loss, R1 penalty, generator EMA, optimizers, batches and seeds; the two trainings
   alternate every `--chunk-epochs` epochs (`fit` resumed with `initial_epoch`) so load
   from other processes hits both alike, over `--rounds` rounds; each fit's first epoch
   (tracing) is not timed; steps/s = steps per epoch / median epoch time;
3. prints a markdown report and writes it to `benchmarks/results/gan_toy.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/gan_toy.py              # full: both specs as shipped + speed
    .venv/bin/python benchmarks/gan_toy.py --quick      # smoke check: 10 epochs, 2 rounds
    .venv/bin/python benchmarks/gan_toy.py --no-quality # speed comparison only

The hand-written model imports nothing from `gencompile.runtime` except the data loader
(so both see the same arrays and batches) and `repro.set_seed`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import keras
import numpy as np
import tensorflow as tf
from harness import (
    Contender,
    check_matches,
    fresh_start,
    load_average,
    machine_line,
    paired_blocks,
    ratios,
    step_runner,
    train_interleaved,
    utc_stamp,
    write_result,
)
from keras import layers, ops

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runs import train
from gencompile.runtime import training
from gencompile.runtime.data import load_data, mode_centers
from gencompile.runtime.metrics.distances import mode_coverage
from gencompile.sampling import sample
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPECS = {name: REPO / "specs" / f"{name}.yaml" for name in ("gan_ring8", "gan_grid25")}
RESULTS = REPO / "benchmarks" / "results"
NUM_SAMPLES = 2500
# Targets of the quality part (issue 4): modes captured, high-quality share, minutes.
TARGETS = {"gan_ring8": (8, 0.80, 10.0), "gan_grid25": (24, None, 10.0)}
PUBLISHED = (
    "Published on the ring of 8 (VEEGAN, Srivastava et al. 2017, 2500 samples, 3 std): a "
    "plain GAN captures about 1 mode; VEEGAN 8 modes with 52.9 % high-quality samples."
)

# The hand-written model's hyperparameters, written out as keras.io would. `check_parity`
# compares them with the generated project of specs/gan_ring8.yaml so the two cannot drift.
SEED = 42
DATA_DIM = 2
LATENT_DIM = 2
HIDDEN = (256, 256, 256)
R1_GAMMA = 1.0
EMA_DECAY = 0.999
LEARNING_RATE = 2e-4
BETA_1 = 0.5
BATCH_SIZE = 256

# The paired check after each round: alternating blocks of compiled train steps.
PAIRED_BLOCKS = 20
PAIRED_STEPS = 25


# ====================================================================== quality


@dataclass
class Quality:
    name: str
    epochs: int
    steps: int
    minutes: float
    modes: int
    of: int
    high_quality: float
    per_mode: list[int]
    load_before: str
    load_after: str

    def verdict(self) -> str:
        modes, share, minutes = TARGETS[self.name]
        ok = self.modes >= modes and self.minutes <= minutes
        if share is not None:
            ok = ok and self.high_quality >= share
        return "yes" if ok else "no"


def quality_run(name: str, root: Path, epochs: int | None) -> Quality:
    """Train one spec through the real pipeline and score 2500 samples of the run."""
    load_before = load_average()
    start = time.perf_counter()
    result = train(SPECS[name], epochs=epochs, run_dir=root / name, quiet=True)
    minutes = (time.perf_counter() - start) / 60.0
    load_after = load_average()
    path = sample(result.run_dir, NUM_SAMPLES, root / f"{name}-samples.npz")
    with np.load(path) as arrays:
        samples = arrays["samples"]
    spec = load_spec(SPECS[name]).spec
    source = spec.data.source
    std = float(source.arguments()["std"])
    coverage = mode_coverage(samples, mode_centers(source.name, source.arguments()), std)
    done = result.record["epochs"]
    steps = done * (spec.training.steps_per_epoch or _steps_per_epoch(spec))
    return Quality(
        name=name,
        epochs=done,
        steps=steps,
        minutes=minutes,
        modes=coverage.modes_captured,
        of=coverage.modes,
        high_quality=coverage.high_quality_fraction,
        per_mode=[int(v) for v in coverage.per_mode],
        load_before=load_before,
        load_after=load_after,
    )


def _steps_per_epoch(spec: Any) -> int:
    n = int(spec.data.source.arguments()["n_samples"])
    n_train = n - max(1, int(np.floor(n * spec.data.validation_split + 0.5)))
    return -(-n_train // spec.data.batch_size)


# ====================================================================== the reference GAN
# Written in the style of keras.io/examples/generative/wgan_gp.py: builder functions for
# the two networks, a GAN model whose compile takes one optimizer per network, and a
# train_step with the discriminator step, then the generator step.


def build_reference_generator() -> keras.Model:
    noise = keras.Input(shape=(LATENT_DIM,))
    x = noise
    for units in HIDDEN:
        x = layers.Dense(units, activation="relu")(x)
    points = layers.Dense(DATA_DIM)(x)
    return keras.Model(noise, points, name="generator")


def build_reference_discriminator() -> keras.Model:
    points = keras.Input(shape=(DATA_DIM,))
    x = points
    for units in HIDDEN:
        x = layers.Dense(units, activation="leaky_relu")(x)
    logit = layers.Dense(1)(x)
    return keras.Model(points, logit, name="discriminator")


class ReferenceGAN(keras.Model):
    def __init__(self, discriminator: keras.Model, generator: keras.Model, **kwargs: Any):
        super().__init__(**kwargs)
        self.discriminator = discriminator
        self.generator = generator
        self.ema_generator = build_reference_generator()
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self.seed_generator = keras.random.SeedGenerator(SEED)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer: Any, g_optimizer: Any, steps_per_execution: int = 1) -> None:
        super().compile(steps_per_execution=steps_per_execution)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker]

    def r1_penalty(self, real: Any) -> Any:
        """R1: E[||grad_x D(x)||^2] / 2 on the real points."""
        with tf.GradientTape() as tape:
            tape.watch(real)
            logits = self.discriminator(real, training=True)
        grads = tape.gradient(logits, real)
        return 0.5 * ops.mean(ops.sum(ops.square(grads), axis=1))

    def train_step(self, real: Any) -> dict[str, Any]:
        batch_size = ops.shape(real)[0]
        # Train the discriminator: real points labelled 1, generated ones 0, plus R1.
        noise = keras.random.normal((batch_size, LATENT_DIM), seed=self.seed_generator)
        fake = self.generator(noise, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
            d_total = d_loss + R1_GAMMA * self.r1_penalty(real)
        d_grads = tape.gradient(d_total, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(d_grads, self.discriminator.trainable_weights, strict=True)
        )
        # Train the generator: its points should be labelled real (non-saturating loss).
        noise = keras.random.normal((batch_size, LATENT_DIM), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
            g_loss = ops.mean(ops.softplus(-fake_logits))
        g_grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(
            zip(g_grads, self.generator.trainable_weights, strict=True)
        )
        # Exponential moving average of the generator's weights.
        step = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(EMA_DECAY, (1.0 + step) / (10.0 + step))
        for averaged, weight in zip(
            self.ema_generator.weights, self.generator.weights, strict=True
        ):
            averaged.assign(decay * averaged + (1.0 - decay) * weight)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


# ====================================================================== speed


def paired_step_ratios(contenders: list[Contender], blocks: int, steps: int) -> list[float]:
    """Per block pair: reference ms/step over generated ms/step (speed generated/reference).

    The compiled train steps are called directly in short blocks, alternating between the
    models with the order flipping every block, so a burst of load from other processes
    lands on both models of a pair alike.
    """
    runners = {c.name: step_runner(c.model, c.data) for c in contenders}
    # with two runners the rotating order flips every block
    wall, _ = paired_blocks(runners, blocks, steps, loss_key="d_loss")
    return ratios(wall["reference"], wall["generated"])


@dataclass
class Generated:
    train: ModuleType
    model: ModuleType


def build_generated(directory: Path) -> Generated:
    built = build(load_spec(SPECS["gan_ring8"]), directory)
    train_module = import_generated(directory, built.plan.package, "train")
    model_module = importlib.import_module(f"{built.plan.package}.model")
    return Generated(train_module, model_module)


def check_parity(gen: Generated) -> None:
    """Fail loudly if the spec no longer matches the hand-written model's constants."""
    t, m = gen.train.TRAINING, gen.model
    optimizers = t["optimizers"]
    found = {
        "seed": gen.train.SEED,
        "latent_dim": m.LATENT_DIM,
        "data_shape": tuple(m.DATA_SHAPE),
        "critic_steps": getattr(m, "CRITIC_STEPS", 1),  # emitted when above 1
        "r1_gamma": m.GRADIENT_PENALTY_WEIGHT,
        "ema": m.EMA_DECAY,
        "batch_size": gen.train.DATA["batch_size"],
        "optimizers": {
            role: (c["type"], c["learning_rate"], c["beta_1"], c["beta_2"], c["clipnorm"])
            for role, c in optimizers.items()
        },
        "schedule": t["schedule"],
        "mixed_precision": t["mixed_precision"],
    }
    adam = ("adam", LEARNING_RATE, BETA_1, 0.999, None)
    expected = {
        "seed": SEED,
        "latent_dim": LATENT_DIM,
        "data_shape": (DATA_DIM,),
        "critic_steps": 1,
        "r1_gamma": R1_GAMMA,
        "ema": EMA_DECAY,
        "batch_size": BATCH_SIZE,
        "optimizers": {"generator": adam, "discriminator": adam},
        "schedule": None,
        "mixed_precision": False,
    }
    check_matches(found, expected, "GAN")
    generated = gen.train.build_model()
    for part, ours in (
        ("generator", build_reference_generator()),
        ("discriminator", build_reference_discriminator()),
    ):
        theirs = getattr(generated, part)
        if architecture(theirs) != architecture(ours):
            raise SystemExit(
                f"the generated {part} differs from the reference's:\n"
                f"  generated: {architecture(theirs)}\n  reference: {architecture(ours)}"
            )


def architecture(network: keras.Model) -> list[tuple[Any, ...]]:
    return [
        (type(layer).__name__, layer.units, layer.activation.__name__)
        if isinstance(layer, layers.Dense)
        else (type(layer).__name__,)
        for layer in network.layers
        if not isinstance(layer, layers.InputLayer)
    ]


def generated_contender(gen: Generated, seed: int, epochs: int, steps: int) -> Contender:
    """The generated train.py's steps 1-3, then `model.fit` with the model's callbacks (its
    training-health monitor), without `training.fit`'s run-directory extras."""
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)
    model = training.build_and_compile(gen.train.build_model, gen.train.TRAINING, data, epochs)
    model.initialize(data)
    callbacks = model.training_callbacks()  # one set for all the fits of a round
    return Contender("generated", model, data, lambda: callbacks, steps)


def reference_contender(gen: Generated, seed: int, epochs: int, steps: int) -> Contender:
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)  # the same arrays and batches
    gan = ReferenceGAN(build_reference_discriminator(), build_reference_generator())
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=BETA_1),
        g_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=BETA_1),
        # the generated project's steps per compiled call, so both run the same loop
        steps_per_execution=training.steps_per_execution(gen.train.TRAINING, data, epochs),
    )
    return Contender("reference", gan, data, list, steps)


@dataclass
class Speed:
    rounds: list[dict[str, Any]]
    steps: int  # per timed epoch
    load_before: str
    load_after: str

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds)

    def pairs(self, key: str = "epoch_ratios") -> list[float]:
        return [ratio for r in self.rounds for ratio in r[key]]

    @property
    def ratio(self) -> float:
        """Speed generated/reference: the median over every pair of neighbouring timed epochs
        (reference epoch time / generated epoch time), all rounds pooled."""
        return statistics.median(self.pairs())


def speed_run(root: Path, epochs: int, chunk: int, rounds: int, steps: int | None) -> Speed:
    """Each round alternates the two trainings every `chunk` epochs of `steps` steps; the
    first epoch of each fit is not timed, so with chunk 2 every fit yields one timed epoch
    and neighbouring fits of the two models make a pair."""
    gen = build_generated(root / "gan_ring8_speed")
    check_parity(gen)
    load_before = load_average()
    results = []
    if steps is None:  # the spec's own epoch
        steps = load_data(gen.train.DATA, seed=gen.train.SEED).steps_per_epoch
    for rnd in range(rounds):
        contenders = [
            generated_contender(gen, SEED + rnd, epochs, steps),
            reference_contender(gen, SEED + rnd, epochs, steps),
        ]
        train_interleaved(contenders, epochs, chunk, flip=rnd)
        generated, reference = (c.clock.wall for c in contenders)
        result: dict[str, Any] = {c.name: c.steps_per_second() for c in contenders}
        result.update({f"{c.name}_cpu": c.cpu_ms_per_step() for c in contenders})
        result["epoch_ratios"] = ratios(reference, generated)
        result["block_ratios"] = paired_step_ratios(contenders, PAIRED_BLOCKS, PAIRED_STEPS)
        results.append(result)
        print(
            f"speed round {rnd + 1}/{rounds}: generated {result['generated']:.1f} steps/s, "
            f"reference {result['reference']:.1f} steps/s; paired epochs "
            f"{statistics.median(result['epoch_ratios']):.3f}, paired compiled-step blocks "
            f"{statistics.median(result['block_ratios']):.3f} (load {load_average()})",
            flush=True,
        )
        del contenders
    return Speed(results, steps, load_before, load_average())


# ====================================================================== report


def render(quality: list[Quality], speed: Speed | None, args: argparse.Namespace) -> str:
    stamp = utc_stamp()
    command = " ".join([".venv/bin/python benchmarks/gan_toy.py", *args.argv])
    lines = [
        "# gan_toy: generated GANs on the toy mixtures, and against a hand-written GAN",
        "",
        f"`{command}` ({stamp})",
        "",
    ]
    if quality:
        lines += [
            f"## Quality: {NUM_SAMPLES} samples of each trained run",
            "",
            "| spec | epochs (steps) | minutes | modes captured | high-quality samples "
            "| target met | load average before / after |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for q in quality:
            modes, share, minutes = TARGETS[q.name]
            target = f">= {modes} modes" + (f", >= {share:.0%} HQ" if share else "")
            lines.append(
                f"| {q.name} | {q.epochs} ({q.steps}) | {q.minutes:.1f} | {q.modes}/{q.of} | "
                f"{q.high_quality:.1%} | {q.verdict()} ({target}, <= {minutes:g} min) | "
                f"{q.load_before} / {q.load_after} |"
            )
        lines += [
            "",
            "- Each spec is trained as shipped by `gencompile.runs.train` (validation pass, "
            "checkpoints, history and the health callback included; the minutes are its wall "
            "time) and sampled by `gencompile.sampling.sample` (the EMA generator, in data units).",
            "- A sample is high quality within 3 standard deviations of its nearest mode "
            "(`gencompile.runtime.metrics.distances.mode_coverage`, std = the data's: ring8 "
            "0.01, grid25 0.05); a mode is captured when a high-quality sample is nearest it.",
            f"- {PUBLISHED}",
            "- Samples per mode: " + "; ".join(f"{q.name} {q.per_mode}" for q in quality),
            "",
        ]
    if speed is not None:
        lines += [
            "## Speed: generated `gan_ring8` vs a hand-written Keras GAN",
            "",
            "| model | steps/s (median over rounds) | CPU ms/step (median) |",
            "|---|---:|---:|",
            f"| generated | {speed.median('generated'):.1f} | "
            f"{speed.median('generated_cpu'):.2f} |",
            f"| reference | {speed.median('reference'):.1f} | "
            f"{speed.median('reference_cpu'):.2f} |",
            "",
            f"**ratio generated/reference steps/s: {speed.ratio:.3f}** (target >= 0.95): the "
            f"median over {len(speed.pairs())} pairs of neighbouring timed epochs; per round "
            + ", ".join(f"{statistics.median(r['epoch_ratios']):.3f}" for r in speed.rounds)
            + ". Paired compiled-step blocks: "
            f"{statistics.median(speed.pairs('block_ratios')):.3f} (per round "
            + ", ".join(f"{statistics.median(r['block_ratios']):.3f}" for r in speed.rounds)
            + "). CPU time per step, reference/generated: "
            f"{speed.median('reference_cpu') / speed.median('generated_cpu'):.3f}. "
            f"Load average {speed.load_before} before, {speed.load_after} after.",
            "",
            f"- Same networks (3 x 256 dense, relu / leaky_relu), non-saturating loss, R1 "
            f"(gamma {R1_GAMMA:g}), generator EMA ({EMA_DECAY}), Adam({LEARNING_RATE:g}, "
            f"beta_1 {BETA_1}) for each network, batch {BATCH_SIZE}, the same data stream and "
            "seeds; `model.fit` for both, the generated model with its own callbacks (the "
            "health monitor: diversity of 256 samples each epoch).",
            "- The generated step also tracks the discriminator's accuracy on real and fake, "
            "the penalty and both gradient norms (training health); the reference tracks the "
            "two losses.",
            f"- {args.rounds} round(s) of {args.speed_epochs} epochs of {speed.steps} steps; "
            f"the two trainings alternate every {args.chunk_epochs} epochs (`fit` resumed with "
            "`initial_epoch`, the order flipping every chunk), and the first epoch of each "
            "fit (tracing, set-up) is not timed. Each pair of neighbouring timed epochs of "
            "the two models shares the machine's load; steps/s = steps per epoch / median "
            "epoch wall time. CPU time: this process, all threads, median epoch.",
            f"- Paired compiled-step blocks: after each round, the two compiled train steps "
            f"are called directly in {PAIRED_BLOCKS} alternating blocks of {PAIRED_STEPS} "
            "steps (order flipping every block); the ratio of each neighbouring pair.",
            "",
        ]
    lines += [
        f"{machine_line()}, shared with other processes: "
        "absolute times move with the load; compare ratios.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 epochs each, 2 short rounds")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality runs")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the specs' epochs (quality runs)"
    )
    parser.add_argument("--speed-epochs", type=int, default=None, help="per round (default 12)")
    parser.add_argument(
        "--speed-steps",
        type=int,
        default=None,
        help="steps per speed epoch (default: the spec's, 176)",
    )
    parser.add_argument("--chunk-epochs", type=int, default=None, help="default 2")
    parser.add_argument("--rounds", type=int, default=None, help="default 4")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.epochs = args.epochs or 10
    args.speed_epochs = args.speed_epochs or (6 if args.quick else 12)
    args.chunk_epochs = args.chunk_epochs or 2
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.quick:
        args.speed_steps = args.speed_steps or 22
    if args.speed_epochs < 2 or args.chunk_epochs < 2:
        parser.error("--speed-epochs and --chunk-epochs must be >= 2 (first epochs are untimed)")
    if args.output is None:
        args.output = RESULTS / ("gan_toy.quick.md" if args.quick else "gan_toy.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quality: list[Quality] = []
    speed = None
    with tempfile.TemporaryDirectory(prefix="bench-gan-toy-") as tmp:
        root = Path(tmp)
        if not args.no_quality:
            for name in SPECS:
                print(f"quality: training {name} (load {load_average()}) ...", flush=True)
                q = quality_run(name, root, args.epochs)
                quality.append(q)
                print(
                    f"quality: {name}: {q.modes}/{q.of} modes, {q.high_quality:.1%} high "
                    f"quality, {q.minutes:.1f} min (load {q.load_after})",
                    flush=True,
                )
        if not args.no_speed:
            speed = speed_run(
                root, args.speed_epochs, args.chunk_epochs, args.rounds, args.speed_steps
            )
    doc = render(quality, speed, args)
    write_result(args.output, doc)


if __name__ == "__main__":
    main()
