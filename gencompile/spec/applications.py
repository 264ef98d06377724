"""The closed list of `type: keras_application` networks and the weights a spec may give.

The spec imports no Keras: the names here are keras.applications' constructors, and the
compiler's table (`gencompile.compiler.applications`) holds what it needs of each (its
module, parameters, output channels). A test checks both against Keras itself.
"""

from __future__ import annotations

from gencompile.spec.base import HintedError

# Where keras.applications downloads each network's ImageNet weights without its classifier.
NOTOP_WEIGHTS = {
    "MobileNetV2": "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "EfficientNetB0": "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    "ResNet50": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
    "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "DenseNet121": "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
    "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "VGG16": "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
APPLICATIONS = tuple(NOTOP_WEIGHTS)
# keras.applications reads these files with `weights=PATH` (Model.load_weights).
WEIGHTS_SUFFIXES = (".h5",)  # .weights.h5 included


def download_hint(application: str) -> str:
    """Where to get an application's weights file, for an offline machine."""
    url = NOTOP_WEIGHTS.get(
        application, "https://storage.googleapis.com/tensorflow/keras-applications/"
    )
    return f"download {url} on a machine that is online and give its path: weights: FILE"


class ImagenetRefused(HintedError):
    """`weights: imagenet`, located at the `weights` field, with the file to download."""

    field = "weights"


def application_weights(value: str | None) -> str | None:
    """None for `weights: none` (or null), else the path of a local weights file."""
    if value is None or value == "none":
        return None
    if not value.endswith(WEIGHTS_SUFFIXES):
        raise HintedError(
            f"a weights file ends with .h5 or .weights.h5 (got {value!r})",
            "give the path of a local weights file, or `none` for random initial weights",
        )
    return value


def refuse_imagenet(application: str, weights: str | None) -> None:
    """`weights: imagenet` would download when the model is built: refused, with the URL."""
    if weights == "imagenet":
        raise ImagenetRefused(
            "weights: imagenet downloads the weights when the model is built, and the "
            "build must work offline",
            download_hint(application),
        )
