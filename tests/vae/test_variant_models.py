"""Generated VAEs with a flow posterior, the IWAE objective or the VampPrior: their bounds
against independent computations, and a few training steps of each choice."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import load_digits

from gencompile.runtime import vae as vae_metrics
from tests.conftest import TINY_VAE

IAF = "model.posterior={type: iaf, steps: 2, hidden: [8], context: 4}"
PLANAR = "model.posterior={type: planar, steps: 2}"
RADIAL = "model.posterior={type: radial, steps: 2}"
IWAE_1 = "model.objective={type: iwae, samples: 1}"
IWAE_3 = "model.objective={type: iwae, samples: 3}"
VAMP = "model.prior={type: vamp, pseudo_inputs: 6}"
CONDITIONAL = "model.conditional={num_classes: 10}"


def digits(rows: int = 16) -> np.ndarray:
    x = load_digits().images[:rows].astype("float32") / 16.0
    return x[..., None]


def nudge(model: keras.Model, seed: int = 0) -> None:
    """Move every weight off its start, so flow steps are not near the identity."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(weight + rng.normal(0.0, 0.1, weight.shape).astype("float32"))


def reset(model: keras.Model) -> None:
    """Rewind the model's noise: the next draws repeat the previous ones."""
    model.seed_generator.state.assign(np.array([7, 0], dtype=model.seed_generator.state.dtype))


@pytest.mark.parametrize("posterior", [(), (IAF,), (PLANAR,)], ids=["gaussian", "iaf", "planar"])
def test_iwae_with_one_sample_equals_the_elbo_on_the_same_noise(generated_vae, posterior):
    model = generated_vae(*posterior, IWAE_1).build_model()
    nudge(model)
    x = tf.constant(digits())
    reset(model)
    bound, reconstruction_k, kl_k = model.iwae_terms(x)
    reset(model)
    reconstruction, kl, kl_term = model.elbo_terms(x)
    np.testing.assert_allclose(bound.numpy(), -(reconstruction + kl).numpy(), rtol=1e-5)
    np.testing.assert_allclose(reconstruction_k.numpy(), reconstruction.numpy(), rtol=1e-6)
    np.testing.assert_allclose(kl_k.numpy(), kl.numpy(), rtol=1e-5, atol=1e-5)
    # The losses of the two objectives agree as well (weights 1, no warm-up): the negative
    # ELBO is the mean reconstruction NLL plus the KL term.
    elbo_loss = tf.reduce_mean(reconstruction) + kl_term
    np.testing.assert_allclose(float(-tf.reduce_mean(bound)), float(elbo_loss), rtol=1e-5)


def test_iwae_bound_is_the_logsumexp_of_the_log_weights_minus_log_k(generated_vae):
    model = generated_vae(IAF, IWAE_3).build_model()
    nudge(model)
    x = tf.constant(digits(8))
    reset(model)
    bound, _, _ = model.iwae_terms(x)
    reset(model)
    z, log_q = model.posterior(x, draws=3)
    x_k = np.concatenate([x.numpy()] * 3)  # draw-major rows
    log_px = model.likelihood.log_prob(x_k, model.decode(z)).numpy()
    log_w = (log_px + model.prior.log_prob(z).numpy() - log_q.numpy()).reshape(3, 8)
    np.testing.assert_allclose(bound.numpy(), logsumexp(log_w, axis=0) - np.log(3), rtol=1e-5)


@pytest.mark.parametrize("posterior", [IAF, PLANAR, RADIAL])
def test_iwae_evaluation_uses_the_flow_posteriors_density(generated_vae, posterior):
    """The runtime's importance weights with k = 1 against log p(x|z) + log p(z) - log q(z|x)
    computed here: log q0 by scipy, the flow's log |det J| by autodiff of z_K(z_0)."""
    model = generated_vae(posterior).build_model()
    nudge(model, seed=1)
    x = digits(12)
    found = vae_metrics.iwae_log_likelihood(model, x, None, k=1, seed=5)
    # The same noise the evaluation draws: a fresh generator with the same seed.
    eps = keras.random.normal((12, 2), seed=keras.random.SeedGenerator(5)).numpy()
    outputs = model.encoder(x)
    z_mean, z_log_var = outputs[0].numpy(), outputs[1].numpy()
    context = outputs[2:]
    z0 = tf.constant(z_mean + np.exp(0.5 * z_log_var) * eps)
    with tf.GradientTape() as tape:
        tape.watch(z0)
        z, _ = model.flow(z0, *context)
    log_det = np.linalg.slogdet(tape.batch_jacobian(z, z0).numpy().astype(np.float64))[1]
    scale = np.exp(0.5 * z_log_var)
    log_q = stats.norm.logpdf(z0.numpy(), z_mean, scale).sum(axis=1) - log_det
    log_pz = stats.norm.logpdf(z.numpy()).sum(axis=1)
    log_px = model.likelihood.log_prob(x, model.decode(z)).numpy()
    np.testing.assert_allclose(found, log_px + log_pz - log_q, rtol=1e-4, atol=1e-3)


def test_generated_iaf_flow_alternates_orderings_and_feeds_h_to_every_step(generated_vae):
    """Kingma et al. 2016, as generated: every step reads the encoder's context h, the MADE
    ordering reverses from one step to the next, and s starts with a +1..+2 bias."""
    model = generated_vae(IAF).build_model()
    nudge(model, seed=2)
    steps = model.posterior_flow
    assert [step.reverse for step in steps] == [False, True]
    assert all(1.0 <= step.forget_bias <= 2.0 for step in steps)
    rng = np.random.default_rng(3)
    z = tf.constant(rng.normal(size=(6, 2)).astype("float32"))
    h = tf.constant(rng.normal(size=(6, 4)).astype("float32"))
    for step in steps:
        moved = step(z, h)[0].numpy() - step(z, h + 1.0)[0].numpy()
        assert np.abs(moved).max() > 1e-3, step.name


@pytest.mark.parametrize("posterior", [IAF, PLANAR])
def test_iwae_evaluation_with_several_draws_pairs_each_draw_with_its_example(
    generated_vae, posterior
):
    """k = 3: the runtime's log p(x) against logsumexp over draws computed here one draw at
    a time, draw d taking rows d * B ... (d + 1) * B - 1 of the evaluation's noise."""
    model = generated_vae(posterior).build_model()
    nudge(model, seed=4)
    x, k = digits(12), 3
    found = vae_metrics.iwae_log_likelihood(model, x, None, k=k, seed=5)
    eps = keras.random.normal((k * 12, 2), seed=keras.random.SeedGenerator(5)).numpy()
    outputs = model.encoder(x)
    z_mean, z_log_var = outputs[0].numpy(), outputs[1].numpy()
    log_w = []
    for d in range(k):
        z0 = z_mean + np.exp(0.5 * z_log_var) * eps[d * 12 : (d + 1) * 12]
        z, log_det = model.flow(tf.constant(z0), *outputs[2:])
        log_q = stats.norm.logpdf(z0, z_mean, np.exp(0.5 * z_log_var)).sum(1) - log_det
        log_px = model.likelihood.log_prob(x, model.decode(z)).numpy()
        log_w.append(log_px + stats.norm.logpdf(z.numpy()).sum(1) - log_q)
    expected = logsumexp(np.stack(log_w), axis=0) - np.log(k)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-3)


def test_vamp_prior_is_the_mean_of_the_posteriors_at_the_pseudo_inputs(generated_vae):
    model = generated_vae(VAMP).build_model()
    x = digits(6)
    model.prior.initialize_from([x[:4], x[4:]])  # batches read until 6 examples are seen
    np.testing.assert_array_equal(model.prior.pseudo_inputs.numpy(), x)
    z = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
    mean, log_var = (t.numpy() for t in model.encoder(x))
    components = stats.norm.logpdf(z[:, None, :], mean, np.exp(0.5 * log_var)).sum(axis=-1)
    expected = logsumexp(components, axis=1) - np.log(6)
    np.testing.assert_allclose(model.prior.log_prob(z).numpy(), expected, rtol=1e-5)
    draws = model.prior.sample(32, seed=keras.random.SeedGenerator(1)).numpy()
    assert draws.shape == (32, 2) and np.all(np.isfinite(draws))


@pytest.mark.parametrize(
    "overrides",
    [(IAF,), (PLANAR,), (RADIAL,), (IWAE_3,), (VAMP,), (IAF, IWAE_3, CONDITIONAL)],
    ids=["iaf", "planar", "radial", "iwae", "vamp", "conditional-iaf+iwae"],
)
def test_a_few_training_steps_of_each_choice_give_a_finite_falling_loss(generated_vae, overrides):
    module = generated_vae(*overrides)
    model = module.build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = digits(256)
    if hasattr(model, "initialize"):  # VampPrior init 'data'
        model.initialize(type("Data", (), {"train": [x[:64]]})())
    labels = load_digits().target[:256].astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, labels) if CONDITIONAL in overrides else x)
    history = model.fit(data.batch(64), epochs=3, shuffle=False, verbose=0).history
    losses = history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert set(history) >= {"loss", "reconstruction", "kl", "grad_norm"}
    samples = model.sample(4).numpy()
    assert samples.shape == (4, 8, 8, 1) and np.all((samples >= 0) & (samples <= 1))


@pytest.mark.slow  # a whole run with evaluation and pictures: ~10 s on an idle machine
def test_iaf_run_trains_evaluates_and_samples_end_to_end(tmp_path: Path) -> None:
    """`gencompile train` of an IAF spec: metrics (the IWAE NLL through the flow's density)
    and samples are written."""
    from gencompile.runs import train

    spec = tmp_path / "tiny_vae.yaml"
    spec.write_text(TINY_VAE.replace("name: tiny-vae", "name: tiny-iaf-vae"))
    run_dir = tmp_path / "run"
    train(spec, [IAF, IWAE_3], run_dir=run_dir, quiet=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["final"]["loss"])
    nll, elbo = metrics["metrics"]["iwae_nll"], metrics["metrics"]["elbo"]
    assert 0 < nll < 100 and -100 < elbo < 0
    assert list(run_dir.glob("samples*.png"))
