"""The preprocessing of vector and image data: an affine map fitted on the training split.

`Preprocessor.fit` fits it on data in memory; `Preprocessor.from_statistics` builds the same
map from `Statistics` gathered in one pass over streamed data. NumPy only: the map's
statistics are part of a run's record and lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gencompile.errors import RunError

__all__ = ["Preprocessor", "Statistics"]


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
        wide = self.wide_features().any()
        self.output_dtype = np.dtype(np.float64 if wide else np.float32)

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
        """Model space -> data units as `output_dtype`: float32, or float64 when a feature
        is wide (timestamps), so that samples, imputed cells, latent arrays, served answers
        and the sample metrics keep the precision the model has in the data's units."""
        x = np.asarray(x, dtype=np.float64)
        return ((x - self.offset) / self.factor + self.center).astype(self.output_dtype)

    def wide_features(self) -> np.ndarray:
        """Per feature (one value for images' global map): whether float32 steps by more than
        CAST_TOLERANCE of the feature's unit (1 / |factor|: its std, or range over the scale's)
        at its magnitude in data units (timestamps: 128 s at 1.7e9 for a std of an hour).
        From the map alone, so a map rebuilt with `from_dict` from any run's record agrees.

        A constant feature is never wide: it holds one value, which its float32 record
        carries as the training saw it. The map knows it by the placeholder unit the fit
        gives a zero std or range (factor 1, or the scale's width: a feature whose std or
        range is exactly 1.0 looks the same and counts as constant), or by a unit within
        float64's rounding of its magnitude (the std of a constant whose mean float64 did
        not compute exactly, e.g. 2024.1)."""
        unit = 1.0 / np.abs(self.factor)
        magnitude = np.abs(self.center - self.offset / self.factor) + unit  # around model 0
        wide = _float32_step(magnitude) > CAST_TOLERANCE * unit
        return np.asarray(wide & ~self._constant(unit, magnitude)).reshape(-1)

    def _constant(self, unit: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
        """Features whose map says they were constant in the training data (see above)."""
        width = 1.0 if self.scale is None else self.scale[1] - self.scale[0]
        placeholder = np.abs(self.factor) == abs(width)  # std or range 0 replaced by 1
        return np.asarray(placeholder | (unit <= magnitude * CONSTANT_SPREAD))

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

# A feature whose float32 cast moves a value by more than this share of the feature's range
# (unix timestamps: 1.7e9 in steps of 128, int64 IDs) is preprocessed from its float64
# values: the affine map then brings it to numbers float32 holds. Below it (data near 1,
# decimals) the float32 values are used as they always were, so runs stay reproducible.
CAST_TOLERANCE = 1e-4
# A std below this share of a feature's magnitude is float64's rounding of a constant's mean
# (a few 1e-16 of it), not a spread: about 4000 float64 steps.
CONSTANT_SPREAD = 2.0**-40
_CAST_ROWS = 1 << 16  # rows compared at a time: the float32 copy is a temporary


def _float32_step(magnitude: np.ndarray) -> np.ndarray:
    """float32's spacing at positive `magnitude`, computed in float64 (also beyond float32's
    range, where a float32 cast would give inf): 2**-23 of its power of two, at least the
    smallest subnormal."""
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(magnitude))
    return np.maximum(np.exp2(exponent - 23), 2.0**-149)


def may_lose(dtype: np.dtype) -> bool:
    """Whether a float32 cast of `dtype` can round: float64, and integers beyond 2**24."""
    dtype = np.dtype(dtype)
    return (dtype.kind == "f" and dtype.itemsize > 4) or (dtype.kind in "iu" and dtype.itemsize > 2)


class CastLoss:
    """The largest change the float32 cast makes to raw values and their range, gathered
    chunk by chunk, per feature (axis 0, vectors) or global (axis None, images)."""

    def __init__(self, axis: int | None, origin: str) -> None:
        self.axis, self.origin = axis, origin
        self.error: np.ndarray | None = None
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def add(self, raw: np.ndarray) -> None:
        if not may_lose(raw.dtype) or not len(raw):
            return
        for start in range(0, len(raw), _CAST_ROWS):
            part = raw[start : start + _CAST_ROWS]
            refuse_wide_integers(part, self.axis, self.origin)
            data = np.asarray(part, dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused elsewhere
                moved = np.abs(data - data.astype(np.float32).astype(np.float64))
            self._merge(moved.max(self.axis), data.min(self.axis), data.max(self.axis))

    def _merge(self, error: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        if self.error is None or self.low is None or self.high is None:
            self.error, self.low, self.high = error, low, high
            return
        self.error = np.maximum(self.error, error)
        self.low, self.high = np.minimum(self.low, low), np.maximum(self.high, high)

    def lossy(self) -> bool:
        """Whether float32 loses more than CAST_TOLERANCE of the range of a feature that
        is not constant (a constant stays one value)."""
        return bool(self._lossy().any())

    def _lossy(self) -> np.ndarray:
        if self.error is None or self.low is None or self.high is None:
            return np.zeros(1, dtype=bool)
        span = self.high - self.low
        return np.asarray((span > 0) & (self.error > CAST_TOLERANCE * span)).reshape(-1)

    def check_mapped(self, preprocessor: Preprocessor, names: tuple[str, ...]) -> None:
        """Refuse features float32 rounds that the preprocessing leaves as they are: the
        model computes in float32, so distinct values would merge silently."""
        lossy = self._lossy()
        if preprocessor.scale is not None or preprocessor.standardize or not lossy.any():
            return
        assert self.error is not None and self.low is not None and self.high is not None
        i = int(np.argmax(lossy))
        low, high, error = (float(np.reshape(v, -1)[i]) for v in (self.low, self.high, self.error))
        what = f"feature {names[i]!r}" if self.axis == 0 and i < len(names) else "the values"
        raise RunError(
            f"{self.origin}: {what} loses precision as float32 (values {low:.10g} to "
            f"{high:.10g} are moved by up to {error:.3g} when rounded, {error / (high - low):.2%}"
            " of their range); set data.preprocessing.standardize: true (or scale), which is "
            "computed before the cast, or subtract an offset from the data first"
        )


def refuse_wide_integers(raw: np.ndarray, axis: int | None, origin: str) -> None:
    """Refuse 64-bit integers beyond 2**53 that are not all one value: not even float64
    holds them, so the preprocessing could not keep them apart."""
    if raw.dtype.kind not in "iu" or raw.dtype.itemsize < 8:
        return
    low, high = raw.min(axis), raw.max(axis)
    beyond = (np.abs(low.astype(np.float64)) > 2**53) | (np.abs(high.astype(np.float64)) > 2**53)
    wide = beyond & (low != high)
    if np.any(wide):
        raise wide_integers(origin, int(np.reshape(high, -1)[int(np.argmax(np.reshape(wide, -1)))]))


def wide_integers(origin: str, value: int) -> RunError:
    """The refusal of distinct integers such as `value` that not even float64 keeps apart."""
    return RunError(
        f"{origin}: integers such as {value} are beyond 2**53, which not even float64 holds "
        "exactly, so distinct values would merge; subtract an offset (e.g. the smallest "
        "value) from the data first, or leave ID columns out of the features"
    )


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


def merged_statistics(
    stats: Statistics | None, rows: np.ndarray, axis: int | None
) -> Statistics | None:
    """`stats` with those of `rows` merged in (a streamed pass, chunk by chunk)."""
    if not len(rows):
        return stats
    part = Statistics.of(rows, axis)
    return part if stats is None else stats.merge(part)


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
