"""`type: keras_application`: a keras.applications network as the body of an encoder or a
discriminator, lowered to explicit steps.

A network that reads the data's images gets, in order: an optional `layers.Resizing`, the
grey channel repeated three times (`layers.Concatenate`), a `layers.Rescaling` from the
spec's preprocessing scale to pixels in [0, 255], then the application itself, whose
statement (`emit.application_statement`) also writes its own `preprocess_input`. Keras is
not imported here: what the compiler needs of each application is in `APPLICATION_TABLE`,
checked against Keras by a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencompile.compiler.plan import PathKey, Shape
from gencompile.compiler.shapes import ShapeError, known, require_rank
from gencompile.spec.applications import download_hint

if TYPE_CHECKING:
    from gencompile.compiler.networks import NetworkBuilder

MIN_SIZE = 32  # keras.applications refuses smaller images (`obtain_input_shape`)
PIXELS = (0.0, 255.0)  # what every application's preprocess_input reads


@dataclass(frozen=True)
class Application:
    module: str  # keras.applications.<module>.preprocess_input
    params: int  # include_top=False, every weight (batch-norm statistics included)
    channels: int  # of the last feature map
    halve_up: bool  # its five stride-2 stages round odd sizes up (same padding) or down


APPLICATION_TABLE = {
    "MobileNetV2": Application("mobilenet_v2", 2_257_984, 1280, True),
    "EfficientNetB0": Application("efficientnet", 4_049_571, 1280, True),
    "ResNet50": Application("resnet50", 23_587_712, 2048, True),
    "DenseNet121": Application("densenet", 7_037_504, 1024, False),
    "VGG16": Application("vgg16", 14_714_688, 512, False),
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


def application_steps(
    net: NetworkBuilder, layer: Any, path: PathKey, var: str, shape: Shape, frozen: bool
) -> tuple[str, Shape]:
    """Append the steps of one keras_application layer; returns its output and shape."""
    if net.image_input is None or var != net.image_input[0]:
        raise _refuse(
            net,
            path,
            "a keras_application reads the data's images: it must be the first layer of "
            "an encoder (vae) or of an unconditional discriminator (gan)",
            "move it first, or describe this network with other layers",
        )
    scale = net.image_input[1]
    if scale is None:
        raise _refuse(
            net,
            path,
            f"{layer.application} reads pixels in [0, 255], which the data's preprocessing "
            "does not map to: it gives no range",
            "set data.preprocessing: {scale: [0.0, 1.0]} (or [-1.0, 1.0])",
        )
    if net.has_application:
        raise _refuse(
            net, path, "one keras_application per network", "use one application in this network"
        )
    net.has_application = True
    try:
        height, width, channels = image_size(layer, shape)
    except ShapeError as err:
        net.report(path, str(err), None)
        raise
    if layer.resize is not None:
        args = (("height", height), ("width", width))
        size = (height, width, channels)
        resize = net.layer("resizing", "layers.Resizing", args, size, 0, _fresh(net, "resizing"))
        var = net.add("h", replace(resize, positional=2), (var,))
    if channels == 1:
        # Explicit in the generated code: the application's first kernels read R, G and B.
        rgb = (height, width, 3)
        grey = net.layer(
            "grey_to_rgb", "layers.Concatenate", (), rgb, 0, _fresh(net, "grey_to_rgb")
        )
        var = net.add("h", grey, (var, var, var), packed=True)
    factor, offset = pixel_rescaling(scale)
    args = (("scale", factor), *((("offset", offset),) if offset else ()))
    to_pixels = _fresh(net, "to_pixels")
    rescale = net.layer("to_pixels", "layers.Rescaling", args, (height, width, 3), 0, to_pixels)
    var = net.add("h", replace(rescale, positional=1), (var,))
    pretrained = layer.weights is not None
    plan = replace(net.from_spec(layer, (height, width, 3), path, frozen), pretrained=pretrained)
    # A frozen or pretrained body keeps its batch-norm layers in inference mode, as Keras
    # advises (even once unfrozen for fine-tuning): it is called with training=False.
    keep_statistics = pretrained or frozen or net.frozen or not layer.trainable
    call_args = (("training", False),) if keep_statistics else ()
    var = net.add("h", plan, (var,), call_args=call_args)
    if pretrained:
        if not Path(layer.weights).expanduser().is_file():  # as the runtime reads it
            net.report(
                (*path, "weights"),
                f"no weights file {layer.weights} (paths are relative to the working directory)",
                f"{download_hint(layer.application)}, or set weights: none",
            )
        net.application_weights[plan.name] = layer.weights
    return var, plan.output_shape


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


def _fresh(net: NetworkBuilder, name: str) -> str:
    """`name` itself while the network has no layer of that name (one application each)."""
    return name if name not in net.used_names else net.unique(name)


def _refuse(net: NetworkBuilder, path: PathKey, message: str, hint: str) -> ShapeError:
    net.report(path, message, hint)
    return ShapeError(message)
