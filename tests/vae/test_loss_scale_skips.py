"""Under mixed precision, steps that loss scaling skips (their scaled gradients overflowed)
are no gradient trouble: the VAE's grad_norm leaves them out, and an epoch where every step
was skipped reads nan with its own message, never the exploding or vanishing advice."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from gencompile.runtime.callbacks import GradientMonitor

MIXED = "training.mixed_precision=true"


@pytest.fixture
def mixed_vae(generated_vae):
    """make(scale) -> the tiny VAE under mixed precision, its loss scale starting at `scale`."""
    module = generated_vae(MIXED)

    def make(scale: float) -> keras.Model:
        keras.utils.set_random_seed(3)
        model = module.build_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        model.optimizer.build(model.trainable_weights)
        model.optimizer.dynamic_scale.assign(scale)
        return model

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield make
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it


def fit(model: keras.Model, steps: int) -> tuple[dict, list[str]]:
    """The epoch's logs of `steps` batches of 16 digits, and what the monitor warned."""
    x = load_digits().images.astype("float32")[..., None] / 16.0
    data = tf.data.Dataset.from_tensor_slices(x).repeat().take(steps * 16).batch(16)
    said: list[str] = []
    history = model.fit(
        data, epochs=1, verbose=0, shuffle=False, callbacks=[GradientMonitor(warn=said.append)]
    )
    return {k: v[-1] for k, v in history.history.items()}, said


def test_skipped_steps_leave_the_grad_norm_finite(mixed_vae) -> None:
    model = mixed_vae(2.0**40)  # the first steps overflow: each skipped halves the scale
    logs, said = fit(model, steps=64)
    applied = int(model.optimizer.iterations)
    assert 0 < applied < 64  # some steps skipped, some applied
    assert np.isfinite(logs["grad_norm"]) and 0 < logs["grad_norm"] < 1e3, logs
    assert said == []


def test_an_epoch_of_skipped_steps_has_no_grad_norm_and_no_advice(mixed_vae) -> None:
    model = mixed_vae(1e38)  # every step of the epoch overflows
    logs, said = fit(model, steps=4)
    assert int(model.optimizer.iterations) == 0
    assert np.isnan(logs["grad_norm"])  # not the 0 of an empty mean
    assert len(said) == 1 and "loss scaling (mixed precision) skipped every step" in said[0]
    assert not any("exploding" in s or "vanishing" in s for s in said)


def test_the_monitor_reads_the_steps_of_a_mirrored_optimizer(generated_vae) -> None:
    """Under a tf.distribute strategy `iterations` is a MirroredVariable, which `int()`
    refused: mixed precision with `mirrored` or `multi_worker` failed at the first epoch."""
    from gencompile.runtime.training import mirrored_strategy

    module = generated_vae(MIXED)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with mirrored_strategy().scope():
            model = module.build_model()
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            model.optimizer.build(model.trainable_weights)
        logs, said = fit(model, steps=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["grad_norm"]), logs
    assert said == []
