"""The flow posterior steps (IAF, planar, radial): each step's log-determinant against
log |det J| of its Jacobian computed by TensorFlow's autodiff, on random inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime.posteriors import IAFStep, PlanarStep, RadialStep, repeat_draws

LATENT = 5
CONTEXT = 3


def randomize(layer: keras.layers.Layer, seed: int, scale: float = 0.5) -> None:
    """Every weight drawn at random: a step at its near-identity start would test little."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))


def autodiff_log_det(step: keras.layers.Layer, z: tf.Tensor, *context: tf.Tensor) -> np.ndarray:
    with tf.GradientTape() as tape:
        tape.watch(z)
        z_new, _ = step(z, *context)
    jacobian = tape.batch_jacobian(z_new, z)  # [B, D, D]
    return np.linalg.slogdet(jacobian.numpy().astype(np.float64))[1]


def inputs(seed: int, rows: int = 16) -> tuple[tf.Tensor, tf.Tensor]:
    rng = np.random.default_rng(seed)
    z = tf.constant(rng.normal(size=(rows, LATENT)).astype("float32"))
    context = tf.constant(rng.normal(size=(rows, CONTEXT)).astype("float32"))
    return z, context


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_log_det_equals_autodiff_log_abs_det_jacobian(reverse: bool) -> None:
    step = IAFStep(LATENT, CONTEXT, hidden=[16, 16], reverse=reverse)
    randomize(step, seed=1)
    z, context = inputs(seed=2)
    _, log_det = step(z, context)
    np.testing.assert_allclose(log_det.numpy(), autodiff_log_det(step, z, context), atol=1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_jacobian_is_triangular_in_its_ordering(reverse: bool) -> None:
    """Autoregressive: output d depends on inputs before d only (and on itself via sigma)."""
    step = IAFStep(LATENT, CONTEXT, hidden=[16], reverse=reverse)
    randomize(step, seed=3)
    z, context = inputs(seed=4, rows=4)
    with tf.GradientTape() as tape:
        tape.watch(z)
        z_new, _ = step(z, context)
    jacobian = np.abs(tape.batch_jacobian(z_new, z).numpy()).max(axis=0)
    if reverse:  # the ordering D, ..., 1: flip both axes to compare with the forward order
        jacobian = jacobian[::-1, ::-1]
    assert np.all(np.triu(jacobian, k=1) == 0.0)
    assert np.all(np.tril(jacobian, k=-1)[1:, 0] > 0.0)  # the first dimension reaches later ones


def test_iaf_update_is_sigma_z_plus_one_minus_sigma_m_with_context() -> None:
    """z' = sigma z + (1 - sigma) m, log_det = sum log sigma, and h changes m and sigma."""
    step = IAFStep(LATENT, CONTEXT, hidden=[8])
    randomize(step, seed=5)
    z, context = inputs(seed=6, rows=8)
    z_new, log_det = step(z, context)
    _, log_det_other = step(z, context + 1.0)
    assert not np.allclose(log_det.numpy(), log_det_other.numpy())
    # The first dimension in the ordering has no predecessors: m_1 and s_1 depend on h only.
    h = step.act(step.masked[0](tf.zeros_like(z)) + step.context_projection(context))
    out = step.output_layer(h).numpy()
    sigma = 1 / (1 + np.exp(-(out[:, LATENT] + step.forget_bias)))
    expected = sigma * z.numpy()[:, 0] + (1 - sigma) * out[:, 0]
    np.testing.assert_allclose(z_new.numpy()[:, 0], expected, rtol=1e-5, atol=1e-6)


def test_iaf_starts_near_the_identity() -> None:
    """A fresh step's output layer is zero: m = 0 and sigma = sigmoid(forget_bias)."""
    step = IAFStep(LATENT, CONTEXT, hidden=[8], forget_bias=2.0)
    z, context = inputs(seed=7, rows=4)
    z_new, log_det = step(z, context)
    sigma = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(z_new.numpy(), sigma * z.numpy(), rtol=1e-6)
    np.testing.assert_allclose(log_det.numpy(), LATENT * np.log(sigma), rtol=1e-6)


@pytest.mark.parametrize("step_class", [PlanarStep, RadialStep])
def test_planar_and_radial_log_det_equal_autodiff_log_abs_det_jacobian(step_class) -> None:
    step = step_class(LATENT, seed=0)
    randomize(step, seed=8, scale=1.0)
    z, _ = inputs(seed=9, rows=32)
    _, log_det = step(z)
    np.testing.assert_allclose(log_det.numpy(), autodiff_log_det(step, z), atol=1e-4)


def test_planar_u_hat_keeps_the_step_invertible_for_any_u() -> None:
    """w . u_hat > -1 even when u points against w (w . u << -1)."""
    step = PlanarStep(LATENT, seed=0)
    w = np.ones(LATENT, np.float32)
    step.w.assign(w)
    step.u.assign(-5.0 * w)  # w . u = -25
    u_hat = step.u_hat().numpy()
    assert float(w @ u_hat) > -1.0
    np.testing.assert_allclose(float(w @ u_hat), -1.0 + np.log1p(np.exp(-25.0)), atol=1e-6)
    # Monotone along w, so invertible: the Jacobian's determinant stays positive everywhere.
    z, _ = inputs(seed=10, rows=64)
    assert np.all(np.isfinite(step(z * 10.0)[1].numpy()))


def test_radial_beta_is_at_least_minus_alpha() -> None:
    step = RadialStep(LATENT, seed=0)
    step.beta_raw.assign(-30.0)  # the smallest beta it can reach: -alpha + softplus(-30)
    z, _ = inputs(seed=11, rows=32)
    _, log_det = step(z)
    assert np.all(np.isfinite(log_det.numpy()))
    np.testing.assert_allclose(log_det.numpy(), autodiff_log_det(step, z), atol=1e-4)


def test_repeat_draws_is_draw_major() -> None:
    x = tf.reshape(tf.range(6, dtype=tf.float32), (3, 2))
    repeated = repeat_draws(x, 2).numpy()
    np.testing.assert_array_equal(repeated, np.concatenate([x.numpy(), x.numpy()]))
    images = tf.zeros((3, 4, 4, 1))
    assert tuple(repeat_draws(images, 5).shape) == (15, 4, 4, 1)
