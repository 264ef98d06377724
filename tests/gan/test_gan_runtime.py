"""The GAN runtime against closed forms: losses, gradient penalties (a linear critic's
gradient norm is known), accuracy and the health callback (the moving average: test_ema)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import gan

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(64, 1)).astype("float32") * 2.0
FAKE = RNG.normal(size=(64, 1)).astype("float32") * 2.0 - 1.0


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x.astype(np.float64))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# The textbook forms, in probabilities where the papers write them so.
REFERENCE = {
    "non_saturating": (
        lambda r, f: -np.mean(np.log(sigmoid(r))) - np.mean(np.log(1.0 - sigmoid(f))),
        lambda f: -np.mean(np.log(sigmoid(f))),
    ),
    "minimax": (
        lambda r, f: -np.mean(np.log(sigmoid(r))) - np.mean(np.log(1.0 - sigmoid(f))),
        lambda f: np.mean(np.log(1.0 - sigmoid(f))),
    ),
    "hinge": (
        lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
        lambda f: -np.mean(f),
    ),
    "least_squares": (
        lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2),
        lambda f: 0.5 * np.mean((f - 1) ** 2),
    ),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
}


@pytest.mark.parametrize("name", sorted(gan.LOSSES))
def test_losses_equal_their_textbook_forms(name: str) -> None:
    d_loss, g_loss = gan.LOSSES[name]
    d_ref, g_ref = REFERENCE[name]
    np.testing.assert_allclose(float(d_loss(REAL, FAKE)), d_ref(REAL, FAKE), rtol=1e-5)
    np.testing.assert_allclose(float(g_loss(FAKE)), g_ref(FAKE), rtol=1e-5)


def test_one_sided_label_smoothing_moves_only_the_real_target() -> None:
    s = 0.1
    expected = np.mean(-(1 - s) * np.log(sigmoid(REAL)) - s * np.log(1 - sigmoid(REAL)))
    expected += np.mean(-np.log(1.0 - sigmoid(FAKE)))
    got = gan.non_saturating_discriminator_loss(REAL, FAKE, label_smoothing=s)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    expected = 0.5 * np.mean((REAL - (1 - s)) ** 2) + 0.5 * np.mean(FAKE**2)
    got = gan.least_squares_discriminator_loss(REAL, FAKE, label_smoothing=s)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_losses_are_float32_scalars_for_float16_scores() -> None:
    loss = gan.non_saturating_generator_loss(tf.constant(FAKE, tf.float16))
    assert loss.dtype == tf.float32 and loss.shape == ()


# -- gradient penalties on a linear critic: D(x) = w . x + b, so ||grad_x D|| = ||w|| --------


def linear_critic(w: np.ndarray, image: bool = False) -> keras.Model:
    shape = (2, 2, 1) if image else (len(w),)
    x = keras.Input(shape=shape)
    flat = keras.layers.Flatten()(x) if image else x
    score = keras.layers.Dense(1, name="score")(flat)
    critic = keras.Model(x, score)
    critic.get_layer("score").set_weights([w.reshape(-1, 1), np.array([0.3], "float32")])
    return critic


@pytest.mark.parametrize("w", [[0.6, 0.8, 1.2], [0.1, 0.2, -0.1], [3.0, -4.0, 0.0]])
def test_wgan_gp_penalty_of_a_linear_critic_is_known(w: list[float]) -> None:
    w = np.array(w, "float32")
    norm = float(np.linalg.norm(w))
    critic = linear_critic(w)
    real = tf.constant(RNG.normal(size=(16, 3)), tf.float32)
    fake = tf.constant(RNG.normal(size=(16, 3)), tf.float32)
    kernel = critic.get_layer("score").kernel
    with tf.GradientTape() as tape:  # the outer tape, as in train_step
        penalty = gan.wgan_gp_penalty(critic, real, fake, seed=3)
    np.testing.assert_allclose(float(penalty), (norm - 1.0) ** 2, rtol=1e-5)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||: the nested tape reaches the weights.
    grad = tape.gradient(penalty, kernel).numpy().ravel()
    np.testing.assert_allclose(grad, 2.0 * (norm - 1.0) * w / norm, rtol=1e-4, atol=1e-6)


def test_r1_penalty_of_a_linear_critic_is_known() -> None:
    w = np.array([[0.5, -1.0], [2.0, 0.25]], "float32")  # an image critic: 2x2x1 pixels
    critic = linear_critic(w.ravel(), image=True)
    real = tf.constant(RNG.normal(size=(8, 2, 2, 1)), tf.float32)
    kernel = critic.get_layer("score").kernel
    with tf.GradientTape() as tape:
        penalty = gan.r1_penalty(critic, real)
    squared = float(np.sum(w**2))
    np.testing.assert_allclose(float(penalty), squared / 2.0, rtol=1e-5)
    grad = tape.gradient(penalty, kernel).numpy().ravel()  # d/dw ||w||^2 / 2 = w
    np.testing.assert_allclose(grad, w.ravel(), rtol=1e-5)


def test_wgan_gp_mixes_each_example_with_its_own_uniform_weight() -> None:
    """A quadratic critic D(x) = ||x||^2 / 2 has grad x: the penalty then shows the points
    where it was taken, which must lie on the segments between real and fake examples."""
    x = keras.Input(shape=(2,))
    critic = keras.Model(x, keras.layers.Lambda(lambda t: 0.5 * tf.reduce_sum(t * t, 1))(x))
    real = np.zeros((2000, 2), "float32")
    fake = np.tile(np.array([[3.0, 4.0]], "float32"), (2000, 1))  # ||fake - real|| = 5
    # ||grad D(x_hat)|| = ||x_hat|| = 5 u, u ~ U(0, 1): E[(5u - 1)^2] = 25/3 - 5 + 1.
    penalty = float(gan.wgan_gp_penalty(critic, real, fake, seed=11))
    assert penalty == pytest.approx(25.0 / 3.0 - 4.0, rel=0.05)


def test_penalties_of_a_conditional_critic_differentiate_x_only() -> None:
    x, y = keras.Input(shape=(2,)), keras.Input(shape=(), dtype="int32")
    code = keras.layers.CategoryEncoding(3, output_mode="one_hot")(y)
    score = keras.layers.Dense(1, name="score")(keras.layers.Concatenate()([x, code]))
    critic = keras.Model([x, y], score)
    kernel = np.array([[0.6], [0.8], [5.0], [6.0], [7.0]], "float32")
    critic.get_layer("score").set_weights([kernel, np.zeros(1, "float32")])
    real = tf.constant(RNG.normal(size=(6, 2)), tf.float32)
    labels = tf.constant([0, 1, 2, 0, 1, 2])
    assert float(gan.r1_penalty(critic, real, labels=labels)) == pytest.approx(0.5)
    fake = tf.constant(RNG.normal(size=(6, 2)), tf.float32)
    assert float(gan.wgan_gp_penalty(critic, real, fake, seed=1, labels=labels)) < 1e-10


# -- accuracy, optimizers ------------------------------------------------------------------


def test_discriminator_accuracy_with_a_fixed_and_a_midway_threshold() -> None:
    real, fake = np.array([2.0, 1.0, -1.0, 3.0]), np.array([-2.0, 0.5, -3.0, -1.0])
    right_real, right_fake = gan.discriminator_accuracy(real, fake, threshold=0.0)
    assert (float(right_real), float(right_fake)) == (0.75, 0.75)
    # midway between the means 1.25 and -1.375 is -0.0625
    right_real, right_fake = gan.discriminator_accuracy(real + 10, fake + 10, threshold=None)
    assert (float(right_real), float(right_fake)) == (0.75, 0.75)


def test_computed_mean_is_nan_when_nothing_was_weighed_and_the_weighted_mean_otherwise() -> None:
    tracker = gan.ComputedMean(name="gradient_penalty")
    tracker.update_state(0.0, sample_weight=0)  # a lazy update that computed no penalty
    assert math.isnan(float(tracker.result()))  # Keras' Mean says 0.0
    tracker.update_state(3.0, sample_weight=16)
    tracker.update_state(0.0, sample_weight=0)
    assert float(tracker.result()) == 3.0
    tracker.reset_state()
    assert math.isnan(float(tracker.result()))


def test_last_value_is_the_last_update_not_the_mean() -> None:
    tracker = gan.LastValue(name="augment_p")
    for p in (0.0, 0.25, 1.0):
        tracker.update_state(tf.constant(p))
    assert float(tracker.result()) == 1.0


def test_copy_optimizer_keeps_settings_and_starts_fresh() -> None:
    adam = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, clipnorm=1.0)
    wrapped = keras.optimizers.LossScaleOptimizer(adam)
    copy = gan.copy_optimizer(wrapped)
    assert type(copy) is keras.optimizers.Adam and copy is not adam
    assert (copy.beta_1, copy.clipnorm) == (0.5, 1.0)
    assert float(copy.learning_rate) == pytest.approx(2e-4)
    scaled = gan.with_loss_scaling(copy)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    assert gan.with_loss_scaling(scaled) is scaled


# -- the health callback ------------------------------------------------------------------


def test_mean_pairwise_distance_leaves_out_each_point_with_itself() -> None:
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = (4 * 1.0 * 2 + 2 * math.sqrt(2.0) * 2) / 12  # 12 ordered pairs
    assert gan.mean_pairwise_distance(square) == pytest.approx(expected)


class FakeGAN:
    """What TrainingHealth reads from a model: data_spread, sample(n, seed=...) and the
    generator's optimizer's iterations."""

    def __init__(self, spread: float, width: float):
        self.data_spread = keras.Variable(spread)
        self.width = width
        self.optimizer = SimpleNamespace(iterations=0)

    def sample(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.normal(size=(num_samples, 2)) * self.width


def run_health(model: FakeGAN, epochs: list[dict]) -> tuple[list[dict], list[str]]:
    warned: list[str] = []
    health = gan.TrainingHealth(num_samples=200, patience=3, warmup_steps=250, warn=warned.append)
    health.set_model(model)
    for epoch, logs in enumerate(epochs):
        model.optimizer.iterations = 100 * (epoch + 1)  # 100 generator updates an epoch
        health.on_epoch_end(epoch, logs)
    return epochs, warned


def test_health_logs_diversity_relative_to_the_data() -> None:
    spread = 2.0 * math.sqrt(math.pi) / 2.0  # E||a - b|| for a, b ~ N(0, I_2)
    logs, warned = run_health(FakeGAN(spread, 1.0), [{}])
    assert logs[0]["diversity"] == pytest.approx(1.0, abs=0.1)
    assert warned == []


def test_health_warns_once_about_mode_collapse_in_plain_words() -> None:
    epochs = [{} for _ in range(8)]
    logs, warned = run_health(FakeGAN(1.77, 0.01), epochs)
    assert all(entry["diversity"] < 0.05 for entry in logs)  # logged from the first epoch
    assert len(warned) == 1  # no verdict within 250 updates (2 epochs), then 3 in a row
    assert "epoch 5" in warned[0] and "mode collapse" in warned[0] and "less varied" in warned[0]


def test_health_warns_when_the_discriminator_wins_for_several_epochs() -> None:
    winning = {"d_real_accuracy": 1.0, "d_fake_accuracy": 0.995}
    even = {"d_real_accuracy": 0.7, "d_fake_accuracy": 0.6}
    model = FakeGAN(0.0, 1.0)  # not initialised: no diversity, but accuracies are read
    _, warned = run_health(model, [dict(winning)] * 4 + [dict(even)] + [dict(winning)] * 2)
    assert warned == []  # the first two are warm-up, then never 3 epochs in a row
    _, warned = run_health(model, [dict(winning) for _ in range(5)])
    assert len(warned) == 1
    assert "discriminator tells real from generated examples almost perfectly" in warned[0]
    assert "100.0% of real" in warned[0] and "learning rate" in warned[0]
