"""Data loading for generated projects: sources -> arrays -> preprocessing -> tf.data.

Generated training code calls `load_data(config, seed)` with the compiler's fully resolved
data config (every default filled in), so this module invents no defaults of its own. The
pipeline is the same for every source:

1. `load_arrays` reads raw float32 `x` (images as N,H,W,C; vectors as N,D) and int32 labels;
2. a seeded permutation holds out the validation split;
3. a `Preprocessor` (an affine map, so densities convert exactly) is fitted on the training
   split only and applied to both splits;
4. both splits become batched, prefetched `tf.data` pipelines; only the training one is
   shuffled (seeded, reshuffled each epoch) and augmented (keras preprocessing layers).

Augmentation layers draw from their own seeded `SeedGenerator`s. Their order of draws is
fixed once `tf.config.experimental.enable_op_determinism()` is on (`repro.set_seed` turns it
on): tf.data then runs the stateful map in order, so two runs with one seed are identical.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError

__all__ = [
    "DataBundle",
    "Preprocessor",
    "builtin_names",
    "fingerprint",
    "load_arrays",
    "load_data",
    "mode_centers",
]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_OFFLINE_HINT = (
    "use a local copy instead: {type: npz, path: ..., key: x}, "
    "{type: images, dir: ..., size: [28, 28]}, or a builtin such as {type: builtin, name: digits}"
)
# Keys that say where data lives, not what it is: left out of the fingerprint so that the
# same bytes read from another directory (another machine, `reproduce`) hash the same.
_LOCATION_KEYS = ("path", "dir")
_FINGERPRINT_VERSION = b"gencompile-data-v1"


# --------------------------------------------------------------------------- helpers


def _get(mapping: dict[str, Any], key: str, where: str) -> Any:
    """Read a key the compiler always fills in; a missing one means a hand-edited config."""
    if not isinstance(mapping, dict):
        raise RunError(f"{where} must be a mapping (got {type(mapping).__name__})")
    if key not in mapping:
        raise RunError(
            f"{where} is missing '{key}' (has: {', '.join(sorted(mapping)) or 'nothing'}); "
            "the compiler fills every data setting, so rebuild the project with `gencompile build`"
        )
    return mapping[key]


def _resolve(path: str | Path, where: str, *, directory: bool = False) -> Path:
    """Resolve a user path against the working directory and fail clearly when it is absent."""
    resolved = Path(path).expanduser().resolve()
    kind = "directory" if directory else "file"
    if not resolved.exists():
        raise RunError(
            f"data {kind} not found: {resolved} ({where}={str(path)!r}); check the path "
            f"(relative paths are resolved against the current directory, {Path.cwd()})"
        )
    if directory and not resolved.is_dir():
        raise RunError(f"{where} must be a directory of images, but {resolved} is a file")
    if not directory and not resolved.is_file():
        raise RunError(f"{where} must be a file, but {resolved} is a directory")
    return resolved


def _as_elements(x: Any, origin: str) -> np.ndarray:
    """Give arrays their element layout: (N,) and (N,D) are vectors, (N,H,W[,C]) images."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise RunError(f"{origin}: expected numbers, got an array of dtype {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 3:
        x = x[..., None]
    elif x.ndim not in (2, 4):
        raise RunError(
            f"{origin}: expected shape (N, D) for vectors or (N, H, W[, C]) for images, "
            f"got shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise RunError(f"{origin}: the data holds no examples (shape {x.shape})")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise RunError(f"{origin}: the data contains NaN or infinite values; clean it first")
    return x


def _as_labels(y: Any, n: int, origin: str) -> np.ndarray:
    """Check labels are one non-negative integer per example and return them as int32."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise RunError(f"{origin}: expected {n} labels (one per example), got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise RunError(f"{origin}: labels must be integers, got dtype {y.dtype}")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(y == np.round(y))):
        raise RunError(f"{origin}: labels must be whole numbers (class indices)")
    if y.size and y.min() < 0:
        raise RunError(f"{origin}: labels must be >= 0 (class indices), got {y.min()}")
    return y.astype(np.int32)


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
        n_samples=int(_get(source, "n_samples", where)),
        noise=_get(source, "noise", where),
        random_state=seed,
    )


def _circles(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    where = "data.source (circles)"
    return make_circles(
        n_samples=int(_get(source, "n_samples", where)),
        noise=_get(source, "noise", where),
        factor=_get(source, "factor", where),
        random_state=seed,
    )


def _swiss_roll(source: dict, seed: int) -> tuple[np.ndarray, None]:
    from sklearn.datasets import make_swiss_roll

    where = "data.source (swiss_roll)"
    points, _ = make_swiss_roll(
        n_samples=int(_get(source, "n_samples", where)),
        noise=_get(source, "noise", where),
        random_state=seed,
    )
    return points[:, [0, 2]], None


def _ring8(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    where = "data.source (ring8)"
    centers = _ring8_centers(float(_get(source, "radius", where)))
    n, std = int(_get(source, "n_samples", where)), float(_get(source, "std", where))
    return _mixture(centers, n, std, seed)


def _grid25(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    where = "data.source (grid25)"
    n, std = int(_get(source, "n_samples", where)), float(_get(source, "std", where))
    return _mixture(_grid25_centers(), n, std, seed)


def _blobs(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    where = "data.source (blobs)"
    return make_blobs(
        n_samples=int(_get(source, "n_samples", where)),
        n_features=int(_get(source, "n_features", where)),
        centers=_get(source, "centers", where),
        cluster_std=_get(source, "cluster_std", where),
        random_state=seed,
    )


_BUILTINS: dict[str, Callable[[dict, int], tuple[np.ndarray, np.ndarray | None]]] = {
    "digits": _digits,
    "moons": _moons,
    "circles": _circles,
    "swiss_roll": _swiss_roll,
    "ring8": _ring8,
    "grid25": _grid25,
    "blobs": _blobs,
}


def builtin_names() -> list[str]:
    """Names accepted by `{type: builtin, name: ...}`; all generated offline."""
    return sorted(_BUILTINS)


def mode_centers(name: str, source: dict) -> np.ndarray:
    """Centres of a toy mixture's modes, in data units, indexed like its labels."""
    if name == "ring8":
        return _ring8_centers(float(_get(source, "radius", "data.source (ring8)")))
    if name == "grid25":
        return _grid25_centers()
    raise RunError(
        f"mode centres are known only for the toy mixtures ring8 and grid25, not {name!r}"
    )


# --------------------------------------------------------------------------- sources


def _load_builtin(source: dict, seed: int) -> tuple[Any, Any]:
    name = _get(source, "name", "data.source (builtin)")
    if name not in _BUILTINS:
        raise RunError(
            f"unknown builtin dataset {name!r} (data.source.name); "
            f"available: {', '.join(builtin_names())}"
        )
    return _BUILTINS[name](source, seed)


def _load_npz(source: dict, seed: int) -> tuple[Any, Any]:
    where = "data.source (npz)"
    path = _resolve(_get(source, "path", where), "data.source.path")
    key, label_key = _get(source, "key", where), _get(source, "labels", where)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path} as an .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise RunError(f"{path} holds a single array, not an .npz archive; use {{type: npy}}")
    with archive:
        for wanted, field in ((key, "key"), (label_key, "labels")):
            if wanted is not None and wanted not in archive.files:
                raise RunError(
                    f"{path} has no array named {wanted!r} (data.source.{field}); "
                    f"it holds: {', '.join(archive.files) or 'nothing'}"
                )
        try:
            x = archive[key]
            y = archive[label_key] if label_key is not None else None
        except ValueError as exc:
            raise RunError(f"cannot read arrays from {path}: {exc}") from exc
    return x, y


def _load_npy(source: dict, seed: int) -> tuple[Any, None]:
    path = _resolve(_get(source, "path", "data.source (npy)"), "data.source.path")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path} as an .npy array: {exc}") from exc
    if not isinstance(x, np.ndarray):
        raise RunError(f"{path} is an .npz archive, not a single array; use {{type: npz}}")
    return x, None


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def _load_images(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    from PIL import Image, UnidentifiedImageError

    where = "data.source (images)"
    root = _resolve(_get(source, "dir", where), "data.source.dir", directory=True)
    size, color = _get(source, "size", where), _get(source, "color", where)
    modes = {"grayscale": "L", "rgb": "RGB"}
    if color not in modes:
        raise RunError(f"data.source.color must be one of {sorted(modes)}, got {color!r}")
    height, width = (int(v) for v in size)

    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        if _image_files(root):
            raise RunError(
                f"{root} mixes image files with class folders; put every image in a class "
                "folder (labels) or use a flat folder of images (no labels)"
            )
        per_class = [_image_files(c) for c in classes]
        for folder, files in zip(classes, per_class, strict=True):
            if not files:
                raise RunError(
                    f"class folder {folder} holds no images ({', '.join(_IMAGE_SUFFIXES)})"
                )
        files = [f for group in per_class for f in group]
        labels = np.repeat(np.arange(len(classes)), [len(g) for g in per_class])
    else:
        files, labels = _image_files(root), None
        if not files:
            raise RunError(f"{root} holds no images ({', '.join(_IMAGE_SUFFIXES)})")

    def read(file: Path) -> np.ndarray:
        try:
            with Image.open(file) as image:
                image = image.convert(modes[color])
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise RunError(f"cannot read image {file}: {exc}") from exc

    x = np.stack([read(f) for f in files])  # one decode per file: I/O, not a sample loop
    if x.ndim == 3:
        x = x[..., None]
    return x, labels


def _load_csv(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    where = "data.source (csv)"
    path = _resolve(_get(source, "path", where), "data.source.path")
    columns, label_column = _get(source, "columns", where), _get(source, "label_column", where)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = [name.strip() for name in next(csv.reader(handle), [])]
        cells = np.loadtxt(
            path, delimiter=",", skiprows=1, dtype=str, ndmin=2, quotechar='"',
            comments=None, encoding="utf-8",
        )  # fmt: skip
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"cannot read CSV {path}: {exc}") from exc
    if not header or not any(header):
        raise RunError(f"{path}: a header row naming the columns is required")
    if len(set(header)) != len(header):
        raise RunError(f"{path}: the header names a column twice: {header}")
    if cells.size == 0:
        raise RunError(f"{path}: no data rows below the header")
    if cells.shape[1] != len(header):
        raise RunError(
            f"{path}: the header has {len(header)} columns but the rows have {cells.shape[1]}"
        )
    cells = np.char.strip(cells)

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
    used = feature_index + ([label_index] if label_index is not None else [])

    empty = np.argwhere(cells[:, used] == "")
    if empty.size:
        row, col = empty[0]
        raise RunError(
            f"{path}: empty cell in column {header[used[col]]!r} at data row {row + 1} "
            f"(line {row + 2}); fill or drop incomplete rows first"
        )
    features = cells[:, feature_index]
    try:
        x = features.astype(np.float64)
    except ValueError:
        bad = np.argwhere(~np.vectorize(_is_number, otypes=[bool])(features))[0]
        raise RunError(
            f"{path}: non-numeric value {str(features[tuple(bad)])!r} in column "
            f"{header[feature_index[bad[1]]]!r} at data row {bad[0] + 1} (line {bad[0] + 2})"
        ) from None
    if label_index is None:
        return x, None
    raw = cells[:, label_index]
    if np.vectorize(_is_number, otypes=[bool])(raw).all():
        return x, raw.astype(np.float64)
    _, labels = np.unique(raw, return_inverse=True)  # class names -> sorted indices
    return x, labels


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_keras(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    name = _get(source, "name", "data.source (keras)")
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


_SOURCES: dict[str, Callable[[dict, int], tuple[Any, Any]]] = {
    "builtin": _load_builtin,
    "npz": _load_npz,
    "npy": _load_npy,
    "images": _load_images,
    "csv": _load_csv,
    "keras": _load_keras,
}


def load_arrays(source: dict, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a source into raw float32 x (images N,H,W,C) and int32 labels or None."""
    kind = _get(source, "type", "data.source")
    if kind not in _SOURCES:
        raise RunError(
            f"unknown data source type {kind!r} (data.source.type); "
            f"available: {', '.join(sorted(_SOURCES))}"
        )
    raw_x, raw_y = _SOURCES[kind](source, seed)
    origin = f"data.source ({kind})"
    x = _as_elements(raw_x, origin)
    y = None if raw_y is None else _as_labels(raw_y, x.shape[0], origin)
    return x, y


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
            low, high = (float(v) for v in scale)
            if not low < high:
                raise RunError(
                    f"data.preprocessing.scale must be [low, high] with low < high, got {scale}"
                )
            lo, hi = data.min(axis=axis), data.max(axis=axis)
            span = np.where(hi > lo, hi - lo, 1.0)  # constant features: shift only
            center, factor, offset = lo, (high - low) / span, np.full_like(lo, low)
            scale = (low, high)
        if standardize:
            scaled = (data - center) * factor + offset
            mean, std = scaled.mean(axis=axis), scaled.std(axis=axis)
            std = np.where(std > 0, std, 1.0)
            # compose: ((x - c) * f + o - mean) / std == (x - c) * (f / std) + (o - mean) / std
            factor, offset = factor / std, (offset - mean) / std
        return cls(kind, x.shape[1:], center, factor, offset, scale, standardize)

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
        kind = _get(entry, "type", where)
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


def _fingerprint_config(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _fingerprint_config(v) for k, v in config.items() if k not in _LOCATION_KEYS}
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
        digest.update(f"|{array.dtype.str}{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
    text = json.dumps(_fingerprint_config(config), sort_keys=True, default=str)
    digest.update(text.encode())
    return digest.hexdigest()


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
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


def load_data(config: dict, seed: int) -> DataBundle:
    """Load, split, preprocess and batch the data described by a resolved data config."""
    source = _get(config, "source", "data")
    fraction = float(_get(config, "validation_split", "data"))
    preprocessing = _get(config, "preprocessing", "data")
    scale = _get(preprocessing, "scale", "data.preprocessing")
    standardize = bool(_get(preprocessing, "standardize", "data.preprocessing"))
    augmentation = _get(config, "augmentation", "data") or []
    batch_size = int(_get(config, "batch_size", "data"))
    shuffle_buffer = int(_get(config, "shuffle_buffer", "data"))
    with_labels = bool(_get(config, "with_labels", "data"))
    drop_remainder = bool(_get(config, "drop_remainder", "data"))
    if batch_size < 1 or shuffle_buffer < 1:
        raise RunError(
            f"data.batch_size and data.shuffle_buffer must be >= 1, "
            f"got {batch_size} and {shuffle_buffer}"
        )

    x, y = load_arrays(source, seed)
    kind = "image" if x.ndim == 4 else "vector"
    if with_labels and y is None:
        raise RunError(
            f"data.with_labels is set but the {source.get('type')} source has no labels; "
            "use a source with labels (class folders, npz `labels`, csv `label_column`)"
        )
    if augmentation and kind != "image":
        raise RunError(
            f"data.augmentation applies to images only, but this data holds vectors of shape "
            f"{x.shape[1:]}; remove the augmentation entries"
        )
    digest = fingerprint(x, y, config)

    train_idx, val_idx = _split(len(x), fraction, seed)
    if drop_remainder and len(train_idx) < batch_size:
        raise RunError(
            f"data.drop_remainder is set but the training split holds {len(train_idx)} examples, "
            f"fewer than data.batch_size={batch_size}: every batch would be dropped; "
            "lower the batch size or turn drop_remainder off"
        )
    preprocessor = Preprocessor.fit(x[train_idx], kind, scale, standardize)
    x_train, x_val = preprocessor.transform(x[train_idx]), preprocessor.transform(x[val_idx])
    y_train = None if y is None else y[train_idx]
    y_val = None if y is None else y[val_idx]

    def slices(features: np.ndarray, labels: np.ndarray | None) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((features, labels) if with_labels else features)

    examples = slices(x_train, y_train)
    augment_batch = None
    if augmentation:
        value_range = (
            tuple(float(v) for v in scale)
            if scale is not None and not standardize
            else (float(x_train.min()), float(x_train.max()))
        )
        layers = _augmentation_layers(augmentation, seed, value_range)

        def augment(images: tf.Tensor) -> tf.Tensor:
            for layer in layers:
                images = layer(images, training=True)
            return images

        augment_batch = (lambda xb, yb: (augment(xb), yb)) if with_labels else augment

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        """Batches of epochs first..last-1; epoch e's order depends only on (seed, e).

        So a run resumed at epoch e sees exactly the batches an uninterrupted run sees.
        With `steps`, each epoch is exactly that many batches of a repeated epoch.
        """

        def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
            epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + epoch
            order = examples.shuffle(
                shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False
            )
            if steps is not None:
                order = order.repeat()
            batches = order.batch(batch_size, drop_remainder=drop_remainder)
            return batches.take(steps) if steps is not None else batches

        stream = tf.data.Dataset.range(first, last).flat_map(one_epoch)
        if augment_batch is not None:
            stream = stream.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return stream.prefetch(tf.data.AUTOTUNE)

    train = epochs(0, 1)

    validation = None
    if len(val_idx):  # never shuffled, augmented or truncated: every held-out example counts
        validation = slices(x_val, y_val).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return DataBundle(
        train=train,
        epochs=epochs,
        steps_per_epoch=(
            len(train_idx) // batch_size if drop_remainder else -(-len(train_idx) // batch_size)
        ),
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
    )
