"""One record per spec layer type: how it is written in Keras and how it changes a shape.

`LAYER_TYPES` is keyed by the spec's `type:` literal (the spec classes live in
`gencompile.spec.networks`, which must not import the compiler). A record gives the Keras
constructor, the spec fields passed to it in order, how many of them are positional, Keras'
own defaults (an argument equal to its default is left out of generated code), whether the
kernel takes the network's regularizer, and the layer's shape and parameter inference.

Inference functions take the spec layer and its input shape (batch axis excluded) and
return the output shape and the parameter count; they raise `ShapeError` with a message
in the spec's terms. Heads a family appends are spec layer objects too, so they go through
the same records (see `NetworkBuilder.synth`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gencompile.compiler.applications import application_state, infer_application
from gencompile.compiler.plan import Shape
from gencompile.compiler.shapes import (
    ShapeError,
    conv_length,
    features,
    fmt,
    known,
    pair,
    require_rank,
    size,
    transpose_length,
)

Inference = Callable[[Any, Shape], tuple[Shape, int | None]]
# How many of a layer's parameters are non-trainable state (Keras' non_trainable_weights of
# a trainable layer): batch norm's moving statistics, spectral norm's vector u, ...
StateCount = Callable[[Any, Shape], int]


def _stateless(layer: Any, shape: Shape) -> int:
    return 0


@dataclass(frozen=True)
class LayerType:
    """A spec layer type as the compiler sees it."""

    cls: str | None  # constructor in generated code; None: a user class named by `ref`
    infer: Inference
    args: tuple[str, ...] = ()  # spec fields passed to the constructor, in order
    positional: int = 0  # how many leading args are passed positionally
    # Keras' defaults, left out when equal. An argument missing here is always written:
    # positional ones, and conv padding, whose spec default ("same") is not Keras'.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    regularized: bool = False  # the kernel takes the network's regularizer
    state: StateCount = _stateless  # non-trainable weights among the parameters

    def arguments(self, layer: Any) -> list[tuple[str, Any]]:
        """(name, value) of the constructor arguments generated code writes."""
        written: list[tuple[str, Any]] = []
        for i, arg in enumerate(self.args):
            value = getattr(layer, arg)
            if isinstance(value, list):
                value = tuple(value)
            if i >= self.positional and arg in self.defaults and value == self.defaults[arg]:
                continue
            written.append((arg, value))
        return written


def infer(layer: Any, shape: Shape) -> tuple[Shape, int | None]:
    """Output shape and parameter count of one spec layer given its input shape."""
    return LAYER_TYPES[layer.type].infer(layer, shape)


def state(layer: Any, shape: Shape) -> int:
    """How many of `infer`'s parameters of one spec layer are non-trainable state, which no
    gradient step changes even when the layer trains (Keras' `non_trainable_weights`)."""
    return LAYER_TYPES[layer.type].state(layer, shape)


# -- inference, one small function per layer type -------------------------------------------
def _dense(layer: Any, shape: Shape) -> tuple[Shape, int]:
    if not shape:
        raise ShapeError("dense needs at least one axis")
    fan_in = shape[-1]
    return (*shape[:-1], layer.units), fan_in * layer.units + (layer.units if layer.use_bias else 0)


def _conv1d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 2, "conv1d")
    length, channels = known(shape, "conv1d")
    steps = conv_length(
        length, layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate
    )
    return (steps, layer.filters), layer.kernel_size * channels * layer.filters + layer.filters


def _conv2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 3, "conv2d")
    height, width, channels = known(shape, "conv2d")
    (kh, kw), (sh, sw) = pair(layer.kernel_size), pair(layer.strides)
    h = conv_length(height, kh, sh, layer.padding)
    w = conv_length(width, kw, sw, layer.padding)
    return (h, w, layer.filters), kh * kw * channels * layer.filters + layer.filters


def _conv2d_transpose(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 3, "conv2d_transpose")
    height, width, channels = known(shape, "conv2d_transpose")
    (kh, kw), (sh, sw) = pair(layer.kernel_size), pair(layer.strides)
    h = transpose_length(height, kh, sh, layer.padding)
    w = transpose_length(width, kw, sw, layer.padding)
    return (h, w, layer.filters), kh * kw * channels * layer.filters + layer.filters


def _upsampling2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 3, "upsampling2d")
    height, width, channels = known(shape, "upsampling2d")
    sh, sw = pair(layer.size)
    return (height * sh, width * sw, channels), 0


def _pool2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 3, layer.type)
    ph, pw = pair(layer.pool_size)
    sh, sw = pair(layer.strides) if layer.strides is not None else (ph, pw)
    height, width, channels = known(shape, layer.type)
    return (
        conv_length(height, ph, sh, layer.padding),
        conv_length(width, pw, sw, layer.padding),
        channels,
    ), 0


def _global_avg_pool2d(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 3, "global_avg_pool2d")
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
    return shape, 4 * features(shape, "batch_norm")


def _batch_norm_state(layer: Any, shape: Shape) -> int:
    return 2 * features(shape, "batch_norm")  # moving mean and variance (gamma, beta train)


def _layer_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    return shape, 2 * features(shape, "layer_norm")


def _group_norm(layer: Any, shape: Shape) -> tuple[Shape, int]:
    channels = features(shape, "group_norm")
    if channels % layer.groups:
        raise ShapeError(
            f"group_norm with {layer.groups} groups needs channels divisible by {layer.groups}, "
            f"but the input has {channels}"
        )
    return shape, 2 * channels


def _embedding(layer: Any, shape: Shape) -> tuple[Shape, int]:
    if shape:  # a scalar id (a class head) or a sequence of ids
        require_rank(shape, 1, "embedding")
    return (*shape, layer.output_dim), layer.input_dim * layer.output_dim


def _recurrent(gates: int, extra_bias: int) -> Inference:
    def infer_recurrent(layer: Any, shape: Shape) -> tuple[Shape, int]:
        require_rank(shape, 2, layer.type)
        units = layer.units
        params = gates * (units * (features(shape, layer.type) + units) + units * extra_bias)
        return ((shape[0], units) if layer.return_sequences else (units,)), params

    return infer_recurrent


def attention_params(features: int, heads: int, key_dim: int) -> int:
    projections = 3 * (features * heads * key_dim + heads * key_dim)
    return projections + heads * key_dim * features + features


def _attention(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 2, layer.type)
    return shape, attention_params(features(shape, layer.type), layer.num_heads, layer.key_dim)


def _transformer_block(layer: Any, shape: Shape) -> tuple[Shape, int]:
    require_rank(shape, 2, "transformer_block")
    d = features(shape, "transformer_block")
    feed_forward = d * layer.ff_dim + layer.ff_dim + layer.ff_dim * d + d
    return shape, attention_params(d, layer.num_heads, layer.key_dim) + 4 * d + feed_forward


def _spectral_norm(layer: Any, shape: Shape) -> tuple[Shape, int | None]:
    out, params = infer(layer.layer, shape)
    return out, (params or 0) + _spectral_norm_state(layer, shape)


def _spectral_norm_state(layer: Any, shape: Shape) -> int:
    # The power iteration's vector u (not trainable), sized by the kernel's last axis: the
    # output channels, except for a transposed convolution whose kernel ends in inputs.
    out, _ = infer(layer.layer, shape)
    kernel_end = shape if layer.layer.type == "conv2d_transpose" else out
    return features(kernel_end, "spectral_norm") + state(layer.layer, shape)


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


def _residual_state(layer: Any, shape: Shape) -> int:
    current, total = shape, 0
    for inner in layer.layers:
        total += state(inner, current)
        current, _ = infer(inner, current)
    return total


# -- the records --------------------------------------------------------------------------
_CONV2D_ARGS = ("filters", "kernel_size", "strides", "padding", "activation")
_CONV_DEFAULTS = {"strides": 1, "activation": None}
_POOL_ARGS = ("pool_size", "strides", "padding")
# A pool's strides default to its pool size (None), not to 1.
_POOL_DEFAULTS = {"strides": None, "padding": "valid"}
_RECURRENT_DEFAULTS = {"return_sequences": False, "dropout": 0.0}

LAYER_TYPES: dict[str, LayerType] = {
    "dense": LayerType(
        "layers.Dense",
        _dense,
        ("units", "activation", "use_bias"),
        1,
        {"activation": None, "use_bias": True},
        regularized=True,
    ),
    "conv1d": LayerType(
        "layers.Conv1D",
        _conv1d,
        ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation"),
        2,
        {**_CONV_DEFAULTS, "dilation_rate": 1},
        regularized=True,
    ),
    "conv2d": LayerType("layers.Conv2D", _conv2d, _CONV2D_ARGS, 2, _CONV_DEFAULTS, True),
    "conv2d_transpose": LayerType(
        "layers.Conv2DTranspose", _conv2d_transpose, _CONV2D_ARGS, 2, _CONV_DEFAULTS, True
    ),
    "upsampling2d": LayerType(
        "layers.UpSampling2D",
        _upsampling2d,
        ("size", "interpolation"),
        1,
        {"interpolation": "nearest"},
    ),
    "max_pool2d": LayerType("layers.MaxPooling2D", _pool2d, _POOL_ARGS, 1, _POOL_DEFAULTS),
    "avg_pool2d": LayerType("layers.AveragePooling2D", _pool2d, _POOL_ARGS, 1, _POOL_DEFAULTS),
    "global_avg_pool2d": LayerType("layers.GlobalAveragePooling2D", _global_avg_pool2d),
    "flatten": LayerType("layers.Flatten", _flatten),
    "reshape": LayerType("layers.Reshape", _reshape, ("target_shape",), 1),
    "dropout": LayerType("layers.Dropout", _same, ("rate",), 1),
    "batch_norm": LayerType(
        "layers.BatchNormalization",
        _batch_norm,
        ("momentum", "epsilon"),
        defaults={"momentum": 0.99, "epsilon": 1e-3},
        state=_batch_norm_state,
    ),
    "layer_norm": LayerType(
        "layers.LayerNormalization", _layer_norm, ("epsilon",), defaults={"epsilon": 1e-3}
    ),
    "group_norm": LayerType(
        "layers.GroupNormalization",
        _group_norm,
        ("groups", "epsilon"),
        defaults={"epsilon": 1e-3},
    ),
    "activation": LayerType("layers.Activation", _same, ("activation",), 1),
    "embedding": LayerType("layers.Embedding", _embedding, ("input_dim", "output_dim"), 2),
    "lstm": LayerType(
        "layers.LSTM",
        _recurrent(gates=4, extra_bias=1),
        ("units", "return_sequences", "dropout"),
        1,
        _RECURRENT_DEFAULTS,
        regularized=True,
    ),
    "gru": LayerType(
        "layers.GRU",
        _recurrent(gates=3, extra_bias=2),  # Keras' reset_after: two bias vectors per gate
        ("units", "return_sequences", "dropout"),
        1,
        _RECURRENT_DEFAULTS,
        regularized=True,
    ),
    "multi_head_attention": LayerType(
        "layers.MultiHeadAttention",
        _attention,
        ("num_heads", "key_dim", "dropout"),
        defaults={"dropout": 0.0},
    ),
    "transformer_block": LayerType(
        "gencompile_layers.TransformerBlock",
        _transformer_block,
        ("num_heads", "key_dim", "ff_dim", "dropout", "causal"),
        defaults={"dropout": 0.0, "causal": False},
    ),
    "spectral_norm": LayerType(
        "gencompile_layers.SpectralNormalization",
        _spectral_norm,
        ("layer", "power_iterations"),
        1,
        {"power_iterations": 1},
        state=_spectral_norm_state,
    ),
    # Built by NetworkBuilder itself: the user's class, `skip + body(skip)`, and an
    # application with the steps before it (gencompile.compiler.applications).
    "custom": LayerType(None, _custom),
    "keras_application": LayerType(None, infer_application, state=application_state),
    "residual": LayerType("layers.Add", _residual, state=_residual_state),
}
