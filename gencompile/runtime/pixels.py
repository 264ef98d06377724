"""Values in data units as 8-bit pixels and back: the one map that picture grids, image
folders of samples and image files read back as examples share. Pure numpy."""

from __future__ import annotations

import numpy as np


def to_pixels(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Values in data units as 8-bit pixels: the range's low end black (0), its high end
    white (255), linearly between, clipped and rounded."""
    low, high = (float(v) for v in value_range)
    scaled = (np.asarray(values, np.float64) - low) / max(high - low, 1e-12)
    return np.rint(np.clip(np.nan_to_num(scaled), 0.0, 1.0) * 255).astype(np.uint8)


def from_pixels(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """8-bit pixels back in data units: the inverse of `to_pixels` (up to its rounding to
    1/255 of the range, and its clipping)."""
    low, high = (float(v) for v in value_range)
    return low + np.asarray(pixels, np.float64) * ((high - low) / 255.0)
