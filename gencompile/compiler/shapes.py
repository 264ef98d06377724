"""Shape inference and parameter counts for spec layers, one small function per layer type.

Shapes exclude the batch axis. A function raises `ShapeError` with a message in the spec's
terms; lowering turns it into a problem located at the layer's line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gencompile.compiler.plan import Shape


class ShapeError(ValueError):
    """A layer cannot take its input shape."""


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        expected = {1: "a flat vector", 2: "a sequence (steps, features)", 3: "an image (h, w, c)"}
        raise ShapeError(f"{what} needs {expected[rank]} but gets shape {fmt(shape)}")


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


def _dense(layer: Any, shape: Shape) -> tuple[Shape, int]:
    if not shape:
        raise ShapeError("dense needs at least one axis")
    fan_in = shape[-1]
    return (*shape[:-1], layer.units), fan_in * layer.units + (layer.units if layer.use_bias else 0)


def _conv1d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 2, "conv1d")
    steps = conv_length(
        shape[0], layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate
    )
    return (steps, layer.filters), layer.kernel_size * shape[1] * layer.filters + layer.filters


def _conv2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 3, "conv2d")
    (kh, kw), (sh, sw) = _pair(layer.kernel_size), _pair(layer.strides)
    h = conv_length(shape[0], kh, sh, layer.padding)
    w = conv_length(shape[1], kw, sw, layer.padding)
    return (h, w, layer.filters), kh * kw * shape[2] * layer.filters + layer.filters


def _conv2d_transpose(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 3, "conv2d_transpose")
    (kh, kw), (sh, sw) = _pair(layer.kernel_size), _pair(layer.strides)
    h = transpose_length(shape[0], kh, sh, layer.padding)
    w = transpose_length(shape[1], kw, sw, layer.padding)
    return (h, w, layer.filters), kh * kw * shape[2] * layer.filters + layer.filters


def _upsampling2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 3, "upsampling2d")
    sh, sw = _pair(layer.size)
    return (shape[0] * sh, shape[1] * sw, shape[2]), 0


def _pool2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 3, layer.type)
    ph, pw = _pair(layer.pool_size)
    sh, sw = _pair(layer.strides) if layer.strides is not None else (ph, pw)
    return (
        conv_length(shape[0], ph, sh, layer.padding),
        conv_length(shape[1], pw, sw, layer.padding),
        shape[2],
    ), 0


def _global_avg_pool2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 3, "global_avg_pool2d")
    return (shape[2],), 0


def _flatten(layer: Any, shape: Shape) -> tuple[Shape, int]:
    return (size(shape),), 0


def _reshape(layer: Any, shape: Shape) -> tuple[Shape, int]:
    target = tuple(layer.target_shape)
    if size(target) != size(shape):
        raise ShapeError(
            f"reshape to {fmt(target)} ({size(target)} values) from {fmt(shape)} "
            f"({size(shape)} values): a reshape must preserve the number of values"
        )
    return target, 0


def _same(layer: Any, shape: Shape) -> tuple[Shape, int]:
    return shape, 0


def _batch_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    return shape, 4 * shape[-1]


def _layer_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    return shape, 2 * shape[-1]


def _group_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    if shape[-1] % layer.groups:
        raise ShapeError(
            f"group_norm with {layer.groups} groups needs channels divisible by {layer.groups}, "
            f"but the input has {shape[-1]}"
        )
    return shape, 2 * shape[-1]


def _embedding(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 1, "embedding")
    return (shape[0], layer.output_dim), layer.input_dim * layer.output_dim


def _recurrent(gates: int, extra_bias: int) -> Callable[[Any, Shape], tuple[Shape, int]]:
    def infer(layer: Any, shape: Shape) -> tuple[Shape, int]:
        _rank(shape, 2, layer.type)
        units = layer.units
        params = gates * (units * (shape[1] + units) + units * extra_bias)
        return ((shape[0], units) if layer.return_sequences else (units,)), params

    return infer


def attention_params(features: int, heads: int, key_dim: int) -> int:
    projections = 3 * (features * heads * key_dim + heads * key_dim)
    return projections + heads * key_dim * features + features


def _attention(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 2, layer.type)
    return shape, attention_params(shape[1], layer.num_heads, layer.key_dim)


def _transformer_block(layer: Any, shape: Shape) -> tuple[Shape, int]:
    _rank(shape, 2, "transformer_block")
    d = shape[1]
    feed_forward = d * layer.ff_dim + layer.ff_dim + layer.ff_dim * d + d
    return shape, attention_params(d, layer.num_heads, layer.key_dim) + 4 * d + feed_forward


def _spectral_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    out, params = infer(layer.layer, shape)
    # + the power iteration's vector u, sized by the kernel's last axis (not trainable):
    # the output channels, except for a transposed convolution whose kernel ends in inputs.
    u_size = shape[-1] if layer.layer.type == "conv2d_transpose" else out[-1]
    return out, params + u_size


def _custom(layer: Any, shape: Shape) -> tuple[Shape, int | None]:
    return tuple(layer.output_shape), None


def _residual(layer: Any, shape: Shape) -> tuple[Shape, int]:
    current, total = shape, 0
    for inner in layer.layers:
        current, params = infer(inner, current)
        total += params or 0
    if current != shape:
        raise ShapeError(
            f"a residual block must keep its input's shape {fmt(shape)}, but its body "
            f"ends with {fmt(current)}"
        )
    return shape, total


INFER: dict[str, Callable[[Any, Shape], tuple[Shape, int | None]]] = {
    "dense": _dense,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "conv2d_transpose": _conv2d_transpose,
    "upsampling2d": _upsampling2d,
    "max_pool2d": _pool2d,
    "avg_pool2d": _pool2d,
    "global_avg_pool2d": _global_avg_pool2d,
    "flatten": _flatten,
    "reshape": _reshape,
    "dropout": _same,
    "activation": _same,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "embedding": _embedding,
    "lstm": _recurrent(4, 1),
    "gru": _recurrent(3, 2),
    "multi_head_attention": _attention,
    "transformer_block": _transformer_block,
    "spectral_norm": _spectral_norm,
    "custom": _custom,
    "residual": _residual,
}


def infer(layer: Any, shape: Shape) -> tuple[Shape, int | None]:
    """Output shape and parameter count of one spec layer given its input shape."""
    return INFER[layer.type](layer, shape)
