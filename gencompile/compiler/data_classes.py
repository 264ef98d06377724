"""How many classes a labelled data file holds, where the compiler can tell cheaply.

A conditional model codes classes 0..num_classes-1; a label beyond would be coded as no
class at all (a one-hot vector of zeros) or fail deep inside TensorFlow. The runtime checks
every label when it reads the data (`runtime.data.load_data`); this check lets `validate`
and `build` say it before a run, for the files it can read quickly: an image folder (its
class folders), a small CSV file (its label column) and a small npz label array. Parquet,
tfrecord and large files are checked when they are read. Labels are counted as the
runtime maps them: class names are the indices of the sorted names, numbers are their
value (so labels 0 and 5 make six classes).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from gencompile.compiler.lowering import Lowering
from gencompile.datafiles import (
    DataFileError,
    check_directory,
    check_file,
    class_folders,
    npz_header,
    read_csv_text,
    read_npz,
)

# Larger files are left to the runtime: `validate` and `build` stay well under a second.
SMALL_FILE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Classes:
    count: int  # the class count the runtime gives the labels
    what: str  # where they were read, in words


def check_data_classes(low: Lowering) -> None:
    """A conditional model's `num_classes` covers the labels of its data file."""
    conditional = getattr(low.spec.model, "conditional", None)
    if conditional is None:
        return
    try:
        found = file_classes(low.spec.data.source)
    except (DataFileError, OSError, ValueError, csv.Error):  # the runtime says what is wrong
        return
    if found is not None and found.count > conditional.num_classes:
        low.report(
            ("model", "conditional", "num_classes"),
            f"the data has {found.count} classes ({found.what}) but num_classes is "
            f"{conditional.num_classes}",
            f"set num_classes: {found.count}",
        )


def file_classes(source: Any) -> Classes | None:
    """The classes of a file source's labels, or None when they are not read here."""
    if source.type == "images":
        return _folder_classes(source.dir)
    if source.type == "csv" and source.label_column is not None:
        return _csv_classes(source.path, source.label_column)
    if source.type == "npz" and source.labels is not None:
        return _npz_classes(source.path, source.labels)
    return None


def _folder_classes(folder: str) -> Classes | None:
    count = len(class_folders(check_directory(folder, "data.source.dir")))
    return Classes(count, f"{count} class folders in {folder}") if count else None


def _csv_classes(path: str, column: str) -> Classes | None:
    if check_file(path, "data.source.path").stat().st_size > SMALL_FILE_BYTES:
        return None
    text = read_csv_text(path, "data.source.path", "use a smaller CSV file")
    rows = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(rows, [])]
    if column not in header:
        return None  # reported by the data shape's check
    at = header.index(column)
    labels = {row[at].strip() for row in rows if len(row) > at}
    if "" in labels:
        return None  # an empty cell, which the runtime refuses
    if len({_whole_numbers({label}) is None for label in labels}) == 2:
        return None  # numbers and names mixed, which the runtime refuses by row
    where = f"column {column!r} of {path}"
    numbers = _whole_numbers(labels)
    if numbers is None:
        return Classes(len(labels), f"{len(labels)} distinct names in {where}")
    if not numbers:
        return None
    return Classes(max(numbers) + 1, f"labels up to {max(numbers)} in {where}")


def _whole_numbers(labels: set[str]) -> list[int] | None:
    """The labels as class indices when every one is a number (None: names); non-whole or
    negative numbers, which the runtime refuses with its own message, give []."""
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return None
    if not all(v >= 0 and v.is_integer() for v in values):
        return []
    return [int(v) for v in values]


def _npz_classes(path: str, key: str) -> Classes | None:
    shape, dtype = npz_header(path, key, "data.source.path")
    size = dtype.itemsize
    for dim in shape:
        size *= dim
    if size > SMALL_FILE_BYTES or dtype.kind not in "biu" or size == 0:
        return None  # large, or not integers: left to the runtime
    [labels] = read_npz(path, [key], "data.source.path")
    if labels.min() < 0:
        return None
    top = int(labels.max())
    return Classes(top + 1, f"labels up to {top} in {path}[{key}]")
