"""A GAN on eight Gaussians on the unit circle, written by hand (keras.io wgan_gp.py style).

The same model, data and budget as `specs/gan_ring8.yaml`: 50,000 points of the ring of
eight modes (std 0.01) drawn with seed 42, a seeded 10 % held out, standardized with the
training split's statistics; generator 256-256-256 relu from a 2-D normal latent,
discriminator 256-256-256 leaky relu, non-saturating loss, R1 penalty (weight 1), Adam 2e-4
(beta_1 0.5) for each, batches of 256, samples from a 0.999 EMA of the generator. Scores
2500 samples: mode coverage (modes with a sample within 3 std) and the energy distance to
the held-out split in data units; keeps the weights and a scatter plot; prints one JSON line.

    python benchmarks/handwritten/gan_ring8.py [--epochs 40] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops
from scipy.spatial.distance import cdist

SEED = 42
LATENT_DIM = 2
HIDDEN = (256, 256, 256)
BATCH_SIZE = 256
R1_WEIGHT = 1.0
EMA_DECAY = 0.999
NUM_SAMPLES = 2500
STD = 0.01
ANGLES = 2.0 * np.pi * np.arange(8) / 8.0
CENTERS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], 1).astype(np.float32)


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, held-out) standardized, and the training mean and std to undo it."""
    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, 8, size=50_000)
    x = (CENTERS[labels] + STD * rng.standard_normal((50_000, 2))).astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_val = math.floor(len(x) * 0.1 + 0.5)
    x_train, x_val = x[order[n_val:]], x[order[:n_val]]
    mean, std = x_train.astype(np.float64).mean(0), x_train.astype(np.float64).std(0)
    scale = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return scale(x_train), scale(x_val), mean, std


def build_generator() -> keras.Model:
    noise = keras.Input(shape=(LATENT_DIM,))
    x = noise
    for units in HIDDEN:
        x = layers.Dense(units, activation="relu")(x)
    return keras.Model(noise, layers.Dense(2)(x), name="generator")


def build_discriminator() -> keras.Model:
    points = keras.Input(shape=(2,))
    x = points
    for units in HIDDEN:
        x = layers.Dense(units, activation="leaky_relu")(x)
    return keras.Model(points, layers.Dense(1)(x), name="discriminator")


class GAN(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = build_generator()
        self.discriminator = build_discriminator()
        self.ema_generator = build_generator()
        self.ema_generator.set_weights(self.generator.get_weights())
        self.seed_generator = keras.random.SeedGenerator(SEED)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def r1_penalty(self, real):
        with tf.GradientTape() as tape:
            tape.watch(real)
            logits = self.discriminator(real, training=True)
        grads = tape.gradient(logits, real)
        return 0.5 * ops.mean(ops.sum(ops.square(grads), axis=1))

    def train_step(self, real):
        batch_size = ops.shape(real)[0]
        noise = keras.random.normal((batch_size, LATENT_DIM), seed=self.seed_generator)
        fake = self.generator(noise, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
            d_total = d_loss + R1_WEIGHT * self.r1_penalty(real)
        grads = tape.gradient(d_total, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )

        noise = keras.random.normal((batch_size, LATENT_DIM), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(self.generator(noise, training=True), training=True)
            g_loss = ops.mean(ops.softplus(-fake_logits))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        step = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(EMA_DECAY, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * weight)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|), all pairs (V-statistics)."""
    mean = lambda a, b: cdist(a, b).mean()  # noqa: E731
    return math.sqrt(max(2 * mean(x, y) - mean(x, x) - mean(y, y), 0.0))


def mode_coverage(samples: np.ndarray) -> tuple[int, float]:
    """(modes with a high-quality sample, fraction of samples within 3 std of a mode)."""
    distances = cdist(samples, CENTERS)
    nearest = distances.argmin(1)
    good = distances[np.arange(len(samples)), nearest] <= 3.0 * STD
    return len(set(nearest[good].tolist())), float(good.mean())


def save_samples(samples: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(samples[:, 0], samples[:, 1], s=2)
    axes.set_aspect("equal")
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/gan_ring8"))
    args = parser.parse_args()
    start = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    x_train, x_val, mean, std = load_split()
    dataset = (
        tf.data.Dataset.from_tensor_slices(x_train)
        .shuffle(len(x_train), seed=SEED)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    gan = GAN()
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    )
    gan.fit(dataset, epochs=args.epochs, verbose=0)
    trained = time.perf_counter()
    noise = keras.random.normal((NUM_SAMPLES, LATENT_DIM), seed=SEED)
    samples = ops.convert_to_numpy(gan.ema_generator(noise)) * std + mean
    modes, high_quality = mode_coverage(samples)
    metrics = {
        "modes_captured": modes,
        "high_quality": high_quality,
        "energy_distance": energy_distance(x_val * std + mean, samples),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    gan.ema_generator.save_weights(args.output / "generator.weights.h5")
    gan.discriminator.save_weights(args.output / "discriminator.weights.h5")
    save_samples(samples, args.output / "samples.png")
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "gan", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
