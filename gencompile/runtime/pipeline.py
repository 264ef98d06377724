"""The pieces every source's `tf.data` pipeline is made of, loaded or streamed.

`Settings` (the resolved data config, read once), the seeded split (`split_indices`), the
resumable per-epoch stream (`epoch_stream`: epoch e's order depends only on (seed, e)),
seeded augmentation (`augmenter`), the data fingerprint, the feature names, and the
`DataBundle` that `load_data` hands generated training code. `data.py` loads data in
memory; `streaming.py`, `records.py` and `text_data.py` build the same bundle their way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.datafiles import held_out_count
from gencompile.errors import RunError
from gencompile.runtime.preprocessing import Preprocessor
from gencompile.runtime.sources import column_names, config_value

__all__ = [
    "DataBundle",
    "Settings",
    "array_prefix",
    "augmenter",
    "epoch_stream",
    "feature_names",
    "fingerprint",
    "finish_fingerprint",
    "split_indices",
]

# Keys that say where data lives (a file, a folder, a glob of shards), not what it is: left
# out of the fingerprint so that the same bytes read from another directory (another
# machine, `reproduce`) hash the same; `cache` says how data is held, not what it is:
# streamed or loaded, the bytes hash the same.
_UNHASHED_KEYS = ("path", "dir", "files", "cache")
_FINGERPRINT_VERSION = b"gencompile-data-v1"


_AUGMENTATIONS: dict[str, type[keras.layers.Layer]] = {
    "random_flip": keras.layers.RandomFlip,
    "random_rotation": keras.layers.RandomRotation,
    "random_translation": keras.layers.RandomTranslation,
    "random_zoom": keras.layers.RandomZoom,
    "random_contrast": keras.layers.RandomContrast,
    "random_brightness": keras.layers.RandomBrightness,
}
# Layers that clip to a value range; keras assumes [0, 255] unless told the data's range.
_VALUE_RANGE_LAYERS = ("random_contrast", "random_brightness")


def _augmentation_layers(
    entries: list[dict], seed: int, value_range: tuple[float, float]
) -> list[keras.layers.Layer]:
    """Build seeded keras preprocessing layers; each gets its own seed derived from `seed`."""
    layers = []
    for i, entry in enumerate(entries):
        where = f"data.augmentation[{i}]"
        kind = config_value(entry, "type", where)
        if kind not in _AUGMENTATIONS:
            raise RunError(
                f"unknown augmentation {kind!r} ({where}.type); "
                f"available: {', '.join(sorted(_AUGMENTATIONS))}"
            )
        kwargs = {k: v for k, v in entry.items() if k != "type"}
        if kind in _VALUE_RANGE_LAYERS:
            kwargs.setdefault("value_range", value_range)
        kwargs["seed"] = int(np.random.SeedSequence([seed, i]).generate_state(1)[0] % (2**31 - 1))
        try:
            layers.append(_AUGMENTATIONS[kind](**kwargs, name=f"augment_{i}_{kind}"))
        except (TypeError, ValueError) as exc:
            raise RunError(f"{where} ({kind}): invalid arguments {entry}: {exc}") from exc
    return layers


# --------------------------------------------------------------------------- bundle


@dataclass
class DataBundle:
    """Everything generated training code needs from the data, prepared once."""

    train: tf.data.Dataset  # one epoch (epoch 0's order)
    epochs: Callable[..., tf.data.Dataset]  # epochs(first, last, steps=None): resumable stream
    batch_size: int  # the global batch (split between the replicas under a strategy)
    steps_per_epoch: int
    validation: tf.data.Dataset | None
    x_train: np.ndarray
    x_val: np.ndarray
    y_train: np.ndarray | None
    y_val: np.ndarray | None
    element_shape: tuple[int, ...]
    num_classes: int | None
    kind: str
    preprocessor: Preprocessor
    fingerprint: str
    source: dict[str, Any]  # the resolved source config (names the data set, its arguments)
    text: Any = None  # text data: a `runtime.text_data.TextData` (tokenizer, held-out text)
    # Names of the flattened features in order: a CSV's columns, else x0..x{d-1}.
    feature_names: tuple[str, ...] = ()
    # Known generative factors of the held-out examples (a built-in such as shapes2d):
    # int indices, one column per name in `factor_names`; None when the data has none.
    factors_val: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()


def _fingerprint_config(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _fingerprint_config(v) for k, v in config.items() if k not in _UNHASHED_KEYS}
    if isinstance(config, (list, tuple)):
        return [_fingerprint_config(v) for v in config]
    return config


def fingerprint(x: np.ndarray, y: np.ndarray | None, config: dict) -> str:
    """sha256 over the raw arrays (dtype, shape, bytes) and the data config.

    File locations (`path`, `dir`) are left out: the bytes already identify the data, and a
    moved data folder must not change the fingerprint that `reproduce` checks.
    """
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    for array in (x, y):
        if array is None:
            digest.update(b"|none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(array_prefix(array.dtype, array.shape))
        digest.update(memoryview(array).cast("B"))
    return finish_fingerprint(digest, config)


def array_prefix(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """What the fingerprint hashes before an array's bytes: its dtype and shape."""
    return f"|{np.dtype(dtype).str}{tuple(shape)}|".encode()


def finish_fingerprint(digest: Any, config: dict) -> str:
    """Add the data config to a fingerprint's digest (arrays already hashed) and close it."""
    text = json.dumps(_fingerprint_config(config), sort_keys=True, default=str)
    digest.update(text.encode())
    return digest.hexdigest()


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded permutation: the first round(n * fraction) indices are held out."""
    if not 0.0 <= fraction < 1.0:
        raise RunError(f"data.validation_split must be in [0, 1), got {fraction}")
    n_val = held_out_count(n, fraction)
    if n_val >= n:
        raise RunError(
            f"data.validation_split={fraction} leaves no training examples out of {n}; "
            "lower it or use more data"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def epoch_stream(
    tensors: Any,
    count: int,
    batch_size: int,
    seed: int,
    first: int,
    last: int,
    steps: int | None = None,
    drop_remainder: bool = False,
    augment_batch: Callable[..., Any] | None = None,
) -> tf.data.Dataset:
    """Batches of `tensors` (a tensor or a tuple of them, or a function from a batch of
    indices to the batch, for data read from a file) for epochs first..last-1.

    Epoch e's order depends only on (seed, e), so a run resumed at epoch e sees exactly the
    batches an uninterrupted run sees. With `steps`, each epoch is exactly that many batches
    of a repeated epoch.
    """

    # The index functions are traced as written, without AutoGraph (their branches are on
    # Python values): converting them took most of their tracing, ~0.2 s a run.
    @tf.autograph.experimental.do_not_convert
    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        # A stateless permutation: no global-seed state, so it is the same in any process.
        order = tf.random.experimental.index_shuffle(
            tf.range(count, dtype=tf.int64),
            seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
            max_index=count - 1,
        )
        if steps is not None:  # `steps` full batches of the permutation repeated end to end
            order = tf.tile(order, [-(-steps * batch_size // count)])
            end = steps * batch_size
        else:
            end = count - batch_size + 1 if drop_remainder else count
        # Slice whole batches off the permutation: one dataset element per batch, not per
        # example (element by element, batching 400000 indices took 0.15 s of CPU an epoch).
        full = steps is not None or drop_remainder  # then the batch size is static

        @tf.autograph.experimental.do_not_convert
        def batch(start: tf.Tensor) -> Any:
            indices = order[start : start + batch_size]
            indices = tf.ensure_shape(indices, [batch_size]) if full else indices
            # Augmented: the batch's key (epoch, start) seeds its draws, as (seed, e) its order.
            return indices if augment_batch is None else (indices, tf.stack([epoch, start]))

        return tf.data.Dataset.range(0, max(end, 0), batch_size).map(batch)

    def gather(indices: tf.Tensor):
        if callable(tensors):
            return tensors(indices)
        return tf.nest.map_structure(lambda t: tf.gather(t, indices), tensors)

    stream = tf.data.Dataset.range(first, last).flat_map(one_epoch)
    # A file reader (`tensors` callable) is traced as it was written to be, with AutoGraph.
    take = gather if callable(tensors) else tf.autograph.experimental.do_not_convert(gather)
    if augment_batch is None:
        stream = stream.map(take, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        stream = stream.map(lambda i, key: (take(i), key), num_parallel_calls=tf.data.AUTOTUNE)
        stream = stream.map(
            lambda batch, key: augment_batch(*tf.nest.flatten(batch), key=key),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return stream.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class Settings:
    """The data config's settings, read and checked once."""

    source: dict[str, Any]
    fraction: float
    scale: Any
    standardize: bool
    augmentation: list[dict]
    batch_size: int
    with_labels: bool
    drop_remainder: bool
    cache: str

    @classmethod
    def read(cls, config: dict) -> Settings:
        preprocessing = config_value(config, "preprocessing", "data")
        settings = cls(
            source=config_value(config, "source", "data"),
            fraction=float(config_value(config, "validation_split", "data")),
            scale=config_value(preprocessing, "scale", "data.preprocessing"),
            standardize=bool(config_value(preprocessing, "standardize", "data.preprocessing")),
            augmentation=config_value(config, "augmentation", "data") or [],
            batch_size=int(config_value(config, "batch_size", "data")),
            with_labels=bool(config_value(config, "with_labels", "data")),
            drop_remainder=bool(config_value(config, "drop_remainder", "data")),
            # Projects built before `data.cache` existed hold no such key: they meant auto.
            cache=str(config.get("cache", "auto")),
        )
        shuffle_buffer = int(config_value(config, "shuffle_buffer", "data"))
        if settings.batch_size < 1 or shuffle_buffer < 1:
            raise RunError(
                f"data.batch_size and data.shuffle_buffer must be >= 1, "
                f"got {settings.batch_size} and {shuffle_buffer}"
            )
        return settings

    def check(self, kind: str, element_shape: tuple[int, ...], has_labels: bool) -> None:
        """Refuse settings the data cannot honour (labels it lacks, augmenting vectors)."""
        if self.with_labels and not has_labels:
            raise RunError(
                f"data.with_labels is set but the {self.source.get('type')} source has no "
                "labels; use a source with labels (class folders, npz `labels`, csv or "
                "parquet `label_column`)"
            )
        if self.augmentation and kind != "image":
            raise RunError(
                f"data.augmentation applies to images only, but this data holds vectors of "
                f"shape {element_shape}; remove the augmentation entries"
            )

    def check_training_size(self, count: int) -> None:
        if self.drop_remainder and count < self.batch_size:
            raise RunError(
                f"data.drop_remainder is set but the training split holds {count} examples, "
                f"fewer than data.batch_size={self.batch_size}: every batch would be dropped; "
                "lower the batch size or turn drop_remainder off"
            )

    def steps_per_epoch(self, count: int) -> int:
        if self.drop_remainder:
            return count // self.batch_size
        return -(-count // self.batch_size)


def augmenter(
    settings: Settings, seed: int, value_range: tuple[float, float]
) -> Callable[..., Any] | None:
    """The batch map that augments images (and passes labels through), or None."""
    if not settings.augmentation:
        return None
    if settings.scale is not None and not settings.standardize:
        value_range = tuple(float(v) for v in settings.scale)
    layers = _augmentation_layers(settings.augmentation, seed, value_range)

    def augment(images: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """`key` (epoch and the batch's start or number: `epoch_stream`, a tfrecord
        stream): draws that depend on it alone, so a resumed run augments as an
        uninterrupted one."""
        for layer in layers:
            seeds = _BatchSeeds(tf.stack([tf.constant(layer.seed, tf.int64), *tf.unstack(key)]))
            transformation = layer.get_random_transformation(images, training=True, seed=seeds)
            images = layer.transform_images(images, transformation, training=True)
        return images

    if settings.with_labels:
        return lambda xb, yb, key: (augment(xb, key), yb)
    return augment


class _BatchSeeds(keras.random.SeedGenerator):
    """The seeds one batch's augmentation layer draws: stateless, from the batch's key, one
    per draw (Keras calls `next` for each), with no state variable (none can be made in a
    tf.data map), so they depend on the key alone."""

    def __init__(self, key: tf.Tensor):  # no SeedGenerator.__init__: its state variable
        self._key = key
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._draws += 1  # counted as the map is traced: the same for every batch
        folded = tf.random.experimental.stateless_fold_in(self._key[:2], self._key[2])
        return tf.random.experimental.stateless_fold_in(folded, self._draws)


def feature_names(source: dict, element_shape: tuple[int, ...]) -> tuple[str, ...]:
    """The names of a data set's flattened features, in order: a CSV source's columns;
    x0, x1, ... for sources without names (builtins, arrays, images)."""
    count = int(np.prod(element_shape))
    named = column_names(source)
    if named is not None and len(named) == count:
        return tuple(named)
    return tuple(f"x{i}" for i in range(count))
