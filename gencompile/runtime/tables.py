"""Tables (CSV and Parquet files) read block by block with pyarrow's streaming readers.

A large table is converted once into a float32 .npy file (float64 when float32 would
round its values: `CastLoss`) that then streams like an npy source: one pass checks the
cells block by block (for a CSV, the in-memory loader's messages, naming column and line),
maps class labels as the in-memory loader does (numbers as they are, else the sorted
names' positions) and appends the values to the .npy file.
The files live in the cache folder ($GENCOMPILE_CACHE, else ~/.cache/gencompile) under
`tables/`, named by the sha256 of the file's bytes and the columns read, and are written
atomically: a second run on the same file skips the conversion, a changed file gets new
ones; an entry that does not read back whole is converted again. Memory: one block of
cells and 4 bytes an example of labels.

A small Parquet or CSV file is loaded whole through the same blocks (`load_parquet`,
`load_csv`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gencompile.datafiles import (
    BYTES_PER_LOADED_VALUE,
    DataFileError,
    array_header,
    check_file,
    csv_extent,
    ensure_fits,
    format_bytes,
    is_number,
    is_numeric_type,
    open_data_file,
    parquet_schema,
    read_header_row,
    utf8_problem,
)
from gencompile.errors import RunError
from gencompile.files import atomic_open
from gencompile.runtime.csv_lines import longest_line, ragged_row
from gencompile.runtime.metrics.features import cache_dir
from gencompile.runtime.preprocessing import CastLoss, refuse_wide_integers
from gencompile.runtime.sources import (
    _as_labels,
    _float32,
    _why_not_finite,
    config_value,
    csv_layout,
    csv_values,
    label_place,
    mixed_labels,
)

BLOCK_BYTES = 1 << 20  # CSV text, or Parquet values as float64, read at a time (measured:
# converting a 100 MB CSV peaked 374 MiB above the imports with 8 MiB blocks, 92 with 1 MiB)
MAX_LINE_BYTES = 64 << 20  # the longest CSV line streamed: a block must hold a line whole
CELL_BYTES = 16 << 20  # a block's cells as numpy strings, at most (bar a single longer row)
HEADER_BYTES = 128  # room reserved for the .npy header, rewritten once the row count is known
_FORMAT = b"gencompile-table-cache-v3"  # v2: mixed number/name labels refused, not ranked;
# v3: features float32 would round are kept as float64

# (checked float64 values of a block of rows, their raw labels or None)
Block = tuple[np.ndarray, np.ndarray | None]


def cached_table(source: dict) -> tuple[Path, np.ndarray | None]:
    """(the float32 .npy of a csv or parquet source's features, its int32 labels or None),
    converting the file on first use."""
    where = f"data.source ({source.get('type')})"
    path = check_file(config_value(source, "path", where), "data.source.path")
    before = _version(path)
    key = _content_key(path, source)
    folder = cache_dir() / "tables"
    x_path, y_path = folder / f"{key}-x.npy", folder / f"{key}-y.npy"
    has_labels = bool(source.get("label_column"))
    if x_path.is_file() and (y_path.is_file() or not has_labels):
        found = _cached(x_path, y_path if has_labels else None)
        if found is not None:
            return x_path, found[1]
        warnings.warn(  # it is only a cache: converting again mends it
            f"the cached conversion of {path} in {folder} is damaged; converting it again",
            stacklevel=2,
        )
        x_path.unlink(missing_ok=True)
        y_path.unlink(missing_ok=True)
    _make_folder(folder)
    labels = _convert(path, source, x_path)
    if _version(path) != before:  # the key would name other bytes than those converted
        x_path.unlink(missing_ok=True)
        raise RunError(f"{path} changed while it was being read; run again once it is written")
    if labels is not None:
        with atomic_open(y_path) as handle:
            np.save(handle, labels)
    return x_path, labels


def _cached(x_path: Path, y_path: Path | None) -> tuple[int, np.ndarray | None] | None:
    """(rows, labels or None) of a cache entry that reads back whole: the .npy header, its
    size (rows x width of its dtype) and one label a row; None when damaged (a partial
    copy, a disk error, a cleaner: a hit is otherwise trusted for every later run)."""
    try:
        shape, dtype = array_header(x_path, "the table cache")
        rows = int(shape[0]) if len(shape) == 2 else -1
        if x_path.stat().st_size != HEADER_BYTES + rows * int(shape[1]) * dtype.itemsize:
            return None
        labels = None if y_path is None else np.load(y_path, allow_pickle=False)
    except (DataFileError, ValueError, OSError, EOFError):
        return None
    if labels is not None and (labels.ndim != 1 or len(labels) != rows):
        return None
    return rows, labels


def _make_folder(folder: Path) -> None:
    """The cache's tables/ folder, refused naming what sets it when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(
            f"cannot make the table cache folder {folder}: {err.strerror or err}; set "
            "GENCOMPILE_CACHE to a writable folder (else $XDG_CACHE_HOME/gencompile or "
            "~/.cache/gencompile is used)"
        ) from None


def _version(path: Path) -> tuple[int, int]:
    """(size, modification time) of a file: what changes when it is rewritten."""
    found = path.stat()
    return found.st_size, found.st_mtime_ns


def load_parquet(source: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """A Parquet source loaded whole: (float64 values, labels as `_as_labels` takes them)."""
    path = check_file(config_value(source, "path", "data.source (parquet)"), "data.source.path")
    width, rows, blocks = _parquet_blocks(path, source)
    ensure_fits(
        rows * width * BYTES_PER_LOADED_VALUE,
        f"data.source.path: {path} ({rows} rows x {width} columns)",
        "use fewer rows, or data.cache: auto or stream to read it batch by batch",
    )
    return _gathered(blocks, source, f"{path}: the Parquet file holds no rows")


def load_csv(source: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """A CSV source loaded whole through the streamed conversion's blocks (the used columns
    parsed a block at a time): memory is the float64 values and one block of cells, however
    long a cell of the file, and loaded and streamed files read alike."""
    path = check_file(config_value(source, "path", "data.source (csv)"), "data.source.path")
    width, blocks = _csv_blocks(path, source)  # checks the header and the columns first
    rows, _ = csv_extent({**source, "path": path})
    ensure_fits(
        rows * width * BYTES_PER_LOADED_VALUE,
        f"data.source.path: {path} (about {rows} rows x {width} columns)",
        "use a smaller CSV file, or data.cache: auto or stream to read it batch by batch",
    )
    return _gathered(blocks, source, f"{path}: no data rows below the header")


def _gathered(
    blocks: Iterator[Block], source: dict, empty: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """A file's (values, raw labels) blocks as one array and its labels; `empty`: the
    error of a file without a row."""
    values, labels = [], _Labels(source)
    for x, raw in blocks:
        values.append(x)
        if raw is not None:
            labels.add(raw)
    if not values:
        raise RunError(empty)
    return np.concatenate(values), (labels.finish() if source.get("label_column") else None)


def _content_key(path: Path, source: dict) -> str:
    """sha256 of the file's bytes and of what is read from it (type, columns, label)."""
    digest = hashlib.sha256(_FORMAT)
    chosen = {k: source.get(k) for k in ("type", "columns", "label_column")}
    digest.update(json.dumps(chosen, sort_keys=True).encode())
    with open_data_file(path, "data.source.path") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()[:40]


def _convert(path: Path, source: dict, x_path: Path) -> np.ndarray | None:
    """Write the features of `path` to `x_path` (atomically) as float32, or as float64 when
    float32 would round them (`CastLoss`: a second pass, for such files only, so that the
    preprocessing sees the values the in-memory loader sees); return the labels."""
    labels, loss = _write(path, source, x_path, np.dtype(np.float32))
    if loss.lossy():
        labels, _ = _write(path, source, x_path, np.dtype(np.float64))
    return labels


def _write(
    path: Path, source: dict, x_path: Path, dtype: np.dtype
) -> tuple[np.ndarray | None, CastLoss]:
    """One conversion pass: the features to `x_path` as `dtype`; (the labels, what a
    float32 cast does to the features)."""
    if source.get("type") == "parquet":
        width, _, blocks = _parquet_blocks(path, source)
    else:
        width, blocks = _csv_blocks(path, source)
    labels = _Labels(source) if source.get("label_column") else None
    origin = f"data.source ({source.get('type')})"
    loss = CastLoss(0, origin)
    rows = 0
    with atomic_open(x_path) as out:
        out.write(_npy_header((0, width), dtype))
        for x, raw in blocks:
            loss.add(x)
            out.write((_float32(x) if dtype == np.float32 else x.astype(dtype)).tobytes())
            if labels is not None and raw is not None:
                labels.add(raw)
            rows += len(x)
        if rows == 0:
            kind = source.get("type")
            raise RunError(
                f"{path}: the Parquet file holds no rows"
                if kind == "parquet"
                else f"{path}: no data rows below the header"
            )
        out.seek(0)
        out.write(_npy_header((rows, width), dtype))
    if labels is None:
        return None, loss
    return _as_labels(labels.finish(), rows, origin, label_place(source)), loss


# --------------------------------------------------------------------------- csv


def _csv_blocks(path: Path, source: dict) -> tuple[int, Iterator[Block]]:
    """(feature count, checked blocks) of a CSV file."""
    header = [name.strip() for name in read_header_row(path, "data.source.path")]
    feature_index, label_index = csv_layout(source, header)
    used = feature_index + ([label_index] if label_index is not None else [])
    names = [header[i] for i in used]

    def blocks() -> Iterator[Block]:
        first = 0
        for cells in _csv_cells(path, len(header), used):
            x = csv_values(cells, names, len(feature_index), str(path), first_row=first)
            first += len(cells)
            yield x, (cells[:, -1] if label_index is not None else None)

    return len(feature_index), blocks()


def _csv_cells(path: Path, width: int, used: list[int]) -> Iterator[np.ndarray]:
    """Stripped string cells of the `used` columns, a block of rows at a time."""
    names = [f"c{i}" for i in range(width)]
    block, done = _block_size(width), 0
    for retry in (False, True):
        try:
            with open_data_file(path, "data.source.path") as handle:  # never a FIFO swapped in
                for cells in _after(_csv_batches(handle, path, names, used, block), done):
                    done += len(cells)
                    yield cells
            return
        except _Straddles as exc:
            if retry:  # not expected once a block holds the longest line
                raise RunError(f"cannot read CSV {path}: {exc.__cause__}") from exc
            # Rare, so paid for only now: a block that holds the longest line, read again
            # from the start past the rows already given.
            block = _block_for_longest_line(path, block)


class _Straddles(Exception):
    """pyarrow met a line longer than its block."""


def _after(blocks: Iterator[np.ndarray], skip: int) -> Iterator[np.ndarray]:
    """`blocks` without their first `skip` rows."""
    for cells in blocks:
        if skip >= len(cells):
            skip -= len(cells)
            continue
        yield cells[skip:]
        skip = 0


def _csv_batches(
    handle: BinaryIO, path: Path, names: list[str], used: list[int], block: int
) -> Iterator[np.ndarray]:
    try:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=block),
            # quoted cells may hold line breaks: without this, pyarrow cuts its blocks at
            # one and fails on a valid file (measured: no slower on a 30 MiB file)
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                include_columns=[names[i] for i in used],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            for rows in _row_slices(batch):
                columns = [c.to_numpy(zero_copy_only=False).astype(str) for c in rows.columns]
                if columns and len(columns[0]):
                    yield np.char.strip(np.stack(columns, axis=1))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "straddl" in str(exc):  # a line longer than the block: `_csv_cells` retries
            raise _Straddles from exc
        # pyarrow names a ragged row by its text alone, a byte that is not UTF-8 not at
        # all: find its line
        found = ragged_row(str(path)) or utf8_problem(path, "data.source.path")
        raise found or RunError(f"cannot read CSV {path}: {exc}") from exc


def _row_slices(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """`batch` in slices of rows whose cells as numpy's fixed-width strings (4 bytes a
    character of the longest cell of each column, in every row) take at most CELL_BYTES:
    one long cell would otherwise widen every row of a block of short ones."""
    widest = sum(int(pc.max(pc.binary_length(column)).as_py() or 0) for column in batch.columns)
    rows = max(1, CELL_BYTES // max(1, 4 * widest))
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _block_size(width: int) -> int:
    """Bytes of CSV text parsed at a time: a block must hold whole rows (pyarrow refuses a
    row that straddles two), so wide files get room for 1 KiB a cell."""
    return max(BLOCK_BYTES, (1 << 10) * width)


def _block_for_longest_line(path: Path, block: int) -> int:
    """A block size that holds the file's longest line, refused beyond MAX_LINE_BYTES."""
    line, length = longest_line(str(path))
    need = length + 2  # and its line end, "\r\n" at most
    if need > MAX_LINE_BYTES:
        raise RunError(
            f"{path} line {line} is {format_bytes(length)} long, more than the "
            f"{format_bytes(MAX_LINE_BYTES)} a line of a streamed CSV may take; shorten or "
            "drop that line, or set data.cache: memory to load the file whole"
        )
    return max(block, need)


# --------------------------------------------------------------------------- parquet


def _parquet_blocks(path: Path, source: dict) -> tuple[int, int, Iterator[Block]]:
    """(feature count, row count, checked blocks) of a Parquet file."""
    types, rows = parquet_schema(path, "data.source.path")
    header = list(types)
    feature_index, label_index = csv_layout(source, header)
    features = [header[i] for i in feature_index]
    for name in features:
        if not is_numeric_type(types[name]):
            raise RunError(
                f"{path}: column {name!r} holds {types[name]}, not numbers; the feature "
                "columns of a parquet source must be numeric (name them in `columns`)"
            )
    label = header[label_index] if label_index is not None else None
    per_row = 8 * (len(features) + 1)

    def blocks() -> Iterator[Block]:
        first = 0
        with open_data_file(path, "data.source.path") as handle:
            reader = pq.ParquetFile(handle)
            used = features + ([label] if label else [])
            for batch in reader.iter_batches(max(1, BLOCK_BYTES // per_row), columns=used):
                yield _parquet_block(batch, features, label, path, first)
                first += batch.num_rows

    return len(features), rows, blocks()


def _parquet_block(
    batch: pa.RecordBatch, features: list[str], label: str | None, path: Path, first: int
) -> Block:
    """Checked float64 features and raw labels of one record batch."""
    for name in [*features, *([label] if label else [])]:
        column = batch.column(name)
        if column.null_count:
            row = first + int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise RunError(
                f"{path}: empty cell in column {name!r} at data row {row + 1}; "
                "fill or drop incomplete rows first"
            )
    columns = [batch.column(n).to_numpy(zero_copy_only=False) for n in features]
    for name, column in zip(features, columns, strict=True):  # int64 IDs beyond 2**53
        refuse_wide_integers(column, 0, f"data.source (parquet): {path}, column {name!r}")
    x = np.stack([column.astype(np.float64) for column in columns], axis=1)
    bad = np.argwhere(~np.isfinite(_float32(x)))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise RunError(
            f"{path}: the value {float(x[row, col])!r} in column {features[col]!r} at data row "
            f"{first + row + 1} {_why_not_finite(x[row, col])}; clean the data first"
        )
    if label is None:
        return x, None
    column = batch.column(label)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return x, column.to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------- labels


class _Labels:
    """Class labels gathered block by block: codes into a vocabulary of the names seen,
    turned at the end into what the in-memory CSV loader gives (numbers, when every name
    is one, else the indices of the sorted names; refused when some are numbers and some
    are not)."""

    def __init__(self, source: dict) -> None:
        self.path = str(source.get("path"))
        self.column = str(source.get("label_column"))
        self.lines = source.get("type") == "csv"  # a Parquet file has rows, not lines
        self.vocabulary: dict[str, int] = {}
        self.codes: list[np.ndarray] = []

    def add(self, raw: np.ndarray) -> None:
        names, inverse = np.unique(np.asarray(raw).astype(str), return_inverse=True)
        # A loop over the block's distinct names, not its examples.
        known = [self.vocabulary.setdefault(str(n), len(self.vocabulary)) for n in names]
        self.codes.append(np.asarray(known, dtype=np.int32)[inverse.reshape(-1)])

    def finish(self) -> np.ndarray:
        codes = np.concatenate(self.codes) if self.codes else np.zeros(0, np.int32)
        names = list(self.vocabulary)
        numbers = np.asarray([is_number(n) for n in names], dtype=bool)
        if numbers.any() and not numbers.all():
            mixed = mixed_labels(
                self.path, self.column, numbers[codes], lambda i: names[codes[i]], self.lines
            )
            if mixed is not None:
                raise mixed
        if numbers.all():
            return np.asarray([float(n) for n in names], dtype=np.float64)[codes]
        rank = np.empty(len(names), dtype=np.int32)
        rank[np.argsort(np.asarray(names))] = np.arange(len(names), dtype=np.int32)
        return rank[codes]


def _npy_header(shape: tuple[int, int], dtype: np.dtype) -> bytes:
    """A version 1.0 .npy header for `shape` of `dtype`, padded to HEADER_BYTES so that it
    can be rewritten in place once the row count is known."""
    text = f"{{'descr': '{dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
    prefix = b"\x93NUMPY\x01\x00"
    room = HEADER_BYTES - len(prefix) - 2
    body = text.ljust(room - 1).encode("latin1") + b"\n"
    if len(body) != room:
        raise RunError(f"a table of shape {shape} is beyond the cache's header")
    return prefix + len(body).to_bytes(2, "little") + body
