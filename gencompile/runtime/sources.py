"""Where data comes from: the built-in offline data sets and the file sources.

`load_arrays(source, seed)` turns one resolved `data.source` config into raw float32
examples (images as N,H,W,C; vectors as N,D) and int32 labels or None. Every user-facing
failure (missing file, missing key, offline download) is a `RunError` saying what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gencompile.datafiles import (
    BYTES_PER_LOADED_VALUE,
    cell_text,
    check_file,
    eight_bit_image,
    ensure_fits,
    image_listing,
    is_number,
    npz_members,
    parquet_schema,
    read_header_row,
    read_npy,
    read_npz,
)
from gencompile.errors import RunError
from gencompile.runtime import shapes2d
from gencompile.runtime.csv_lines import data_row_line
from gencompile.runtime.preprocessing import CastLoss, refuse_wide_integers, wide_integers

_KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_OFFLINE_HINT = (
    "use a local copy instead: {type: npz, path: ..., key: x}, "
    "{type: images, dir: ..., size: [28, 28]}, or a builtin such as {type: builtin, name: digits}"
)


# --------------------------------------------------------------------------- helpers


def config_value(mapping: dict[str, Any], key: str, where: str) -> Any:
    """Read a key the compiler always fills in; a missing one means a hand-edited config."""
    if not isinstance(mapping, dict):
        raise RunError(f"{where} must be a mapping (got {type(mapping).__name__})")
    if key not in mapping:
        raise RunError(
            f"{where} is missing '{key}' (has: {', '.join(sorted(mapping)) or 'nothing'}); "
            "the compiler fills every data setting, so rebuild the project with `gencompile build`"
        )
    return mapping[key]


def element_shape(shape: tuple[int, ...], origin: str) -> tuple[int, ...]:
    """The shape of one example of an array of `shape`: (N,) and (N,D) are vectors,
    (N,H,W[,C]) images; refused when the array holds no examples or empty ones."""
    if len(shape) == 1:
        elements = (1,)
    elif len(shape) == 3:
        elements = (*shape[1:], 1)
    elif len(shape) in (2, 4):
        elements = tuple(shape[1:])
    else:
        raise RunError(
            f"{origin}: expected shape (N, D) for vectors or (N, H, W[, C]) for images, "
            f"got shape {tuple(shape)}"
        )
    if shape[0] == 0:
        raise RunError(f"{origin}: the data holds no examples (shape {tuple(shape)})")
    if 0 in shape[1:]:
        raise RunError(
            f"{origin}: each example holds no values (shape {tuple(shape)}); "
            "an example needs at least one feature or pixel"
        )
    return elements


def as_float32(
    raw: np.ndarray, origin: str, first: int = 0, place: Callable[[int], str] | None = None
) -> np.ndarray:
    """`raw` as float32, refused when a value is not finite (or overflows float32);
    `first` is the index of raw's first example in the whole data set, `place(i)` where
    raw's example i is in the data (file, record), for the message."""
    x = _float32(raw)
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        if place is None:
            index = [where[0] + first, *where[1:]]
            at = f"example {index[0]} (index {index})"
        else:
            at = f"{place(where[0])}, value {list(where[1:])}"
        raise RunError(f"{origin}: {at} {_why_not_finite(raw[where])}; clean the data first")
    return x


def _as_elements(x: Any, origin: str) -> np.ndarray:
    """Give arrays their element layout: (N,) and (N,D) are vectors, (N,H,W[,C]) images;
    float32, or the raw values where float32 would round them (`CastLoss`): the
    preprocessing is then fitted and applied before the cast."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise RunError(f"{origin}: expected numbers, got an array of dtype {x.dtype}")
    elements = element_shape(x.shape, origin)
    x = x.reshape(x.shape[0], *elements)
    x32 = as_float32(x, origin)
    return x if cast_loss(x, origin).lossy() else x32


def cast_loss(x: np.ndarray, origin: str) -> CastLoss:
    """What the float32 cast does to `x` in the element layout (images: global)."""
    loss = CastLoss(None if x.ndim == 4 else 0, origin)
    loss.add(x)
    return loss


def _float32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf, reported
        return x.astype(np.float32)


def _why_not_finite(value: Any) -> str:
    value = float(value)
    if np.isnan(value):
        return "is NaN"
    if np.isinf(value):
        return "is infinite"
    return f"is {value:g}, beyond float32's range (about ±3.4e38)"


def _as_labels(
    y: Any, n: int, origin: str, place: Callable[[int], str] | None = None
) -> np.ndarray:
    """Check labels are one non-negative integer per example and return them as int32;
    `place(i)` says where label i is in the data (file, column, row), for the message."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise RunError(f"{origin}: expected {n} labels (one per example), got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise RunError(f"{origin}: labels must be integers, got dtype {y.dtype}")
    where = place or (lambda i: f"label {i}")
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            raise RunError(
                f"{origin}: the label {float(y[i])!r} at {where(i)} is not a whole number; "
                "labels must be whole numbers (class indices 0, 1, 2, ...): fix that row"
            )
    if y.size and y.min() < 0:
        i = int(np.argmax(y < 0))
        raise RunError(
            f"{origin}: the label {_label_text(y[i])} at {where(i)} is negative; labels must be "
            ">= 0 (class indices 0, 1, 2, ...): fix that row, or renumber the classes from 0"
        )
    return y.astype(np.int32)


def _label_text(value: Any) -> str:
    """A label as its file shows it: -1 rather than -1.0."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def label_place(source: dict) -> Callable[[int], str]:
    """Where label i (from 0) of a file source is, for messages: file, column, row."""
    kind, path = source.get("type"), str(source.get("path"))
    column = source.get("label_column")
    if kind == "csv":
        return lambda i: (
            f"{path}, column {column!r}, data row {i + 1} (line {data_row_line(path, i)})"
        )
    if kind == "parquet":
        return lambda i: f"{path}, column {column!r}, data row {i + 1}"
    if kind == "npz":
        return lambda i: f"{path}, array {source.get('labels')!r}, index {i}"
    return lambda i: f"label {i}"


def mixed_labels(
    path: str, column: str, numbers: np.ndarray, values: Callable[[int], str], line: bool
) -> RunError | None:
    """The error for a label column holding both numbers and text (`numbers` marks the
    cells that parse as a number; `values(i)` is cell i's text): numbering the text would
    silently renumber every class. Names the first cell of the rarer kind; None when the
    column is all numbers or all names."""
    count = int(np.count_nonzero(numbers))
    if count in (0, len(numbers)):
        return None
    odd_ones_are_text = len(numbers) - count <= count
    i = int(np.argmin(numbers) if odd_ones_are_text else np.argmax(numbers))
    kind = "numbers and the text" if odd_ones_are_text else "class names and the number"
    where = f"data row {i + 1}" + (f", line {data_row_line(path, i)}" if line else "")
    return RunError(
        f"{path}: column {column!r} holds {kind} {cell_text(values(i))} ({where}): a label column "
        "is either all class indices or all class names; fix or drop that row"
    )


# --------------------------------------------------------------------------- builtins


def _ring8_centers(radius: float) -> np.ndarray:
    angles = 2.0 * np.pi * np.arange(8) / 8.0
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def _grid25_centers() -> np.ndarray:
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def _mixture(centers: np.ndarray, n: int, std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample an equal-weight isotropic Gaussian mixture; the label is the mode index."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centers), size=n)
    x = centers[labels].astype(np.float64) + std * rng.standard_normal((n, centers.shape[1]))
    return x, labels


def _digits(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[..., None], bunch.target


def _moons(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    where = "data.source (moons)"
    return make_moons(
        n_samples=int(config_value(source, "n_samples", where)),
        noise=config_value(source, "noise", where),
        random_state=seed,
    )


def _circles(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    where = "data.source (circles)"
    return make_circles(
        n_samples=int(config_value(source, "n_samples", where)),
        noise=config_value(source, "noise", where),
        factor=config_value(source, "factor", where),
        random_state=seed,
    )


def _swiss_roll(source: dict, seed: int) -> tuple[np.ndarray, None]:
    from sklearn.datasets import make_swiss_roll

    where = "data.source (swiss_roll)"
    points, _ = make_swiss_roll(
        n_samples=int(config_value(source, "n_samples", where)),
        noise=config_value(source, "noise", where),
        random_state=seed,
    )
    return points[:, [0, 2]], None


def _ring8(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    where = "data.source (ring8)"
    centers = _ring8_centers(float(config_value(source, "radius", where)))
    n, std = (
        int(config_value(source, "n_samples", where)),
        float(config_value(source, "std", where)),
    )
    return _mixture(centers, n, std, seed)


def _grid25(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    where = "data.source (grid25)"
    n, std = (
        int(config_value(source, "n_samples", where)),
        float(config_value(source, "std", where)),
    )
    return _mixture(_grid25_centers(), n, std, seed)


def _blobs(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    where = "data.source (blobs)"
    return make_blobs(
        n_samples=int(config_value(source, "n_samples", where)),
        n_features=int(config_value(source, "n_features", where)),
        centers=config_value(source, "centers", where),
        cluster_std=config_value(source, "cluster_std", where),
        random_state=seed,
    )


def _shapes2d(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, shape_labels, _ = shapes2d.shapes2d(
        int(config_value(source, "n_samples", "data.source (shapes2d)")), seed
    )
    return images, shape_labels


_BUILTINS: dict[str, Callable[[dict, int], tuple[np.ndarray, np.ndarray | None]]] = {
    "digits": _digits,
    "moons": _moons,
    "circles": _circles,
    "swiss_roll": _swiss_roll,
    "ring8": _ring8,
    "grid25": _grid25,
    "blobs": _blobs,
    "shapes2d": _shapes2d,
}


def builtin_names() -> list[str]:
    """Names accepted by `{type: builtin, name: ...}`; all generated offline."""
    return sorted(_BUILTINS)


def mode_centers(name: str, source: dict) -> np.ndarray:
    """Centres of a toy mixture's modes, in data units, indexed like its labels."""
    if name == "ring8":
        return _ring8_centers(float(config_value(source, "radius", "data.source (ring8)")))
    if name == "grid25":
        return _grid25_centers()
    raise RunError(
        f"mode centres are known only for the toy mixtures ring8 and grid25, not {name!r}"
    )


def data_mode_centers(source: dict) -> np.ndarray:
    """Centres of the modes a toy mixture's data holds: all of them, or those of
    data.source.classes (a mode's label is its index, so class k is centre k)."""
    centres = mode_centers(config_value(source, "name", "data.source (builtin)"), source)
    classes = source.get("classes")
    return centres if classes is None else centres[np.unique(np.asarray(classes, int))]


def builtin_factors(source: dict, seed: int) -> tuple[tuple[str, ...], np.ndarray] | None:
    """(factor names, int32 factor indices) of the examples `_load_builtin` reads from
    `source`, for a built-in data set with known generative factors (shapes2d); else None."""
    if source.get("type") != "builtin" or source.get("name") != "shapes2d":
        return None
    codes = shapes2d.factors(int(config_value(source, "n_samples", "data.source (shapes2d)")), seed)
    kept = subset_indices(len(codes), codes[:, 0], source)  # the label is the shape
    return shapes2d.FACTOR_NAMES, codes if kept is None else codes[kept]


# --------------------------------------------------------------------------- sources


def _load_builtin(source: dict, seed: int) -> tuple[Any, Any]:
    name = config_value(source, "name", "data.source (builtin)")
    if name not in _BUILTINS:
        raise RunError(
            f"unknown builtin dataset {name!r} (data.source.name); "
            f"available: {', '.join(builtin_names())}"
        )
    x, y = _BUILTINS[name](source, seed)
    kept = subset_indices(len(x), None if y is None else np.asarray(y), source)
    if kept is None:
        return x, y
    return np.asarray(x)[kept], None if y is None else np.asarray(y)[kept]


SUBSET_SEED = 0  # fraction's draw is fixed: the same examples whatever the run's seed


def subset_indices(n: int, labels: np.ndarray | None, source: dict) -> np.ndarray | None:
    """The sorted indices, among a built-in's n generated examples, of those the run reads:
    the examples of data.source.classes (labels keep their values), then a fixed share of
    them (data.source.fraction), stratified by class when there are labels. None: all of
    them. The one definition of the subset, for the examples and for their factors."""
    classes, fraction = source.get("classes"), source.get("fraction")
    kept = np.arange(n)
    if classes is not None:
        if labels is None:
            raise RunError("data.source.classes: this data set has no labels to keep classes of")
        kept = kept[np.isin(labels, np.asarray(classes))]
        if not len(kept):
            raise RunError(
                f"data.source.classes {list(classes)}: no example has one of these labels"
            )
    if fraction is not None and fraction < 1:
        kept = kept[fraction_indices(len(kept), None if labels is None else labels[kept], fraction)]
    return None if classes is None and (fraction is None or fraction >= 1) else kept


def fraction_indices(n: int, labels: np.ndarray | None, fraction: float) -> np.ndarray:
    """The sorted indices of `fraction`'s examples among n: round(fraction x n) of them,
    drawn by scikit-learn's `train_test_split` with a fixed seed (stratified by `labels`
    when given, so each class keeps its share; at least one example of each class)."""
    from sklearn.model_selection import train_test_split

    count = round(fraction * n)
    if count < 1:
        raise RunError(
            f"data.source.fraction {fraction:g} of {n} examples keeps none; raise fraction"
        )
    classes = 0 if labels is None else len(np.unique(labels))
    if count < classes:
        raise RunError(
            f"data.source.fraction {fraction:g} keeps {count} of {n} examples, fewer than "
            f"the {classes} classes; raise fraction to at least {classes / n:.3g}"
        )
    if count == n:
        return np.arange(n)
    kept, _ = train_test_split(
        np.arange(n), train_size=count, stratify=labels, random_state=SUBSET_SEED
    )
    return np.sort(kept)


def _load_npz(source: dict, seed: int) -> tuple[Any, Any]:
    where = "data.source (npz)"
    path = config_value(source, "path", where)
    key, label_key = config_value(source, "key", where), config_value(source, "labels", where)
    held = npz_members(path, "data.source.path")
    for wanted, field in ((key, "key"), (label_key, "labels")):
        if wanted is not None and wanted not in held:
            raise RunError(
                f"{path} has no array named {wanted!r} (data.source.{field}); "
                f"it holds: {', '.join(held) or 'nothing'}"
            )
    keys = [key] if label_key is None else [key, label_key]
    arrays = read_npz(path, keys, "data.source.path")
    return arrays[0], arrays[1] if label_key is not None else None


def _load_npy(source: dict, seed: int) -> tuple[Any, None]:
    return read_npy(config_value(source, "path", "data.source (npy)"), "data.source.path"), None


_COLOR_MODES = {"grayscale": "L", "rgb": "RGB"}


def image_settings(source: dict) -> tuple[int, int, str]:
    """(height, width, color) of an images source, checked."""
    where = "data.source (images)"
    size, color = config_value(source, "size", where), config_value(source, "color", where)
    if color not in _COLOR_MODES:
        raise RunError(f"data.source.color must be one of {sorted(_COLOR_MODES)}, got {color!r}")
    height, width = (int(v) for v in size)
    return height, width, color


def decode_image(file: Path, height: int, width: int, color: str) -> np.ndarray:
    """One image file as uint8 (height, width, channels): 16-bit grey pixels divided by
    256 as TensorFlow's decoder does (`eight_bit_image`), converted to the color mode and
    resized bilinearly by PIL. Loaded and streamed folders both decode here, so their
    values (and the fingerprint) are the same bytes."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(check_file(file, "data.source.dir")) as image:
            image = eight_bit_image(image, file).convert(_COLOR_MODES[color])
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise RunError(
            f"cannot read image {file}: {exc}; replace or remove the file, or export it again"
        ) from exc
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _load_images(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    height, width, color = image_settings(source)
    root, names, labels = image_listing(config_value(source, "dir", "data.source (images)"))
    channels = 1 if color == "grayscale" else 3
    ensure_fits(
        len(names) * height * width * channels * BYTES_PER_LOADED_VALUE,
        f"data.source.dir: {len(names)} images of {height}x{width}x{channels} in {root}",
        "use fewer images or a smaller data.source.size",
    )
    # one decode per file: I/O, not a sample loop
    x = np.stack([decode_image(root / name, height, width, color) for name in names])
    return x, labels


def csv_layout(source: dict, header: list[str]) -> tuple[list[int], int | None]:
    """(indices of the feature columns, index of the label column or None) in a CSV's
    stripped `header`, refused when the header or the spec's column names do not fit."""
    where = "data.source (csv)"
    path = config_value(source, "path", where)
    columns, label_column = (
        config_value(source, "columns", where),
        config_value(source, "label_column", where),
    )
    if not header or not any(header):
        raise RunError(f"{path}: a header row naming the columns is required")
    if len(set(header)) != len(header):
        raise RunError(f"{path}: the header names a column twice: {header}")

    def index_of(name: str, field: str) -> int:
        if name not in header:
            raise RunError(f"{path} has no column {name!r} ({field}); columns: {header}")
        return header.index(name)

    label_index = index_of(label_column, "data.source.label_column") if label_column else None
    if columns is None:
        feature_index = [i for i in range(len(header)) if i != label_index]
    else:
        feature_index = [index_of(c, "data.source.columns") for c in columns]
    if not feature_index:
        raise RunError(f"{path}: no feature columns left besides the label column")
    return feature_index, label_index


def csv_values(
    cells: np.ndarray, names: list[str], features: int, path: str, first_row: int = 0
) -> np.ndarray:
    """The float64 values of the first `features` columns of stripped string `cells` (the
    used columns, named `names`), refused at the first empty, non-numeric or non-finite
    cell, named by column and line; `first_row` is the data row index of cells' first row."""
    empty = np.argwhere(cells == "")
    if empty.size:
        row, col = (int(i) for i in empty[0])
        row += first_row
        raise RunError(
            f"{path}: empty cell in column {names[col]!r} at data row {row + 1} "
            f"(line {data_row_line(path, row)}); fill or drop incomplete rows first"
        )
    values = cells[:, :features]
    try:
        x = values.astype(np.float64)
    except ValueError:
        bad = np.argwhere(~np.vectorize(is_number, otypes=[bool])(values))[0]
        row = int(bad[0]) + first_row
        raise RunError(
            f"{path}: non-numeric value {cell_text(str(values[tuple(bad)]))} in column "
            f"{names[bad[1]]!r} at data row {row + 1} (line {data_row_line(path, row)}); "
            "fix that cell, or list only numeric columns in data.source.columns"
        ) from None
    bad = np.argwhere(~np.isfinite(_float32(x)))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        line = data_row_line(path, row + first_row)
        raise RunError(
            f"{path}: the value {cell_text(str(values[row, col]))} in column "
            f"{names[col]!r} at data row {row + first_row + 1} (line {line}) "
            f"{_why_not_finite(x[row, col])}; clean the data first"
        )
    _refuse_wide_integer_cells(values, x, names, path)
    return x


def _refuse_wide_integer_cells(
    values: np.ndarray, x: np.ndarray, names: list[str], path: str
) -> None:
    """Refuse a column of integers beyond 2**53 (IDs) whose float64 values would merge:
    read as int64 when every cell is one, checked as an int64 array would be."""
    for col in np.flatnonzero((np.abs(x) > 2**53).any(axis=0)):
        origin = f"data.source (csv): {path}, column {names[col]!r}"
        try:
            whole = values[:, col].astype(np.int64)
        except ValueError:  # decimals, exponents: read as float64, as written
            continue
        except OverflowError:  # integers beyond int64 (20-digit IDs): Python's own ints
            _refuse_merged_big_integers(values[:, col], x[:, col], origin)
            continue
        refuse_wide_integers(whole, 0, origin)


def _refuse_merged_big_integers(cells: np.ndarray, read: np.ndarray, origin: str) -> None:
    """A column of integers too wide even for int64 whose distinct values float64 merges."""
    try:
        exact = {int(str(cell).strip()) for cell in cells}
    except ValueError:  # not all integers: a column of numbers, read as written
        return
    if len(exact) > len(np.unique(read)):
        raise wide_integers(origin, max(exact, key=abs))


def column_names(source: dict) -> list[str] | None:
    """Names of the features a CSV or Parquet source yields, in order; None for sources
    without names."""
    kind = source.get("type")
    if kind not in ("csv", "parquet"):
        return None
    where = f"data.source ({kind})"
    path = config_value(source, "path", where)
    if kind == "parquet":
        header = list(parquet_schema(path, where)[0])
    else:
        header = [name.strip() for name in read_header_row(path, where)]
    columns, label = config_value(source, "columns", where), source.get("label_column")
    return list(columns) if columns is not None else [c for c in header if c != label]


def _load_keras(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    name = config_value(source, "name", "data.source (keras)")
    if name not in _KERAS_DATASETS:
        raise RunError(
            f"unknown keras dataset {name!r} (data.source.name); "
            f"available: {', '.join(_KERAS_DATASETS)}"
        )
    try:
        (x_a, y_a), (x_b, y_b) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # keras wraps network failures in a bare Exception
        raise RunError(
            f"could not download keras dataset {name!r} ({exc}); this machine looks offline "
            f"(keras fetches it on first use into ~/.keras/datasets); {_OFFLINE_HINT}"
        ) from exc
    return np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b]).reshape(-1)


# The sources this module reads whole; `data.load_arrays` adds csv and parquet (`tables`,
# which imports pyarrow) and tfrecord (`records`), whose modules build on this one.
LOADERS: dict[str, Callable[[dict, int], tuple[Any, Any]]] = {
    "builtin": _load_builtin,
    "npz": _load_npz,
    "npy": _load_npy,
    "images": _load_images,
    "keras": _load_keras,
}


def checked_arrays(
    raw_x: Any, raw_y: Any, kind: str, source: dict | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """What a loader read as raw float32 x (images N,H,W,C; the raw values when float32
    would round them, `_as_elements`) and int32 labels or None,
    checked (finite values, one label an example); a bad label is named by its place in
    `source`'s file."""
    # an array file is named as streaming names it (`StreamedArray`); tables name their
    # cells by path, column and line themselves
    path = (source or {}).get("path") if kind in ("npy", "npz") else None
    origin = f"data.source ({Path(str(path)) if path else kind})"
    x = _as_elements(raw_x, origin)
    place = None if source is None else label_place(source)
    y = None if raw_y is None else _as_labels(raw_y, x.shape[0], origin, place)
    return x, y
