"""Pretrained weights of `type: keras_application` bodies, loaded when training starts.

The generated builders make each application with `weights=None`, so that rebuilding a
trained model (to sample, serve or evaluate it) never needs the file again: the run's own
checkpoint holds the weights. A fresh run loads each file once, here, before `init_from`
(which may replace them) and before the first step. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import keras

from gencompile.errors import RunError

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
                network.get_layer(layer_name).load_weights(path)
            except Exception as err:  # h5py and keras raise many types for a wrong file
                raise RunError(
                    f"cannot load {weights} into {network_name}.{layer_name} ({err}); is it "
                    "this application's weights file without its classifier (include_top="
                    "False, `..._notop.h5`)?"
                ) from None
