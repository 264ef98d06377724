"""`type: keras_application`: a keras.applications network as the body of an encoder or a
discriminator: what the compiler knows of each application, without Keras.

`NetworkBuilder._application` lowers the layer to explicit steps. A network that reads the
data's images gets, in order: an optional `layers.Resizing`, the grey channel repeated
three times (`layers.Concatenate`), a `layers.Rescaling` from the spec's preprocessing
scale to pixels in [0, 255], then the application itself, whose statement
(`emit.application_statement`) also writes its own `preprocess_input`. What the compiler
needs of each application is in `APPLICATION_TABLE`, checked against Keras by a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gencompile.compiler.plan import Shape
from gencompile.compiler.shapes import ShapeError, known, require_rank

MIN_SIZE = 32  # keras.applications refuses smaller images (`obtain_input_shape`)
PIXELS = (0.0, 255.0)  # what every application's preprocess_input reads


@dataclass(frozen=True)
class Application:
    module: str  # keras.applications.<module>.preprocess_input
    params: int  # include_top=False, every weight (batch-norm statistics included)
    channels: int  # of the last feature map
    halve_up: bool  # its five stride-2 stages round odd sizes up (same padding) or down
    state: int  # of `params`, the non-trainable ones (batch-norm statistics, input normalization)


APPLICATION_TABLE = {
    "MobileNetV2": Application("mobilenet_v2", 2_257_984, 1280, True, 34_112),
    "EfficientNetB0": Application("efficientnet", 4_049_571, 1280, True, 42_023),
    "ResNet50": Application("resnet50", 23_587_712, 2048, True, 53_120),
    "DenseNet121": Application("densenet", 7_037_504, 1024, False, 83_648),
    "VGG16": Application("vgg16", 14_714_688, 512, False, 0),
}


def image_size(layer: Any, shape: Shape) -> tuple[int, int, int]:
    """(height, width, channels) the application's input has, after the resize; raises
    ShapeError for what it cannot read."""
    require_rank(shape, 3, f"keras_application {layer.application}")
    height, width, channels = known(shape, "keras_application")
    if channels not in (1, 3):
        raise ShapeError(
            f"{layer.application} reads colour images (3 channels; a grey one is repeated), "
            f"but its input has {channels} channels"
        )
    if layer.resize is not None:
        height, width = layer.resize
    if min(height, width) < MIN_SIZE:
        raise ShapeError(
            f"{layer.application} needs images of at least {MIN_SIZE}x{MIN_SIZE}, but gets "
            f"{height}x{width}: add `resize: [{max(height, MIN_SIZE)}, {max(width, MIN_SIZE)}]` "
            "to the layer (a keras Resizing layer before it)"
        )
    return height, width, channels


def infer_application(layer: Any, shape: Shape) -> tuple[Shape, int]:
    """The application's output shape (pooled: one vector) and its parameter count."""
    height, width, _ = image_size(layer, shape)
    record = APPLICATION_TABLE[layer.application]
    if layer.pooling is not None:
        return (record.channels,), record.params
    for _ in range(5):  # the network's stride is 32
        height, width = _halve(height, record.halve_up), _halve(width, record.halve_up)
    return (height, width, record.channels), record.params


def application_state(layer: Any, shape: Shape) -> int:
    """How many of the application's parameters are non-trainable state."""
    return APPLICATION_TABLE[layer.application].state


def _halve(size: int, up: bool) -> int:
    return math.ceil(size / 2) if up else size // 2


def data_scale(spec: Any) -> tuple[float, float] | None:
    """The range the spec's preprocessing maps the data to, if it names one."""
    scale = spec.data.preprocessing.scale
    return None if scale is None else (float(scale[0]), float(scale[1]))


def pixel_rescaling(scale: tuple[float, float]) -> tuple[float, float]:
    """(scale, offset) of the `layers.Rescaling` from data in `scale` to [0, 255]."""
    low, high = scale
    factor = (PIXELS[1] - PIXELS[0]) / (high - low)
    return factor, PIXELS[0] - low * factor


def application_arguments(layer: Any, shape: Shape) -> list[tuple[str, Any]]:
    """The constructor's keyword arguments: the weights are loaded by train.py (a file),
    so that rebuilding a trained model (sample, serve) never needs the file again."""
    height, width, _ = image_size(layer, shape)
    return [
        ("input_shape", (height, width, 3)),
        ("include_top", False),
        ("weights", None),
        ("pooling", layer.pooling),
    ]
