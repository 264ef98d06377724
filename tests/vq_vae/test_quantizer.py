"""The vector quantizer against NumPy and hand computations, and the generated model's
gradients: straight-through to the encoder, the codebook moved by its own term only."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime import vq


def quantizer(size: int = 6, dim: int = 3, **kwargs) -> vq.VectorQuantizer:
    keras.utils.set_random_seed(0)
    layer = vq.VectorQuantizer(size, dim, **kwargs)
    codebook = np.random.default_rng(1).normal(size=(size, dim)).astype("float32")
    layer.set_codebook(codebook)
    return layer


def test_nearest_codes_match_a_numpy_argmin_of_euclidean_distances() -> None:
    layer = quantizer()
    z_e = np.random.default_rng(2).normal(size=(5, 4, 4, 3)).astype("float32")
    codes = np.asarray(layer.nearest_codes(z_e))
    codebook = layer.codebook.numpy()
    distances = ((z_e[..., None, :] - codebook) ** 2).sum(-1)
    np.testing.assert_array_equal(codes, distances.argmin(-1))
    assert codes.shape == (5, 4, 4) and codes.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(layer.lookup(codes)), codebook[codes])


def test_ema_update_matches_a_hand_computation_of_one_step() -> None:
    decay, eps = 0.9, 1e-5
    counts = np.array([1.0, 2.0, 0.5])
    sums = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    z = np.array([[1.0, 1.0], [3.0, 1.0], [0.0, 4.0]])
    one_hot = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])  # code 2 unused
    # By hand: counts 0.9*[1, 2, .5] + 0.1*[2, 1, 0]; sums 0.9*sums + 0.1*[[4,2],[0,4],[0,0]].
    new_counts = np.array([1.1, 1.9, 0.45])
    new_sums = np.array([[1.3, 0.2], [0.0, 2.2], [0.9, 0.9]])
    total = new_counts.sum()
    smoothed = (new_counts + eps) / (total + 3 * eps) * total
    got = [np.asarray(t) for t in vq.ema_update(counts, sums, z, one_hot, decay, eps)]
    np.testing.assert_allclose(got[0], new_counts, rtol=1e-12)
    np.testing.assert_allclose(got[1], new_sums, rtol=1e-12)
    np.testing.assert_allclose(got[2], new_sums / smoothed[:, None], rtol=1e-12)


def test_the_layer_applies_the_ema_step_to_its_codebook() -> None:
    layer = quantizer(size=4, dim=2, ema=True, decay=0.8)
    assert not layer.trainable_weights  # moved by averages, not by gradients
    before = layer.codebook.numpy()
    z_e = np.random.default_rng(3).normal(size=(2, 3, 3, 2)).astype("float32")
    codes = layer.nearest_codes(z_e)
    one_hot = np.eye(4)[np.asarray(codes).ravel()]
    expected = vq.ema_update(
        np.ones(4), before.astype(np.float64), z_e.reshape(-1, 2), one_hot, 0.8, 1e-5
    )
    layer.update_codebook(z_e, codes)
    np.testing.assert_allclose(layer.ema_counts.numpy(), expected[0], rtol=1e-5)
    np.testing.assert_allclose(layer.codebook.numpy(), expected[2], rtol=1e-5, atol=1e-6)


def test_the_ema_step_from_two_halves_summed_is_the_whole_batchs() -> None:
    """What two replicas do: each half's counts and sums, added (the all-reduce), then one
    EMA step, moves the codebook as the whole batch on one device does."""
    whole, halves = (quantizer(size=4, dim=2, ema=True, decay=0.8) for _ in range(2))
    z_e = np.random.default_rng(4).normal(size=(4, 3, 3, 2)).astype("float32")
    codes = whole.nearest_codes(z_e)
    whole.update_codebook(z_e, codes)
    first, second = halves.assignments(z_e[:2], codes[:2]), halves.assignments(z_e[2:], codes[2:])
    assert float(np.sum(first[0])) == 18.0  # 2 examples x a 3x3 grid, one code per cell
    halves.apply_assignments(first[0] + second[0], first[1] + second[1])
    for variable in ("ema_counts", "ema_sums", "codebook"):
        np.testing.assert_allclose(
            getattr(halves, variable).numpy(), getattr(whole, variable).numpy(), rtol=1e-6
        )
    # The codebook moved: a step that changed nothing would pass the comparison too.
    assert not np.allclose(whole.codebook.numpy(), quantizer(size=4, dim=2).codebook.numpy())


def test_code_statistics_give_perplexity_and_usage() -> None:
    uniform = np.array([[0, 1], [2, 3]])  # four codes used equally out of eight
    perplexity, usage = vq.code_statistics(uniform, 8)
    assert float(perplexity) == pytest.approx(4.0, rel=1e-5)
    assert float(usage) == pytest.approx(0.5)
    perplexity, usage = vq.code_statistics(np.zeros((3, 2), np.int32), 8)
    assert float(perplexity) == pytest.approx(1.0, rel=1e-5)
    assert float(usage) == pytest.approx(1 / 8)


def test_quantizer_arguments_are_checked_and_round_trip() -> None:
    with pytest.raises(ValueError, match="codebook_size=1"):
        vq.VectorQuantizer(1, 4)
    with pytest.raises(ValueError, match=r"decay=1\.5"):
        vq.VectorQuantizer(4, 4, ema=True, decay=1.5)
    layer = vq.VectorQuantizer(5, 3, ema=True, decay=0.95, name="q")
    again = vq.VectorQuantizer.from_config(layer.get_config())
    assert (again.codebook_size, again.embedding_dim, again.ema, again.decay) == (5, 3, True, 0.95)
    with pytest.raises(ValueError, match="moving averages"):
        vq.VectorQuantizer(4, 2).update_codebook(np.zeros((1, 2)), np.zeros((1,), np.int32))


# --------------------------------------------------------------------------- the model


def _digits(n: int = 16) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n, :, :, None] / 16.0).astype("float32")


def test_straight_through_gradient_reaches_the_encoder_as_the_decoder_gradient_at_z_q(
    generated,
) -> None:
    """d loss / d z_e through the quantizer equals d loss / d z_q of the decoder's loss."""
    module = generated()
    model = module.build_model()
    x = tf.constant(_digits())
    z_e = model.encoder(x)
    _, z_q = model.quantizer(z_e)
    with tf.GradientTape() as tape:
        tape.watch(z_e)
        z_st = z_e + keras.ops.stop_gradient(z_q - z_e)
        straight = -tf.reduce_sum(model.likelihood.log_prob(x, model.decoder(z_st)))
    through = tape.gradient(straight, z_e)
    z_q_var = tf.Variable(z_q)
    with tf.GradientTape() as tape:
        direct = -tf.reduce_sum(model.likelihood.log_prob(x, model.decoder(z_q_var)))
    at_codes = tape.gradient(direct, z_q_var)
    np.testing.assert_allclose(float(straight), float(direct), rtol=1e-6)
    np.testing.assert_allclose(through.numpy(), at_codes.numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(through.numpy()).max() > 0  # the encoder does learn from reconstruction


def test_the_codebook_gets_gradient_from_the_codebook_term_only(generated) -> None:
    module = generated()
    model = module.build_model()
    x = tf.constant(_digits())
    codebook = model.quantizer.codebook
    with tf.GradientTape(persistent=True) as tape:
        reconstruction, codebook_term, commitment, z_e, codes = model.vq_terms(x, training=True)
        terms = {
            "reconstruction": tf.reduce_mean(reconstruction),
            "commitment": tf.reduce_mean(commitment),
            "codebook": tf.reduce_mean(codebook_term),
        }
    for name in ("reconstruction", "commitment"):
        grad = tape.gradient(terms[name], codebook)
        assert grad is None or not np.any(tf.convert_to_tensor(grad).numpy()), name
    grad = tf.convert_to_tensor(tape.gradient(terms["codebook"], codebook)).numpy()
    # d/de_k mean_b sum ||sg(z_e) - e_k||^2 = (2 / B) sum of (e_k - z) over k's vectors z
    flat = z_e.numpy().reshape(-1, z_e.shape[-1])
    assigned = codes.numpy().ravel()
    expected = np.zeros_like(codebook.numpy())
    for k in range(codebook.shape[0]):
        expected[k] = 2 * (codebook.numpy()[k] - flat[assigned == k]).sum(0) / x.shape[0]
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    # ... and the codebook term moves no encoder weight (sg(z_e)).
    encoder_grads = tape.gradient(terms["codebook"], model.encoder.trainable_weights)
    assert all(g is None or not np.any(g.numpy()) for g in encoder_grads)


def test_ema_model_trains_no_codebook_by_gradient(generated) -> None:
    model = generated(ema=True).build_model()
    assert model.quantizer.ema
    assert all(w is not model.quantizer.codebook for w in model.autoencoder_weights)
    model.compile(optimizer="adam")
    before = model.quantizer.codebook.numpy().copy()
    model.fit(tf.data.Dataset.from_tensors(_digits(32)), epochs=1, verbose=0)
    # moved by the moving averages after the step
    assert not np.allclose(model.quantizer.codebook.numpy(), before)


def test_sampling_is_refused_until_the_prior_is_fitted(generated) -> None:
    model = generated().build_model()
    with pytest.raises(RunError, match="prior over its codes has not been trained"):
        model.sample(2)
    model.prior_epochs.assign(1)
    samples = np.asarray(model.sample(3, temperature=0.5, top_k=2))
    assert samples.shape == (3, 8, 8, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0


def test_prior_generation_draws_valid_codes_and_is_causal(generated) -> None:
    """Each cell's logits depend only on the cells before it in raster order."""
    model = generated().build_model()
    codes = np.random.default_rng(4).integers(0, 8, size=(2, 4, 4)).astype("int32")
    logits = model.prior.network(codes).numpy()
    changed = codes.copy()
    changed[:, 2, 1] = (changed[:, 2, 1] + 1) % 8  # cell 9 of 16
    after = model.prior.network(changed).numpy()
    flat_before, flat_after = logits.reshape(2, 16, -1), after.reshape(2, 16, -1)
    np.testing.assert_allclose(flat_before[:, :10], flat_after[:, :10], rtol=1e-6)
    assert not np.allclose(flat_before[:, 10:], flat_after[:, 10:])
    drawn = model.prior.generate(
        tf.constant(5), tf.constant(1.0), tf.constant(0), tf.constant(1.0), tf.constant([1, 2])
    ).numpy()
    assert drawn.shape == (5, 4, 4) and drawn.min() >= 0 and drawn.max() < 8
