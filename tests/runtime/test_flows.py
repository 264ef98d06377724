"""The flow transforms of `gencompile.runtime.flows`: exact inverses and exact log-dets.

Every transform is checked on random inputs with random weights (heads that start at zero
are randomised too, so no transform hides behind the identity): inverse(forward(x)) == x
within 1e-4, and the log-det it reports equals log |det J| of its Jacobian computed by
autodiff (`tf.GradientTape.batch_jacobian`). Base distributions are checked against
scipy.stats.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from scipy import stats

from gencompile.runtime import flows

VECTOR = (5,)
IMAGE = (4, 4, 2)


def conditioner(shape: tuple[int, ...]) -> keras.Model:
    """A small shift/log-scale network for a coupling on `shape`."""
    x = keras.Input(shape=shape)
    if len(shape) == 1:
        h = layers.Dense(16, activation="tanh")(x)
        shift = layers.Dense(shape[0], kernel_initializer="zeros")(h)
        log_scale = layers.Dense(shape[0], kernel_initializer="zeros")(h)
    else:
        h = layers.Conv2D(8, 3, padding="same", activation="tanh")(x)
        shift = layers.Conv2D(shape[-1], 3, padding="same", kernel_initializer="zeros")(h)
        log_scale = layers.Conv2D(shape[-1], 3, padding="same", kernel_initializer="zeros")(h)
    return keras.Model(x, [shift, log_scale])


CASES: dict[str, tuple[tuple[int, ...], Callable[[tuple[int, ...]], flows.Transform]]] = {
    "coupling-alternating": (VECTOR, lambda s: flows.AffineCoupling(conditioner(s))),
    "coupling-alternating-odd-soft-clamp": (
        VECTOR,
        lambda s: flows.AffineCoupling(conditioner(s), parity=1, scale="soft_clamp", clamp=1.5),
    ),
    "coupling-checkerboard": (
        IMAGE,
        lambda s: flows.AffineCoupling(conditioner(s), mask="checkerboard", parity=1),
    ),
    "coupling-channel": (
        IMAGE,
        lambda s: flows.AffineCoupling(conditioner(s), mask="channel", scale="soft_clamp"),
    ),
    "actnorm-vector": (VECTOR, lambda s: flows.ActNorm()),
    "actnorm-image": (IMAGE, lambda s: flows.ActNorm()),
    "permutation-random": (VECTOR, lambda s: flows.Permutation("random", seed=3)),
    "permutation-reverse-image": (IMAGE, lambda s: flows.Permutation("reverse")),
    "invertible-dense": (VECTOR, lambda s: flows.InvertibleDense(seed=4)),
    "invertible-1x1-conv": (IMAGE, lambda s: flows.InvertibleDense(seed=5)),
    "maf": (VECTOR, lambda s: flows.MAF((16, 16))),
    "maf-reverse-soft-clamp": (
        VECTOR,
        lambda s: flows.MAF((12,), activation="tanh", reverse=True, scale="soft_clamp"),
    ),
    "maf-image": (IMAGE, lambda s: flows.MAF((40,))),
    "squeeze": (IMAGE, lambda s: flows.Squeeze()),
    "logit": (VECTOR, lambda s: flows.Logit(0.05)),
}


def randomized(name: str, seed: int = 0) -> tuple[flows.Transform, np.ndarray]:
    """The transform of case `name`, built, with every weight random; and a random batch."""
    shape, make = CASES[name]
    keras.utils.set_random_seed(seed)
    transform = make(shape)
    flows.build_transforms([transform], shape)
    rng = np.random.default_rng(seed)
    for weight in transform.trainable_weights:
        weight.assign(0.4 * rng.standard_normal(weight.shape).astype("float32"))
    if name == "logit":
        x = rng.uniform(0.01, 0.99, size=(6, *shape))
    else:
        x = rng.standard_normal((6, *shape))
    return transform, x.astype("float32")


@pytest.mark.parametrize("name", sorted(CASES))
def test_inverse_of_forward_is_the_identity(name):
    transform, x = randomized(name)
    y, _ = transform.forward(tf.constant(x))
    if name != "squeeze":  # the others must do something
        assert not np.allclose(y.numpy(), x, atol=1e-3)
    back = transform.inverse(y).numpy()
    np.testing.assert_allclose(back, x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_det_equals_autodiff_jacobian(name):
    transform, x = randomized(name, seed=1)
    shape = x.shape[1:]
    flat = tf.constant(x.reshape(len(x), -1))
    with tf.GradientTape() as tape:
        tape.watch(flat)
        y, log_det = transform.forward(tf.reshape(flat, (-1, *shape)))
        y_flat = tf.reshape(y, (len(x), -1))
    jacobian = tape.batch_jacobian(y_flat, flat).numpy().astype(np.float64)
    sign, expected = np.linalg.slogdet(jacobian)
    assert np.all(sign != 0)
    assert log_det.shape == (len(x),)
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-4, atol=2e-4)


def test_shapes_after_squeeze_and_build():
    transforms = [flows.Squeeze(), flows.InvertibleDense(seed=1), flows.Squeeze()]
    assert flows.build_transforms(transforms, (8, 8, 1)) == (2, 2, 16)


def test_masks_alternate_and_cover_everything():
    for kind, shape in (("alternating", (5,)), ("checkerboard", (4, 4, 1)), ("channel", (2, 2, 4))):
        even, odd = (flows.coupling_mask(kind, shape, p) for p in (0, 1))
        np.testing.assert_array_equal(even + odd, np.ones(shape))
        assert 0 < even.sum() < even.size
    np.testing.assert_array_equal(flows.coupling_mask("alternating", (4,), 0), [1, 0, 1, 0])
    np.testing.assert_array_equal(flows.coupling_mask("channel", (1, 1, 4), 1)[0, 0], [0, 0, 1, 1])


def test_made_is_autoregressive_in_its_order():
    for reverse in (False, True):
        maf = flows.MAF((8, 8), reverse=reverse)
        flows.build_transforms([maf], (4,))
        for weight in maf.trainable_weights:
            weight.assign(np.random.default_rng(0).standard_normal(weight.shape))
        x = tf.constant(np.random.default_rng(1).standard_normal((3, 4)).astype("float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            shift, log_scale = maf._shift_log_scale(x)
            out = tf.concat([shift, log_scale], axis=1)
        jacobian = np.abs(tape.batch_jacobian(out, x).numpy()).sum(0)  # [8, 4]
        order = np.arange(4)[::-1] if reverse else np.arange(4)
        rank = np.argsort(order)  # position of each dimension in the ordering
        for output in range(8):
            d = output % 4
            depends_on = np.nonzero(jacobian[output] > 0)[0]
            assert all(rank[i] < rank[d] for i in depends_on), (reverse, output, depends_on)
        assert jacobian[:, order[0]].sum() > 0  # the first in order conditions the others


def test_actnorm_data_dependent_initialisation_standardises_the_batch():
    x = np.random.default_rng(0).normal(3.0, 5.0, size=(64, 4, 4, 3)).astype("float32")
    actnorm = flows.ActNorm()
    flows.build_transforms([actnorm], x.shape[1:])
    flows.initialize_actnorm([actnorm], x)
    y, log_det = actnorm.forward(tf.constant(x))
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.numpy().std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    expected = -16 * np.log(x.std(axis=(0, 1, 2))).sum()
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-4)


def test_initialize_actnorm_sees_what_earlier_transforms_make():
    x = np.random.default_rng(0).normal(size=(128, 3)).astype("float32")
    first, second = flows.ActNorm(), flows.ActNorm()
    scale = flows.InvertibleDense(seed=2)
    flows.build_transforms([first, scale, second], (3,))
    scale.log_s.assign([2.0, -1.0, 0.5])
    flows.initialize_actnorm([first, scale, second], x)
    h, _ = first.forward(tf.constant(x))
    h, _ = scale.forward(h)
    out, _ = second.forward(h)
    np.testing.assert_allclose(out.numpy().std(axis=0), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    "name", ["coupling-checkerboard", "permutation-random", "invertible-dense", "maf", "logit"]
)
def test_config_round_trip_rebuilds_the_same_transform(name):
    transform, x = randomized(name)
    rebuilt = type(transform).from_config(transform.get_config())
    flows.build_transforms([rebuilt], x.shape[1:])
    for mine, theirs in zip(transform.weights, rebuilt.weights, strict=True):
        theirs.assign(mine)
    np.testing.assert_allclose(
        rebuilt.forward(tf.constant(x))[0].numpy(), transform.forward(tf.constant(x))[0].numpy()
    )


def test_base_distributions_match_scipy():
    z = np.random.default_rng(0).standard_normal((7, 3)).astype("float32") * 3
    normal = flows.make_base("normal", (3,))
    logistic = flows.make_base("logistic", (3,))
    np.testing.assert_allclose(
        normal.log_prob(tf.constant(z)).numpy(), stats.norm.logpdf(z).sum(1), rtol=1e-5
    )
    np.testing.assert_allclose(
        logistic.log_prob(tf.constant(z)).numpy(), stats.logistic.logpdf(z).sum(1), rtol=1e-5
    )
    draws = logistic.sample(20000, seed=0).numpy()
    assert draws.shape == (20000, 3)
    assert abs(draws.std() - np.pi / np.sqrt(3)) < 0.05  # the standard logistic's sd


def test_dequantization_stays_in_its_bin_and_quantizes_back():
    bins = 17
    levels = np.random.default_rng(0).integers(0, bins, size=(100, 8))
    x = (levels / (bins - 1)).astype("float32")
    dequantization = flows.UniformDequantization(bins)
    y = dequantization.dequantize(tf.constant(x), seed=keras.random.SeedGenerator(0)).numpy()
    assert np.all(y >= levels / bins) and np.all(y < (levels + 1) / bins)
    np.testing.assert_allclose(dequantization.quantize(tf.constant(y)).numpy(), x, atol=1e-6)
    assert dequantization.log_jacobian(8) == pytest.approx(-8 * np.log(17))
