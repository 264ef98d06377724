"""What a conditional model was built for, and the labels it draws samples of."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def model_classes(model: Any) -> int | None:
    """The number of classes a conditional model's generated module was built for
    (NUM_CLASSES; None: an unconditional model)."""
    classes = getattr(importlib.import_module(type(model).__module__), "NUM_CLASSES", None)
    return None if classes is None else int(classes)


def balanced_labels(classes: Sequence[int], count: int) -> np.ndarray:
    """`count` labels cycling through `classes`: equal counts, up to one more for the first
    classes when `count` is not a multiple of them."""
    return np.asarray(classes, np.int32)[np.arange(count) % len(classes)]
