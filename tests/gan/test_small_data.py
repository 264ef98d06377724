"""Small-data GANs train: DiffAugment and ADA inside both updates, lazy R1 on every
interval-th discriminator update scaled by the interval, and ADA's p kept by checkpoints."""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import checkpoints, training

STEPS = 8
DIGITS = np.random.default_rng(0).uniform(-1, 1, (STEPS * 16, 8, 8, 1)).astype("float32")
RING = np.random.default_rng(0).normal(size=(STEPS * 16, 2)).astype("float32")
IMAGE_GAN = {
    "data": "digits",
    "preprocessing": "{scale: [-1.0, 1.0]}",
    "generator": (
        "{layers: [{type: dense, units: 32}, {type: reshape, target_shape: [2, 2, 8]},"
        " {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 4}]}"
    ),
    "discriminator": "{layers: [{type: conv2d, filters: 4, kernel_size: 3, strides: 2}]}",
}
DIFFAUGMENT = "  augmentation: {type: diffaugment, policy: [color, translation, cutout]}"
# p moves by 2 updates x 16 examples / 640 = 0.05 every second update, from 0.5.
ADA = "  augmentation: {type: ada, target: 0.6, interval: 2, ramp_images: 640, initial_p: 0.5}"


def compiled(generated, run_eagerly: bool = False) -> keras.Model:
    keras.utils.set_random_seed(5)
    data = SimpleNamespace(steps_per_epoch=STEPS)
    model = training.build_and_compile(
        generated.module.build_model, generated.training, data, epochs=2
    )
    model.run_eagerly = run_eagerly
    return model


def fit(
    model: keras.Model, epochs: int = 1, initial_epoch: int = 0, x: np.ndarray = DIGITS
) -> dict:
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
    history = model.fit(
        dataset, epochs=epochs, initial_epoch=initial_epoch, verbose=0, shuffle=False
    )
    return {k: v[-1] for k, v in history.history.items()}


def test_diffaugment_and_ada_train_and_ada_tracks_p(generated_gan) -> None:
    for model_text in (DIFFAUGMENT, ADA):
        model = compiled(generated_gan(model=model_text, **IMAGE_GAN))
        logs = fit(model)
        assert all(np.isfinite(v) for v in logs.values()), logs
        assert logs["d_grad_norm"] > 0 and logs["g_grad_norm"] > 0
        assert ("augment_p" in logs) == (model_text == ADA)
        assert np.asarray(model.sample(3)).shape == (3, 8, 8, 1)
    # Four moves of 0.05 from 0.5 (their direction is D's call).
    p = float(model.ada.probability)
    assert 0.3 - 1e-6 <= p <= 0.7 + 1e-6
    assert abs((p - 0.5) / 0.05 - round((p - 0.5) / 0.05)) < 1e-4
    assert logs["augment_p"] == pytest.approx(p)  # p at the end of the epoch, not its mean


def test_real_and_fake_go_through_the_same_policy_in_both_updates(generated_gan) -> None:
    generated = generated_gan(model=DIFFAUGMENT, **IMAGE_GAN)
    model = compiled(generated, run_eagerly=True)
    calls = []
    original = generated.module.augment.diff_augment

    def recording(x, policy, seed, probability=None):
        calls.append((tuple(x.shape), tuple(policy), seed, probability))
        return original(x, policy, seed=seed, probability=probability)

    generated.module.augment.diff_augment = recording
    try:
        model.train_step(tf.constant(DIGITS[:16]))
    finally:
        generated.module.augment.diff_augment = original
    # T(x) and T(G(z)) for the discriminator's update, T(G(z)) for the generator's.
    assert len(calls) == 3
    assert {call[1] for call in calls} == {("color", "translation", "cutout")}
    assert all(call[0] == (16, 8, 8, 1) for call in calls)
    assert all(call[2] is model.seed_generator and call[3] is None for call in calls)


def test_lazy_r1_applies_the_penalty_on_every_interval_th_update_only(generated_gan) -> None:
    lazy = compiled(generated_gan(model="  gradient_penalty: {type: r1, weight: 1.0, interval: 4}"))
    fit(lazy, x=RING)  # STEPS = 8 discriminator updates: iterations 0..7
    assert int(lazy.discriminator_optimizer.iterations) == STEPS
    # The tracker weighs the examples of the updates that computed the penalty, iterations
    # 0 and 4: two batches of 16.
    assert float(lazy.penalty_tracker.count) == 2 * 16
    assert float(lazy.penalty_tracker.result()) > 0


def test_an_epoch_where_lazy_r1_computed_no_penalty_logs_nan_not_zero(generated_gan) -> None:
    penalty = "  gradient_penalty: {type: r1, weight: 1.0, interval: 16}"
    lazy = compiled(generated_gan(model=penalty))
    dataset = tf.data.Dataset.from_tensor_slices(RING).batch(16)
    history = lazy.fit(dataset, epochs=2, verbose=0, shuffle=False).history
    # Epoch 1 computes it at update 0; epoch 2 (updates 8..15) at none.
    first, second = history["gradient_penalty"]
    assert first > 0 and math.isnan(second)


def test_lazy_r1_scales_the_penalty_by_the_interval(generated_gan) -> None:
    """At an update that computes it, interval 4 with weight 1 is weight 4 every update;
    at the next update the lazy discriminator skips the penalty, so the two part."""
    lazy = compiled(generated_gan(model="  gradient_penalty: {type: r1, weight: 1.0, interval: 4}"))
    eager = compiled(generated_gan(model="  gradient_penalty: {type: r1, weight: 4.0}"))
    plain = compiled(generated_gan())
    x = tf.constant(np.random.default_rng(1).normal(size=(32, 2)).astype("float32"))
    for model in (lazy, eager, plain):
        model.train_step(x)
    for a, b in zip(lazy.discriminator.weights, eager.discriminator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert any(
        not np.allclose(a.numpy(), b.numpy())
        for a, b in zip(lazy.discriminator.weights, plain.discriminator.weights, strict=True)
    )  # the penalty did act
    for model in (lazy, eager, plain):
        model.train_step(x)
    # Second update: the lazy model has no penalty (as the plain one), the eager one has.
    for a, b in zip(lazy.discriminator.weights, eager.discriminator.weights, strict=True):
        if a.trainable and a.ndim >= 2:
            assert not np.allclose(a.numpy(), b.numpy())


@pytest.mark.slow  # three models traced and trained: about 20 s, minutes under load
def test_a_resumed_ada_run_equals_an_uninterrupted_one(generated_gan, tmp_path) -> None:
    generated = generated_gan(model=ADA, **IMAGE_GAN)
    whole = compiled(generated)
    fit(whole, epochs=2)
    first = compiled(generated)
    fit(first, epochs=1)
    checkpoints.save_checkpoint(first, tmp_path, 1)
    resumed = compiled(generated)
    assert checkpoints.restore_latest(resumed, tmp_path) == 1
    assert float(resumed.ada.probability) == float(first.ada.probability)
    fit(resumed, epochs=2, initial_epoch=1)
    assert float(resumed.ada.probability) == float(whole.ada.probability)
    for ours, theirs in zip(whole.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
