"""Data loading for generated projects: sources -> arrays -> preprocessing -> tf.data.

Generated training code calls `load_data(config, seed)` with the compiler's fully resolved
data config (every default filled in), so this module invents no defaults of its own. It
dispatches: text to `text_data`, large sources to `streaming` (and tfrecord to `records`),
and loads the rest in memory here. The pipeline is the same for every source, built from
the pieces in `pipeline.py` and `preprocessing.py`:

1. `load_arrays` (the readers of `sources.py`, `tables.py` and `records.py`) reads raw
   float32 `x` (images as N,H,W,C; vectors as N,D) and int32 labels; values float32 would
   round (unix timestamps, IDs) stay float64 until the preprocessing has mapped them;
2. a seeded permutation holds out the validation split (`split_indices`);
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

from typing import Any

import numpy as np
import tensorflow as tf

from gencompile.data_paths import DATA_FILE_FIELDS, WORKING_DIRECTORY, data_file
from gencompile.data_size import streams
from gencompile.errors import RunError
from gencompile.runtime.pipeline import (
    DataBundle,
    Settings,
    augmenter,
    epoch_stream,
    feature_names,
    fingerprint,
    split_indices,
)
from gencompile.runtime.preprocessing import Preprocessor, Statistics
from gencompile.runtime.records import load_streamed_records, read_all
from gencompile.runtime.sources import (
    LOADERS,
    builtin_factors,
    builtin_names,
    cast_loss,
    checked_arrays,
    config_value,
    mode_centers,
)
from gencompile.runtime.streaming import load_streamed
from gencompile.runtime.text_data import load_text_data

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


def load_data(config: dict, seed: int) -> DataBundle:
    """Load, split, preprocess and batch the data described by a resolved data config.

    Large sources stream from their files (`runtime/streaming.py`); the rest load whole.
    A conditional model's config holds its `num_classes` (projects built before it was
    written hold none): every label, streamed ones included, is checked against it before
    training starts. It is not part of the data, so the fingerprint leaves it out."""
    config = located(config)
    if "tokenizer" in config:  # text: tokenized into windows (autoregressive family)
        return load_text_data(config, seed)
    model_classes = config.get("num_classes")
    config = {key: value for key, value in config.items() if key != "num_classes"}
    settings = Settings.read(config)
    if streams(settings.source, settings.cache):
        if settings.source.get("type") == "tfrecord":  # no random access: in shard order
            bundle = load_streamed_records(config, settings, seed)
        else:
            bundle = load_streamed(config, settings, seed)
    else:
        bundle = _load_in_memory(config, settings, seed)
    if model_classes is not None:
        check_classes(bundle, int(model_classes))
    return bundle


def located(config: dict) -> dict:
    """The config with its source's files where the run reads them (`data_file`): in the
    folder it was trained in, which whoever opened the run put under `working_directory`
    (or `trained_in` says), else in the current one. The key itself is no data setting."""
    trained = config.get(WORKING_DIRECTORY)
    config = {key: value for key, value in config.items() if key != WORKING_DIRECTORY}
    source = config.get("source")
    if not isinstance(source, dict):
        return config
    files = {
        key: data_file(value, key, trained)
        for key, value in source.items()
        if key in DATA_FILE_FIELDS and isinstance(value, str)
    }
    return {**config, "source": {**source, **files}}


def check_classes(bundle: DataBundle, model_classes: int) -> None:
    """Refuse labels the model has no class for: coded as no class at all (a one-hot of
    zeros), or as the null class of classifier-free guidance, they would train silently
    wrong. The labels of every source are in memory once it is loaded or scanned."""
    found = bundle.num_classes
    if found is None or found <= model_classes:
        return
    raise RunError(
        f"the data ({_data_name(bundle.source)}) has {found} classes, labels 0..{found - 1}, "
        f"but model.conditional.num_classes is {model_classes}: set num_classes: {found} in "
        "the spec and build again"
    )


def _data_name(source: dict) -> str:
    """The data's file, folder or shards, or the built-in data set's name."""
    for key in ("path", "dir", "files"):
        if source.get(key):
            return str(source[key])
    return f"{source.get('type')} {source.get('name', '')}".strip()


def _load_in_memory(config: dict, settings: Settings, seed: int) -> DataBundle:
    source, batch_size, with_labels = settings.source, settings.batch_size, settings.with_labels
    x, y = load_arrays(source, seed)
    kind = "image" if x.ndim == 4 else "vector"
    settings.check(kind, x.shape[1:], y is not None)
    digest = fingerprint(x.astype(np.float32, copy=False), y, config)  # as streamed data's

    train_idx, val_idx = split_indices(len(x), settings.fraction, seed)
    settings.check_training_size(len(train_idx))
    preprocessor = Preprocessor.fit(x[train_idx], kind, settings.scale, settings.standardize)
    if x.dtype != np.float32:  # raw values float32 would round: the map must bring them in
        names = feature_names(source, x.shape[1:])
        cast_loss(x, f"data.source ({source.get('type')})").check_mapped(preprocessor, names)
    x_train, x_val = preprocessor.transform(x[train_idx]), preprocessor.transform(x[val_idx])
    y_train = None if y is None else y[train_idx]
    y_val = None if y is None else y[val_idx]
    factors = builtin_factors(source, seed)  # shapes2d's position, scale and shape
    if factors is not None and len(factors[1]) != len(x):  # a metric would score wrong rows
        raise RunError(
            f"internal error: {len(factors[1])} rows of generative factors for {len(x)} "
            f"examples of {_data_name(source)}; please report it"
        )

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
        factors_val=None if factors is None else factors[1][val_idx],
        factor_names=() if factors is None else factors[0],
    )


def load_arrays(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a source whole into raw float32 x (images N,H,W,C; float64 or the file's
    integers where float32 would round them) and int32 labels or None."""
    kind = config_value(source, "type", "data.source")
    loaders = {**LOADERS, "csv": _load_csv, "parquet": _load_parquet, "tfrecord": _load_tfrecord}
    if kind not in loaders:
        raise RunError(
            f"unknown data source type {kind!r} (data.source.type); "
            f"available: {', '.join(sorted(loaders))}"
        )
    return checked_arrays(*loaders[kind](source, seed), kind, source)


def _load_csv(source: dict, seed: int) -> tuple[Any, Any]:
    from gencompile.runtime.tables import load_csv  # imports pyarrow

    return load_csv(source)


def _load_parquet(source: dict, seed: int) -> tuple[Any, Any]:
    from gencompile.runtime.tables import load_parquet  # imports pyarrow

    return load_parquet(source)


def _load_tfrecord(source: dict, seed: int) -> tuple[Any, Any]:
    return read_all(source)
