"""Shape arithmetic shared by the layer records (`gencompile.compiler.layers`) and lowerings.

Shapes exclude the batch axis. `ShapeError` carries a message in the spec's terms;
lowering turns it into a problem located at the layer's line.
"""

from __future__ import annotations

import math
from typing import Any

from gencompile.compiler.plan import Shape


class ShapeError(ValueError):
    """A layer cannot take its input shape."""


def pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def require_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        expected = {1: "a flat vector", 2: "a sequence (steps, features)", 3: "an image (h, w, c)"}
        raise ShapeError(f"{what} needs {expected[rank]} but gets shape {fmt(shape)}")


def vector(length: int) -> Shape:
    """The shape of a flat vector (a latent code, a class code)."""
    return (length,)


def known(shape: Shape, what: str) -> tuple[int, ...]:
    """Every size of `shape`, for arithmetic that needs them all (only a token stream's
    length is open, and layers that compute with it never see one)."""
    sizes = tuple(d for d in shape if d is not None)
    if len(sizes) != len(shape):
        raise ShapeError(f"{what} needs known sizes but gets shape {fmt(shape)}")
    return sizes


def features(shape: Shape, what: str) -> int:
    """The size of the last axis (the features or channels), which is always known."""
    return known(shape[-1:], what)[0]


def fmt(shape: Shape) -> str:
    return (
        "("
        + ", ".join("?" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def size(shape: Shape) -> int:
    return math.prod(d for d in shape if d is not None)


def conv_length(length: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding == "same":
        return math.ceil(length / stride)
    span = dilation * (kernel - 1) + 1
    if length < span:
        raise ShapeError(
            f"kernel {kernel} is larger than the input's size {length} (padding valid)"
        )
    return (length - span) // stride + 1


def transpose_length(length: int, kernel: int, stride: int, padding: str) -> int:
    return length * stride if padding == "same" else length * stride + max(kernel - stride, 0)
