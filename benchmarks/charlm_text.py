"""Benchmark: the generated `charlm_text` language model against a hand-written Keras LSTM.

One run of this script

1. builds `specs/charlm_text.yaml` with the library (`load_spec` + `build`, the text file
   given as `--set data.source.path=...`), imports the generated project and trains it as
   its `train.py` does: `repro.set_seed`, `load_data` (the real text pipeline: the last 10 %
   of the characters held out, char vocabulary, windows of 129 tokens),
   `training.build_and_compile`, then `model.fit` on `data.epochs(..., steps=...)`;
2. trains a character LSTM written by hand in the style of keras.io (Embedding 64, LSTM
   256 returning sequences, Dense to the vocabulary; its own `train_step` with
   `tf.GradientTape` and a `keras.metrics.Mean`; Adam, learning rate and clipnorm of the
   spec) on the same batches, with the same seeds, sequence length, batch and step budget;
3. times steps/s of both (epoch 1, with tracing, is not timed; the median epoch counts),
   alternating which model goes first in each round;
4. scores both on the held-out text in bits per character: the generated model through
   `gencompile.runtime.autoregressive.evaluate` (what `gencompile train` reports), the
   reference through a function written here;
5. prints a markdown table and writes it to `benchmarks/results/charlm_text.md`.

    .venv/bin/python benchmarks/charlm_text.py                 # 6 epochs x 50 steps x 2 rounds
    .venv/bin/python benchmarks/charlm_text.py --quick         # smoke check

The corpus defaults to `../shared/data/tinyshakespeare.txt` beside the repository; only this
benchmark (and the tests) read it, never gencompile itself.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import keras
import numpy as np
import tensorflow as tf
from harness import (
    check_matches,
    forget_script_folder,
    paired_blocks,
    spread,
    step_runner,
    utc_stamp,
    write_result,
)
from keras import layers, ops

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runtime import repro, training
from gencompile.runtime.autoregressive import evaluate
from gencompile.runtime.data import DataBundle, load_data
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "charlm_text.yaml"
CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = REPO / "benchmarks" / "results"

# The hand-written model's hyperparameters; `check_parity` compares them with the
# generated project's resolved config so the two cannot drift apart.
EMBEDDING_DIM = 64
UNITS = 256
CONTEXT_LENGTH = 128
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
CLIPNORM = 1.0


# ====================================================================== the reference LSTM


def build_reference_network(vocab_size: int) -> keras.Model:
    tokens = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(vocab_size, EMBEDDING_DIM)(tokens)
    x = layers.LSTM(UNITS, return_sequences=True)(x)
    logits = layers.Dense(vocab_size)(x)
    return keras.Model(tokens, logits, name="char_lstm")


class ReferenceCharLSTM(keras.Model):
    """A character language model with its own train_step, as a keras.io example writes it."""

    def __init__(self, vocab_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = build_reference_network(vocab_size)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def train_step(self, data: Any) -> dict[str, Any]:
        inputs, targets = data[:, :-1], data[:, 1:]
        with tf.GradientTape() as tape:
            logits = self.network(inputs, training=True)
            loss = ops.mean(
                keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            )
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def reference_bits_per_char(model: ReferenceCharLSTM, windows: np.ndarray) -> float:
    """Mean -log2 p of every held-out character that a window predicts."""

    @tf.function
    def summed_nll(batch: tf.Tensor) -> tf.Tensor:
        logits = model.network(batch[:, :-1], training=False)
        nll = keras.losses.sparse_categorical_crossentropy(batch[:, 1:], logits, from_logits=True)
        return tf.reduce_sum(tf.cast(nll, tf.float64))

    total = sum(
        float(summed_nll(tf.constant(windows[s : s + 256]))) for s in range(0, len(windows), 256)
    )
    return total / (windows.shape[0] * (windows.shape[1] - 1) * math.log(2))


# ====================================================================== timing and training


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch, from its first batch's start to its end (fit set-up excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


@dataclass
class Result:
    steps_per_second: list[float] = field(default_factory=list)  # one per round
    epoch_seconds: list[float] = field(default_factory=list)  # every timed epoch
    bits_per_char: list[float] = field(default_factory=list)
    final_loss: list[float] = field(default_factory=list)
    paired_seconds: list[float] = field(default_factory=list)  # per step, one per block


def generated_project(corpus: Path, epochs: int, steps: int, directory: Path) -> ModuleType:
    overrides = [
        f"data.source.path={corpus}",
        f"training.epochs={epochs}",
        f"training.steps_per_epoch={steps}",
    ]
    built = build(load_spec(SPEC, overrides), directory)
    return import_generated(directory, built.plan.package, "train")


def check_parity(module: ModuleType) -> None:
    """Stop if the spec no longer matches the hand-written model's constants."""
    model_module = sys.modules[module.__name__.rsplit(".", 1)[0] + ".model"]
    network = model_module.build_network()
    kinds = [type(layer).__name__ for layer in network.layers]
    expected = ["InputLayer", "Embedding", "LSTM", "Dense"]
    config = {
        "layers": (kinds, expected),
        "embedding": (network.layers[1].output_dim, EMBEDDING_DIM),
        "units": (network.layers[2].units, UNITS),
        "context": (model_module.CONTEXT_LENGTH, CONTEXT_LENGTH),
        "batch": (module.DATA["batch_size"], BATCH_SIZE),
        "learning_rate": (module.TRAINING["optimizer"]["learning_rate"], LEARNING_RATE),
        "clipnorm": (module.TRAINING["optimizer"]["clipnorm"], CLIPNORM),
        "schedule": (module.TRAINING["schedule"], None),
        "dropout": (network.layers[2].dropout, 0.0),
    }
    found = {k: v[0] for k, v in config.items()}
    check_matches(found, {k: v[1] for k, v in config.items()}, "LSTM")


def make_generated(module: ModuleType, data: DataBundle, epochs: int, seed: int) -> keras.Model:
    """The generated model and optimizer, as the generated train.py makes them."""
    repro.set_seed(seed)
    return training.build_and_compile(module.build_model, module.TRAINING, data, epochs)


def make_reference(vocab_size: int, seed: int, steps_per_execution: int) -> keras.Model:
    """`steps_per_execution`: the generated model's, so both run the same loop."""
    repro.set_seed(seed)
    model = ReferenceCharLSTM(vocab_size)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE, clipnorm=CLIPNORM),
        steps_per_execution=steps_per_execution,
    )
    return model


def fit_epoch(model: keras.Model, data: DataBundle, epoch: int, steps: int) -> tuple[float, float]:
    """Train one more epoch (the stream of epoch `epoch`); its seconds and final loss."""
    clock = EpochClock()
    callbacks = [clock, *getattr(model, "training_callbacks", list)()]
    history = model.fit(
        data.epochs(epoch, epoch + 1, steps=steps),
        initial_epoch=epoch,
        epochs=epoch + 1,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=0,
    )
    return clock.seconds[-1], float(history.history["loss"][-1])


def initial_weight_gap(module: ModuleType, data: DataBundle, seed: int) -> float:
    """Largest difference between the two models' initial weights (same seed)."""
    repro.set_seed(seed)
    generated = module.build_model().network.get_weights()
    repro.set_seed(seed)
    reference = build_reference_network(data.text.tokenizer.vocab_size).get_weights()
    return max(float(np.abs(a - b).max()) for a, b in zip(generated, reference, strict=True))


# ====================================================================== report


def report(args: argparse.Namespace, gen: Result, ref: Result, extra: dict[str, Any]) -> str:
    gen_rate = statistics.median(gen.steps_per_second)
    ref_rate = statistics.median(ref.steps_per_second)
    rounds = "\n".join(
        f"| {i + 1} | {g:.2f} | {r:.2f} | {g / r:.3f} | {gb:.4f} | {rb:.4f} |"
        for i, (g, r, gb, rb) in enumerate(
            zip(
                gen.steps_per_second,
                ref.steps_per_second,
                gen.bits_per_char,
                ref.bits_per_char,
                strict=True,
            )
        )
    )
    load = os.getloadavg()
    paired_ratio = statistics.median(
        r / g for g, r in zip(gen.paired_seconds, ref.paired_seconds, strict=True)
    )
    epoch_ratio = statistics.median(
        r / g for g, r in zip(gen.epoch_seconds, ref.epoch_seconds, strict=True)
    )

    def row(name: str, result: Result) -> str:
        rate = statistics.median(result.steps_per_second)
        return (
            f"| {name} | {rate:.2f} | {spread(result.bits_per_char, 4)} "
            f"| {spread(result.final_loss, 4)} |"
        )

    return f"""# charlm_text: generated vs hand-written Keras LSTM

{utc_stamp()}, {platform.platform()}, Python
{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__};
load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min).

Corpus: `{args.corpus.name}` ({extra["characters"]:,} characters; the last 10 % held out:
{extra["held_out_windows"]} windows of {CONTEXT_LENGTH + 1} characters), vocabulary
{extra["vocab_size"]} characters. Both models: Embedding {EMBEDDING_DIM}, LSTM {UNITS},
Dense {extra["vocab_size"]} ({extra["params"]:,} parameters), sequence length
{CONTEXT_LENGTH}, batch {BATCH_SIZE}, Adam lr {LEARNING_RATE:g} clipnorm {CLIPNORM:g},
{args.epochs} epochs x {args.steps} steps = {args.epochs * args.steps} steps per training,
{args.rounds} rounds (seed 42 + round - 1), the same batches; within a round the two
models alternate epoch by epoch (`fit` resumed with `initial_epoch`). Initial weights differ by at
most {extra["weight_gap"]:.1e}.

| model | steps/s (median) | held-out bits/char | final training loss (nats/char) |
|---|---:|---:|---:|
{row("generated (`specs/charlm_text.yaml`)", gen)}
{row("hand-written Keras LSTM", ref)}

Ratio generated / reference steps/s: **{gen_rate / ref_rate:.3f}** (target >= 0.95); median
over the timed epochs of each epoch's ratio (the two models train the same epoch back to
back, taking turns at going first): **{epoch_ratio:.3f}**.
Held-out bits/char difference generated - reference:
**{statistics.mean(gen.bits_per_char) - statistics.mean(ref.bits_per_char):+.4f}**
(target <= 0).

Paired check (after each round, {args.paired_blocks} alternating blocks of
{args.paired_steps} compiled train steps per model): median seconds per step generated
{statistics.median(gen.paired_seconds):.4f}, reference {statistics.median(ref.paired_seconds):.4f};
median of the block ratios reference / generated: **{paired_ratio:.3f}**.

| round | generated steps/s | reference steps/s | ratio | generated bpc | reference bpc |
|---:|---:|---:|---:|---:|---:|
{rounds}

Command: `{" ".join(["python", *sys.argv])}`
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--epochs", type=int, default=6, help="per training; the first untimed")
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paired-blocks", type=int, default=8, help="after each round")
    parser.add_argument("--paired-steps", type=int, default=5, help="steps per block")
    parser.add_argument("--quick", action="store_true", help="2 epochs x 5 steps x 1 round")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.steps, args.rounds, args.paired_blocks = 3, 5, 1, 2
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    if not args.corpus.is_file():
        parser.error(f"corpus not found: {args.corpus}")
    output = args.output or RESULTS / ("charlm_text.quick.md" if args.quick else "charlm_text.md")
    tf.get_logger().setLevel("ERROR")
    forget_script_folder()

    gen, ref = Result(), Result()
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        module = generated_project(args.corpus.resolve(), args.epochs, args.steps, Path(tmp))
        check_parity(module)
        names = ("generated", "reference")
        results = {"generated": gen, "reference": ref}
        for r in range(args.rounds):
            seed = 42 + r
            data = load_data(module.DATA, seed=module.SEED)
            generated = make_generated(module, data, args.epochs, seed)
            models = {
                "generated": generated,
                "reference": make_reference(
                    data.text.tokenizer.vocab_size, seed, int(generated.steps_per_execution)
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in names}
            losses: dict[str, float] = {}
            for epoch in range(args.epochs):  # the two trainings take turns, epoch by epoch
                order = names if (epoch + r) % 2 == 0 else names[::-1]
                for name in order:
                    seconds, losses[name] = fit_epoch(models[name], data, epoch, args.steps)
                    if epoch > 0:  # the first epoch traces the step: not timed
                        times[name].append(seconds)
                ratio = times["reference"][-1] / times["generated"][-1] if epoch else math.nan
                print(f"round {r + 1} epoch {epoch + 1}: ratio {ratio:.3f}", flush=True)
            for name in names:
                result = results[name]
                result.steps_per_second.append(args.steps / statistics.median(times[name]))
                result.epoch_seconds += times[name]
                result.final_loss.append(losses[name])
            metrics = evaluate(models["generated"], data, {"metrics": ["bits_per_char"]})
            gen.bits_per_char.append(metrics["bits_per_char"])
            ref.bits_per_char.append(reference_bits_per_char(models["reference"], data.x_val))
            runners = {name: step_runner(model, data) for name, model in models.items()}
            paired, _ = paired_blocks(runners, args.paired_blocks, args.paired_steps, warmup=1)
            gen.paired_seconds += paired["generated"]
            ref.paired_seconds += paired["reference"]
            extra.update(
                characters=len(args.corpus.read_text(encoding="utf-8")),
                held_out_windows=len(data.x_val),
                vocab_size=data.text.tokenizer.vocab_size,
                params=models["generated"].network.count_params(),
            )
        extra["weight_gap"] = initial_weight_gap(module, data, 42)
    write_result(output, report(args, gen, ref, extra))


if __name__ == "__main__":
    main()
