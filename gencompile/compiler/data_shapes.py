"""What the compiler knows about the data without loading it (and without TensorFlow).

Built-in and keras data sets have known shapes; file sources are inspected cheaply (npy
headers, csv header row, Parquet footer, image folder layout).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gencompile.compiler.plan import Shape
from gencompile.data_paths import data_file
from gencompile.datafiles import (
    DataFileError,
    array_header,
    check_file,
    is_numeric_type,
    npz_header,
    npz_members,
    parquet_schema,
    read_header_row,
    record_files,
)
from gencompile.spec.data import DataSpec, TfrecordSource
from gencompile.spec.diagnostics import did_you_mean
from gencompile.tfrecords import FeatureInfo, first_example

SHAPES2D_SHAPE = (24, 24, 1)  # `runtime.shapes2d.SIZE` square, grey
IMAGE_SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
}


@dataclass(frozen=True)
class DataShape:
    shape: Shape
    kind: str  # "image" | "vector" | "text" (a token stream of any length)

    @staticmethod
    def of(shape: Shape) -> DataShape:
        """Examples of an array source: scalars are 1-vectors, (H, W) images get a channel."""
        if len(shape) == 0:
            shape = (1,)
        if len(shape) == 2:
            shape = (*shape, 1)
        return DataShape(tuple(shape), "image" if len(shape) == 3 else "vector")


class DataShapeError(ValueError):
    """The data's shape cannot be determined (missing file, unreadable header, ...);
    `field` is the key under data.source, or the path of keys below it."""

    def __init__(self, field: str | tuple[str, ...], message: str, hint: str | None = None):
        super().__init__(message)
        self.field, self.hint = field, hint

    @property
    def path(self) -> tuple[str, ...]:
        """Where in the spec: ("data", "source", ...)."""
        below = (self.field,) if isinstance(self.field, str) else self.field
        return ("data", "source", *below)


def _existing(path: str, field: str) -> Path:
    """A data file that exists and is a regular file (FIFOs and devices would hang)."""
    resolved = Path(data_file(path, field)).expanduser()  # as the runtime reads it
    if not resolved.exists():
        raise DataShapeError(
            field, f"file not found: {path}", "paths are relative to the working directory"
        )
    try:
        return check_file(resolved, f"data.source.{field}")
    except DataFileError as err:
        raise DataShapeError(field, str(err).removeprefix(f"data.source.{field}: ")) from None


def _element_shape(shape: tuple[int, ...], path: Path) -> Shape:
    if not shape:
        raise DataShapeError("path", f"{path} holds a single number, not an array of examples")
    if 0 in shape[1:]:
        raise DataShapeError(
            "path",
            f"{path} holds arrays of shape {tuple(shape)}: each example has no values",
            "an example needs at least one feature or pixel",
        )
    return tuple(shape[1:])


def _npy_shape(path: Path) -> Shape:
    shape, _ = array_header(path, "data.source.path")
    return _element_shape(shape, path)


def _npz_shape(path: Path, key: str) -> Shape:
    keys = npz_members(path, "data.source.path")
    if key not in keys:
        raise DataShapeError(
            "key", f"no array '{key}' in {path}; it holds {', '.join(sorted(keys))}"
        )
    shape, _ = npz_header(path, key, "data.source.path")  # the header only, not the data
    return _element_shape(shape, path)


def _csv_shape(path: Path, columns: list[str] | None, label_column: str | None) -> Shape:
    header = read_header_row(path, "data.source.path")
    if not header:
        raise DataShapeError("path", f"{path} is empty: a csv source needs a header row")
    if columns is None:
        features = [c for c in header if c != label_column]
        if not features:
            raise DataShapeError("path", f"{path} has no feature columns besides the labels")
        return (len(features),)
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataShapeError("columns", f"no column {missing[0]!r} in {path}; it has {header}")
    return (len(columns),)


def _parquet_shape(path: Path, columns: list[str] | None, label_column: str | None) -> Shape:
    """From the Parquet footer's schema; no data is read."""
    types, _ = parquet_schema(path, "data.source.path")
    if label_column is not None and label_column not in types:
        raise DataShapeError(
            "label_column", f"no column {label_column!r} in {path}; it has {list(types)}"
        )
    if columns is None:
        columns = [c for c in types if c != label_column]
        if not columns:
            raise DataShapeError("path", f"{path} has no feature columns besides the labels")
    missing = [c for c in columns if c not in types]
    if missing:
        raise DataShapeError("columns", f"no column {missing[0]!r} in {path}; it has {list(types)}")
    wrong = [c for c in columns if not is_numeric_type(types[c])]
    if wrong:
        raise DataShapeError(
            "columns",
            f"column {wrong[0]!r} of {path} holds {types[wrong[0]]}, not numbers",
            "name the numeric feature columns in data.source.columns",
        )
    return (len(columns),)


def _record_feature(
    features: dict[str, FeatureInfo], name: str, field: tuple[str, ...], shard: Path
) -> FeatureInfo:
    if name not in features:
        held = ", ".join(sorted(features)) or "no features"
        raise DataShapeError(
            field,
            f"no feature {name!r} in the first record of {shard}; it holds: {held}",
            did_you_mean(name, sorted(features)) or "name a feature the records hold",
        )
    return features[name]


def _tfrecord_shape(source: TfrecordSource) -> Shape:
    """From the first record of the first shard: the features the spec names exist and
    hold what it says (the runtime checks every record when it reads them)."""
    try:
        shards = record_files(data_file(source.files, "files"))
    except DataFileError as err:
        raise DataShapeError(
            "files",
            str(err).removeprefix("data.source.files: "),
            "check the pattern: * matches within a folder, ** across folders",
        ) from None
    features, _ = first_example(shards[0], source.compression)
    x, where = source.features.x, ("features", "x")
    found = _record_feature(features, x.name, (*where, "name"), shards[0])
    label = source.features.label
    if label is not None:
        held = _record_feature(features, label, ("features", "label"), shards[0])
        if held.kind != "int64" or held.count != 1:
            raise DataShapeError(
                ("features", "label"),
                f"feature {label!r} holds {held.count} {held.kind} values; a label is one "
                "int64 class index",
            )
    if x.type == "image":
        if found.kind != "bytes" or found.count != 1:
            raise DataShapeError(
                (*where, "type"),
                f"feature {x.name!r} holds {found.count} {found.kind} values, not one encoded "
                "image",
                "read numbers with {type: values, shape: [...]}",
            )
        return (*x.size, 1 if x.color == "grayscale" else 3)
    kind = "float" if x.dtype == "float32" else "int64"
    if found.kind != kind:
        right = {"float": "dtype: float32", "int64": "dtype: int64"}.get(found.kind)
        raise DataShapeError(
            (*where, "dtype"),
            f"feature {x.name!r} holds {found.kind} values, not {x.dtype}",
            f"set {right}" if right else "an encoded image is read with {type: image, size: ...}",
        )
    needed = math.prod(x.shape)
    if found.count != needed:
        raise DataShapeError(
            (*where, "shape"),
            f"feature {x.name!r} holds {found.count} values an example, but shape "
            f"{list(x.shape)} needs {needed}",
            f"give a shape of {found.count} values, e.g. [{found.count}]",
        )
    return tuple(x.shape)


def infer_data_shape(data: DataSpec) -> DataShape:
    """Shape of one example (no batch axis) and whether it is an image or a vector."""
    try:
        return _infer(data)
    except DataShapeError:
        raise
    except DataFileError as err:
        text = str(err)
        field = "files" if text.startswith("data.source.files: ") else "path"
        raise DataShapeError(field, text.removeprefix(f"data.source.{field}: ")) from None
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as err:
        path = getattr(data.source, "path", None) or getattr(data.source, "files", "")
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise DataShapeError(
            "path", f"cannot read {path}: {reason}", f"is it a {data.source.type} file?"
        ) from None


def _infer(data: DataSpec) -> DataShape:
    source = data.source
    if source.type == "text":
        _existing(source.path, "path")
        return DataShape((None,), "text")
    if source.type == "builtin":
        if source.name == "arithmetic":
            return DataShape((None,), "text")
        if source.name == "digits":
            return DataShape((8, 8, 1), "image")
        if source.name == "shapes2d":
            return DataShape(SHAPES2D_SHAPE, "image")
        if source.name == "blobs":
            return DataShape((int(source.arguments()["n_features"]),), "vector")
        return DataShape((2,), "vector")
    if source.type == "keras":
        return DataShape(IMAGE_SHAPES[source.name], "image")
    if source.type == "images":
        return DataShape((*source.size, 1 if source.color == "grayscale" else 3), "image")
    if source.type == "tfrecord":
        return DataShape.of(_tfrecord_shape(source))
    if source.type == "npy":
        return DataShape.of(_npy_shape(_existing(source.path, "path")))
    if source.type == "npz":
        return DataShape.of(_npz_shape(_existing(source.path, "path"), source.key))
    if source.type == "csv":
        return DataShape.of(
            _csv_shape(_existing(source.path, "path"), source.columns, source.label_column)
        )
    if source.type == "parquet":
        return DataShape.of(
            _parquet_shape(_existing(source.path, "path"), source.columns, source.label_column)
        )
    raise DataShapeError("type", f"unknown source type {source.type}")
