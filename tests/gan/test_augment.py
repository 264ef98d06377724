"""`gencompile.runtime.augment`: DiffAugment's operations against hand computations, its
randomness (per example, seeded) and differentiability, and ADA's probability controller."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import augment

POLICY = ["color", "translation", "cutout"]


def images(n: int = 16, size: int = 8, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


# --------------------------------------------------------------------------- by hand


def test_shifted_moves_each_image_by_its_own_offsets_with_zeros_behind() -> None:
    x = np.arange(2 * 3 * 3, dtype="float32").reshape(2, 3, 3, 1)
    out = augment.shifted(x, tf.constant([1, 0]), tf.constant([0, -1]))[..., 0].numpy()
    # First image one row down; second one column left: out[h, w] = x[h - r, w - c].
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(out[1], [[10, 11, 0], [13, 14, 0], [16, 17, 0]])


def test_translation_is_one_of_the_whole_pixel_shifts_of_each_example() -> None:
    x = images(32)
    out = augment.translation(tf.constant(x), keras.random.SeedGenerator(3)).numpy()
    # 8x8: shifts of up to round(8 / 8) = 1 pixel each way, so 9 candidates an example.
    candidates = [
        augment.shifted(x, tf.fill([32], r), tf.fill([32], c)).numpy()
        for r in (-1, 0, 1)
        for c in (-1, 0, 1)
    ]
    found = [
        [k for k, shifted in enumerate(candidates) if np.array_equal(out[i], shifted[i])]
        for i in range(32)
    ]
    assert all(len(k) == 1 for k in found), found
    assert len({k[0] for k in found}) > 3  # examples draw different shifts


def test_cut_zeroes_the_part_of_the_square_inside_the_image() -> None:
    x = np.ones((2, 4, 4, 1), "float32")
    out = augment.cut(x, tf.constant([-1, 1]), tf.constant([2, 0]), (2, 2))[..., 0].numpy()
    np.testing.assert_array_equal(
        out[0], [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    )  # rows -1..0, columns 2..3
    np.testing.assert_array_equal(
        out[1], [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]]
    )  # rows 1..2, columns 0..1


def test_cutout_zeroes_one_square_of_half_the_side_per_example() -> None:
    out = augment.cutout(tf.ones((64, 8, 8, 1)), keras.random.SeedGenerator(1)).numpy()[..., 0]
    for image in out:
        rows, columns = np.nonzero(image == 0)
        assert rows.size > 0  # the centre is always inside the image
        # The zeros form one axis-aligned rectangle of at most 4 x 4 pixels.
        height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
        assert height <= 4 and width <= 4 and rows.size == height * width
        assert set(np.unique(image)) <= {0.0, 1.0}
    assert any((image == 0).sum() == 16 for image in out)  # wholly inside: 4 x 4
    assert any((image == 0).sum() < 16 for image in out)  # hanging over the border


def test_color_operations_against_their_formulas() -> None:
    x = images(8, channels=3)
    seed_value = 11

    def draws(low: float, high: float) -> np.ndarray:
        # The same draw the operation makes from a fresh generator with the same seed.
        return augment._per_example_uniform(
            tf.constant(x), keras.random.SeedGenerator(seed_value), low, high
        ).numpy()

    out = augment.brightness(x, keras.random.SeedGenerator(seed_value)).numpy()
    np.testing.assert_allclose(out, x + draws(-0.5, 0.5), rtol=1e-6)
    s = draws(0.0, 2.0)
    mean = x.mean(axis=3, keepdims=True)
    out = augment.saturation(x, keras.random.SeedGenerator(seed_value)).numpy()
    np.testing.assert_allclose(out, (x - mean) * s + mean, rtol=1e-5, atol=1e-6)
    c = draws(0.5, 1.5)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    out = augment.contrast(x, keras.random.SeedGenerator(seed_value)).numpy()
    np.testing.assert_allclose(out, (x - mean) * c + mean, rtol=1e-5, atol=1e-6)
    assert np.all((s >= 0) & (s < 2)) and np.all((c >= 0.5) & (c < 1.5))


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"], POLICY])
def test_every_policy_keeps_shape_and_dtype(policy: list[str]) -> None:
    x = images(5, channels=3)
    out = augment.diff_augment(x, policy, seed=keras.random.SeedGenerator(0))
    assert out.shape == x.shape and out.dtype == tf.float32
    assert not np.allclose(out.numpy(), x)


def test_every_example_draws_its_own_transformation_and_a_seed_repeats_them() -> None:
    x = np.repeat(images(1), 16, axis=0)  # one image, sixteen times
    out = augment.diff_augment(x, POLICY, seed=keras.random.SeedGenerator(7)).numpy()
    distinct = {out[i].tobytes() for i in range(16)}
    assert len(distinct) == 16
    again = augment.diff_augment(x, POLICY, seed=keras.random.SeedGenerator(7)).numpy()
    np.testing.assert_array_equal(out, again)
    other = augment.diff_augment(x, POLICY, seed=keras.random.SeedGenerator(8)).numpy()
    assert not np.array_equal(out, other)


def test_gradients_reach_the_generator_through_the_augmentation() -> None:
    keras.utils.set_random_seed(0)
    generator = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))]
    )
    critic = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    seed = keras.random.SeedGenerator(2)

    @tf.function
    def gradients(z: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            scores = critic(augment.diff_augment(generator(z), POLICY, seed=seed))
            loss = tf.reduce_mean(scores)
        return tape.gradient(loss, generator.trainable_weights)

    grads = gradients(tf.ones((8, 4)))
    assert all(g is not None for g in grads)
    assert all(float(tf.norm(g)) > 0 for g in grads)


def test_probability_zero_is_the_identity_and_one_changes_every_example() -> None:
    x = images(16)
    seed = keras.random.SeedGenerator(4)
    unchanged = augment.diff_augment(x, POLICY, seed=seed, probability=0.0).numpy()
    np.testing.assert_array_equal(unchanged, x)
    changed = augment.diff_augment(x, POLICY, seed=seed, probability=1.0).numpy()
    assert all(not np.allclose(changed[i], x[i]) for i in range(16))


def test_a_bad_input_is_refused_with_its_shape_or_name() -> None:
    seed = keras.random.SeedGenerator(0)
    with pytest.raises(ValueError, match=r"Received: shape=\(4, 64\)"):
        augment.diff_augment(np.zeros((4, 64), "float32"), POLICY, seed=seed)
    with pytest.raises(ValueError, match="unknown augmentation 'colour'"):
        augment.diff_augment(images(2), ["colour"], seed=seed)


# --------------------------------------------------------------------------- ADA's p


def test_ada_raises_p_while_d_is_sure_of_the_real_examples_and_lowers_it_otherwise() -> None:
    ada = augment.AdaptiveProbability(target=0.6, interval=2, ramp_images=100)
    sure = tf.ones((10, 1))  # sign(D(x)) = +1 everywhere: r_t = 1 > 0.6, D overfits
    ada.update(sure)
    assert float(ada.probability) == 0.0  # one update of two: no move yet
    assert float(ada.sign_sum) / float(ada.examples) == 1.0  # r_t so far
    ada.update(sure)
    # Moved by sign(1 - 0.6) x 20 examples / 100, and the accumulators restart.
    assert float(ada.probability) == pytest.approx(0.2)
    assert float(ada.examples) == 0.0 and float(ada.updates) == 0.0
    unsure = tf.constant([[1.0]] * 7 + [[-1.0]] * 3)  # r_t = 0.4 < 0.6
    for _ in range(2):
        ada.update(unsure)
    assert float(ada.probability) == pytest.approx(0.0)
    for _ in range(2):
        ada.update(unsure)
    assert float(ada.probability) == 0.0  # clipped at 0
    for _ in range(20):
        ada.update(sure)
    assert float(ada.probability) == 1.0  # clipped at 1


def test_ada_counts_a_real_example_as_sure_above_the_loss_s_boundary_not_above_zero() -> None:
    """Least squares regresses D to 1 (real) and 0 (generated): its boundary is 0.5. A D that
    cannot tell them apart scores about 0.5, all above 0: r_t must be near 0, not 1."""
    undecided = tf.constant(0.5 + 0.1 * np.random.default_rng(0).standard_normal(64))
    least_squares = augment.AdaptiveProbability(
        target=0.6, interval=1, ramp_images=64, initial_p=0.5, threshold=0.5
    )
    least_squares.update(undecided)
    assert float(least_squares.probability) == 0.0  # r_t ~ 0 < target: p falls by 64 / 64
    logit = augment.AdaptiveProbability(target=0.6, interval=1, ramp_images=64, initial_p=0.5)
    logit.update(undecided)  # as logits, every score says "real": r_t = 1
    assert float(logit.probability) == 1.0
    assert least_squares.get_config()["threshold"] == 0.5


def test_ada_refuses_bad_settings_naming_them() -> None:
    with pytest.raises(ValueError, match=r"Received: target=1\.5"):
        augment.AdaptiveProbability(target=1.5)
    with pytest.raises(ValueError, match="Received: interval=0"):
        augment.AdaptiveProbability(interval=0)
