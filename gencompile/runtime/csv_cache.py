"""A large CSV, converted once into float32 .npy files that stream like an npy source.

One pass with pyarrow's streaming CSV reader checks the cells block by block (the messages
of the in-memory loader, naming column and line), maps class names to indices as the
in-memory loader does (numbers as they are, else the sorted names' positions) and appends
the values to a float32 .npy file. The files live in the cache folder ($GENCOMPILE_CACHE,
else ~/.cache/gencompile), named by the sha256 of the CSV's bytes and the columns read, and
are written atomically: a second run on the same file skips the conversion, a changed file
gets new ones. Memory: one block of cells and 4 bytes an example of labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from gencompile.datafiles import check_file, open_data_file, read_header_row
from gencompile.errors import RunError
from gencompile.files import atomic_open
from gencompile.runtime.metrics.features import cache_dir
from gencompile.runtime.sources import _as_labels, _is_number, config_value, csv_layout, csv_values

BLOCK_BYTES = 8 << 20  # CSV text parsed at a time
HEADER_BYTES = 128  # room reserved for the .npy header, rewritten once the row count is known
_FORMAT = b"gencompile-csv-cache-v1"


def cached_csv(source: dict) -> tuple[Path, np.ndarray | None]:
    """(the float32 .npy of a CSV source's features, its int32 labels or None), converting
    the CSV on first use."""
    path = check_file(config_value(source, "path", "data.source (csv)"), "data.source.path")
    key = _content_key(path, source)
    folder = cache_dir() / "csv"
    x_path, y_path = folder / f"{key}-x.npy", folder / f"{key}-y.npy"
    has_labels = bool(source.get("label_column"))
    if x_path.is_file() and (y_path.is_file() or not has_labels):
        return x_path, np.load(y_path) if has_labels else None
    folder.mkdir(parents=True, exist_ok=True)
    labels = _convert(path, source, x_path)
    if labels is not None:
        with atomic_open(y_path) as handle:
            np.save(handle, labels)
    return x_path, labels


def _content_key(path: Path, source: dict) -> str:
    """sha256 of the CSV's bytes and of what is read from it (columns, label column)."""
    digest = hashlib.sha256(_FORMAT)
    chosen = {"columns": source.get("columns"), "label_column": source.get("label_column")}
    digest.update(json.dumps(chosen, sort_keys=True).encode())
    with open_data_file(path, "data.source.path") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()[:40]


def _convert(path: Path, source: dict, x_path: Path) -> np.ndarray | None:
    """Write the features of `path` to `x_path` (atomically); return the labels."""
    header = [name.strip() for name in read_header_row(path, "data.source (csv)")]
    feature_index, label_index = csv_layout(source, header)
    used = feature_index + ([label_index] if label_index is not None else [])
    names = [header[i] for i in used]
    labels = _Labels() if label_index is not None else None
    rows = 0
    with atomic_open(x_path) as out:
        out.write(_npy_header((0, len(feature_index))))
        for cells in _blocks(path, len(header), used):
            x = csv_values(cells, names, len(feature_index), str(path), first_row=rows)
            out.write(x.astype(np.float32).tobytes())
            if labels is not None:
                labels.add(cells[:, -1])
            rows += len(cells)
        if rows == 0:
            raise RunError(f"{path}: no data rows below the header")
        out.seek(0)
        out.write(_npy_header((rows, len(feature_index))))
    return None if labels is None else _as_labels(labels.finish(), rows, "data.source (csv)")


def _blocks(path: Path, width: int, used: list[int]) -> Iterator[np.ndarray]:
    """Stripped string cells of the `used` columns, a block of rows at a time."""
    names = [f"c{i}" for i in range(width)]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                include_columns=[names[i] for i in used],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            columns = [c.to_numpy(zero_copy_only=False).astype(str) for c in batch.columns]
            if columns and len(columns[0]):
                yield np.char.strip(np.stack(columns, axis=1))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read CSV {path}: {exc}") from exc


class _Labels:
    """Class labels gathered block by block: codes into a vocabulary of the names seen,
    turned at the end into what the in-memory loader gives (numbers, or sorted indices)."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.codes: list[np.ndarray] = []

    def add(self, raw: np.ndarray) -> None:
        names, inverse = np.unique(raw, return_inverse=True)
        # A loop over the block's distinct names, not its examples.
        known = [self.vocabulary.setdefault(str(n), len(self.vocabulary)) for n in names]
        self.codes.append(np.asarray(known, dtype=np.int32)[inverse.reshape(-1)])

    def finish(self) -> np.ndarray:
        codes = np.concatenate(self.codes) if self.codes else np.zeros(0, np.int32)
        names = list(self.vocabulary)
        if all(_is_number(n) for n in names):
            return np.asarray([float(n) for n in names], dtype=np.float64)[codes]
        rank = np.empty(len(names), dtype=np.int32)
        rank[np.argsort(np.asarray(names))] = np.arange(len(names), dtype=np.int32)
        return rank[codes]


def _npy_header(shape: tuple[int, int]) -> bytes:
    """A version 1.0 .npy header for float32 `shape`, padded to HEADER_BYTES so that it can
    be rewritten in place once the row count is known."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    prefix = b"\x93NUMPY\x01\x00"
    room = HEADER_BYTES - len(prefix) - 2
    body = text.ljust(room - 1).encode("latin1") + b"\n"
    if len(body) != room:
        raise RunError(f"a CSV of shape {shape} is beyond the cache's header")
    return prefix + len(body).to_bytes(2, "little") + body
