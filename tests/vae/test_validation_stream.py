"""Validation draws from its own random stream: how often a VAE is validated (every epoch,
every other one, never) leaves its training draws, and so its weights, unchanged."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

DIGITS = (load_digits().images[:128].astype("float32") / 16.0)[..., None]


def trained_weights(module, x: np.ndarray, validation_freq: int | None) -> list[np.ndarray]:
    """The weights after 2 epochs of fit on `x` (batches of 32), validated on its first 64
    rows every `validation_freq` epochs (None: never)."""
    keras.utils.set_random_seed(3)
    model = module.build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train = tf.data.Dataset.from_tensor_slices(x).batch(32)
    options = {}
    if validation_freq is not None:
        options = {
            "validation_data": tf.data.Dataset.from_tensor_slices(x[:64]).batch(32),
            "validation_freq": validation_freq,
        }
    model.fit(train, epochs=2, verbose=0, shuffle=False, **options)
    return [w.numpy() for w in model.weights]


def assert_same_weights(module, x: np.ndarray) -> None:
    never = trained_weights(module, x, None)
    for freq in (1, 2):
        for ours, theirs in zip(never, trained_weights(module, x, freq), strict=True):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("variant", [(), ("model.objective={type: iwae, samples: 2}",)])
def test_validating_a_vae_leaves_its_weights_unchanged(generated_vae, variant) -> None:
    assert_same_weights(generated_vae(*variant), DIGITS)


def test_a_checkpoint_keeps_the_validation_stream(generated_vae, tmp_path) -> None:
    from gencompile.runtime import checkpoints

    module = generated_vae()
    model = module.build_model()
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    model.test_step(tf.constant(DIGITS[:8]))  # one validation draw
    state = model.validation_seed_generator.state.numpy().copy()
    assert state[1] > 0
    checkpoints.save_checkpoint(model, tmp_path, 1)
    restored = module.build_model()
    restored.compile(optimizer="adam")
    assert checkpoints.restore_latest(restored, tmp_path) == 1
    np.testing.assert_array_equal(restored.validation_seed_generator.state.numpy(), state)
