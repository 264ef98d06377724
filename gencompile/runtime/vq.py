"""Vector quantization for generated VQ-VAEs (van den Oord et al. 2017).

- `VectorQuantizer`: the codebook as a Keras layer: nearest codes, their vectors, and, for
  a codebook learned by moving averages, the EMA update (appendix A.1);
- `ema_update`: that update as a pure function (counts, sums, codebook), tested by hand;
  `assignment_statistics` and `ema_step` are its two halves, so that under a distribution
  strategy the batch's counts and sums can be summed over the replicas in between;
- `code_statistics`: the perplexity of the codes a batch uses, and the share of the
  codebook it uses (a codebook collapsing onto few codes shows here first), over the
  global batch under a strategy;
- `fit_prior`: stage 2 of a VQ-VAE's training: the codes of the training images, then the
  prior's own `fit` on them, its epochs written to `prior_history.csv`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gencompile.errors import RunError
from gencompile.runtime import callbacks as cb
from gencompile.runtime import cluster, replicas
from gencompile.runtime.compiled import compiled
from gencompile.runtime.final_files import final_folder
from gencompile.runtime.pipeline import epoch_stream
from gencompile.runtime.replica_batches import skipped_last_batch, without_batches_of
from gencompile.runtime.splits import batches, head

ENCODE_BATCH = 512
INIT_EXAMPLES = 1024  # training images whose encoder outputs the codebook starts from
PRIOR_HISTORY = "prior_history.csv"


def ema_update(
    counts: Any, sums: Any, z_e: Any, one_hot: Any, decay: float, epsilon: float
) -> tuple[Any, Any, Any]:
    """One step of the moving-average codebook: (counts, sums, codebook) after a batch.

    N_k <- decay N_k + (1 - decay) n_k, where n_k counts the vectors assigned to code k;
    m_k <- decay m_k + (1 - decay) sum of those vectors; e_k = m_k / N~_k, with N~ the
    counts Laplace-smoothed by `epsilon` so that an unused code never divides by zero.
    z_e: (n, D) vectors, one_hot: (n, K) their assignments.
    """
    batch_counts, batch_sums = assignment_statistics(z_e, one_hot)
    return ema_step(counts, sums, batch_counts, batch_sums, decay, epsilon)


def assignment_statistics(z_e: Any, one_hot: Any) -> tuple[Any, Any]:
    """(n_k, sum of the vectors assigned to code k) of a batch: z_e (n, D), one_hot (n, K).
    Both are sums over the batch, so slices' statistics add up to the whole batch's."""
    return ops.sum(one_hot, axis=0), ops.matmul(ops.transpose(one_hot), z_e)


def ema_step(
    counts: Any, sums: Any, batch_counts: Any, batch_sums: Any, decay: float, epsilon: float
) -> tuple[Any, Any, Any]:
    """`ema_update` from a batch's `assignment_statistics`: (counts, sums, codebook)."""
    counts = decay * counts + (1.0 - decay) * batch_counts
    sums = decay * sums + (1.0 - decay) * batch_sums
    total = ops.sum(counts)
    codes = ops.cast(ops.shape(counts)[0], counts.dtype)
    smoothed = (counts + epsilon) / (total + codes * epsilon) * total
    return counts, sums, sums / smoothed[:, None]


def code_statistics(codes: Any, codebook_size: int) -> tuple[Any, Any]:
    """(perplexity, usage) of a batch of code indices: exp of the entropy of the codes'
    frequencies (K when all are used equally, 1 when one code takes all), and the share
    of the codebook used at least once. Under a distribution strategy, of the global batch:
    every replica returns the same two numbers."""
    one_hot = ops.one_hot(ops.reshape(codes, (-1,)), codebook_size)
    # Counts summed over the replicas under a strategy: the global batch's frequencies.
    counts = replicas.sum_over_replicas(ops.sum(one_hot, axis=0))
    frequencies = counts / ops.maximum(ops.sum(counts), 1.0)
    entropy = -ops.sum(frequencies * ops.log(frequencies + 1e-10))
    usage = ops.mean(ops.cast(frequencies > 0, "float32"))
    return ops.exp(entropy), usage


@keras.saving.register_keras_serializable(package="gencompile")
class VectorQuantizer(keras.layers.Layer):
    """A codebook of `codebook_size` vectors of size `embedding_dim`.

    `nearest_codes` maps vectors (..., D) to the index of their nearest code (Euclidean),
    `lookup` indices to code vectors. With `ema=True` the codebook is not trained by
    gradients: `ema_update` moves it after each step (counts start at one per code, sums
    at the initial codes, so the first update starts from the initial codebook).
    """

    def __init__(
        self,
        codebook_size: int,
        embedding_dim: int,
        ema: bool = False,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2. Received: codebook_size={codebook_size}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1). Received: decay={decay}")
        self.codebook_size, self.embedding_dim = int(codebook_size), int(embedding_dim)
        self.ema, self.decay, self.epsilon = bool(ema), float(decay), float(epsilon)
        # Uniform in +-1/K, as van den Oord et al.'s reference code starts its codebook.
        limit = 1.0 / self.codebook_size
        self.codebook = self.add_weight(
            shape=(self.codebook_size, self.embedding_dim),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            trainable=not self.ema,
            name="codebook",
        )
        if self.ema:
            self.ema_counts = self.add_weight(
                shape=(self.codebook_size,), initializer="ones", trainable=False, name="ema_counts"
            )
            self.ema_sums = self.add_weight(
                shape=(self.codebook_size, self.embedding_dim),
                initializer="zeros",
                trainable=False,
                name="ema_sums",
            )
            self.ema_sums.assign(self.codebook)
        self.built = True

    def nearest_codes(self, z_e):
        """Index of the nearest code of each vector: (..., D) -> (...), int32."""
        flat = ops.reshape(z_e, (-1, self.embedding_dim))
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, without the (n, K, D) difference tensor.
        distances = (
            ops.sum(ops.square(flat), axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat, ops.transpose(self.codebook))
            + ops.sum(ops.square(self.codebook), axis=1)[None, :]
        )
        codes = ops.cast(ops.argmin(distances, axis=1), "int32")
        return ops.reshape(codes, ops.shape(z_e)[:-1])

    def lookup(self, codes):
        """The code vectors of indices (...) -> (..., D)."""
        return ops.take(self.codebook, codes, axis=0)

    def call(self, z_e):
        """Nearest codes and their vectors (no gradient: see the model's straight-through)."""
        codes = self.nearest_codes(z_e)
        return codes, self.lookup(codes)

    def set_codebook(self, vectors: Any) -> None:
        """Replace the codes (K, D); a moving-average codebook restarts its averages there."""
        self.codebook.assign(vectors)
        if self.ema:
            self.ema_counts.assign(ops.ones_like(self.ema_counts))
            self.ema_sums.assign(vectors)

    def update_codebook(self, z_e, codes) -> None:
        """The EMA step for a batch of encoder outputs and their codes (one replica)."""
        self.apply_assignments(*self.assignments(z_e, codes))

    def assignments(self, z_e, codes) -> tuple[Any, Any]:
        """Each code's count of the vectors assigned to it, and their sum: (K,), (K, D)."""
        flat = ops.reshape(ops.cast(z_e, "float32"), (-1, self.embedding_dim))
        one_hot = ops.one_hot(ops.reshape(codes, (-1,)), self.codebook_size)
        return assignment_statistics(flat, one_hot)

    def apply_assignments(self, batch_counts, batch_sums) -> None:
        """The EMA step from a batch's `assignments`. Under a distribution strategy, pass
        them summed over the replicas: every replica then computes the same new codebook,
        which is assigned once, as a cross-replica update."""
        if not self.ema:
            raise ValueError("the EMA step is for a codebook learned by moving averages")
        updated = ema_step(
            self.ema_counts, self.ema_sums, batch_counts, batch_sums, self.decay, self.epsilon
        )
        replicas.assign([self.ema_counts, self.ema_sums, self.codebook], updated)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1], input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "codebook_size": self.codebook_size,
            "embedding_dim": self.embedding_dim,
            "ema": self.ema,
            "decay": self.decay,
            "epsilon": self.epsilon,
        }


def initialize_codebook(model: keras.Model, data: Any, seed: int) -> None:
    """Start the codebook at encoder outputs of training images, drawn without replacement
    (seeded): every code starts where the encoder puts vectors, whereas a small random
    codebook leaves most codes nearest to none of them, never to move again."""
    x = head(data.x_train, INIT_EXAMPLES)
    z_e = np.asarray(model.encoder(x, training=False), np.float32)
    vectors = z_e.reshape(-1, model.quantizer.embedding_dim)
    size = model.quantizer.codebook_size
    rng = np.random.default_rng(seed)
    model.quantizer.set_codebook(
        vectors[rng.choice(len(vectors), size, replace=len(vectors) < size)]
    )


# --------------------------------------------------------------------------- stage 2


UNTRAINED_PRIOR = (
    "this VQ-VAE's prior over its codes has not been trained, so it cannot draw samples "
    "(its weights come from before stage 2, e.g. a checkpoint of the VQ-VAE's epochs): "
    "finish the run with `gencompile train --resume`, or train it again; reconstructions "
    "need no prior"
)


def require_trained_prior(prior_epochs: Any) -> None:
    """Refuse to sample before the prior over the codes has been fitted: a RunError when
    called eagerly, a failing assertion inside a graph (an exported sampler)."""
    if not tf.executing_eagerly():
        tf.debugging.assert_positive(prior_epochs, message=UNTRAINED_PRIOR)
        return
    if int(keras.ops.convert_to_numpy(prior_epochs)) == 0:
        raise RunError(UNTRAINED_PRIOR)


def codes_of(model: keras.Model, x: Any, batch_size: int = ENCODE_BATCH) -> np.ndarray:
    """The code grid of every row of split `x`: (n, height, width) int32, batch by batch."""
    encode = compiled(model, _encode_to_codes)
    parts = [encode(tf.constant(xb)).numpy() for xb in batches(x, batch_size)]
    if not parts:
        return np.zeros((0, *model.grid_shape), np.int32)
    return np.concatenate(parts).astype(np.int32)


def _encode_to_codes(model: keras.Model, xb: tf.Tensor) -> tf.Tensor:
    return model.encode_to_codes(xb)


def fit_prior(
    model: keras.Model,
    data: Any,
    config: dict[str, Any],
    run_dir: Path,
    quiet: bool,
    seed: int,
) -> dict[str, list[float]]:
    """Stage 2: fit `model.prior` on the codes of the training split (the VQ-VAE's weights
    untouched), validated on the held-out split's codes; returns the prior's history."""
    epochs = int(config["epochs"])
    train_codes = codes_of(model, data.x_train)
    val_codes = codes_of(model, data.x_val)
    # Epoch e's order depends only on (seed, e), as the VQ-VAE's own batches: not on how
    # many times the dataset was iterated (a distribution strategy reads a batch ahead).
    steps = -(-len(train_codes) // data.batch_size)
    train = epoch_stream(
        tf.constant(train_codes), len(train_codes), data.batch_size, seed, 0, epochs
    )
    # As the VQ-VAE's epochs: without a last batch that would leave a replica empty.
    in_sync = model.prior.distribute_strategy.num_replicas_in_sync
    skipped = skipped_last_batch(len(train_codes), steps, data.batch_size, in_sync)
    if skipped:
        train, steps = without_batches_of(train, skipped), steps - 1
    validation = (
        tf.data.Dataset.from_tensor_slices(val_codes).batch(data.batch_size)
        if len(val_codes)
        else None
    )
    prior = model.prior
    # Under the VQ-VAE's strategy (the prior's weights were made in its scope), so that the
    # optimizer's slots are mirrored too.
    with prior.distribute_strategy.scope():
        prior.compile(optimizer=keras.optimizers.Adam(float(config["learning_rate"])))
        prior.optimizer.build(prior.trainable_variables)
    guard = cb.NaNGuard(Path(run_dir) / "checkpoints")
    callbacks: list[keras.callbacks.Callback] = [
        guard,
        # A final file: a pending continuation's goes beside its project (`final_files`).
        cb.HistoryCSV(final_folder(run_dir) / PRIOR_HISTORY, 0),
    ]
    if not quiet:
        callbacks.append(cb.TrainingProgress(epochs, steps, data.batch_size))
    history = prior.fit(
        cluster.shard_by_example(train),  # each worker takes its rows of every batch
        validation_data=None if validation is None else cluster.shard_by_example(validation),
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        shuffle=False,  # the stream is shuffled per epoch, seeded
        verbose=0,
    )
    guard.raise_if_failed()
    model.prior_epochs.assign(epochs)
    return {k: [float(v) for v in values] for k, values in history.history.items()}
