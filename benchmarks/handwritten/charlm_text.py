"""A character-level LSTM language model of a text file, written by hand (keras.io style).

The same model, data and budget as `specs/charlm_text.yaml`: the last 10 % of the text held
out, a vocabulary of `<unk>` then the training text's characters (sorted), windows of 129
characters with stride 128; Embedding(64) -> LSTM(256) -> Dense(vocab) with Keras's
zero output bias (gencompile starts it at the training text's log unigram frequencies),
next-character cross-entropy, Adam 2e-3 (clipnorm 1), batches of 64. Scores the held-out
perplexity and bits per character over every predicted character of the held-out windows;
keeps the weights and 4 samples of 300 characters (temperature 0.8, top-p 0.95); prints one
JSON line.

    python benchmarks/handwritten/charlm_text.py --text corpus.txt [--epochs 20] [--output DIR]
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

SEED = 42
CONTEXT_LENGTH = 128
BATCH_SIZE = 64
SAMPLES, SAMPLE_LENGTH, TEMPERATURE, TOP_P = 4, 300, 0.8, 0.95


def windows(ids: np.ndarray) -> np.ndarray:
    """(n, CONTEXT_LENGTH + 1) windows with stride CONTEXT_LENGTH."""
    count = (len(ids) - 1) // CONTEXT_LENGTH
    starts = np.arange(count)[:, None] * CONTEXT_LENGTH
    return ids[starts + np.arange(CONTEXT_LENGTH + 1)].astype(np.int32)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    text = path.read_text(encoding="utf-8")
    cut = len(text) - round(len(text) * 0.1)
    train_text, held_out = text[:cut], text[cut:]
    vocabulary = ["<unk>", *sorted(set(train_text))]
    index = {c: i for i, c in enumerate(vocabulary)}
    encode = lambda s: np.array([index.get(c, 0) for c in s], dtype=np.int32)  # noqa: E731
    return windows(encode(train_text)), windows(encode(held_out)), vocabulary


def build_network(vocab_size: int) -> keras.Model:
    tokens = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(vocab_size, 64)(tokens)
    x = layers.LSTM(256, return_sequences=True)(x)
    return keras.Model(tokens, layers.Dense(vocab_size)(x), name="char_lstm")


class CharLSTM(keras.Model):
    def __init__(self, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.network = build_network(vocab_size)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def token_nll(self, window):
        logits = self.network(window[:, :-1])
        return ops.sparse_categorical_crossentropy(window[:, 1:], logits, from_logits=True)

    def train_step(self, window):
        with tf.GradientTape() as tape:
            loss = ops.mean(self.token_nll(window))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def held_out_nll(model: CharLSTM, x_val: np.ndarray) -> tuple[float, int]:
    """(summed nats of every predicted held-out character, how many)."""
    summed = tf.function(lambda w: tf.reduce_sum(tf.cast(model.token_nll(w), tf.float64)))
    total = sum(float(summed(tf.constant(x_val[s : s + 256]))) for s in range(0, len(x_val), 256))
    return total, x_val.shape[0] * (x_val.shape[1] - 1)


def sample_text(model: CharLSTM, vocabulary: list[str]) -> list[str]:
    """Nucleus sampling from a newline, re-reading the last CONTEXT_LENGTH characters."""
    generator = tf.random.Generator.from_seed(SEED)

    @tf.function(reduce_retracing=True)
    def next_token(context):
        logits = model.network(context)[:, -1] / TEMPERATURE
        order = tf.argsort(logits, direction="DESCENDING", axis=-1)
        sorted_logits = tf.gather(logits, order, batch_dims=1)
        cumulative = tf.cumsum(tf.nn.softmax(sorted_logits), axis=-1, exclusive=True)
        sorted_logits = tf.where(cumulative < TOP_P, sorted_logits, -1e9)
        choice = tf.random.stateless_categorical(sorted_logits, 1, generator.make_seeds()[:, 0])
        return tf.gather(order, choice, batch_dims=1)

    tokens = np.full((SAMPLES, 1), vocabulary.index("\n"), dtype=np.int32)
    for _ in range(SAMPLE_LENGTH):
        chosen = next_token(tf.constant(tokens[:, -CONTEXT_LENGTH:])).numpy()
        tokens = np.concatenate([tokens, chosen.astype(np.int32)], axis=1)
    return ["".join(vocabulary[t] for t in row[1:]) for row in tokens]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=Path("/work/shared/data/tinyshakespeare.txt"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("handwritten_runs/charlm_text"))
    args = parser.parse_args()
    start = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    x_train, x_val, vocabulary = load_split(args.text)
    dataset = (
        tf.data.Dataset.from_tensor_slices(x_train)
        .shuffle(len(x_train), seed=SEED)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = CharLSTM(len(vocabulary))
    model.compile(optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0))
    model.fit(dataset, epochs=args.epochs, verbose=0)
    trained = time.perf_counter()
    total, count = held_out_nll(model, x_val)
    metrics = {
        "perplexity": math.exp(total / count),
        "bits_per_char": total / (count * math.log(2)),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    model.network.save_weights(args.output / "char_lstm.weights.h5")
    (args.output / "samples.txt").write_text("\n\n---\n\n".join(sample_text(model, vocabulary)))
    times = {"train_s": trained - start, "total_s": time.perf_counter() - start}
    print(json.dumps({"family": "charlm", "epochs": args.epochs, **metrics, **times}))


if __name__ == "__main__":
    main()
