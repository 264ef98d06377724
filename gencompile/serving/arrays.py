"""Request values (JSON lists) checked and turned into arrays, with messages that say where
a value is wrong. JSON numbers only: `true` is not 1 and `"3"` is not 3."""

from __future__ import annotations

from typing import Any

import numpy as np


def numbers(value: list[Any], name: str) -> np.ndarray:
    """A rectangular array of numbers (float64) from nested lists, or ValueError naming the
    first element that is not a number, or the first example shaped unlike the others."""
    bad = _first_non_number(value, name)
    if bad is not None:
        raise ValueError(bad)
    try:
        return np.asarray(value, dtype=np.float64)
    except ValueError:
        pass  # ragged: find the first example shaped unlike the first
    first = np.shape(value[0]) if _rectangular(value[0]) else None
    for i, item in enumerate(value):
        if not _rectangular(item) or np.shape(item) != first:
            raise ValueError(
                f"{name}[{i}] is shaped unlike {name}[0]: every example must have the same shape"
            ) from None
    raise ValueError(f"{name}: not a rectangular array of numbers")


def _first_non_number(value: Any, where: str) -> str | None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_non_number(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if type(value) in (int, float):  # bool is a subclass of int: refused here
        return None
    return f"{where}: expected a number, got {type(value).__name__} {value!r}"[:200]


def _rectangular(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except ValueError:
        return False
    return True
