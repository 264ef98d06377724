"""Request values (JSON lists) checked and turned into arrays, with messages that say where
a value is wrong. JSON numbers only: `true` is not 1 and `"3"` is not 3."""

from __future__ import annotations

import math
import sys
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
        pass  # ragged or too deep: find the first example that is, or unlike the first
    for i, item in enumerate(value):
        if not _rectangular(item):
            raise ValueError(_not_rectangular(item, f"{name}[{i}]")) from None
        if np.shape(item) != np.shape(value[0]):
            raise ValueError(
                f"{name}[{i}] is shaped unlike {name}[0]: every example must have the same shape"
            ) from None
    raise ValueError(_not_rectangular(value, name))


MAX_AXES = 64  # numpy's most axes of an array (NPY_MAXDIMS)


def _not_rectangular(value: Any, where: str) -> str:
    """Why nested lists are no array: nested too deep, or lists of one level unequal."""
    depth = _depth(value)
    if depth > MAX_AXES:
        return f"{where} is nested {depth} lists deep: an array has at most {MAX_AXES} axes"
    return (
        f"{where} is not a rectangular array: its lists of one level differ in length (or "
        "mix numbers and lists)"
    )


def _depth(value: Any) -> int:
    """How many lists deep `value` nests at its deepest (0: a number); level by level, not
    recursively, so a deep request cannot exhaust the stack."""
    depth, level = 0, [value]
    while True:
        lists = [v for v in level if isinstance(v, list)]
        if not lists:
            return depth
        depth += 1
        level = [item for v in lists for item in v]


def _first_non_number(value: Any, where: str) -> str | None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_non_number(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if type(value) is float:
        return None
    if type(value) is int:  # bool is a subclass of int: refused below
        return None if abs(value) <= FLOAT_MAX else f"{where}: {too_large(_digits(value))}"
    return f"{where}: expected a number, got {type(value).__name__} {value!r}"[:200]


FLOAT_MAX = sys.float_info.max  # JSON's integers have no bound; a float64 has


def too_large(digits: int) -> str:
    """Why an integer of `digits` digits is no number the model can take."""
    return f"an integer of about {digits} digits is too large (at most about {FLOAT_MAX:.1e})"


def _digits(value: int) -> int:
    """Digits of `value`, counted without writing it out (Python refuses to write an
    integer of over 4300 digits)."""
    return int(abs(value).bit_length() * math.log10(2)) + 1


def _rectangular(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except ValueError:
        return False
    return True
