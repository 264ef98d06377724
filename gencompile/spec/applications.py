"""The closed list of `type: keras_application` networks and the weights a spec may give.

The spec imports no Keras: the names here are keras.applications' constructors, and the
compiler's table (`gencompile.compiler.applications`) holds what it needs of each (its
module, parameters, output channels). A test checks both against Keras itself.
"""

from __future__ import annotations

from gencompile.spec.base import HintedError

APPLICATIONS = ("MobileNetV2", "EfficientNetB0", "ResNet50", "DenseNet121", "VGG16")
# keras.applications reads these files with `weights=PATH` (Model.load_weights).
WEIGHTS_SUFFIXES = (".h5",)  # .weights.h5 included
DOWNLOADS = "https://storage.googleapis.com/tensorflow/keras-applications/"
IMAGENET_HINT = (
    "download the application's ImageNet weights without its classifier (the `..._notop.h5` "
    f"file under {DOWNLOADS}) on a machine that is online, and give its path: weights: FILE"
)


def application_weights(value: str | None) -> str | None:
    """None for `weights: none` (or null), else the path of a local weights file."""
    if value is None or value == "none":
        return None
    if value == "imagenet":
        raise HintedError(
            "weights: imagenet downloads the weights when the model is built, and the "
            "build must work offline",
            IMAGENET_HINT,
        )
    if not value.endswith(WEIGHTS_SUFFIXES):
        raise HintedError(
            f"a weights file ends with .h5 or .weights.h5 (got {value!r})",
            "give the path of a local weights file, or `none` for random initial weights",
        )
    return value
