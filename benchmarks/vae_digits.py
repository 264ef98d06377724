"""Benchmark: the generated `vae_digits` model against a hand-written Keras VAE.

One run of this script

1. builds `specs/vae_digits.yaml` with the library into a temporary directory, imports the
   generated model and trains it the way the generated `train.py` does (`repro.set_seed`,
   `load_data`, `training.build_and_compile`, `model.fit` on `data.epochs(...)` with the model's
   own callbacks, i.e. the KL warm-up);
2. trains a hand-written VAE in the style of keras.io's `examples/generative/vae.py` with
   the same architecture, loss, L2 penalties, KL warm-up, optimizer, batches and epochs;
3. times training throughput (steps/s) of both: the two trainings alternate every
   `--chunk-epochs` epochs (`fit` resumed with `initial_epoch`) so machine load hits both
   alike, each fit's first epoch (tracing, set-up) is not timed, and `--rounds` rounds
   repeat it all with another seed; a paired check then times the compiled train steps;
4. scores both on the same held-out split: the IWAE bound (k importance samples) as an
   NLL in nats, and the single-sample ELBO;
5. prints a markdown table and writes it to `benchmarks/results/vae_digits.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/vae_digits.py              # full: 60 epochs x 3 rounds
    .venv/bin/python benchmarks/vae_digits.py --quick      # smoke check, a minute or so
    .venv/bin/python benchmarks/vae_digits.py --profile    # + where the generated step spends

The hand-written model deliberately imports nothing from `gencompile.runtime` except the
data loader (so both see the same arrays and batches) and `repro.set_seed`.
"""

from __future__ import annotations

import argparse
import hashlib
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
    EpochClock,
    check_matches,
    forget_script_folder,
    fresh_start,
    load_average,
    machine_line,
    paired_blocks,
    spread,
    step_runner,
    train_interleaved,
    utc_stamp,
    write_result,
)
from keras import layers, ops, regularizers

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runtime import callbacks as cb
from gencompile.runtime import replicas, training
from gencompile.runtime.data import DataBundle, load_data
from gencompile.runtime.metrics.results import NON_BINARY_BERNOULLI, non_binary
from gencompile.runtime.vae import elbo as generated_elbo
from gencompile.runtime.vae import iwae_log_likelihood
from gencompile.spec import load_spec

tf.get_logger().setLevel("ERROR")  # the profile traces many models: retracing notices

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "vae_digits.yaml"
RESULTS = REPO / "benchmarks" / "results"
LOG_2PI = math.log(2.0 * math.pi)

# The hand-written model's hyperparameters, written out as keras.io would. `check_parity`
# compares them with the generated project's resolved config so the two cannot drift.
SEED = 42
IMAGE_SHAPE = (8, 8, 1)
LATENT_DIM = 8
L2 = 1e-5
LEARNING_RATE = 1e-3
CLIPNORM = 5.0
BATCH_SIZE = 64
KL_WARMUP_EPOCHS = 5

# The paired check after each round: alternating blocks of compiled train steps.
PAIRED_BLOCKS = 10
PAIRED_STEPS = 100


# ====================================================================== the reference VAE
# Written in the style of keras.io/examples/generative/vae.py: a Sampling layer, builder
# code for the encoder and decoder, a VAE model with its own train_step and Mean trackers.


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: tuple[Any, Any]) -> Any:
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_reference_encoder(seed: int) -> keras.Model:
    encoder_inputs = keras.Input(shape=IMAGE_SHAPE)
    x = layers.Flatten()(encoder_inputs)
    x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.L2(L2))(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.L2(L2))(x)
    z_mean = layers.Dense(LATENT_DIM, kernel_regularizer=regularizers.L2(L2), name="z_mean")(x)
    z_log_var = layers.Dense(LATENT_DIM, kernel_regularizer=regularizers.L2(L2), name="z_log_var")(
        x
    )
    z = Sampling(seed)([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def build_reference_decoder() -> keras.Model:
    latent_inputs = keras.Input(shape=(LATENT_DIM,))
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.L2(L2))(latent_inputs)
    x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.L2(L2))(x)
    x = layers.Dense(math.prod(IMAGE_SHAPE), kernel_regularizer=regularizers.L2(L2))(x)
    logits = layers.Reshape(IMAGE_SHAPE)(x)  # Bernoulli logits, one per pixel
    return keras.Model(latent_inputs, logits, name="decoder")


def bernoulli_nll(data: Any, logits: Any) -> Any:
    """-log p(x | z) of Bernoulli pixels with logits: sigmoid cross-entropy summed over pixels."""
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=data, logits=logits)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=1)


def analytic_kl(z_mean: Any, z_log_var: Any) -> Any:
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example."""
    kl = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    return ops.sum(kl, axis=1)


class ReferenceVAE(keras.Model):
    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.kl_weight = keras.Variable(1.0, trainable=False, name="kl_weight")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data, training=True)
            reconstruction = self.decoder(z, training=True)
            reconstruction_loss = ops.mean(bernoulli_nll(data, reconstruction))
            kl_loss = ops.mean(analytic_kl(z_mean, z_log_var))
            total_loss = reconstruction_loss + self.kl_weight * kl_loss + ops.sum(self.losses)
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


class ReferenceKLWarmup(keras.callbacks.Callback):
    """kl_weight = min(1, epoch / warmup_epochs) at each (0-based) epoch start."""

    def __init__(self, warmup_epochs: int) -> None:
        super().__init__()
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        weight = 1.0 if self.warmup_epochs <= 0 else min(1.0, epoch / self.warmup_epochs)
        self.model.kl_weight.assign(weight)


def reference_elbo(model: ReferenceVAE, x: np.ndarray, batch_size: int = 256) -> float:
    """Mean single-sample ELBO (analytic KL) in nats per example."""

    @tf.function
    def per_example(xb: tf.Tensor) -> tf.Tensor:
        z_mean, z_log_var, z = model.encoder(xb, training=False)
        logits = model.decoder(z, training=False)
        return -(bernoulli_nll(xb, logits) + analytic_kl(z_mean, z_log_var))

    values = [
        per_example(tf.constant(x[s : s + batch_size])).numpy()
        for s in range(0, len(x), batch_size)
    ]
    return float(np.mean(np.concatenate(values)))


def reference_iwae_log_likelihood(
    model: ReferenceVAE, x: np.ndarray, k: int, seed: int = 0, max_rows: int = 16384
) -> np.ndarray:
    """log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k, per example."""
    seed_generator = keras.random.SeedGenerator(seed)
    batch = max(1, min(len(x), max_rows // min(k, max_rows)))
    chunk = max(1, min(k, max_rows // batch))

    @tf.function(reduce_retracing=True)
    def log_weights(xb: tf.Tensor, draws: int) -> tf.Tensor:  # -> [draws, b]
        z_mean, z_log_var, _ = model.encoder(xb, training=False)
        b = tf.shape(xb)[0]
        eps = keras.random.normal((draws, b, LATENT_DIM), seed=seed_generator)
        z = z_mean[None] + tf.exp(0.5 * z_log_var)[None] * eps  # [draws, b, d]
        logits = model.decoder(tf.reshape(z, (-1, LATENT_DIM)), training=False)
        logits = tf.reshape(logits, (draws, b, -1))
        labels = tf.broadcast_to(tf.reshape(xb, (1, b, -1)), tf.shape(logits))
        log_px = -tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1
        )
        log_pz = tf.reduce_sum(-0.5 * (LOG_2PI + tf.square(z)), axis=-1)
        log_qz = tf.reduce_sum(-0.5 * (LOG_2PI + z_log_var[None] + tf.square(eps)), axis=-1)
        return log_px + log_pz - log_qz

    results = []
    for start in range(0, len(x), batch):
        xb = tf.constant(x[start : start + batch])
        pieces = [log_weights(xb, min(chunk, k - s)).numpy() for s in range(0, k, chunk)]
        weights = np.concatenate(pieces, axis=0).astype(np.float64)
        top = weights.max(axis=0)
        results.append(top + np.log(np.exp(weights - top).sum(axis=0)) - math.log(k))
    return np.concatenate(results)


# ====================================================================== timing


@dataclass(frozen=True)
class Throughput:
    """Training speed over the timed epochs of one model's training."""

    steps_per_second: float  # steps per epoch / median epoch duration: robust to load spikes
    mean_steps_per_second: float  # all timed steps / their total wall time
    cpu_ms_per_step: float  # median epoch CPU time of this process (all threads) per step
    ms_per_epoch: float  # median epoch duration
    timed_steps: int
    timed_seconds: float


def throughput(clock: EpochClock, steps_per_epoch: int) -> Throughput:
    if not clock.wall:
        raise SystemExit("no epoch was timed: each fit needs at least 2 epochs")
    seconds = float(np.sum(clock.wall))
    steps = steps_per_epoch * len(clock.wall)
    return Throughput(
        steps_per_second=steps_per_epoch / float(np.median(clock.wall)),
        mean_steps_per_second=steps / seconds,
        cpu_ms_per_step=1e3 * float(np.median(clock.cpu)) / steps_per_epoch,
        ms_per_epoch=1e3 * float(np.median(clock.wall)),
        timed_steps=steps,
        timed_seconds=seconds,
    )


# ====================================================================== the two trainings


@dataclass
class Generated:
    """The generated project, imported from its build directory."""

    directory: Path
    train: ModuleType
    model: ModuleType

    @property
    def data_config(self) -> dict[str, Any]:
        return self.train.DATA

    @property
    def deterministic(self) -> bool:
        return bool(self.train.TRAINING["deterministic"])


def build_generated(directory: Path, overrides: list[str]) -> Generated:
    built = build(load_spec(SPEC, overrides), directory)
    train_module = import_generated(directory, built.plan.package, "train")
    model_module = importlib.import_module(f"{built.plan.package}.model")
    return Generated(directory, train_module, model_module)


def check_parity(gen: Generated, warmup_epochs: int) -> None:
    """Fail loudly if the spec no longer matches the hand-written model's constants."""
    t, m = gen.train.TRAINING, gen.model
    found = {
        "seed": gen.train.SEED,
        "latent_dim": m.LATENT_DIM,
        "data_shape": tuple(m.DATA_SHAPE),
        "likelihood": m.LIKELIHOOD["type"],
        "prior": m.PRIOR["type"],
        "kl_warmup_epochs": getattr(m, "KL_WARMUP_EPOCHS", 0),  # emitted with a warm-up
        "kl_weight": m.KL_WEIGHT,
        "free_bits": getattr(m, "FREE_BITS", 0.0),  # emitted with the analytic KL
        "reconstruction_weight": m.RECONSTRUCTION_WEIGHT,
        "optimizer": t["optimizer"]["type"],
        "learning_rate": t["optimizer"]["learning_rate"],
        "clipnorm": t["optimizer"]["clipnorm"],
        "batch_size": gen.data_config["batch_size"],
        "schedule": t["schedule"],
        "mixed_precision": t["mixed_precision"],
        "strategy": t["distribution"]["strategy"],
    }
    expected = {
        "seed": SEED,
        "latent_dim": LATENT_DIM,
        "data_shape": IMAGE_SHAPE,
        "likelihood": "bernoulli",
        "prior": "normal",
        "kl_warmup_epochs": warmup_epochs,
        "kl_weight": 1.0,
        "free_bits": 0.0,
        "reconstruction_weight": 1.0,
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "clipnorm": CLIPNORM,
        "batch_size": BATCH_SIZE,
        "schedule": None,
        "mixed_precision": False,
        "strategy": "none",
    }
    check_matches(found, expected, "VAE")
    generated = gen.train.build_model()
    for part, ours in (
        ("encoder", build_reference_encoder(SEED)),
        ("decoder", build_reference_decoder()),
    ):
        theirs = getattr(generated, part)
        if architecture(theirs) != architecture(ours):
            raise SystemExit(
                f"the generated {part} differs from the reference's:\n"
                f"  generated: {architecture(theirs)}\n  reference: {architecture(ours)}"
            )


def architecture(network: keras.Model) -> list[tuple[Any, ...]]:
    """The layers that shape the function: Dense (units, activation, L2), Flatten, Reshape."""
    found: list[tuple[Any, ...]] = []
    for layer in network.layers:
        if isinstance(layer, layers.Dense):
            l2 = getattr(layer.kernel_regularizer, "l2", None)
            bias_l2 = getattr(layer.bias_regularizer, "l2", None)
            found.append(("Dense", layer.units, layer.activation.__name__, l2, bias_l2))
        elif isinstance(layer, layers.Flatten):
            found.append(("Flatten",))
        elif isinstance(layer, layers.Reshape):
            found.append(("Reshape", tuple(layer.target_shape)))
        elif not isinstance(layer, (layers.InputLayer, Sampling)):
            found.append((type(layer).__name__,))
    return found


def compile_generated(
    gen: Generated,
    seed: int,
    epochs: int,
    build_model: Callable[[], keras.Model] | None = None,
    clear: bool = True,
) -> tuple[keras.Model, DataBundle]:
    """The generated train.py's steps 1-3: seed, load the data, build and compile."""
    fresh_start(seed, gen.deterministic, clear)
    data = load_data(gen.data_config, seed=gen.train.SEED)
    model = training.build_and_compile(
        build_model or gen.train.build_model, gen.train.TRAINING, data, epochs=epochs
    )
    return model, data


def compile_reference(
    gen: Generated, seed: int, epochs: int, clear: bool = True
) -> tuple[ReferenceVAE, DataBundle]:
    fresh_start(seed, gen.deterministic, clear)
    data = load_data(gen.data_config, seed=gen.train.SEED)  # the same arrays and batches
    vae = ReferenceVAE(build_reference_encoder(SEED), build_reference_decoder())
    vae.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE, clipnorm=CLIPNORM),
        # the generated project's steps per compiled call, so both run the same loop
        steps_per_execution=training.steps_per_execution(gen.train.TRAINING, data, epochs),
    )
    return vae, data


@dataclass
class Trial:
    """One training of one model in one round, and its held-out scores."""

    name: str
    rnd: int
    seed: int
    speed: Throughput
    final_loss: float
    iwae_nll: float
    elbo: float
    n_val: int
    x_val_sha: str
    weights: list[np.ndarray]
    step_ms: float = float("nan")  # paired compiled-step check, filled in after training
    steps_per_call: int = 1  # training steps per compiled call (Keras' steps_per_execution)
    caveat: str = ""  # gencompile's own caveat for these likelihood numbers, if any


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def generated_contender(gen: Generated, seed: int, epochs: int) -> Contender:
    """Steps 1-3 of the generated train.py; step 4 is `model.fit` with the model's callbacks
    (the KL warm-up), without `training.fit`'s run-directory extras (see --profile)."""
    model, data = compile_generated(gen, seed, epochs)
    return Contender("generated", model, data, model.training_callbacks)


def reference_contender(gen: Generated, seed: int, epochs: int, warmup_epochs: int) -> Contender:
    vae, data = compile_reference(gen, seed, epochs)

    def callbacks() -> list[keras.callbacks.Callback]:
        return [ReferenceKLWarmup(warmup_epochs)] if warmup_epochs else []

    return Contender("reference", vae, data, callbacks)


def score(contender: Contender, rnd: int, seed: int, k: int) -> Trial:
    """Throughput and held-out metrics of a trained contender."""
    model, data = contender.model, contender.data
    # ELBO first: it draws from the model's own noise stream, which the reference's encoder
    # (its Sampling layer) also advances during IWAE.
    if contender.name == "generated":
        elbo = generated_elbo(model, data.x_val, None)
        log_px = iwae_log_likelihood(model, data.x_val, None, k)
    else:
        elbo = reference_elbo(model, data.x_val)
        log_px = reference_iwae_log_likelihood(model, data.x_val, k)
    return Trial(
        name=contender.name,
        rnd=rnd,
        seed=seed,
        speed=throughput(contender.clock, data.steps_per_epoch),
        final_loss=contender.losses[-1],
        elbo=elbo,
        iwae_nll=float(-np.mean(log_px)),
        n_val=len(data.x_val),
        x_val_sha=_sha(data.x_val),
        caveat=NON_BINARY_BERNOULLI if non_binary(data.x_val) else "",
        weights=[keras.ops.convert_to_numpy(w) for w in model.trainable_weights],
    )


# ====================================================================== profiling (--profile)
# 1. Step costs: the compiled train step of each variant called directly on the same
#    batches in round-robin blocks. Variants are subclasses of the generated VAE whose
#    train_step leaves out one extra of the generated step at a time.
# 2. Fit costs: the generated train.py's own step 4, `training.fit`, timed piece by piece
#    (validation pass, each callback) against the bare `model.fit` the table measures.


def ablated_generated(
    gen: Generated,
    grad_norm: bool = True,
    scale_loss: bool = True,
    python_sum: bool = True,
    reference_step: bool = False,
) -> Callable[[], keras.Model]:
    """A build_model for the generated VAE with parts of its train_step changed."""
    m = gen.model

    class Ablated(m.VAE):  # type: ignore[misc, name-defined]
        def train_step(self, data: Any) -> dict[str, Any]:
            if reference_step:  # the reference's step body on the generated networks
                with tf.GradientTape() as tape:
                    z_mean, z_log_var = self.encoder(data, training=True)
                    eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
                    z = z_mean + ops.exp(0.5 * z_log_var) * eps
                    logits = self.decoder(z, training=True)
                    reconstruction = ops.mean(bernoulli_nll(data, logits))
                    kl = ops.mean(analytic_kl(z_mean, z_log_var))
                    loss = reconstruction + self.kl_weight * kl + ops.sum(self.losses)
                grads = tape.gradient(loss, self.trainable_weights)
                self.optimizer.apply(grads, self.trainable_weights)
                self.loss_tracker.update_state(loss)
                self.reconstruction_tracker.update_state(reconstruction)
                self.kl_tracker.update_state(kl)
                return {metric.name: metric.result() for metric in self.metrics[:-1]}
            with tf.GradientTape() as tape:
                reconstruction, kl, kl_term = self.elbo_terms(data, None, training=True)
                loss = m.RECONSTRUCTION_WEIGHT * ops.mean(reconstruction) + self.kl_weight * kl_term
                loss = loss + (sum(self.losses) if python_sum else ops.sum(self.losses))
                scaled = loss
                if scale_loss:
                    scaled = self.optimizer.scale_loss(replicas.scale_to_global_batch(loss))
            grads = tape.gradient(scaled, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            if grad_norm:
                self.grad_norm_tracker.update_state(tf.linalg.global_norm(grads))
            return self._track(loss, reconstruction, kl, with_grad_norm=grad_norm)

    return lambda: Ablated(name="vae_digits")


def graph_ops(model: keras.Model) -> int:
    """Operations in the traced train_step (forward, gradients, optimizer, trackers)."""
    spec = tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32)
    return len(tf.function(model.train_step).get_concrete_function(spec).graph.get_operations())


def step_costs(gen: Generated, epochs: int, blocks: int, steps: int) -> list[str]:
    """Median ms per compiled train step of each variant; returns markdown lines."""

    def generated(**changes: bool) -> tuple[keras.Model, DataBundle]:
        factory = ablated_generated(gen, **changes) if changes else None
        return compile_generated(gen, SEED, epochs, factory, clear=False)

    builders: dict[str, Callable[[], tuple[keras.Model, DataBundle]]] = {
        "reference": lambda: compile_reference(gen, SEED, epochs, clear=False),
        "generated": generated,
        "generated without the grad_norm tracker (global_norm + Mean)": lambda: generated(
            grad_norm=False
        ),
        "generated without scale_loss(scale_for_distribution(loss))": lambda: generated(
            scale_loss=False
        ),
        "generated with ops.sum(self.losses) for sum(self.losses)": lambda: generated(
            python_sum=False
        ),
        "generated with all three changes": lambda: generated(
            grad_norm=False, scale_loss=False, python_sum=False
        ),
        "generated networks, the reference's train_step": lambda: generated(reference_step=True),
    }
    keras.backend.clear_session()
    runners: dict[str, Callable[[], Any]] = {}
    ops_count: dict[str, int] = {}
    for name, make in builders.items():
        model, data = make()
        runners[name] = step_runner(model, data)
        runners[name]()  # trace, so the optimizer exists before graph_ops traces train_step
        ops_count[name] = graph_ops(model)
    wall, cpu = paired_blocks(runners, blocks, steps, warmup=50)

    def ms(times: dict[str, list[float]], name: str) -> float:
        return 1e3 * statistics.median(times[name])

    def diff(times: dict[str, list[float]], name: str, other: str) -> float:
        # median over blocks of the paired difference: neighbouring blocks share the load
        pairs = zip(times[name], times[other], strict=True)
        return 1e3 * statistics.median(a - b for a, b in pairs)

    lines = [
        f"Compiled train step called directly: {blocks} round-robin blocks of {steps} steps "
        "per variant; ms/step = median block; differences = median over blocks of the "
        "paired per-block difference (wall and process CPU time); graph ops = operations in "
        "the traced train_step.",
        "",
        "| variant | ms/step | vs generated | vs reference | CPU vs generated | graph ops |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        lines.append(
            f"| {name} | {ms(wall, name):.3f} | {diff(wall, name, 'generated'):+.3f} | "
            f"{diff(wall, name, 'reference'):+.3f} | {diff(cpu, name, 'generated'):+.3f} | "
            f"{ops_count[name]} |"
        )
    return lines


class MethodTimer:
    """Temporarily wrap methods of classes to add up the wall time spent in them per label.

    Only the benchmark process is patched, and only while the context is open; methods are
    wrapped where the class itself defines them, so Keras' checks for overridden batch
    hooks (which decide async dispatch) see the same picture as without the timer.
    """

    def __init__(self, targets: list[tuple[type, str, str]]) -> None:
        self.targets = targets
        self.seconds: dict[str, float] = {label: 0.0 for _, _, label in targets}
        self._saved: list[tuple[type, str, Any]] = []

    def __enter__(self) -> MethodTimer:
        for owner, method, label in self.targets:
            original = owner.__dict__.get(method)
            if original is None:
                continue
            self._saved.append((owner, method, original))
            setattr(owner, method, self._wrap(original, label))
        return self

    def _wrap(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        return timed

    def __exit__(self, *exc: object) -> None:
        for owner, method, original in reversed(self._saved):
            setattr(owner, method, original)
        self._saved.clear()


def fit_costs(gen: Generated, epochs: int, rounds: int) -> list[str]:
    """Where `training.fit` spends its time beyond the bare `model.fit` of the table."""
    trainer = next(c for c in keras.Model.__mro__ if "evaluate" in c.__dict__)
    targets: list[tuple[type, str, str]] = [
        (trainer, "evaluate", "validation pass (model.evaluate)"),
        (keras.callbacks.CallbackList, "on_train_batch_end", "batch-end dispatch (all)"),
        (cb.NaNGuard, "on_train_batch_end", "NaNGuard"),
        (cb.CheckpointKeeper, "on_epoch_end", "CheckpointKeeper"),
        (cb.HistoryCSV, "on_epoch_end", "HistoryCSV"),
        (cb.GradientMonitor, "on_epoch_end", "GradientMonitor"),
        (cb.KLWarmup, "on_epoch_begin", "KLWarmup"),
    ]

    class Timed(gen.model.VAE):  # type: ignore[misc, name-defined]
        clock: EpochClock

        def training_callbacks(self) -> list[keras.callbacks.Callback]:
            return [*super().training_callbacks(), self.clock]

    def bare() -> tuple[Throughput, EpochClock, dict[str, float]]:
        model, data = compile_generated(gen, SEED, epochs)
        clock = EpochClock()
        with MethodTimer(targets) as timer:
            model.fit(
                data.epochs(0, epochs),
                steps_per_epoch=data.steps_per_epoch,
                epochs=epochs,
                callbacks=[*model.training_callbacks(), clock],
                shuffle=False,
                verbose=0,
            )
        return throughput(clock, data.steps_per_epoch), clock, timer.seconds

    def full() -> tuple[Throughput, EpochClock, dict[str, float]]:
        clock = EpochClock()

        def build_model() -> keras.Model:
            model = Timed(name="vae_digits")
            model.clock = clock
            return model

        model, data = compile_generated(gen, SEED, epochs, build_model)
        with tempfile.TemporaryDirectory() as run_dir, MethodTimer(targets) as timer:
            training.fit(
                model,
                data,
                gen.train.TRAINING,
                gen.train.OUTPUT,
                Path(run_dir),
                epochs,
                quiet=True,
            )
        return throughput(clock, data.steps_per_epoch), clock, timer.seconds

    results: dict[str, list[tuple[Throughput, EpochClock, dict[str, float]]]] = {
        "model.fit": [],
        "training.fit": [],
    }
    for rnd in range(rounds):
        for name in (
            ("model.fit", "training.fit") if rnd % 2 == 0 else ("training.fit", "model.fit")
        ):
            results[name].append(bare() if name == "model.fit" else full())

    def per_epoch_ms(name: str, label: str) -> float:
        # whole-run totals / epochs: periodic costs (checkpoints) are amortized
        return statistics.median(1e3 * s[label] / epochs for _, _, s in results[name])

    def median_of(name: str, pick: Callable[[Throughput], float]) -> float:
        return statistics.median(pick(t) for t, _, _ in results[name])

    first_speed, first_clock, _ = results["model.fit"][0]
    steps_per_epoch = first_speed.timed_steps // len(first_clock.wall)
    bare_epoch = median_of("model.fit", lambda t: t.ms_per_epoch)
    full_epoch = median_of("training.fit", lambda t: t.ms_per_epoch)
    bare_rate = median_of("model.fit", lambda t: t.steps_per_second)
    full_rate = median_of("training.fit", lambda t: t.steps_per_second)
    lines = [
        f"The generated model under the benchmark's bare `model.fit` and under "
        f"`gencompile.runtime.training.fit` (what the generated train.py calls), {epochs}-epoch "
        f"fits, {rounds} interleaved round(s), median over rounds:",
        "",
        "| | model.fit | training.fit |",
        "|---|---:|---:|",
        f"| steps/s (median epoch) | {bare_rate:.1f} | {full_rate:.1f} |",
        f"| ms/epoch (median epoch) | {bare_epoch:.1f} | {full_epoch:.1f} |",
    ]
    added = 0.0
    for _, _, label in targets:
        bare_ms, full_ms = per_epoch_ms("model.fit", label), per_epoch_ms("training.fit", label)
        added += full_ms - bare_ms
        lines.append(f"| {label}, ms/epoch (amortized) | {bare_ms:.2f} | {full_ms:.2f} |")
    lines += [
        f"| added by training.fit (sum of the rows above), ms/epoch | | {added:+.2f} |",
        "",
        f"training.fit / model.fit steps/s: {full_rate / bare_rate:.3f} measured "
        f"({full_epoch - bare_epoch:+.1f} ms per median {steps_per_epoch}-step epoch); "
        f"{bare_epoch / (bare_epoch + added):.3f} expected from the timed pieces "
        f"({added / steps_per_epoch:.3f} ms per step).",
    ]
    return lines


# ====================================================================== report


def render(trials: list[Trial], args: argparse.Namespace, warmup_epochs: int) -> str:
    by_name: dict[str, list[Trial]] = {"generated": [], "reference": []}
    for trial in sorted(trials, key=lambda t: t.rnd):
        by_name[trial.name].append(trial)
    gen, ref = by_name["generated"], by_name["reference"]

    def median_of(name: str, pick: Callable[[Trial], float]) -> float:
        return statistics.median(pick(t) for t in by_name[name])

    rate = {n: median_of(n, lambda t: t.speed.steps_per_second) for n in by_name}
    cpu = {n: median_of(n, lambda t: t.speed.cpu_ms_per_step) for n in by_name}
    step = {n: median_of(n, lambda t: t.step_ms) for n in by_name}
    ratio = rate["generated"] / rate["reference"]
    per_round = [
        g.speed.steps_per_second / r.speed.steps_per_second for g, r in zip(gen, ref, strict=True)
    ]
    step_ratio = [r.step_ms / g.step_ms for g, r in zip(gen, ref, strict=True)]
    delta = [g.iwae_nll - r.iwae_nll for g, r in zip(gen, ref, strict=True)]
    weight_gap = [
        max(float(np.max(np.abs(a - b))) for a, b in zip(g.weights, r.weights, strict=True))
        for g, r in zip(gen, ref, strict=True)
    ]
    # grey-level digits under a Bernoulli likelihood: a cross-entropy, not -log p(x)
    nll_name = "Bernoulli cross-entropy" if gen[0].caveat else "NLL"
    caveat = [f"caveat (gencompile's own for these numbers): {gen[0].caveat}", ""]
    table = [
        f"| model | steps/s | held-out IWAE {nll_name} (nats) | ELBO (nats) |",
        "|---|---:|---:|---:|",
        *(
            f"| {n} | {rate[n]:.1f} | {spread([t.iwae_nll for t in ts], 2)} | "
            f"{spread([t.elbo for t in ts], 2)} |"
            for n, ts in by_name.items()
        ),
        "",
        *(caveat if gen[0].caveat else []),
        f"**ratio generated/reference steps/s: {ratio:.3f}** (target >= 0.95; per round "
        + ", ".join(f"{r:.3f}" for r in per_round)
        + ")",
        "",
        f"- paired compiled-step check: {step['generated']:.3f} vs {step['reference']:.3f} "
        f"ms/step; ratio generated/reference speed {statistics.median(step_ratio):.3f} "
        "(median of the per-round ratios: "
        + ", ".join(f"{r:.3f}" for r in step_ratio)
        + f"); CPU time {cpu['generated']:.3f} vs {cpu['reference']:.3f} ms/step, ratio "
        f"{cpu['reference'] / cpu['generated']:.3f}",
        f"- {nll_name} generated - reference: {spread(delta, 3)} nats (per round "
        + ", ".join(f"{d:+.3f}" for d in delta)
        + "); largest |weight difference| after training, per round: "
        + ", ".join(f"{w:.1e}" for w in weight_gap),
    ]
    detail = [
        "| round | model | seed | steps/s (median epoch) | steps/s (mean) | CPU ms/step "
        "| paired ms/step | seconds timed | IWAE NLL | ELBO | final loss |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {t.rnd + 1} | {t.name} | {t.seed} | {t.speed.steps_per_second:.1f} | "
            f"{t.speed.mean_steps_per_second:.1f} | {t.speed.cpu_ms_per_step:.3f} | "
            f"{t.step_ms:.3f} | {t.speed.timed_seconds:.2f} | {t.iwae_nll:.3f} | "
            f"{t.elbo:.3f} | {t.final_loss:.3f} |"
            for t in sorted(trials, key=lambda t: (t.rnd, t.name))
        ),
    ]
    load = load_average()
    stamp = utc_stamp()
    command = " ".join([".venv/bin/python", "benchmarks/vae_digits.py", *args.argv])
    return "\n".join(
        [
            "# vae_digits: generated vs hand-written Keras VAE",
            "",
            f"`{command}` ({stamp})",
            "",
            *table,
            "",
            "How it was measured:",
            "",
            f"- Both models see the same data arrays and batches, seeds and initial weights, "
            f"and train {args.epochs} epochs of batch {BATCH_SIZE} with `model.fit`, "
            f"{gen[0].steps_per_call} vs {ref[0].steps_per_call} training steps per compiled "
            "call (the reference compiles with the `steps_per_execution` the generated "
            "project's `auto` chooses for this budget); KL warm-up "
            + (f"over {warmup_epochs} epochs in both." if warmup_epochs else "off in both.")
            + f" The two trainings alternate every {args.chunk_epochs or args.epochs} epochs "
            "(fit resumed with initial_epoch; the order flips every chunk); "
            f"{args.rounds} round(s), round r seeding with {SEED} + r - 1.",
            "- steps/s: training steps per epoch / median epoch wall time; the first epoch of "
            f"each fit call (tracing, set-up) is not timed ({gen[0].speed.timed_steps} timed "
            "steps per training); median over rounds. Paired check: after training, each "
            f"round times the two compiled train functions in {PAIRED_BLOCKS} alternating "
            f"blocks of {PAIRED_STEPS} training steps (median block, time / steps run). "
            "CPU time: this process, all threads, "
            "median epoch.",
            f"- {nll_name}: IWAE bound with k={args.importance_samples} on the {gen[0].n_val} "
            "held-out examples; ELBO: one posterior sample; nats per example, mean ± sd over "
            "rounds.",
            f"- {machine_line()}; load average {load} at "
            "the end (a shared machine moves absolute rates: compare ratios).",
            "",
            "## Per round",
            "",
            *detail,
            "",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    spec = load_spec(SPEC).spec
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs", type=int, default=None, help=f"per training (default {spec.training.epochs})"
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--importance-samples",
        type=int,
        default=None,
        help=f"IWAE k (default {spec.evaluation.importance_samples})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke check: 4 epochs, 2 rounds, k=100"
    )
    parser.add_argument(
        "--chunk-epochs",
        type=int,
        default=None,
        help="alternate the two trainings every N epochs (default 5; 0 = one fit each)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="no KL warm-up in either model")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time train_step variants and training.fit's callbacks",
    )
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.epochs = args.epochs or (4 if args.quick else spec.training.epochs)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.importance_samples = args.importance_samples or (
        100 if args.quick else spec.evaluation.importance_samples
    )
    if args.chunk_epochs is None:
        args.chunk_epochs = 2 if args.quick else 5
    if args.epochs < 2 or args.chunk_epochs == 1 or args.chunk_epochs < 0:
        parser.error(
            "--epochs and --chunk-epochs must be >= 2 (each fit's first epoch is not timed)"
        )
    if args.output is None:
        args.output = RESULTS / ("vae_digits.quick.md" if args.quick else "vae_digits.md")
    return args


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark; returns the generated/reference steps/s ratio."""
    forget_script_folder()
    args = parse_args(argv)
    warmup_epochs = 0 if args.no_warmup else KL_WARMUP_EPOCHS
    overrides = ["model.losses.kl.warmup_epochs=0"] if args.no_warmup else []
    k = args.importance_samples
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="bench-vae-digits-") as tmp:
        gen = build_generated(Path(tmp) / "vae_digits", overrides)
        check_parity(gen, warmup_epochs)
        for rnd in range(args.rounds):
            seed = SEED + rnd
            contenders = [
                generated_contender(gen, seed, args.epochs),
                reference_contender(gen, seed, args.epochs, warmup_epochs),
            ]
            train_interleaved(contenders, args.epochs, args.chunk_epochs, flip=rnd)
            round_trials = [score(c, rnd, seed, k) for c in contenders]
            runners = {c.name: step_runner(c.model, c.data) for c in contenders}
            times, _ = paired_blocks(runners, PAIRED_BLOCKS, PAIRED_STEPS, warmup=50)
            for trial in round_trials:
                trial.step_ms = 1e3 * statistics.median(times[trial.name])
                trial.steps_per_call = runners[trial.name].steps_per_call
                trials.append(trial)
                print(
                    f"round {rnd + 1}/{args.rounds} {trial.name:9s} "
                    f"{trial.speed.steps_per_second:7.1f} steps/s  paired "
                    f"{trial.step_ms:.3f} ms/step  NLL {trial.iwae_nll:.3f}  "
                    f"ELBO {trial.elbo:.3f}",
                    flush=True,
                )
            del contenders, runners
        if len({t.x_val_sha for t in trials}) != 1:
            raise SystemExit("the two models were scored on different held-out data")
        doc = render(trials, args, warmup_epochs)
        if args.profile:
            print("profiling: compiled train steps ...", flush=True)
            steps = step_costs(gen, args.epochs, blocks=40, steps=200)
            print("profiling: training.fit ...", flush=True)
            fits = fit_costs(gen, args.epochs, args.rounds)
            doc += "\n".join(["", "## Profile", "", *steps, "", *fits, ""])
    write_result(args.output, doc)
    gen_rate = statistics.median(t.speed.steps_per_second for t in trials if t.name == "generated")
    ref_rate = statistics.median(t.speed.steps_per_second for t in trials if t.name == "reference")
    return gen_rate / ref_rate


if __name__ == "__main__":
    main()
