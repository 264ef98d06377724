"""A denoising diffusion model of the 2-D swiss roll, written by hand (keras.io ddpm.py style).

The same model, data and budget as `specs/diffusion_swissroll.yaml`: 10,000 points of the
swiss roll (noise 0.5, seed 42, coordinates x and z), a seeded 20 % held out, standardized
with the training split's statistics; 1000 timesteps of a linear beta schedule (1e-4 to
0.02), an epsilon-predicting 256-256-256 silu MLP on [x_t, 32 sinusoidal features of t],
a 0.995 EMA of its weights, Adam 1e-3 on a cosine decay with 200 warm-up steps, batches of
256, DDIM sampling (50 steps, eta 0). Scores the EMA network's held-out denoising loss
(20 timestep strata, noise seed 0) and the energy distance of 2000 samples to the held-out
split in data units; keeps the weights and a scatter plot; prints one JSON line.

    python benchmarks/handwritten/diffusion_swissroll.py [--epochs 400] [--output DIR]
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
from sklearn.datasets import make_swiss_roll

SEED = 42
TIMESTEPS = 1000
EMBEDDING_DIM = 32
EMA = 0.995
BATCH_SIZE = 256
WARMUP_STEPS = 200
SAMPLING_STEPS = 50
NUM_SAMPLES = 2000
STRATA = 20


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, held-out) standardized, and the training mean and std to undo it."""
    points, _ = make_swiss_roll(n_samples=10_000, noise=0.5, random_state=SEED)
    x = points[:, [0, 2]].astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_val = math.floor(len(x) * 0.2 + 0.5)
    x_train, x_val = x[order[n_val:]], x[order[:n_val]]
    mean, std = x_train.astype(np.float64).mean(0), x_train.astype(np.float64).std(0)
    scale = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return scale(x_train), scale(x_val), mean, std


def sinusoidal_embedding(t):
    half = EMBEDDING_DIM // 2
    frequencies = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
    angles = ops.cast(t, "float32")[:, None] * frequencies[None, :]
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def get_network() -> keras.Model:
    noisy_points = keras.Input(shape=(2,))
    timesteps = keras.Input(shape=(), dtype="int32")
    e = layers.Lambda(sinusoidal_embedding, output_shape=(EMBEDDING_DIM,))(timesteps)
    x = layers.Concatenate()([noisy_points, e])
    for _ in range(3):
        x = layers.Dense(256, activation="silu")(x)
    return keras.Model([noisy_points, timesteps], layers.Dense(2)(x))


class DiffusionModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.network = get_network()
        self.ema_network = get_network()
        self.ema_network.set_weights(self.network.get_weights())
        betas = np.linspace(1e-4, 0.02, TIMESTEPS, dtype=np.float64)
        self.alpha_bars = np.cumprod(1.0 - betas)
        self.sqrt_ab = tf.constant(np.sqrt(self.alpha_bars), tf.float32)
        self.sqrt_1m_ab = tf.constant(np.sqrt(1.0 - self.alpha_bars), tf.float32)
        self.seed_generator = keras.random.SeedGenerator(SEED)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def denoising_loss(self, network, x0, t, noise):
        x_t = (
            ops.take(self.sqrt_ab, t)[:, None] * x0 + ops.take(self.sqrt_1m_ab, t)[:, None] * noise
        )
        return ops.mean(ops.square(noise - network([x_t, t])), axis=1)

    def train_step(self, x0):
        batch_size = ops.shape(x0)[0]
        t = keras.random.randint((batch_size,), 0, TIMESTEPS, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            loss = ops.mean(self.denoising_loss(self.network, x0, t, noise))
        grads = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.network.trainable_weights, strict=True))
        step = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(EMA, (1.0 + step) / (10.0 + step))
        for weight, average in zip(self.network.weights, self.ema_network.weights, strict=True):
            average.assign(decay * average + (1.0 - decay) * weight)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def generate(self, count: int) -> np.ndarray:
        """DDIM (eta 0) over 50 evenly spaced timesteps, the noisiest first."""
        steps = np.round(np.arange(TIMESTEPS, 0, -TIMESTEPS / SAMPLING_STEPS)).astype(int) - 1

        @tf.function
        def step(x, t, alpha_bar, alpha_bar_prev):
            eps = self.ema_network([x, tf.fill([tf.shape(x)[0]], t)], training=False)
            x0 = (x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)
            return tf.sqrt(alpha_bar_prev) * x0 + tf.sqrt(1.0 - alpha_bar_prev) * eps

        x = keras.random.normal((count, 2), seed=SEED)
        for i, t in enumerate(steps):
            previous = self.alpha_bars[steps[i + 1]] if i + 1 < len(steps) else 1.0
            alpha_bars = tf.constant([self.alpha_bars[t], previous], tf.float32)
            x = step(x, tf.constant(t, tf.int32), alpha_bars[0], alpha_bars[1])
        return ops.convert_to_numpy(x)


def held_out_loss(model: DiffusionModel, x: np.ndarray) -> float:
    """The EMA network's loss at the middle of 20 timestep strata, noise seeded with 0."""
    rng = np.random.default_rng(0)
    loss = tf.function(lambda x0, t, noise: model.denoising_loss(model.ema_network, x0, t, noise))
    values = []
    for level in ((np.arange(STRATA) + 0.5) * TIMESTEPS / STRATA).astype(np.int32):
        for start in range(0, len(x), 512):
            rows = x[start : start + 512]
            noise = rng.standard_normal(rows.shape).astype(np.float32)
            t = tf.fill([len(rows)], tf.constant(level, tf.int32))
            values.append(np.asarray(loss(tf.constant(rows), t, tf.constant(noise))))
    return float(np.mean(np.concatenate(values).astype(np.float64)))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    mean = lambda a, b: cdist(a, b).mean()  # noqa: E731
    return math.sqrt(max(2 * mean(x, y) - mean(x, x) - mean(y, y), 0.0))


def save_samples(samples: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(samples[:, 0], samples[:, 1], s=2)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/diffusion"))
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
    total_steps = args.epochs * math.ceil(len(x_train) / BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total_steps - WARMUP_STEPS), warmup_target=1e-3, warmup_steps=WARMUP_STEPS
    )
    model = DiffusionModel()
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    model.fit(dataset, epochs=args.epochs, verbose=0)
    trained = time.perf_counter()
    samples = model.generate(NUM_SAMPLES) * std + mean
    metrics = {
        "denoising_loss": held_out_loss(model, x_val),
        "energy_distance": energy_distance(x_val * std + mean, samples),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    model.ema_network.save_weights(args.output / "ema_network.weights.h5")
    save_samples(samples, args.output / "samples.png")
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "diffusion", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
