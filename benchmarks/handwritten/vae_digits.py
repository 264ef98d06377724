"""A dense VAE on scikit-learn's 8x8 digits, written by hand (keras.io's vae.py style).

The same model, data and budget as `specs/vae_digits.yaml`: a seeded 10 % held-out split,
pixels min-max scaled to [0, 1], encoder 256-128, decoder 128-256, 8 latent dims, Bernoulli
pixels, L2 1e-5 on every kernel, KL weight warmed up over 5 epochs, Adam 1e-3 (clipnorm 5),
batches of 64. Scores the held-out ELBO and the IWAE bound (1000 importance samples) in nats,
keeps the weights and a picture of 64 samples, and prints one JSON line.

    python benchmarks/handwritten/vae_digits.py [--epochs 60] [--output DIR]
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
from keras import layers, ops, regularizers
from sklearn.datasets import load_digits

SEED = 42
LATENT_DIM = 8
L2 = 1e-5
BATCH_SIZE = 64
KL_WARMUP_EPOCHS = 5
IMPORTANCE_SAMPLES = 1000
LOG_2PI = math.log(2.0 * math.pi)


def load_split() -> tuple[np.ndarray, np.ndarray]:
    """The digits as (N, 8, 8, 1) in [0, 1]: a seeded permutation's first 10 % held out,
    the scale fitted on the training part."""
    x = load_digits().images[..., None].astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_val = math.floor(len(x) * 0.1 + 0.5)
    x_train, x_val = x[order[n_val:]], x[order[:n_val]]
    low, high = float(x_train.min()), float(x_train.max())
    return (x_train - low) / (high - low), (x_val - low) / (high - low)


class Sampling(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(SEED)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def dense(units: int, activation: str | None = None) -> layers.Dense:
    return layers.Dense(units, activation=activation, kernel_regularizer=regularizers.L2(L2))


def build_encoder() -> keras.Model:
    inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Flatten()(inputs)
    x = dense(256, "relu")(x)
    x = dense(128, "relu")(x)
    z_mean = dense(LATENT_DIM)(x)
    z_log_var = dense(LATENT_DIM)(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder() -> keras.Model:
    latent = keras.Input(shape=(LATENT_DIM,))
    x = dense(128, "relu")(latent)
    x = dense(256, "relu")(x)
    logits = layers.Reshape((8, 8, 1))(dense(64)(x))
    return keras.Model(latent, logits, name="decoder")


def bernoulli_nll(x, logits):
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=1)


def kl_divergence(z_mean, z_log_var):
    return ops.sum(-0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)), axis=1)


class VAE(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        self.kl_weight = keras.Variable(0.0, trainable=False, name="kl_weight")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, x):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(x, training=True)
            reconstruction = ops.mean(bernoulli_nll(x, self.decoder(z, training=True)))
            kl = ops.mean(kl_divergence(z_mean, z_log_var))
            loss = reconstruction + self.kl_weight * kl + ops.sum(self.losses)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


class KLWarmup(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(min(1.0, epoch / KL_WARMUP_EPOCHS))


def elbo(vae: VAE, x: np.ndarray) -> float:
    z_mean, z_log_var, z = vae.encoder(x, training=False)
    logits = vae.decoder(z, training=False)
    return float(np.mean(-(bernoulli_nll(x, logits) + kl_divergence(z_mean, z_log_var))))


def iwae_nll(vae: VAE, x: np.ndarray, k: int, batch: int = 16) -> float:
    """-mean log p(x), log p(x) ~= logsumexp_k [log p(x|z) + log p(z) - log q(z|x)] - log k."""
    seed = keras.random.SeedGenerator(0)

    @tf.function
    def log_px(xb):
        z_mean, z_log_var, _ = vae.encoder(xb, training=False)
        b = tf.shape(xb)[0]
        eps = keras.random.normal((k, b, LATENT_DIM), seed=seed)
        z = z_mean[None] + tf.exp(0.5 * z_log_var)[None] * eps
        logits = tf.reshape(vae.decoder(tf.reshape(z, (-1, LATENT_DIM))), (k, b, -1))
        labels = tf.broadcast_to(tf.reshape(xb, (1, b, -1)), tf.shape(logits))
        log_lik = -tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), -1
        )
        log_pz = tf.reduce_sum(-0.5 * (LOG_2PI + tf.square(z)), -1)
        log_qz = tf.reduce_sum(-0.5 * (LOG_2PI + z_log_var[None] + tf.square(eps)), -1)
        return tf.reduce_logsumexp(tf.cast(log_lik + log_pz - log_qz, tf.float64), 0)

    values = [log_px(tf.constant(x[s : s + batch])).numpy() for s in range(0, len(x), batch)]
    return float(-np.mean(np.concatenate(values)) + math.log(k))


def save_samples(vae: VAE, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = keras.random.normal((64, LATENT_DIM), seed=SEED)
    images = ops.convert_to_numpy(ops.sigmoid(vae.decoder(z)))[..., 0]
    grid = images.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(64, 64)
    plt.imsave(path, grid, cmap="gray_r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/vae_digits"))
    args = parser.parse_args()
    start = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    x_train, x_val = load_split()
    dataset = (
        tf.data.Dataset.from_tensor_slices(x_train)
        .shuffle(len(x_train), seed=SEED)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    vae = VAE()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=5.0))
    vae.fit(dataset, epochs=args.epochs, callbacks=[KLWarmup()], verbose=0)
    trained = time.perf_counter()
    metrics = {"elbo": elbo(vae, x_val), "iwae_nll": iwae_nll(vae, x_val, IMPORTANCE_SAMPLES)}
    args.output.mkdir(parents=True, exist_ok=True)
    vae.encoder.save_weights(args.output / "encoder.weights.h5")
    vae.decoder.save_weights(args.output / "decoder.weights.h5")
    save_samples(vae, args.output / "samples.png")
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "vae", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
