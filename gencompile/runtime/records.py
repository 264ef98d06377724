"""tfrecord sources: `tf.train.Example` records from sharded TFRecord files.

The shards (the glob's matches, sorted) are read in that order, record by record, and
parsed with `tf.io.parse_example`: x as a fixed number of float32 or int64 values in the
spec's shape, or as one encoded image decoded by TensorFlow (resized bilinearly to `size`
and rounded back to 0..255 when it differs); the label, when named, as one int64.

Small data is loaded whole (`read_all`, through `data.load_arrays`) and then behaves
like any loaded source. Streamed data (`load_streamed_records`) keeps what it can of the
in-memory contract without random access:

1. one pass counts the records of every shard (frames only, no parsing);
2. the seeded permutation of `data.split_indices` over those N records holds the
   validation split out by record index (a mask of 1 byte a record);
3. one pass in file order parses and checks every record, hashes the fingerprint (the
   same sha256 as the data loaded whole) and gathers the training split's statistics;
4. epoch e reads the shards in an order drawn from (seed, e), 4 at a time interleaved,
   and permutes each window of `data.shuffle_buffer` training records with a stateless
   shuffle keyed by (seed, e, window): the order is a function of (seed, e) alone, so a
   resumed run reads what an uninterrupted one reads; it is not the order of the same
   records loaded whole (that order needs random access).

Memory: 1 byte a record of mask, 4 of labels, a window of serialized records and the
batches in flight.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gencompile.datafiles import BYTES_PER_LOADED_VALUE, ensure_fits, record_files
from gencompile.errors import RunError
from gencompile.progress import progress_bar
from gencompile.runtime.pipeline import (
    DataBundle,
    Settings,
    array_prefix,
    augmenter,
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
from gencompile.runtime.sources import _as_labels, as_float32, config_value, element_shape

ORIGIN = "data.source (tfrecord)"
PASS_BATCH = 512  # records parsed at a time by the passes
SHARDS_AT_ONCE = 4  # shards an epoch interleaves
_COMPRESSION = {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}


@dataclass(frozen=True)
class Records:
    """A tfrecord source's shards and how to parse their records."""

    shards: list[Path]
    compression: str
    x: dict[str, Any]
    label: str | None
    element_shape: tuple[int, ...]

    @classmethod
    def of(cls, source: dict) -> Records:
        features = config_value(source, "features", ORIGIN)
        x = config_value(features, "x", "data.source.features")
        compression = config_value(source, "compression", ORIGIN)
        if compression not in _COMPRESSION:
            raise RunError(
                f"data.source.compression must be one of {', '.join(_COMPRESSION)}, "
                f"got {compression!r}"
            )
        if x.get("type") == "image":
            height, width = (int(v) for v in config_value(x, "size", "data.source.features.x"))
            channels = 1 if x.get("color", "grayscale") == "grayscale" else 3
            shape: tuple[int, ...] = (height, width, channels)
        else:
            given = tuple(int(d) for d in config_value(x, "shape", "data.source.features.x"))
            shape = element_shape((1, *given), ORIGIN)
        shards = record_files(config_value(source, "files", ORIGIN))
        return cls(shards, _COMPRESSION[compression], x, features.get("label"), shape)

    @property
    def values(self) -> int:
        return int(np.prod(self.element_shape))

    def dataset(self, shards: Any) -> tf.data.Dataset:
        """Serialized records of `shards` (file names), in order."""
        return tf.data.TFRecordDataset(shards, compression_type=self.compression)

    def parse(self, serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """A batch of serialized records -> (raw x in the element layout: float32, or the
        int64 values of an int64 feature, which float32 may round; int64 labels or None)."""
        wanted: dict[str, Any] = {}
        if self.x.get("type") == "image":
            wanted[self.x["name"]] = tf.io.FixedLenFeature([], tf.string)
        else:
            dtype = tf.float32 if self.x.get("dtype", "float32") == "float32" else tf.int64
            wanted[self.x["name"]] = tf.io.FixedLenFeature([self.values], dtype)
        if self.label is not None:
            wanted[self.label] = tf.io.FixedLenFeature([], tf.int64)
        found = tf.io.parse_example(serialized, wanted)
        raw = found[self.x["name"]]
        if self.x.get("type") == "image":
            spec = tf.TensorSpec(self.element_shape, tf.float32)
            x = tf.map_fn(self._decode, raw, fn_output_signature=spec)
        else:
            x = tf.reshape(raw, [-1, *self.element_shape])
        return x, (found[self.label] if self.label is not None else None)

    def _decode(self, encoded: tf.Tensor) -> tf.Tensor:
        """One encoded image as float32 0..255 pixels of the element shape."""
        height, width, channels = self.element_shape
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])

        def resized() -> tf.Tensor:
            pixels = tf.image.resize(image, [height, width], method="bilinear", antialias=True)
            return tf.clip_by_value(tf.round(pixels), 0.0, 255.0)

        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
        return tf.cond(same, lambda: tf.cast(image, tf.float32), resized)

    def batches(self, shard: Path) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Parsed batches of one shard in order; a record that cannot be read is one
        clear error naming it (`_unreadable`)."""
        parsed = (
            self.dataset([str(shard)])
            .batch(PASS_BATCH)
            .map(self.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )
        read = 0
        try:
            for x, y in parsed.prefetch(2).as_numpy_iterator():
                yield self._checked(shard, read, x, y)
                read += len(x)
        except tf.errors.OpError as err:
            raise self._unreadable(shard, read, err) from None

    def _checked(
        self, shard: Path, first: int, x: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A parsed batch (records first.. of `shard`) whose values are finite and labels
        class indices, else an error naming the shard and the record within it."""

        def place(i: int) -> str:
            return f"{shard}, record {first + i} (counting from 0)"

        as_float32(x, ORIGIN, place=place)
        if y is not None:
            _as_labels(y, len(x), ORIGIN, place)
        return x, y

    def _unreadable(self, shard: Path, first: int, err: tf.errors.OpError) -> RunError:
        """The error of the batch of records from `first` on: its records are read again
        one at a time to name the one that fails, and what is wrong with it."""
        if isinstance(err, tf.errors.DataLossError):  # the framing or a checksum
            return RunError(f"{shard}: {_first_line(err.message)}")
        window = self.dataset([str(shard)]).skip(first).take(PASS_BATCH)
        try:
            for index, record in enumerate(window):
                try:
                    self.parse(tf.reshape(record, [1]))
                except tf.errors.OpError as found:
                    return RunError(
                        f"{shard}: record {first + index} (counting from 0) {_why(found)}"
                    )
        except tf.errors.OpError as found:
            return RunError(f"{shard}: {_first_line(found.message)}")
        return RunError(
            f"{shard}: record {first} (counting from 0) or one of the {PASS_BATCH - 1} "
            f"after it cannot be read: {_first_line(err.message)}"
        )

    def count(self, shard: Path) -> int:
        """Records in one shard (frames read and checksummed, nothing parsed). Bytes left
        after the last whole frame (a cut-off record header, a stray file that is not
        TFRecord) are refused: TensorFlow's reader takes them for the end of the shard."""
        lengths = (
            self.dataset([str(shard)])
            .batch(4096)
            .map(
                lambda batch: (
                    tf.size(batch, tf.int64),
                    tf.reduce_sum(tf.cast(tf.strings.length(batch), tf.int64)),
                )
            )
        )
        records = framed = 0
        try:
            for count, body in lengths.as_numpy_iterator():
                records += int(count)
                framed += int(body) + FRAME_BYTES * int(count)
        except tf.errors.OpError as err:
            raise RunError(f"{shard}: {_first_line(err.message)}") from None
        size = _stream_size(shard, self.compression)
        if size is not None and size != framed:
            where = "byte" if not self.compression else "decompressed byte"
            raise RunError(
                f"{shard}: {size - framed} bytes at {where} offset {framed}, after its "
                f"{records} whole records, are not a whole record (a shard cut short, or a "
                f"file that is not TFRecord); {_REPAIR}"
            )
        return records


FRAME_BYTES = 16  # a record's framing: length (8 bytes), its checksum (4), data checksum (4)


def _stream_size(shard: Path, compression: str) -> int | None:
    """The bytes of a shard's TFRecord stream: its size, or its decompressed size (one
    pass of zlib, never holding more than a chunk); None when the compressed stream is
    not one that pass understands (TensorFlow's own errors then speak)."""
    if not compression:
        return shard.stat().st_size
    inflate = zlib.decompressobj(wbits=31 if compression == "GZIP" else 15)
    total = 0
    try:
        with open(shard, "rb") as handle:
            while chunk := handle.read(1 << 20):
                while chunk and not inflate.eof:
                    total += len(inflate.decompress(chunk, 1 << 24))
                    chunk = inflate.unconsumed_tail
                if inflate.eof:
                    break
    except (OSError, zlib.error):
        return None
    return total if inflate.eof and not inflate.unused_data else None


_REPAIR = "re-export the shard or leave it out of data.source.files"


def _first_line(message: str) -> str:
    """TensorFlow's message without its op and function names, and what to do."""
    cut = re.search(r"truncated record at (\d+)", message)
    if cut:  # TensorFlow's text here is a fragment ("at 11343' failed with Read less ...")
        return (
            f"the record at byte {cut.group(1)} is cut short (the shard ends inside it); " + _REPAIR
        )
    return (
        f"{_cleaned(message)} (a damaged file, or not TFRecord frames of tf.train.Example "
        f"records?); {_REPAIR}"
    )


def _cleaned(message: str) -> str:
    """The first line of TensorFlow's message, without its op and function names."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    inner = re.findall(r"^\s*\w+Error: (.+)$", text, re.MULTILINE)  # a traced function's
    text = (inner[-1] if inner else text).split(" [Op:")[0].strip()
    return text.splitlines()[0].rstrip(" .") if text else "unreadable"


_TYPE_NAMES = {"float": "float32", "int64": "int64", "string": "bytes"}


def _why(err: tf.errors.OpError) -> str:
    """What TensorFlow found wrong with one record, in the spec's words."""
    text = err.message
    dtypes = re.search(
        r"Key: (\S+?), Index: \d+\.\s+Data types don't match\. "
        r"Data type: (\w+) but expected type: (\w+)",
        text,
    )
    if dtypes:
        name, found, wanted = dtypes.groups()
        return (
            f"has feature {name!r} of type {_TYPE_NAMES.get(found, found)}, the spec says "
            f"{_TYPE_NAMES.get(wanted, wanted)}; fix data.source.features or the record"
        )
    sizes = re.search(
        r"Key: (\S+?), Index: \d+\.\s+Number of (\w+) values != expected\.\s+"
        r"Values size: (\d+) but output shape: \[(.*?)\]",
        text,
    )
    if sizes:
        name, kind, found, shape = sizes.groups()
        return (
            f"has {found} {_TYPE_NAMES.get(kind, kind)} values in feature {name!r}, the spec's "
            f"shape needs {shape or 1}; fix data.source.features or the record"
        )
    missing = re.search(
        r"Feature: (\S+) \(data type: (\w+)\) is required but could not be found", text
    )
    if missing:
        return (
            f"has no feature {missing.group(1)!r}; every record needs the features the spec names"
        )
    if "DecodeImage" in text:
        return f"has an image TensorFlow cannot decode: {_cleaned(text)}"
    return f"cannot be read: {_cleaned(text)}"


def read_all(source: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """A tfrecord source loaded whole: (raw x, float32 or int64, int64 labels or None)."""
    from gencompile.tfrecords import estimated_records

    records = Records.of(source)
    ensure_fits(
        estimated_records(source) * records.values * BYTES_PER_LOADED_VALUE,
        f"data.source.files: {len(records.shards)} shards of records of shape "
        f"{records.element_shape}",
        "use fewer records, or data.cache: auto or stream to read them batch by batch",
    )
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for shard in records.shards:
        records.count(shard)  # frames only: a shard cut short is refused, not read as ended
        for x, y in records.batches(shard):
            xs.append(x)
            if y is not None:
                ys.append(y)
    if not xs:
        raise RunError(f"{ORIGIN}: the shards hold no records")
    x = np.concatenate(xs)
    return x, (np.concatenate(ys) if records.label is not None else None)


# --------------------------------------------------------------------------- streaming


def _scan(
    records: Records, training: np.ndarray, axis: int | None, config: dict
) -> tuple[str, Statistics, np.ndarray | None, CastLoss]:
    """The pass in file order: check every record, fingerprint as `data.fingerprint`
    hashes loaded arrays, statistics of the training records (of the raw values when
    float32 would round them, as `streaming.scan`); returns the labels."""
    count = len(training)
    digest = hashlib.sha256(b"gencompile-data-v1")
    digest.update(array_prefix(np.float32, (count, *records.element_shape)))
    stats: Statistics | None = None
    raw_stats: Statistics | None = None
    loss = CastLoss(axis, ORIGIN)
    labels: list[np.ndarray] = []
    start = 0
    with progress_bar("data statistics", count, "records") as update:
        for shard in records.shards:
            for raw, y in records.batches(shard):
                chunk = as_float32(raw, ORIGIN, first=start)
                digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
                loss.add(raw)
                kept = training[start : start + len(chunk)]
                stats = merged_statistics(stats, chunk[kept], axis)
                if may_lose(raw.dtype):
                    raw_stats = merged_statistics(raw_stats, raw[kept], axis)
                if y is not None:
                    labels.append(y)
                start += len(chunk)
                update(start)
    if start != count:
        raise RunError(f"{ORIGIN}: the shards changed while being read; run again")
    found = None
    if records.label is not None:
        found = _as_labels(np.concatenate(labels), count, ORIGIN)
        digest.update(array_prefix(found.dtype, found.shape))
        digest.update(memoryview(np.ascontiguousarray(found)).cast("B"))
    else:
        digest.update(b"|none")
    assert stats is not None  # split_indices always leaves training records
    if loss.lossy():
        assert raw_stats is not None
        stats = raw_stats
    return finish_fingerprint(digest, config), stats, found, loss


class _Stream:
    """The records of one split as tf.data pipelines: global record indices come from the
    per-shard offsets, and the split's mask keeps the split's records."""

    def __init__(self, records: Records, counts: list[int], held_out: np.ndarray):
        self.records = records
        self.files = tf.constant([str(s) for s in records.shards])
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.offsets = tf.constant(self.starts, tf.int64)
        self.held_out_mask = held_out
        self.held_out = tf.constant(held_out)

    def shard(self, position: tf.Tensor, keep_held_out: bool) -> tf.data.Dataset:
        """The serialized records of shard `position` that belong to the split."""
        offset = self.offsets[position]
        indexed = self.records.dataset(self.files[position]).enumerate()
        return indexed.filter(
            lambda i, _: tf.equal(tf.gather(self.held_out, offset + i), keep_held_out)
        ).map(lambda _, record: record)

    def in_file_order(self, keep_held_out: bool) -> tf.data.Dataset:
        shards = tf.data.Dataset.range(len(self.records.shards))
        return shards.flat_map(lambda s: self.shard(s, keep_held_out))

    def split_records(self, held_out: bool) -> np.ndarray:
        """The global indices of a split's records, in file order."""
        return np.flatnonzero(self.held_out_mask == held_out)

    def chosen(self, wanted: np.ndarray) -> tf.data.Dataset:
        """The serialized records at the sorted, distinct global indices `wanted`, in file
        order: only the shards that hold one are read, each up to its last wanted record."""
        mask = np.zeros(len(self.held_out_mask), dtype=bool)
        mask[wanted] = True
        keep = tf.constant(mask)
        shard_of = np.searchsorted(self.starts, wanted, side="right") - 1
        positions = np.unique(shard_of)
        # each shard is read up to its last wanted record (`wanted` is sorted)
        last = wanted[np.searchsorted(shard_of, positions, side="right") - 1]
        ends = last - self.starts[positions] + 1

        def shard(position: tf.Tensor, end: tf.Tensor) -> tf.data.Dataset:
            offset = self.offsets[position]
            indexed = self.records.dataset(self.files[position]).take(end).enumerate()
            kept = indexed.filter(lambda i, _: tf.gather(keep, offset + i))
            return kept.map(lambda _, record: record)

        pairs = tf.data.Dataset.from_tensor_slices((positions.astype(np.int64), ends))
        return pairs.flat_map(shard)

    def training_epoch(self, seed: int, epoch: tf.Tensor, window: int) -> tf.data.Dataset:
        """The serialized training records of one epoch in an order drawn from (seed,
        epoch): the shards shuffled, SHARDS_AT_ONCE interleaved, each window permuted."""
        shards = len(self.records.shards)
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.index_shuffle(
            tf.range(shards, dtype=tf.int64), seed=key, max_index=shards - 1
        )
        serialized = tf.data.Dataset.from_tensor_slices(order).interleave(
            lambda s: self.shard(s, keep_held_out=False),
            cycle_length=min(shards, SHARDS_AT_ONCE),
            block_length=1,
        )
        return _window_shuffle(serialized, window, key)


def _window_shuffle(records: tf.data.Dataset, window: int, key: tf.Tensor) -> tf.data.Dataset:
    """Each window of `window` records permuted by a stateless shuffle keyed by (key, w)."""

    def permute(w: tf.Tensor, block: tf.Tensor) -> tf.Tensor:
        n = tf.cast(tf.shape(block)[0], tf.int64)
        order = tf.random.experimental.index_shuffle(
            tf.range(n), seed=tf.random.experimental.stateless_fold_in(key, w), max_index=n - 1
        )
        return tf.gather(block, order)

    return records.batch(window).enumerate().map(permute).unbatch()


class RecordSplit:
    """One split of streamed records, preprocessed, in file order, as far as code that
    reads `x_train` and `x_val` needs an array (`len`, `shape`, rows by slice or index,
    `np.asarray`): the rows asked for are read in one pass that parses only them;
    `batches` reads the whole split in one pass (`runtime.splits`).

    Loaded data holds a split in the seeded permutation's order, so its first rows are a
    seeded random subset; here they would be the first records of the first shards (often
    one class, in class-sorted exports). `head_positions` gives the rows loaded data has
    first instead, so a subset read by `splits.head` is the same examples, in the same
    order, streamed or loaded."""

    dtype = np.dtype(np.float32)

    def __init__(
        self,
        stream: _Stream,
        held_out: bool,
        parse: Callable[[tf.data.Dataset], tf.data.Dataset],
        order: Callable[[], np.ndarray],
        element: tuple,
    ):
        self._stream, self._held_out, self._parse, self._order = stream, held_out, parse, order
        self.shape = (int(np.count_nonzero(stream.held_out_mask == held_out)), *element)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _batches(self) -> tf.data.Dataset:
        """The whole split, parsed, in file order."""
        return self._parse(self._stream.in_file_order(self._held_out)).prefetch(2)

    def read(self, records: np.ndarray) -> np.ndarray:
        """The preprocessed rows of global record indices `records`, in that order."""
        if len(records) == 0:
            return np.zeros((0, *self.shape[1:]), np.float32)
        distinct = np.unique(records)  # sorted: the order of the pass
        parsed = list(self._parse(self._stream.chosen(distinct)).as_numpy_iterator())
        rows = np.concatenate(parsed) if parsed else np.zeros((0, *self.shape[1:]), np.float32)
        if len(rows) != len(distinct):
            raise RunError(f"{ORIGIN}: the shards changed while being read; run again")
        return rows[np.searchsorted(distinct, records)]

    def head_positions(self, count: int) -> np.ndarray:
        """Where the split's first `count` rows in loaded data's order (the seeded
        permutation's) sit in this file-ordered split."""
        first = self._order()[:count]
        return np.searchsorted(self._stream.split_records(self._held_out), first)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            return self[key[0]][(slice(None), *key[1:])]
        if isinstance(key, slice):
            return self[np.arange(len(self))[key]]
        positions = np.asarray(key, dtype=np.int64)
        if positions.ndim == 0:
            return self[positions.reshape(1)][0]
        positions = np.where(positions < 0, positions + len(self), positions)
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"rows {key} of a split of {len(self)} records")
        return self.read(self._stream.split_records(self._held_out)[positions])

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """The split in `batch_size` rows at a time, in one pass over the shards (slices
        would each read the split from its start)."""
        yield from self._batches().unbatch().batch(batch_size).as_numpy_iterator()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        parts = list(self._batches().as_numpy_iterator())
        whole = np.concatenate(parts) if parts else np.zeros(self.shape, np.float32)
        return whole if dtype is None else whole.astype(dtype)


def _split(total: int, settings: Settings, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seeded split by record index (as for loaded data), and a mask of held-out ones."""
    if total == 0:
        raise RunError(f"{ORIGIN}: the shards hold no records")
    train_idx, val_idx = split_indices(total, settings.fraction, seed)
    settings.check_training_size(len(train_idx))
    held_out = np.zeros(total, dtype=bool)
    held_out[val_idx] = True
    return train_idx, val_idx, held_out


def load_streamed_records(config: dict, settings: Settings, seed: int) -> DataBundle:
    """The streaming counterpart of `data._load_in_memory` for a tfrecord source."""
    source = settings.source
    records = Records.of(source)
    element = records.element_shape
    kind = "image" if len(element) == 3 else "vector"
    settings.check(kind, element, has_labels=records.label is not None)
    counts = [records.count(shard) for shard in records.shards]
    train_idx, val_idx, held_out = _split(sum(counts), settings, seed)
    digest, stats, labels, loss = _scan(records, ~held_out, None if kind == "image" else 0, config)
    preprocessor = Preprocessor.from_statistics(
        kind, element, stats, settings.scale, settings.standardize
    )
    loss.check_mapped(preprocessor, feature_names(source, element))
    stream = _Stream(records, counts, held_out)
    parse_batches = _batcher(records, preprocessor, settings.batch_size, loss.lossy())
    low_high = preprocessor.transform(np.stack([stats.low, stats.high]))
    augment_batch = augmenter(settings, seed, (float(low_high.min()), float(low_high.max())))
    window = int(config_value(config, "shuffle_buffer", "data"))

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        """Batches of epochs first..last-1; epoch e's order depends only on (seed, e)."""

        def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
            serialized = stream.training_epoch(seed, epoch, window)
            if steps is None:
                batches = parse_batches(serialized, settings.with_labels, settings.drop_remainder)
            else:
                batches = parse_batches(serialized.repeat(), settings.with_labels, full=True)
                batches = batches.take(steps)
            if augment_batch is None:
                return batches
            # Keyed (epoch, batch): its draws depend on them alone, as its order on (seed,
            # epoch), so a resumed run augments as an uninterrupted one.
            return batches.enumerate().map(
                lambda i, batch: augment_batch(*tf.nest.flatten(batch), key=tf.stack([epoch, i])),
                num_parallel_calls=tf.data.AUTOTUNE,
            )

        batches = tf.data.Dataset.range(first, last).flat_map(epoch_batches)
        return batches.prefetch(tf.data.AUTOTUNE)

    parse = functools.partial(parse_batches, labelled=False)
    total, fraction = len(held_out), settings.fraction
    validation = None
    if len(val_idx):  # in file order, never shuffled or augmented
        validation = parse_batches(stream.in_file_order(True), settings.with_labels)
        # the filter hides the count, and Keras warns of a dataset that "ran out" without one
        known = tf.data.experimental.assert_cardinality(-(-len(val_idx) // settings.batch_size))
        validation = validation.apply(known).prefetch(tf.data.AUTOTUNE)
    return DataBundle(
        train=epochs(0, 1),
        epochs=epochs,
        batch_size=settings.batch_size,
        steps_per_epoch=settings.steps_per_epoch(len(train_idx)),
        validation=validation,
        # Each split's record indices in loaded data's order, recomputed when asked for (8
        # bytes a record that a streamed split does not keep).
        x_train=RecordSplit(  # type: ignore[arg-type]
            stream, False, parse, lambda: split_indices(total, fraction, seed)[0], element
        ),
        x_val=RecordSplit(  # type: ignore[arg-type]
            stream, True, parse, lambda: split_indices(total, fraction, seed)[1], element
        ),
        y_train=None if labels is None else labels[~held_out],
        y_val=None if labels is None else labels[held_out],
        element_shape=element,
        num_classes=None if labels is None else int(labels.max()) + 1,
        kind=kind,
        preprocessor=preprocessor,
        fingerprint=digest,
        source=dict(source),
        feature_names=feature_names(source, element),
    )


def _batcher(
    records: Records, preprocessor: Preprocessor, batch_size: int, raw_values: bool
) -> Callable[..., tf.data.Dataset]:
    """parse_batches(serialized records, labelled, full=False): batches of preprocessed x
    (with int32 labels when `labelled`; only full batches when `full`), mapped from the
    float32 values, or from the raw ones when `raw_values` (float32 would round them)."""

    def parse_batches(
        serialized: tf.data.Dataset, labelled: bool, full: bool = False
    ) -> tf.data.Dataset:
        def prepared(batch: tf.Tensor) -> Any:
            x, y = records.parse(batch)
            x = _transform(preprocessor, x if raw_values else tf.cast(x, tf.float32))
            return (x, tf.cast(y, tf.int32)) if labelled else x

        batched = serialized.batch(batch_size, drop_remainder=full)
        return batched.map(prepared, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return parse_batches


def _transform(preprocessor: Preprocessor, x: tf.Tensor) -> tf.Tensor:
    """`Preprocessor.transform` in TensorFlow: the same float64 operations in the same
    order, so the values equal the numpy map's."""
    center = tf.constant(preprocessor.center, tf.float64)
    factor = tf.constant(preprocessor.factor, tf.float64)
    offset = tf.constant(preprocessor.offset, tf.float64)
    return tf.cast((tf.cast(x, tf.float64) - center) * factor + offset, tf.float32)
