"""A frozen spectral normalization keeps its kernel and power-iteration vector bit for bit,
as a frozen batch norm keeps its moving statistics: frozen by Keras (`trainable=False`,
a network's `freeze: true`) or by a learning rate of 0 until `unfreeze_after_epochs`."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from gencompile.runtime import fine_tune
from gencompile.runtime.layers import SpectralNormalization

X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")


def network(name: str) -> keras.Model:
    return keras.Sequential(
        [keras.Input((3,)), SpectralNormalization(keras.layers.Dense(4)), keras.layers.Dense(1)],
        name=name,
    )


def values(layer: keras.layers.Layer) -> list[np.ndarray]:
    return [np.array(v) for v in layer.weights]


def unchanged(before: list[np.ndarray], layer: keras.layers.Layer) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, values(layer), strict=True))


def test_a_spectral_norm_that_is_not_trainable_keeps_its_kernel_and_u() -> None:
    keras.utils.set_random_seed(1)
    frozen, trained = network("frozen"), network("trained")
    frozen.trainable = False  # what a generated `freeze: true` network does
    before_frozen, before_trained = values(frozen.layers[0]), values(trained.layers[0])
    frozen(X, training=True)
    trained(X, training=True)
    assert unchanged(before_frozen, frozen.layers[0])
    assert not unchanged(before_trained, trained.layers[0])  # Keras' own update, kept


def test_a_spectral_norm_round_trips_through_its_config() -> None:
    layer = SpectralNormalization(keras.layers.Dense(4), power_iterations=2, trainable=False)
    copy = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(copy, SpectralNormalization)
    assert copy.power_iterations == 2 and not copy.trainable


class TwoNetworks(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.decoder = network("encoder"), network("decoder")

    def call(self, x: Any, training: bool | None = None) -> Any:
        return self.encoder(x, training=training) + self.decoder(x, training=training)


def test_a_part_frozen_until_it_unfreezes_keeps_its_spectral_norm() -> None:
    keras.utils.set_random_seed(2)
    model = TwoNetworks()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model(X[:1])
    config = {"unfreeze_after_epochs": 1, "learning_rate_multipliers": {}, "frozen": ["encoder"]}
    schedule = fine_tune.callbacks(model, {"fine_tune": config})
    encoder, decoder = values(model.encoder), values(model.decoder)

    def fit(first: int, last: int) -> None:
        model.fit(X, X[:, :1], epochs=last, initial_epoch=first, verbose=0, callbacks=schedule)

    fit(0, 1)
    assert unchanged(encoder, model.encoder)
    assert not unchanged(decoder, model.decoder)
    fit(1, 2)  # unfrozen: it trains, its spectral norm steps again
    assert not unchanged(encoder, model.encoder)
