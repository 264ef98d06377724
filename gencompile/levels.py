"""How many discrete values a data source takes, known from the source alone.

Shared by the spec (validation refuses bits per dimension of a density on such data), the
compiler (bins that must hold each level) and the runtime (which labels a density's NLL of
such data), so it imports none of them, nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Distinct values of the image data sets once scaled to [0, 1]: a categorical likelihood
# with this many bins models them exactly. None of them is binary; the other built-in data
# sets are continuous.
DATA_LEVELS: dict[str, int] = {
    "digits": 17,  # 0..16
    "shapes2d": 5,  # 2 x 2 supersampled edges: 0, 1/4, ..., 1
    "mnist": 256,
    "fashion_mnist": 256,
    "cifar10": 256,
    "cifar100": 256,
}
# Folders and TFRecords of images hold 8-bit pixels.
EIGHT_BIT = 256


def source_levels(source: Mapping[str, Any]) -> int | None:
    """How many values the data of `source` (data.source as a mapping) takes, where the
    source says so without reading it: the discrete built-in and keras data sets
    (`DATA_LEVELS`) and 8-bit images; None for continuous built-ins and files of numbers
    (npz, npy, csv, parquet, tfrecord values).

    >>> source_levels({"type": "builtin", "name": "digits"})
    17
    >>> source_levels({"type": "builtin", "name": "moons"}) is None
    True
    """
    kind = source.get("type")
    if kind in ("builtin", "keras"):
        return DATA_LEVELS.get(str(source.get("name")))
    features = source.get("features") or {}
    if kind == "images" or (
        kind == "tfrecord" and (features.get("x") or {}).get("type") == "image"
    ):
        return EIGHT_BIT
    return None
