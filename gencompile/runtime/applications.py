"""Pretrained weights of `type: keras_application` bodies, loaded when training starts.

The generated builders make each application with `weights=None`, so that rebuilding a
trained model (to sample, serve or evaluate it) never needs the file again: the run's own
checkpoint holds the weights. A fresh run loads each file once, here, before `init_from`
(which may replace them) and before the first step. Nothing is downloaded.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import keras

from gencompile.errors import RunError
from gencompile.runtime.training import first_line

DOWNLOADS = "https://storage.googleapis.com/tensorflow/keras-applications/"  # and README


def load_application_weights(model: keras.Model, files: dict[str, dict[str, str]]) -> None:
    """Load `files[network][layer]` into the application layer `layer` of `model.<network>`;
    a missing or unreadable file stops the run with advice (random weights are never a
    silent stand-in for pretrained ones)."""
    for network_name, layers in files.items():
        network = getattr(model, network_name)
        for layer_name, weights in layers.items():
            path = Path(weights).expanduser()
            if not path.is_file():
                raise RunError(
                    f"the weights file of {network_name}.{layer_name} is missing: {weights} "
                    f"(relative to {Path.cwd()}); download the application's `..._notop.h5` "
                    f"file under {DOWNLOADS} on a machine that is online, or set weights: none"
                )
            try:
                with warnings.catch_warnings():  # Keras warns of each layer it skips
                    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
                    network.get_layer(layer_name).load_weights(path)
            except Exception as err:  # h5py and keras raise many types for a wrong file
                raise RunError(wrong_file(weights, network_name, layer_name, err)) from None


def wrong_file(weights: str, network_name: str, layer_name: str, err: BaseException) -> str:
    """One line for a weights file that does not load into an application: Keras' own
    message holds every skipped layer and whole weight tensors (tens of kilobytes)."""
    application = application_name(layer_name)
    text = str(err)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    variable = re.search(r"<Variable path=([^,>\s]+)", text)
    total = re.match(r"A total of (\d+) objects could not be loaded", text)
    if shapes and variable:
        detail = f"e.g. {variable[1]} is {shapes[1]} here, {shapes[2]} in the file"
        detail += f"; {total[1]} objects do not fit" if total else ""
    else:
        detail = first_line(err)[:200]
    whose = f"{application}'s" if application != "this application" else "its"
    return (
        f"cannot load {weights} into {network_name}.{layer_name}: its weights do not fit "
        f"{application} ({detail}); is it {whose} notop file (include_top=False, "
        "`..._notop.h5`)?"
    )


def application_name(layer_name: str) -> str:
    """keras.applications' name for a layer named after it (`mobilenetv2`, `mobilenetv2_2`:
    MobileNetV2); "this application" for a layer the spec named."""
    names = {name.lower(): name for name in dir(keras.applications) if name[:1].isupper()}
    return names.get(re.sub(r"_\d+$", "", layer_name), "this application")
