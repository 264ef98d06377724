"""Data loading for generated projects: sources -> arrays -> preprocessing -> tf.data.

Generated training code calls `load_data(config, seed)` with the compiler's fully resolved
data config (every default filled in), so this module invents no defaults of its own. The
pipeline is the same for every source:

1. `load_arrays` (`runtime/sources.py`) reads raw float32 `x` (images as N,H,W,C; vectors
   as N,D) and int32 labels;
2. a seeded permutation holds out the validation split;
3. a `Preprocessor` (an affine map, so densities convert exactly) is fitted on the training
   split only and applied to both splits;
4. both splits become batched, prefetched `tf.data` pipelines; only the training one is
   shuffled and augmented (keras preprocessing layers). Epoch e is shuffled with a seed
   made of (seed, e), so a resumed run sees exactly the batches it would have seen.

Augmentation layers draw from their own seeded `SeedGenerator`s. Their order of draws is
fixed once `tf.config.experimental.enable_op_determinism()` is on (`repro.set_seed` turns it
on): tf.data then runs the stateful map in order, so two runs with one seed are identical.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.datafiles import streams
from gencompile.errors import RunError
from gencompile.runtime.sources import (
    builtin_names,
    column_names,
    config_value,
    load_arrays,
    mode_centers,
)

__all__ = [
    "DataBundle",
    "Preprocessor",
    "Settings",
    "Statistics",
    "builtin_names",
    "epoch_stream",
    "feature_names",
    "fingerprint",
    "load_arrays",
    "load_data",
    "mode_centers",
]

# Keys that say where data lives (a file, a folder, a glob of shards), not what it is: left
# out of the fingerprint so that the same bytes read from another directory (another
# machine, `reproduce`) hash the same; `cache` says how data is held, not what it is:
# streamed or loaded, the bytes hash the same.
_UNHASHED_KEYS = ("path", "dir", "files", "cache")
_FINGERPRINT_VERSION = b"gencompile-data-v1"


# --------------------------------------------------------------------------- preprocessing


class Preprocessor:
    """An affine map y = (x - center) * factor + offset, fitted on the training split.

    Affine keeps the change of variables exact: `log_det_jacobian` converts densities between
    model space and data units. Images use global statistics (scalars); vectors per feature.
    """

    def __init__(
        self,
        kind: str,
        element_shape: tuple[int, ...],
        center: np.ndarray | float = 0.0,
        factor: np.ndarray | float = 1.0,
        offset: np.ndarray | float = 0.0,
        scale: tuple[float, float] | None = None,
        standardize: bool = False,
    ):
        self.kind = kind
        self.element_shape = tuple(int(d) for d in element_shape)
        self.center = np.asarray(center, dtype=np.float64)
        self.factor = np.asarray(factor, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.standardize = bool(standardize)
        log_factor = np.log(np.abs(self.factor))
        self.log_det_jacobian = float(np.sum(np.broadcast_to(log_factor, self.element_shape)))

    @classmethod
    def fit(
        cls, x: np.ndarray, kind: str, scale: Any = None, standardize: bool = False
    ) -> Preprocessor:
        """Min-max to `scale` and/or standardize, with statistics from `x` only."""
        axis = None if kind == "image" else 0  # images: global statistics
        data = x.astype(np.float64)
        center, factor, offset = np.zeros(()), np.ones(()), np.zeros(())
        if scale is not None:
            center, factor, offset, scale = _min_max(scale, data.min(axis), data.max(axis))
        if standardize:
            scaled = (data - center) * factor + offset
            mean, std = scaled.mean(axis=axis), scaled.std(axis=axis)
            std = np.where(std > 0, std, 1.0)
            # compose: ((x - c) * f + o - mean) / std == (x - c) * (f / std) + (o - mean) / std
            factor, offset = factor / std, (offset - mean) / std
        low_high = (data.min(axis=axis), data.max(axis=axis))
        _check_representable(*low_high, center, factor, offset, scale)
        return cls(kind, x.shape[1:], center, factor, offset, scale, standardize)

    @classmethod
    def from_statistics(
        cls,
        kind: str,
        element_shape: tuple[int, ...],
        stats: Statistics,
        scale: Any = None,
        standardize: bool = False,
    ) -> Preprocessor:
        """The map `fit` would give, from statistics gathered in one pass over streamed data
        (equal to `fit`'s up to float64 rounding of the mean and variance)."""
        center, factor, offset = np.zeros(()), np.ones(()), np.zeros(())
        if scale is not None:
            center, factor, offset, scale = _min_max(scale, stats.low, stats.high)
        if standardize:  # the mean and std of the scaled data, from the raw ones
            mean = (stats.mean - center) * factor + offset
            std = np.sqrt(stats.variance) * np.abs(factor)
            std = np.where(std > 0, std, 1.0)
            factor, offset = factor / std, (offset - mean) / std
        _check_representable(stats.low, stats.high, center, factor, offset, scale)
        return cls(kind, element_shape, center, factor, offset, scale, standardize)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Data units -> model space (float32)."""
        x = np.asarray(x, dtype=np.float64)
        return ((x - self.center) * self.factor + self.offset).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Model space -> data units (float32), for plots and NLL in original units."""
        x = np.asarray(x, dtype=np.float64)
        return ((x - self.offset) / self.factor + self.center).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain JSON-able statistics, enough to rebuild the map with `from_dict`."""
        return {
            "kind": self.kind,
            "element_shape": list(self.element_shape),
            "scale": None if self.scale is None else list(self.scale),
            "standardize": self.standardize,
            "center": self.center.tolist(),
            "factor": self.factor.tolist(),
            "offset": self.offset.tolist(),
            "log_det_jacobian": self.log_det_jacobian,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        """Rebuild from `to_dict` output, e.g. to map samples back without reloading data."""
        return cls(
            data["kind"], tuple(data["element_shape"]), data["center"], data["factor"],
            data["offset"], data["scale"], data["standardize"],
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"Preprocessor(kind={self.kind!r}, scale={self.scale}, "
            f"standardize={self.standardize}, log_det_jacobian={self.log_det_jacobian:.4f})"
        )


FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Statistics:
    """Count, minimum, maximum, mean and sum of squared deviations of data, merged chunk by
    chunk (Chan et al.'s pairwise update), per feature for vectors, global for images."""

    count: int
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, chunk: np.ndarray, axis: int | None) -> Statistics:
        data = chunk.astype(np.float64)
        count = data.shape[0] if axis == 0 else data.size
        mean = data.mean(axis=axis)
        m2 = ((data - mean) ** 2).sum(axis=axis)
        return cls(count, data.min(axis=axis), data.max(axis=axis), mean, m2)

    def merge(self, other: Statistics) -> Statistics:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        return Statistics(
            count,
            np.minimum(self.low, other.low),
            np.maximum(self.high, other.high),
            self.mean + delta * (other.count / count),
            self.m2 + other.m2 + delta**2 * (self.count * other.count / count),
        )

    @property
    def variance(self) -> np.ndarray:
        return self.m2 / max(self.count, 1)  # population variance, as numpy's std


def _min_max(scale: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any, Any, tuple]:
    """The affine map (center, factor, offset) taking data in [lo, hi] to `scale`."""
    low, high = (float(v) for v in scale)
    if not low < high:
        raise RunError(f"data.preprocessing.scale must be [low, high] with low < high, got {scale}")
    span = np.where(hi > lo, hi - lo, 1.0)  # constant features: shift only
    return lo, (high - low) / span, np.full_like(lo, low), (low, high)


def _check_representable(
    low: Any, high: Any, center: Any, factor: Any, offset: Any, scale: Any
) -> None:
    """Refuse a preprocessing whose map or results overflow: the model computes in float32,
    where anything beyond about 3.4e38 is inf and the loss turns NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        ends = [(low - center) * factor + offset]
        ends.append((high - center) * factor + offset)
        parts = [center, factor, offset, *ends]
        finite = all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in parts)
        largest = max(float(np.max(np.abs(v))) for v in ends) if finite else np.inf
    if finite and largest <= FLOAT32_MAX and np.all(np.asarray(factor) != 0):
        return
    what = f"scale {list(scale)}" if scale is not None else "standardize"
    raise RunError(
        f"data.preprocessing: {what} maps the training data beyond float32's range "
        f"(about ±3.4e38), so the model would see inf or NaN; use a range such as [0, 1] "
        "or [-1, 1], or rescale the raw data"
    )


# --------------------------------------------------------------------------- augmentation

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
    n_val = 0 if fraction == 0 else max(1, math.floor(n * fraction + 0.5))
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

        def batch(start: tf.Tensor) -> tf.Tensor:
            indices = order[start : start + batch_size]
            return tf.ensure_shape(indices, [batch_size]) if full else indices

        return tf.data.Dataset.range(0, max(end, 0), batch_size).map(batch)

    def gather(indices: tf.Tensor):
        if callable(tensors):
            return tensors(indices)
        return tf.nest.map_structure(lambda t: tf.gather(t, indices), tensors)

    stream = tf.data.Dataset.range(first, last).flat_map(one_epoch)
    stream = stream.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    if augment_batch is not None:
        stream = stream.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
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

    def augment(images: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            images = layer(images, training=True)
        return images

    return (lambda xb, yb: (augment(xb), yb)) if settings.with_labels else augment


def load_data(config: dict, seed: int) -> DataBundle:
    """Load, split, preprocess and batch the data described by a resolved data config.

    Large sources stream from their files (`runtime/streaming.py`); the rest load whole."""
    if "tokenizer" in config:  # text: tokenized into windows (autoregressive family)
        from gencompile.runtime.text_data import load_text_data

        return load_text_data(config, seed)
    settings = Settings.read(config)
    if streams(settings.source, settings.cache):
        from gencompile.runtime.streaming import load_streamed

        return load_streamed(config, settings, seed)
    return _load_in_memory(config, settings, seed)


def _load_in_memory(config: dict, settings: Settings, seed: int) -> DataBundle:
    source, batch_size, with_labels = settings.source, settings.batch_size, settings.with_labels
    x, y = load_arrays(source, seed)
    kind = "image" if x.ndim == 4 else "vector"
    settings.check(kind, x.shape[1:], y is not None)
    digest = fingerprint(x, y, config)

    train_idx, val_idx = split_indices(len(x), settings.fraction, seed)
    settings.check_training_size(len(train_idx))
    preprocessor = Preprocessor.fit(x[train_idx], kind, settings.scale, settings.standardize)
    x_train, x_val = preprocessor.transform(x[train_idx]), preprocessor.transform(x[val_idx])
    y_train = None if y is None else y[train_idx]
    y_val = None if y is None else y[val_idx]

    def slices(features: np.ndarray, labels: np.ndarray | None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((features, labels) if with_labels else features)

    train_tensors = (
        (tf.constant(x_train), tf.constant(y_train)) if with_labels else tf.constant(x_train)
    )
    augment_batch = None
    if settings.augmentation:
        value_range = (float(x_train.min()), float(x_train.max()))
        augment_batch = augmenter(settings, seed, value_range)

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        """Batches of epochs first..last-1; epoch e's order depends only on (seed, e)."""
        return epoch_stream(
            train_tensors, len(train_idx), batch_size, seed, first, last, steps,
            settings.drop_remainder, augment_batch,
        )  # fmt: skip

    train = epochs(0, 1)

    validation = None
    if len(val_idx):  # never shuffled, augmented or truncated: every held-out example counts
        validation = slices(x_val, y_val).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return DataBundle(
        train=train,
        epochs=epochs,
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch(len(train_idx)),
        validation=validation,
        x_train=x_train,
        x_val=x_val,
        y_train=y_train,
        y_val=y_val,
        element_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=None if y is None else int(y.max()) + 1,
        kind=kind,
        preprocessor=preprocessor,
        fingerprint=digest,
        source=dict(source),
        feature_names=feature_names(source, x.shape[1:]),
    )


def feature_names(source: dict, element_shape: tuple[int, ...]) -> tuple[str, ...]:
    """The names of a data set's flattened features, in order: a CSV source's columns;
    x0, x1, ... for sources without names (builtins, arrays, images)."""
    count = int(np.prod(element_shape))
    named = column_names(source)
    if named is not None and len(named) == count:
        return tuple(named)
    return tuple(f"x{i}" for i in range(count))
