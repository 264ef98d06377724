"""Benchmark: the generated `diffusion_swissroll` model against a hand-written Keras DDPM.

One run of this script

1. builds `specs/diffusion_swissroll.yaml` with the library into a temporary directory,
   imports the generated model and trains it the way the generated `train.py` does
   (`repro.set_seed`, `load_data`, `training.build_and_compile`, `model.fit` on
   `data.epochs(...)`);
2. trains a hand-written DDPM in the style of keras.io's `examples/generative/ddpm.py` and
   `ddim.py` with the same network (sinusoidal time features concatenated with x_t, three
   Dense 256 SiLU layers), noise schedule, loss, EMA, optimizer, learning-rate schedule,
   batches, seeds and epochs;
3. times training throughput (steps/s) of both: the two trainings alternate every
   `--chunk-epochs` epochs (`fit` resumed with `initial_epoch`, the order flipping every
   chunk) so machine load hits both alike; each fit's first epoch (tracing) is not timed;
   `--rounds` rounds repeat it with another seed; a paired check then times the two
   compiled train steps in alternating blocks;
4. draws 2000 samples from each trained model and scores them against the held-out split
   with the energy distance (`gencompile.runtime.metrics.distances.energy_distance`) in the
   data's original units: the generated model with DDPM (all 1000 steps) and with the
   spec's DDIM (50 steps), the reference with its own DDPM sampler;
5. times sampling of the generated model: samples/s of DDPM (1000 steps) and DDIM (50);
6. prints a markdown table and writes it to `benchmarks/results/diffusion_swissroll.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/diffusion_swissroll.py            # full: 400 epochs x 3 rounds
    .venv/bin/python benchmarks/diffusion_swissroll.py --quick    # smoke check, a few minutes

The hand-written model imports nothing from `gencompile.runtime` except the data loader (so
both see the same arrays and batches) and `repro.set_seed`.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
    step_runner,
    train_interleaved,
    utc_stamp,
    write_result,
)
from keras import layers, ops

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runtime import diffusion, training
from gencompile.runtime.data import load_data
from gencompile.runtime.metrics.distances import energy_distance
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "diffusion_swissroll.yaml"
RESULTS = REPO / "benchmarks" / "results"

# The hand-written model's hyperparameters, written out as keras.io would. `check_parity`
# compares them with the generated project's resolved config so the two cannot drift.
SEED = 42
DATA_DIM = 2
TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
HIDDEN = (256, 256, 256)
EMBEDDING_DIM = 32
EMA = 0.995
LEARNING_RATE = 1e-3
WARMUP_STEPS = 200
BATCH_SIZE = 256

NUM_SAMPLES = 2000  # samples scored and timed per sampler
PAIRED_BLOCKS, PAIRED_STEPS = 20, 50


# ====================================================================== the reference DDPM
# keras.io style: a sinusoidal_embedding function, a get_network builder, a model with
# its own train_step, an EMA copy of the network, and a DDPM sampling loop.


def sinusoidal_embedding(t: Any) -> Any:
    """sin/cos features of the timestep, frequencies 10000^(-k / 16) (Transformer-style)."""
    half = EMBEDDING_DIM // 2
    frequencies = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
    angles = ops.cast(t, "float32")[:, None] * frequencies[None, :]
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def get_network() -> keras.Model:
    noisy_points = keras.Input(shape=(DATA_DIM,))
    timesteps = keras.Input(shape=(), dtype="int32")
    e = layers.Lambda(sinusoidal_embedding, output_shape=(EMBEDDING_DIM,))(timesteps)
    x = layers.Concatenate()([noisy_points, e])
    for width in HIDDEN:
        x = layers.Dense(width, activation="silu")(x)
    outputs = layers.Dense(DATA_DIM)(x)
    return keras.Model([noisy_points, timesteps], outputs, name="mlp")


class DDPM(keras.Model):
    def __init__(self, network: keras.Model, ema_network: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network
        self.ema_network = ema_network
        self.ema_network.set_weights(network.get_weights())
        betas = np.linspace(BETA_START, BETA_END, TIMESTEPS, dtype=np.float64)
        alpha_bars = np.cumprod(1.0 - betas)
        self.betas = betas
        self.alpha_bars = alpha_bars
        self.sqrt_alpha_bars = tf.constant(np.sqrt(alpha_bars), tf.float32)
        self.sqrt_one_minus_alpha_bars = tf.constant(np.sqrt(1.0 - alpha_bars), tf.float32)
        self.seed_generator = keras.random.SeedGenerator(SEED)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def train_step(self, points: Any) -> dict[str, Any]:
        batch_size = ops.shape(points)[0]
        t = keras.random.randint((batch_size,), 0, TIMESTEPS, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(points), seed=self.seed_generator)
        noisy_points = (
            ops.take(self.sqrt_alpha_bars, t)[:, None] * points
            + ops.take(self.sqrt_one_minus_alpha_bars, t)[:, None] * noise
        )
        with tf.GradientTape() as tape:
            pred_noise = self.network([noisy_points, t], training=True)
            loss = ops.mean(ops.square(noise - pred_noise))
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply(gradients, self.network.trainable_weights)
        step = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(EMA, (1.0 + step) / (10.0 + step))
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights, strict=True):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)
        self.loss_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def generate(self, num_samples: int, seed: int) -> np.ndarray:
        """Ancestral sampling through every timestep (Ho et al. 2020, algorithm 2)."""
        generator = tf.random.Generator.from_seed(seed)

        @tf.function
        def denoise(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
            return self.ema_network([x, tf.fill([tf.shape(x)[0]], t)], training=False)

        x = generator.normal((num_samples, DATA_DIM))
        for t in reversed(range(TIMESTEPS)):
            eps = denoise(x, tf.constant(t, tf.int32))
            alpha, beta = 1.0 - self.betas[t], self.betas[t]
            alpha_bar = self.alpha_bars[t]
            alpha_bar_prev = self.alpha_bars[t - 1] if t > 0 else 1.0
            mean = (x - beta / math.sqrt(1.0 - alpha_bar) * eps) / math.sqrt(alpha)
            if t > 0:
                variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
                x = mean + math.sqrt(variance) * generator.normal(x.shape)
            else:
                x = mean
        return np.asarray(x)


# ====================================================================== the two trainings


@dataclass
class Generated:
    directory: Path
    train: ModuleType
    model: ModuleType


def build_generated(directory: Path, overrides: list[str]) -> Generated:
    built = build(load_spec(SPEC, overrides), directory)
    train_module = import_generated(directory, built.plan.package, "train")
    model_module = importlib.import_module(f"{built.plan.package}.model")
    return Generated(directory, train_module, model_module)


def check_parity(gen: Generated) -> None:
    """Fail loudly if the spec no longer matches the hand-written model's constants."""
    m, t = gen.model, gen.train.TRAINING
    found = {
        "seed": m.SEED,
        "data_shape": tuple(m.DATA_SHAPE),
        "timesteps": m.TIMESTEPS,
        "schedule": m.SCHEDULE,
        "prediction": m.PREDICTION,
        "ema": m.EMA,
        "optimizer": (t["optimizer"]["type"], t["optimizer"]["learning_rate"]),
        "clipping": (t["optimizer"]["clipnorm"], t["optimizer"]["global_clipnorm"]),
        "lr_schedule": (t["schedule"]["type"], t["schedule"]["warmup_steps"]),
        "batch_size": gen.train.DATA["batch_size"],
        "precision": (t["mixed_precision"], t["distribution"]["strategy"]),
    }
    expected = {
        "seed": SEED,
        "data_shape": (DATA_DIM,),
        "timesteps": TIMESTEPS,
        "schedule": {"type": "linear", "beta_start": BETA_START, "beta_end": BETA_END},
        "prediction": "epsilon",
        "ema": EMA,
        "optimizer": ("adam", LEARNING_RATE),
        "clipping": (None, None),
        "lr_schedule": ("cosine_decay", WARMUP_STEPS),
        "batch_size": BATCH_SIZE,
        "precision": (False, "none"),
    }
    check_matches(found, expected, "DDPM")
    ours, theirs = architecture(get_network()), architecture(m.build_denoiser())
    if ours != theirs:
        raise SystemExit(f"the networks differ:\n  generated: {theirs}\n  reference: {ours}")


def architecture(network: keras.Model) -> list[tuple[Any, ...]]:
    """The layers that shape the function; the time embedding (a Lambda in the reference,
    `SinusoidalEmbedding` in the generated code) is checked numerically instead."""
    found: list[tuple[Any, ...]] = []
    for layer in network.layers:
        if isinstance(layer, layers.Dense):
            found.append(("Dense", layer.units, layer.activation.__name__))
        elif isinstance(layer, layers.Concatenate):
            found.append(("Concatenate",))
    return found


def check_time_embedding(gen: Generated) -> None:
    t = tf.constant([0, 1, 17, 999], tf.int32)
    ours = np.asarray(sinusoidal_embedding(t))
    theirs = np.asarray(gen.model.build_denoiser().get_layer("time_features")(t))
    if not np.allclose(ours, theirs, atol=1e-5):
        raise SystemExit("the generated time embedding differs from the reference's")


def generated_contender(gen: Generated, seed: int, epochs: int) -> Contender:
    """Steps 1-3 of the generated train.py; step 4 is the bare `model.fit`."""
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)
    model = training.build_and_compile(gen.train.build_model, gen.train.TRAINING, data, epochs)
    return Contender("generated", model, data)


def reference_contender(gen: Generated, seed: int, epochs: int) -> Contender:
    fresh_start(seed)
    data = load_data(gen.train.DATA, seed=gen.train.SEED)  # the same arrays and batches
    model = DDPM(get_network(), get_network())
    total = data.steps_per_epoch * epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total - WARMUP_STEPS), warmup_target=LEARNING_RATE, warmup_steps=WARMUP_STEPS
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        # the generated project's steps per compiled call, so both run the same loop
        steps_per_execution=training.steps_per_execution(gen.train.TRAINING, data, epochs),
    )
    return Contender("reference", model, data)


# ====================================================================== sampling


@dataclass
class Round:
    seed: int
    rates: dict[str, float]  # training steps/s (median epoch)
    paired_ms: dict[str, tuple[float, float]]  # (wall, CPU) ms per compiled step
    final_loss: dict[str, float]
    energy: dict[str, float]  # sampler -> energy distance to held-out data
    samples_per_second: dict[str, float]
    weight_gap: float  # largest |generated - reference| weight after training
    floor: float  # energy distance of as many training points to the held-out data


def timed(draw: Callable[[], Any]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    samples = np.asarray(draw())
    return samples, time.perf_counter() - start


def score(contenders: list[Contender], seed: int, repeats: int) -> tuple[dict, dict, float]:
    """Energy distances (data units) and generated samples/s of DDPM and DDIM (50 steps)."""
    gen, ref = contenders
    data = gen.data
    held_out = data.preprocessor.inverse(data.x_val)
    m = sys.modules[type(gen.model).__module__]
    samplers = {
        "generated, DDPM (1000 steps)": diffusion.Sampler(
            gen.model.denoise, gen.model.schedule, {"type": "ddpm"}, m.PREDICTION, m.DATA_SHAPE
        ),
        "generated, DDIM (50 steps, spec)": gen.model.sampler,
    }
    energy, speed = {}, {}
    seed_tensor = tf.constant([seed, 1], tf.int32)
    for name, sampler in samplers.items():
        sampler.sample(8, seed_tensor)  # trace outside the timing
        durations = []
        for _ in range(repeats):
            samples, seconds = timed(lambda s=sampler: s.sample(NUM_SAMPLES, seed_tensor))
            durations.append(seconds)
        speed[name] = NUM_SAMPLES / statistics.median(durations)
        energy[name] = energy_distance(data.preprocessor.inverse(samples), held_out)
    samples, seconds = timed(lambda: ref.model.generate(NUM_SAMPLES, seed))
    energy["reference, DDPM (1000 steps)"] = energy_distance(
        data.preprocessor.inverse(samples), held_out
    )
    speed["reference, DDPM (1000 steps), Python loop"] = NUM_SAMPLES / seconds
    rng = np.random.default_rng(seed)
    floor_points = data.x_train[rng.choice(len(data.x_train), NUM_SAMPLES, replace=False)]
    floor = energy_distance(data.preprocessor.inverse(floor_points), held_out)
    return energy, speed, floor


# ====================================================================== report


def render(
    rounds: list[Round], args: argparse.Namespace, steps_per_epoch: int, held_out: int
) -> str:
    def med(pick: Callable[[Round], float]) -> float:
        return statistics.median(pick(r) for r in rounds)

    def spread(pick: Callable[[Round], float]) -> str:
        values = [pick(r) for r in rounds]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    gen_rate, ref_rate = med(lambda r: r.rates["generated"]), med(lambda r: r.rates["reference"])
    ratios = [r.rates["generated"] / r.rates["reference"] for r in rounds]
    paired = [r.paired_ms["reference"][0] / r.paired_ms["generated"][0] for r in rounds]
    paired_cpu = [r.paired_ms["reference"][1] / r.paired_ms["generated"][1] for r in rounds]
    load = load_average()
    stamp = utc_stamp()
    samplers = list(rounds[0].energy)
    speeds = list(rounds[0].samples_per_second)
    gen_ddpm = samplers[0]
    ref_ddpm = next(name for name in samplers if name.startswith("reference"))
    lines = [
        "# diffusion_swissroll: generated vs hand-written Keras DDPM",
        "",
        f"`.venv/bin/python benchmarks/diffusion_swissroll.py {' '.join(args.argv)}`".replace(
            " `", "`"
        )
        + f" ({stamp})",
        "",
        "| model | training steps/s | final loss |",
        "|---|---:|---:|",
        f"| generated | {gen_rate:.1f} | {med(lambda r: r.final_loss['generated']):.4f} |",
        f"| reference | {ref_rate:.1f} | {med(lambda r: r.final_loss['reference']):.4f} |",
        "",
        f"**ratio generated/reference training steps/s: {gen_rate / ref_rate:.3f}** (target >= "
        f"0.95; per round {', '.join(f'{x:.3f}' for x in ratios)}); paired compiled-step "
        f"check: ratio {statistics.median(paired):.3f} (per round "
        f"{', '.join(f'{x:.3f}' for x in paired)}; "
        f"{med(lambda r: r.paired_ms['generated'][0]):.3f} vs "
        f"{med(lambda r: r.paired_ms['reference'][0]):.3f} ms/step), in process CPU time "
        f"{statistics.median(paired_cpu):.3f}.",
        "",
        f"Energy distance of {NUM_SAMPLES} samples to the {held_out} held-out points "
        "(data units, lower is better; mean ± sd over rounds):",
        "",
        "| sampler | energy distance |",
        "|---|---:|",
        *[f"| {name} | {spread(lambda r, n=name: r.energy[n])} |" for name in samplers],
        f"| (floor: {NUM_SAMPLES} training points) | {spread(lambda r: r.floor)} |",
        "",
        f"Generated - reference, DDPM: "
        f"{spread(lambda r: r.energy[gen_ddpm] - r.energy[ref_ddpm])} "
        "(negative: the generated model is closer to the data).",
        "",
        "Sampling speed (median of repeated draws, tracing excluded):",
        "",
        "| sampler | samples/s |",
        "|---|---:|",
        *[f"| {name} | {med(lambda r, n=name: r.samples_per_second[n]):.1f} |" for name in speeds],
        "",
        "How it was measured:",
        "",
        f"- Both models see the same data arrays and batches, seeds and initial weights, and "
        f"train {args.epochs} epochs of {steps_per_epoch} steps (batch {BATCH_SIZE}) with "
        "`model.fit`; the two trainings alternate every "
        f"{args.chunk_epochs or args.epochs} epochs (fit resumed with initial_epoch; the order "
        f"flips every chunk); {args.rounds} round(s), round r seeding with {SEED} + r - 1.",
        "- steps/s: steps per epoch / median epoch wall time, the first epoch of each fit "
        "call (tracing) not timed; median over rounds. Paired check: after training, the two "
        f"compiled train steps in {PAIRED_BLOCKS} alternating blocks of {PAIRED_STEPS} steps.",
        "- Samplers: the generated model's `gencompile.runtime.diffusion.Sampler` (one "
        "tf.while_loop in a tf.function), from the EMA weights; the reference's DDPM is the "
        "usual hand-written Python loop over timesteps around a compiled network call.",
        "- Largest |weight difference| between the two trained networks, per round: "
        + ", ".join(f"{r.weight_gap:.1e}" for r in rounds),
        f"- {machine_line()}; load average {load} at the "
        "end (a shared machine moves absolute rates: compare ratios).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    spec = load_spec(SPEC).spec
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--chunk-epochs", type=int, default=None, help="alternate every N (20)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 40 epochs, 1 round")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.epochs = args.epochs or (40 if args.quick else spec.training.epochs)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.chunk_epochs is None:
        args.chunk_epochs = 10 if args.quick else 20
    if args.epochs < 2 or args.chunk_epochs == 1:
        parser.error("--epochs and --chunk-epochs must be >= 2 (each fit's first epoch traces)")
    if args.output is None:
        name = "diffusion_swissroll.quick.md" if args.quick else "diffusion_swissroll.md"
        args.output = RESULTS / name
    return args


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark; returns the generated/reference training steps/s ratio."""
    forget_script_folder()
    args = parse_args(argv)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-diffusion-") as tmp:
        gen = build_generated(Path(tmp) / "diffusion_swissroll", [])
        check_parity(gen)
        check_time_embedding(gen)
        for rnd in range(args.rounds):
            seed = SEED + rnd
            contenders = [
                generated_contender(gen, seed, args.epochs),
                reference_contender(gen, seed, args.epochs),
            ]
            train_interleaved(contenders, args.epochs, args.chunk_epochs, flip=rnd)
            gen_data = contenders[0].data
            runners = {c.name: step_runner(c.model, c.data) for c in contenders}
            wall, cpu = paired_blocks(runners, PAIRED_BLOCKS, PAIRED_STEPS)
            paired = {n: (1e3 * median(wall[n]), 1e3 * median(cpu[n])) for n in runners}
            energy, speed, floor = score(contenders, seed, repeats=1 if args.quick else 3)
            weights = [
                np.max(np.abs(np.asarray(a) - np.asarray(b)))
                for a, b in zip(
                    contenders[0].model.denoiser.weights,
                    contenders[1].model.network.weights,
                    strict=True,
                )
            ]
            held_out, steps_per_epoch = len(gen_data.x_val), gen_data.steps_per_epoch
            result = Round(
                seed=seed,
                rates={c.name: c.steps_per_second() for c in contenders},
                paired_ms=paired,
                final_loss={c.name: c.losses[-1] for c in contenders},
                energy=energy,
                samples_per_second=speed,
                weight_gap=float(max(weights)),
                floor=floor,
            )
            rounds.append(result)
            print(
                f"round {rnd + 1}/{args.rounds}: steps/s "
                + ", ".join(f"{k} {v:.1f}" for k, v in result.rates.items())
                + "; energy "
                + ", ".join(f"{k} {v:.4f}" for k, v in energy.items())
                + "; samples/s "
                + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()),
                flush=True,
            )
            del contenders, runners
        doc = render(rounds, args, steps_per_epoch, held_out)
    write_result(args.output, doc)
    gen_rate = statistics.median(r.rates["generated"] for r in rounds)
    ref_rate = statistics.median(r.rates["reference"] for r in rounds)
    return gen_rate / ref_rate


if __name__ == "__main__":
    main()
