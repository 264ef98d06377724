"""Data larger than memory: examples read from their file batch by batch, never whole.

`load_data` hands a config here when its source streams (`data_size.streams`: an npy,
parquet or csv file whose values take more than `STREAM_THRESHOLD` as float32, an image
folder whose decoded pixels take more than that as float32, a tfrecord source beyond it,
or `data.cache: stream`). A csv or parquet file is read from
its float32 .npy conversion (`tables.cached_table`), its labels held in memory; an image
folder from its files (`image_folders`), its labels (the class folders) in memory; a
tfrecord source, which has no random access, in shard order (`records`). The pipeline
keeps the in-memory one's contract:

1. one pass over the file in chunks (an image folder: every image decoded once, in a
   parallel tf.data map that keeps the order) checks every value, hashes the fingerprint
   (the same sha256 as for loaded data, so `reproduce` and `build --locked` compare like
   with like) and gathers the training split's statistics (min/max, mean/variance) for
   the preprocessing;
2. the seeded permutation of `pipeline.split_indices` holds the validation split out by
   index;
3. each batch of indices, drawn by `epoch_stream` from (seed, epoch) exactly as for loaded
   data, is read from the file (`MappedNpy`, or decoded from its image files) in a
   `tf.numpy_function` and preprocessed; tf.data runs the reads in parallel and prefetches.

Memory: the chunk of the pass, a few batches in flight, and 8 bytes an example for the
split's indices; rows are read with `pread`, so nothing of the file stays resident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from gencompile.datafiles import STREAM_CHUNK_BYTES, MappedNpy
from gencompile.errors import RunError
from gencompile.progress import progress_bar
from gencompile.runtime.pipeline import (
    DataBundle,
    Settings,
    array_prefix,
    augmenter,
    epoch_stream,
    feature_names,
    finish_fingerprint,
    split_indices,
)
from gencompile.runtime.preprocessing import (
    CastLoss,
    Preprocessor,
    Statistics,
    may_lose,
    merged_statistics,
)
from gencompile.runtime.sources import as_float32, config_value, element_shape


class Examples(Protocol):
    """Examples read on demand, raw float32 in the element layout: an .npy file
    (`StreamedArray`) or an image folder (`image_folders.StreamedImages`)."""

    origin: str
    element_shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> np.ndarray: ...

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]: ...


class StreamedArray:
    """Examples of an .npy file, read on demand: raw float32 in the element layout."""

    def __init__(self, path: str, where: str):
        self.file = MappedNpy(path, where)
        self.origin = f"data.source ({self.file.origin})"
        if self.file.dtype.kind not in "biuf":
            raise RunError(
                f"{self.origin}: expected numbers, got an array of dtype {self.file.dtype}"
            )
        self.element_shape = element_shape(self.file.shape, self.origin)
        self.raw_values = False  # read as float32; True: as stored (`scan`'s `CastLoss`)

    def __len__(self) -> int:
        return len(self.file)

    def read(self, indices: np.ndarray) -> np.ndarray:
        rows = self.file.rows(indices).reshape(len(indices), *self.element_shape)
        return rows if self.raw_values else rows.astype(np.float32, copy=False)

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first index, raw rows) in file order, about STREAM_CHUNK_BYTES of float32 a step."""
        per_row = int(np.prod(self.element_shape)) * 4
        rows = max(1, STREAM_CHUNK_BYTES // per_row)
        for start in range(0, len(self), rows):
            chunk = self.file.chunk(start, min(start + rows, len(self)))
            yield start, chunk.reshape(len(chunk), *self.element_shape)


class StreamedSplit:
    """One split of streamed data, preprocessed, as far as code that reads `x_train` and
    `x_val` needs an array: `len`, `shape`, slices and index arrays read only those rows
    (`runtime.splits` reads it batch by batch); `np.asarray` would read the whole split."""

    dtype = np.dtype(np.float32)

    def __init__(self, data: Examples, indices: np.ndarray, preprocessor: Preprocessor):
        self._data, self._indices, self._preprocessor = data, indices, preprocessor
        self.shape = (len(indices), *data.element_shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.asarray([key])][0]
        if isinstance(key, tuple):  # x[rows, ...]: the rows first, then the rest in memory
            return self[key[0]][(slice(None), *key[1:])]
        return self.read(self._indices[key])

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Preprocessed examples at file `indices`."""
        if len(indices) == 0:
            return np.zeros((0, *self.shape[1:]), np.float32)
        return self._preprocessor.transform(self._data.read(indices))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read(self._indices)
        return whole if dtype is None else whole.astype(dtype)


def scan(
    data: Examples,
    training: np.ndarray,
    axis: int | None,
    config: dict,
    labels: np.ndarray | None = None,
) -> tuple[str, Statistics, CastLoss]:
    """One pass in file order: check values, fingerprint (of the float32 values, then the
    labels, as `data.fingerprint` hashes loaded arrays), statistics of the rows where
    `training` (a mask over the examples) is set: of the raw values when float32 would
    round them (`CastLoss`, as `sources._as_elements` decides for loaded data)."""
    digest = hashlib.sha256(b"gencompile-data-v1")
    digest.update(array_prefix(np.float32, (len(data), *data.element_shape)))
    stats: Statistics | None = None
    raw_stats: Statistics | None = None  # of the raw values, for data float32 rounds
    loss = CastLoss(axis, data.origin)
    with progress_bar("data statistics", len(data), "examples") as update:
        for start, raw in data.chunks():
            chunk = as_float32(raw, data.origin, first=start)
            digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            loss.add(raw)
            kept = training[start : start + len(chunk)]
            stats = merged_statistics(stats, chunk[kept], axis)
            if may_lose(raw.dtype):
                raw_stats = merged_statistics(raw_stats, raw[kept], axis)
            update(start + len(chunk))
    if labels is None:
        digest.update(b"|none")
    else:
        digest.update(array_prefix(labels.dtype, labels.shape))
        digest.update(memoryview(np.ascontiguousarray(labels)).cast("B"))
    assert stats is not None  # _split always leaves training examples
    if loss.lossy():  # preprocessed from the raw values, as loaded data is
        assert raw_stats is not None
        stats = raw_stats
    return finish_fingerprint(digest, config), stats, loss


def _streamed_data(source: dict) -> tuple[Examples, np.ndarray | None]:
    """(the examples, read on demand, int32 labels or None) of a streamed source: an image
    folder decoded file by file, else an .npy file (a table's conversion)."""
    kind = source.get("type")
    if kind == "images":
        from gencompile.runtime.image_folders import StreamedImages

        images = StreamedImages(source)
        return images, images.labels
    path: str | Path = config_value(source, "path", "data.source (npy)")
    labels = None
    if kind in ("csv", "parquet"):
        from gencompile.runtime.tables import cached_table  # imports pyarrow

        path, labels = cached_table(source)
    return StreamedArray(str(path), "data.source.path"), labels


def _reader(
    split: StreamedSplit,
    positions: np.ndarray,
    element: tuple[int, ...],
    labels: tf.Tensor | None = None,
) -> Any:
    """A tf function from positions within `positions` to the preprocessed batch, with its
    labels (gathered from `labels`, indexed by example) when given."""
    from gencompile.runtime.python_reads import numpy_read  # here: a change kept to `_reader`

    table = tf.constant(positions, tf.int64)

    def read(indices: tf.Tensor) -> Any:
        found = tf.gather(table, indices)
        batch = numpy_read(split.read, [found], tf.float32)  # its RunError: failure_behind
        batch = tf.ensure_shape(batch, [indices.shape[0], *element])
        return batch if labels is None else (batch, tf.gather(labels, found))

    return read


def _scan_split(
    data: Examples, train_idx: np.ndarray, kind: str, config: dict, labels: np.ndarray | None
) -> tuple[str, Statistics, CastLoss]:
    """The fingerprint of all the data and the statistics of its training rows (images:
    global, vectors: per feature), in one pass."""
    training = np.zeros(len(data), dtype=bool)
    training[train_idx] = True
    return scan(data, training, None if kind == "image" else 0, config, labels)


def _in_order(read: Any, count: int, batch_size: int) -> tf.data.Dataset:
    """Batches of rows 0..count-1 through `read`, in the split's order: validation is never
    shuffled or augmented, as when loaded."""

    def batch(start: tf.Tensor) -> tf.Tensor:
        return read(tf.range(start, tf.minimum(start + batch_size, count)))

    starts = tf.data.Dataset.range(0, count, batch_size)
    return starts.map(batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_streamed(config: dict, settings: Settings, seed: int) -> DataBundle:
    """The streaming counterpart of `data._load_in_memory`: npy sources, csv and parquet
    sources through their float32 .npy cache (`tables`) and image folders, with labels held
    in memory (tfrecord sources stream in `records`)."""
    source = settings.source
    data, labels = _streamed_data(source)
    element = data.element_shape
    kind = "image" if len(element) == 3 else "vector"
    settings.check(kind, element, has_labels=labels is not None)
    with_labels = labels if settings.with_labels else None
    label_table = None if with_labels is None else tf.constant(with_labels)

    train_idx, val_idx = split_indices(len(data), settings.fraction, seed)
    settings.check_training_size(len(train_idx))
    digest, stats, loss = _scan_split(data, train_idx, kind, config, labels)
    preprocessor = Preprocessor.from_statistics(
        kind, element, stats, settings.scale, settings.standardize
    )
    if loss.lossy() and isinstance(data, StreamedArray):
        loss.check_mapped(preprocessor, feature_names(source, element))
        data.raw_values = True
    x_train = StreamedSplit(data, train_idx, preprocessor)
    x_val = StreamedSplit(data, val_idx, preprocessor)
    low_high = preprocessor.transform(np.stack([stats.low, stats.high]))
    augment_batch = augmenter(settings, seed, (float(low_high.min()), float(low_high.max())))
    read_train = _reader(x_train, train_idx, element, label_table)

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        """Batches of epochs first..last-1; epoch e's order depends only on (seed, e)."""
        return epoch_stream(
            read_train, len(train_idx), settings.batch_size, seed, first, last, steps,
            settings.drop_remainder, augment_batch,
        )  # fmt: skip

    validation = None
    if len(val_idx):
        read_val = _reader(x_val, val_idx, element, label_table)
        validation = _in_order(read_val, len(val_idx), settings.batch_size)
    return DataBundle(
        train=epochs(0, 1),
        epochs=epochs,
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch(len(train_idx)),
        validation=validation,
        x_train=x_train,  # type: ignore[arg-type]  # array-like, read on demand
        x_val=x_val,  # type: ignore[arg-type]
        y_train=None if labels is None else labels[train_idx],
        y_val=None if labels is None else labels[val_idx],
        element_shape=element,
        num_classes=None if labels is None else int(labels.max()) + 1,
        kind=kind,
        preprocessor=preprocessor,
        fingerprint=digest,
        source=dict(source),
        feature_names=feature_names(source, element),
    )
