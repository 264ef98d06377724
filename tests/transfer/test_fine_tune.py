"""training.fine_tune in the runtime: learning-rate factors per network and unfreezing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import fine_tune


class TwoNetworks(keras.Model):
    """A model with named networks, as generated models have (`model.encoder`, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, name="first"), keras.layers.Dense(2)],
            name="encoder",
        )
        self.decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="decoder")

    def call(self, x: Any) -> Any:
        return self.decoder(self.encoder(x))


class Snapshots(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.after: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.after.append([np.array(w) for w in self.model.get_weights()])


def fitted(
    config: dict[str, Any] | None,
    epochs: int,
    optimizer: Callable[[], keras.optimizers.Optimizer] = lambda: keras.optimizers.SGD(0.1),
) -> tuple[list[np.ndarray], Snapshots]:
    """Initial weights and the weights after each epoch, one batch an epoch."""
    keras.utils.set_random_seed(3)
    model = TwoNetworks()
    model.compile(optimizer=optimizer(), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model(x[:1])
    initial = [np.array(w) for w in model.get_weights()]
    snapshots = Snapshots()
    training = {} if config is None else {"fine_tune": config}
    schedule = fine_tune.callbacks(model, training)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[*schedule, snapshots],
    )
    return initial, snapshots


OPTIMIZERS: dict[str, Callable[[], keras.optimizers.Optimizer]] = {
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "adam": lambda: keras.optimizers.Adam(0.01),  # an update that is not the gradient's size
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("factor", [0.1, 0.5])
def test_a_learning_rate_multiplier_scales_the_first_update(optimizer: str, factor: float) -> None:
    initial, plain = fitted(None, 1, OPTIMIZERS[optimizer])
    _, scaled = fitted(
        {
            "unfreeze_after_epochs": None,
            "learning_rate_multipliers": {"encoder": factor},
            "frozen": [],
        },
        1,
        OPTIMIZERS[optimizer],
    )
    encoder = range(4)  # kernel and bias of the encoder's two layers, then the decoder's
    for i, start in enumerate(initial):
        full, part = plain.after[0][i] - start, scaled.after[0][i] - start
        assert np.any(full != 0)
        expected = factor if i in encoder else 1.0
        np.testing.assert_allclose(part, expected * full, rtol=1e-4, atol=1e-8)


def test_a_frozen_layer_keeps_its_weights_until_it_unfreezes() -> None:
    config = {
        "unfreeze_after_epochs": 2,
        "learning_rate_multipliers": {},
        "frozen": ["encoder.first"],
    }
    initial, run = fitted(config, 3)
    first = (0, 1)  # the frozen layer's kernel and bias
    for epoch in (0, 1):
        for i in first:
            assert np.array_equal(run.after[epoch][i], initial[i])
        assert not np.array_equal(run.after[epoch][2], initial[2])  # the rest trains
    for i in first:
        assert not np.array_equal(run.after[2][i], initial[i])


def test_a_missing_network_is_named() -> None:
    model = TwoNetworks()
    model.compile(optimizer="sgd", loss="mse")
    config = {
        "unfreeze_after_epochs": None,
        "learning_rate_multipliers": {"head": 0.5},
        "frozen": [],
    }
    with pytest.raises(RunError, match="no network 'head'"):
        fine_tune.callbacks(model, {"fine_tune": config})


LEARNING_RATE, WEIGHT_DECAY = 0.01, 0.5  # a decay large enough to measure in float32


def adamw() -> keras.optimizers.Optimizer:
    return keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY)


def adam() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(LEARNING_RATE)


def test_adamw_leaves_a_part_frozen_until_it_unfreezes_bit_for_bit() -> None:
    config = {"unfreeze_after_epochs": 2, "learning_rate_multipliers": {}, "frozen": ["encoder"]}
    initial, run = fitted(config, 3, adamw)
    encoder = range(4)
    for epoch in (0, 1):
        for i in encoder:
            assert np.array_equal(run.after[epoch][i], initial[i])
        assert not np.array_equal(run.after[epoch][4], initial[4])  # the decoder trains
    assert not np.array_equal(run.after[2][0], initial[0])


@pytest.mark.parametrize("factor", [0.1, 1.0])
def test_a_learning_rate_multiplier_scales_adamws_weight_decay(factor: float) -> None:
    # AdamW's first step is Adam's minus the decay `weight * weight_decay * learning_rate`,
    # so the two runs' difference is the decay alone.
    config = {
        "unfreeze_after_epochs": None,
        "learning_rate_multipliers": {"encoder": factor},
        "frozen": [],
    }
    initial, with_decay = fitted(config, 1, adamw)
    _, without = fitted(config, 1, adam)
    for i, start in enumerate(initial):
        decay = without.after[0][i] - with_decay.after[0][i]
        expected = (factor if i < 4 else 1.0) * LEARNING_RATE * WEIGHT_DECAY * start
        np.testing.assert_allclose(decay, expected, rtol=1e-3, atol=1e-7)
    if factor == 1.0:  # a factor of 1 changes no bit of Keras' own AdamW step
        _, unscheduled = fitted(None, 1, adamw)
        for ours, keras_own in zip(with_decay.after[0], unscheduled.after[0], strict=True):
            np.testing.assert_array_equal(ours, keras_own)


class WithBatchNorm(keras.Model):
    """An encoder with a batch norm in a residual-like block, and one directly in it."""

    def __init__(self) -> None:
        super().__init__()
        block = keras.Sequential([keras.layers.Dense(4), keras.layers.BatchNormalization()])
        self.encoder = keras.Sequential(
            [keras.Input((3,)), block, keras.layers.BatchNormalization(), keras.layers.Dense(2)],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.Input((2,)), keras.layers.BatchNormalization(), keras.layers.Dense(1)],
            name="decoder",
        )

    def call(self, x: Any, training: bool | None = None) -> Any:
        return self.decoder(self.encoder(x, training=training), training=training)


def statistics(network: keras.Model) -> list[np.ndarray]:
    return [
        np.array(variable)
        for layer in fine_tune.batch_norms_of(network)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


def test_a_part_frozen_until_it_unfreezes_keeps_its_batch_norm_statistics() -> None:
    """Until it unfreezes, a frozen part's batch norm runs in inference mode (as Keras runs
    a frozen one): its moving statistics stay bit for bit and normalise its inputs."""
    keras.utils.set_random_seed(3)
    model = WithBatchNorm()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(16, 3)).astype("float32")
    model(x[:1])
    config = {"unfreeze_after_epochs": 2, "learning_rate_multipliers": {}, "frozen": ["encoder"]}
    schedule = fine_tune.callbacks(model, {"fine_tune": config})
    initial, decoder_initial = statistics(model.encoder), statistics(model.decoder)
    assert len(initial) == 4

    def fit(first: int, last: int) -> None:
        model.fit(
            x,
            x[:, :1],
            batch_size=16,
            epochs=last,
            initial_epoch=first,
            shuffle=False,
            verbose=0,
            callbacks=schedule,
        )

    fit(0, 2)
    assert all(
        np.array_equal(a, b) for a, b in zip(initial, statistics(model.encoder), strict=True)
    )
    assert not np.array_equal(decoder_initial[0], statistics(model.decoder)[0])  # it trains
    np.testing.assert_array_equal(model.encoder(x, training=True), model.encoder(x))
    fit(2, 3)  # unfrozen: it normalises with the batch's statistics and updates its own
    assert not np.array_equal(initial[0], statistics(model.encoder)[0])
