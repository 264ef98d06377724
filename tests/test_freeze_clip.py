"""`global_clipnorm` with parts at a learning-rate factor of 0 (training.fine_tune).

A part frozen until `unfreeze_after_epochs` (or held at a multiplier of 0) must train the
rest as Keras freezing does: its gradients are left out of the global norm, so the other
weights' updates are bit for bit those of a run that freezes it in Keras. Once unfrozen,
its gradients count again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import fine_tune
from tests.transfer.test_fine_tune import Snapshots, TwoNetworks

CLIP = 0.01  # far below the gradients' norm: every step is clipped
OPTIMIZERS: dict[str, Callable[[], keras.optimizers.Optimizer]] = {
    "sgd": lambda: keras.optimizers.SGD(0.1, global_clipnorm=CLIP),
    "adam": lambda: keras.optimizers.Adam(0.01, global_clipnorm=CLIP),
}
ENCODER = range(4)  # kernel and bias of the encoder's two layers, then the decoder's


def data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def fitted(
    config: dict[str, Any] | None,
    epochs: int,
    optimizer: Callable[[], keras.optimizers.Optimizer],
    keras_frozen: bool = False,
) -> tuple[list[np.ndarray], Snapshots]:
    """Initial weights and those after each epoch (one batch an epoch); `keras_frozen`:
    the encoder `trainable=False`, Keras' own freezing."""
    keras.utils.set_random_seed(3)
    model = TwoNetworks()
    model.encoder.trainable = not keras_frozen
    model.compile(optimizer=optimizer(), loss="mse")
    x, y = data()
    model(x[:1])
    initial = [np.array(w) for w in model.get_weights()]
    snapshots = Snapshots()
    schedule = fine_tune.callbacks(model, {} if config is None else {"fine_tune": config})
    callbacks = [*schedule, snapshots]
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return initial, snapshots


SCHEDULED = {"unfreeze_after_epochs": 5, "learning_rate_multipliers": {}, "frozen": ["encoder"]}
HELD = {"unfreeze_after_epochs": None, "learning_rate_multipliers": {"encoder": 0.0}, "frozen": []}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("config", [SCHEDULED, HELD], ids=["scheduled", "multiplier_0"])
def test_a_part_at_a_factor_of_0_is_left_out_of_the_global_clip(
    optimizer: str, config: dict[str, Any]
) -> None:
    initial, frozen = fitted(None, 3, OPTIMIZERS[optimizer], keras_frozen=True)
    _, scheduled = fitted(config, 3, OPTIMIZERS[optimizer])
    for epoch in range(3):
        for i, start in enumerate(initial):
            if i in ENCODER:
                assert np.array_equal(scheduled.after[epoch][i], start)
            else:
                assert not np.array_equal(frozen.after[epoch][i], start)  # it trains
                assert np.array_equal(scheduled.after[epoch][i], frozen.after[epoch][i])


def test_an_unfrozen_parts_gradients_count_in_the_global_clip_again() -> None:
    """Epoch 2, after unfreezing: SGD's step is the learning rate times every gradient
    clipped together (the encoder's in the norm), computed here by hand."""
    config = {**SCHEDULED, "unfreeze_after_epochs": 1}
    _, run = fitted(config, 2, OPTIMIZERS["sgd"])
    model = TwoNetworks()
    x, y = data()
    model(x[:1])
    model.set_weights(run.after[0])
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    clipped, _ = tf.clip_by_global_norm(grads, CLIP)
    for i, (before, grad) in enumerate(zip(run.after[0], clipped, strict=True)):
        np.testing.assert_allclose(run.after[1][i], before - 0.1 * grad.numpy(), atol=1e-7)
    assert np.any(run.after[1][0] != run.after[0][0])
