"""The diffusion runtime and generated diffusion models: forward process, parameterisations,
samplers, guidance, EMA and the U-Net's layers, each against an independent computation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile import noise_schedules
from gencompile.runtime import diffusion, diffusion_layers

MLP = "denoiser: {type: mlp, hidden: [32, 32], time_embedding: 16}"


def paper_cosine_alpha_bar(t: np.ndarray, timesteps: int, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal (2021), eq. 17, with t counted 1..T (our index t is their t - 1)."""

    def f(u):
        return np.cos((u / timesteps + s) / (1 + s) * np.pi / 2) ** 2

    return f(np.asarray(t, np.float64) + 1) / f(0.0)


# --------------------------------------------------------------------------- forward process


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_has_the_schedules_mean_and_variance(generated_diffusion, schedule):
    timesteps = 200
    module = generated_diffusion(f"timesteps: {timesteps}\nschedule: {{type: {schedule}}}\n{MLP}")
    model = module.build_model()
    if schedule == "linear":  # Ho et al.: beta_t from 1e-4 to 0.02; alpha_bar = prod(1 - beta)
        betas = [1e-4 + (0.02 - 1e-4) * i / (timesteps - 1) for i in range(timesteps)]
        expected = np.array([math.prod(1.0 - b for b in betas[: t + 1]) for t in range(timesteps)])
    else:  # the closed form, except the last step whose beta is clipped to 0.999
        expected = paper_cosine_alpha_bar(np.arange(timesteps), timesteps)
        expected[-1] = expected[-2] * (1.0 - 0.999)
    np.testing.assert_allclose(model.schedule.alpha_bars, expected, rtol=1e-10)

    n = 200_000
    x0 = np.tile(np.array([[1.5, -2.0]], np.float32), (n, 1))
    generator = keras.random.SeedGenerator(0)
    for t in (0, 20, 100, timesteps - 1):
        noise = keras.random.normal((n, 2), seed=generator)  # as train_step draws it
        x_t = np.asarray(model.schedule.q_sample(tf.constant(x0), tf.fill([n], t), noise))
        alpha_bar = expected[t]
        mean, variance = np.sqrt(alpha_bar) * x0[0], 1.0 - alpha_bar
        # 5 standard errors of the sample mean and of the sample variance
        np.testing.assert_array_less(np.abs(x_t.mean(0) - mean), 5 * np.sqrt(variance / n))
        np.testing.assert_array_less(np.abs(x_t.var(0) - variance), 5 * variance * np.sqrt(2.0 / n))


def test_cosine_betas_grow_and_stay_below_their_clip():
    betas = np.asarray(noise_schedules.cosine_betas(1000))
    assert np.all(np.diff(betas) > 0) and betas.max() == pytest.approx(0.999)
    assert diffusion.NoiseSchedule(betas).alpha_bars[0] == pytest.approx(1 - betas[0])


# --------------------------------------------------------------------------- parameterisations


def random_state(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x0, eps = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    alpha_bar = rng.uniform(1e-3, 1 - 1e-3, size=(n, 1))
    x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * eps
    return x0, eps, alpha_bar, x_t


def test_the_three_parameterisations_convert_into_each_other_exactly():
    x0, eps, alpha_bar, x_t = random_state()
    outputs = {
        p: np.asarray(diffusion.prediction_target(p, x0, eps, alpha_bar))
        for p in ["x0", "v", "epsilon"]
    }
    np.testing.assert_array_equal(outputs["x0"], x0)
    np.testing.assert_array_equal(outputs["epsilon"], eps)
    np.testing.assert_allclose(
        outputs["v"], np.sqrt(alpha_bar) * eps - np.sqrt(1 - alpha_bar) * x0, atol=1e-14
    )
    for source, output in outputs.items():
        got_x0, got_eps = diffusion.x0_and_epsilon(source, output, x_t, alpha_bar)
        np.testing.assert_allclose(np.asarray(got_x0), x0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.asarray(got_eps), eps, rtol=0, atol=1e-10)
        for destination, expected in outputs.items():
            converted = diffusion.convert(output, x_t, alpha_bar, source, destination)
            np.testing.assert_allclose(np.asarray(converted), expected, rtol=0, atol=1e-10)


def test_min_snr_weights_give_every_parameterisation_the_same_loss():
    """w_p ||output_p - target_p||^2 = min(SNR, gamma) ||x0_hat - x0||^2 for each p."""
    x0, eps, alpha_bar, x_t = random_state(seed=1)
    x0_hat = x0 + np.random.default_rng(2).normal(scale=0.3, size=x0.shape)
    eps_hat = (x_t - np.sqrt(alpha_bar) * x0_hat) / np.sqrt(1 - alpha_bar)
    snr = alpha_bar / (1 - alpha_bar)
    expected = np.minimum(snr, 5.0)[:, 0] * np.sum((x0_hat - x0) ** 2, axis=1)
    for p in diffusion.PREDICTIONS:
        error = np.asarray(
            diffusion.prediction_target(p, x0_hat, eps_hat, alpha_bar)
            - diffusion.prediction_target(p, x0, eps, alpha_bar)
        )
        weight = np.asarray(diffusion.min_snr_weight(alpha_bar[:, 0], p, 5.0))
        np.testing.assert_allclose(weight * np.sum(error**2, axis=1), expected, rtol=1e-9)


@pytest.mark.parametrize("prediction", diffusion.PREDICTIONS)
def test_the_generated_loss_regresses_on_its_parameterisations_target(
    generated_diffusion, prediction
):
    module = generated_diffusion(f"timesteps: 100\nprediction: {prediction}\n{MLP}")
    model = module.build_model()
    rng = np.random.default_rng(0)
    x0, noise = rng.normal(size=(2, 16, 2)).astype("float32")
    t = rng.integers(0, 100, size=16).astype("int32")
    alpha_bar = model.schedule.alpha_bars[t][:, None]
    x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * noise  # in float64
    output = np.asarray(model.denoiser([tf.constant(x_t, tf.float32), tf.constant(t)]))
    target = {
        "epsilon": noise,
        "x0": x0,
        "v": np.sqrt(alpha_bar) * noise - np.sqrt(1 - alpha_bar) * x0,
    }
    expected = np.mean((target[prediction] - output) ** 2, axis=1)
    got = model.denoising_loss(model.denoiser, *(tf.constant(a) for a in (x0, t, noise)))
    got = np.asarray(got)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- samplers


def test_sampling_timesteps_start_at_the_noisiest_and_descend():
    every = diffusion.sampling_timesteps(1000, 1000)
    np.testing.assert_array_equal(every, np.arange(999, -1, -1))
    some = diffusion.sampling_timesteps(1000, 50)
    assert len(some) == 50 and some[0] == 999 and np.all(np.diff(some) == -20)
    assert list(diffusion.sampling_timesteps(10, 3)) == [9, 6, 2]
    with pytest.raises(ValueError, match="steps must be in"):
        diffusion.sampling_timesteps(10, 11)


def test_ddim_step_with_eta_zero_ignores_the_noise():
    x0, eps, alpha_bar, _ = random_state()
    alpha_bar_prev = (1.0 + alpha_bar) / 2.0  # less noise one step later
    a, b = (np.random.default_rng(s).normal(size=x0.shape) for s in (3, 4))

    def step(eta: float, noise: np.ndarray) -> np.ndarray:
        return np.asarray(diffusion.ddim_step(x0, eps, alpha_bar, alpha_bar_prev, eta, noise))

    np.testing.assert_array_equal(step(0.0, a), step(0.0, b))
    assert not np.allclose(step(1.0, a), step(1.0, b))


LINEAR = "timesteps: 40\nschedule: {type: linear, beta_start: 1.0e-3, beta_end: 0.05}\n"
FEW_STEPS = "\nsampler: {type: ddim, steps: 10}"


def test_ddim_with_eta_zero_is_deterministic_for_a_fixed_seed(generated_diffusion):
    module = generated_diffusion(f"{LINEAR}{MLP}\nsampler: {{type: ddim, steps: 10, eta: 0.0}}")
    model = module.build_model()
    first, again = model.sample(32, seed=5), model.sample(32, seed=5)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    assert not np.allclose(np.asarray(model.sample(32, seed=6)), np.asarray(first))
    # eta = 0: x_T alone decides; the steps' noise (another seed) changes nothing ...
    x_T = tf.random.stateless_normal((32, 2), seed=[5, 0])
    same = [np.asarray(model.sampler(x_T, tf.constant([s, 0]))) for s in (5, 9)]
    np.testing.assert_array_equal(same[0], same[1])
    np.testing.assert_array_equal(same[0], np.asarray(first))
    # ... while with eta = 1 it does.
    noisy = diffusion.Sampler(
        model.denoise, model.schedule, {"type": "ddim", "steps": 10, "eta": 1.0}, "epsilon", (2,)
    )
    a, b = (np.asarray(noisy(x_T, tf.constant([s, 0]))) for s in (5, 9))
    assert not np.allclose(a, b)


def test_ddim_with_eta_one_through_every_step_is_ddpm(generated_diffusion):
    module = generated_diffusion(f"{LINEAR}{MLP}\nsampler: {{type: ddpm}}")
    model = module.build_model()
    assert model.sampler.kind == "ddpm" and model.sampler.steps == 40
    ddim = diffusion.Sampler(
        model.denoise, model.schedule, {"type": "ddim", "steps": 40, "eta": 1.0}, "epsilon", (2,)
    )
    x_T = tf.random.stateless_normal((64, 2), seed=[1, 2])
    seed = tf.constant([7, 0])
    ddpm_samples = np.asarray(model.sampler(x_T, seed))
    np.testing.assert_allclose(np.asarray(ddim(x_T, seed)), ddpm_samples, rtol=1e-4, atol=1e-4)
    assert not np.allclose(np.asarray(model.sampler(x_T, tf.constant([8, 0]))), ddpm_samples)


def test_the_sampling_loop_is_traced_once_and_not_unrolled(generated_diffusion):
    module = generated_diffusion(f"{LINEAR}{MLP}\nsampler: {{type: ddim, steps: 10, eta: 0.5}}")
    model = module.build_model()
    for n, seed in ((3, None), (17, None), (5, 1)):
        assert np.asarray(model.sample(n, seed=seed)).shape == (n, 2)
    assert model.sampler.traces == 1

    def graph_ops(steps: int) -> int:
        config = {"type": "ddim", "steps": steps, "eta": 0.5}
        sampler = diffusion.Sampler(model.denoise, model.schedule, config, "epsilon", (2,))
        graph = sampler._loop.get_concrete_function().graph
        assert any(op.type in ("While", "StatelessWhile") for op in graph.get_operations())
        return len(graph.get_operations())

    assert graph_ops(2) == graph_ops(40)  # one loop body, whatever the number of steps


def test_sampling_clips_x0_estimates_to_the_scaled_range(generated_diffusion):
    module = generated_diffusion(f"{LINEAR}{MLP}{FEW_STEPS}", "{scale: [-1.0, 1.0]}")
    assert module.CLIP_RANGE == (-1.0, 1.0)
    samples = np.asarray(module.build_model().sample(256, seed=0))
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    unclipped = generated_diffusion(
        f"{LINEAR}{MLP}{FEW_STEPS}\nclip_denoised: false", "{scale: [-1.0, 1.0]}"
    )
    assert unclipped.CLIP_RANGE is None


# --------------------------------------------------------------------------- guidance, EMA


CONDITIONAL = f"{LINEAR}{MLP}{FEW_STEPS}\nconditional: {{num_classes: 8, label_dropout: 0.25}}"


def test_guidance_scale_zero_reproduces_the_unconditional_prediction(generated_diffusion):
    module = generated_diffusion(CONDITIONAL)
    model = module.build_model()
    embedding = model.ema_denoiser.get_layer("class_embedding").embeddings
    embedding.assign(np.random.default_rng(0).normal(size=embedding.shape))  # classes matter
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(24, 2)), tf.float32)
    t = tf.constant(rng.integers(0, 40, size=24), tf.int32)
    labels = tf.constant(np.arange(24) % 8, tf.int32)
    null = tf.fill([24], module.NUM_CLASSES)
    conditional = np.asarray(model.ema_denoiser([x, t, labels]))
    unconditional = np.asarray(model.ema_denoiser([x, t, null]))
    assert not np.allclose(conditional, unconditional, atol=1e-3)
    guided = {s: np.asarray(model.denoise(x, t, labels, s)) for s in (0.0, 1.0, 3.0)}
    np.testing.assert_allclose(guided[0.0], unconditional, atol=1e-6)
    np.testing.assert_allclose(guided[1.0], conditional, atol=1e-6)
    np.testing.assert_allclose(
        guided[3.0], unconditional + 3.0 * (conditional - unconditional), atol=1e-5
    )
    # With scale 0 the labels cannot matter to the samples either.
    a = model.sample(24, labels=np.zeros(24, "int32"), guidance_scale=0.0, seed=3)
    b = model.sample(24, labels=np.full(24, 5, "int32"), guidance_scale=0.0, seed=3)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    c = model.sample(24, labels=np.full(24, 5, "int32"), guidance_scale=2.0, seed=3)
    assert not np.allclose(np.asarray(b), np.asarray(c), atol=1e-3)


def test_label_dropout_hides_its_share_of_labels_behind_the_null_class(generated_diffusion):
    module = generated_diffusion(CONDITIONAL)
    model = module.build_model()
    y = tf.constant(np.arange(40_000) % 8, tf.int32)
    dropped = np.asarray(model.drop_labels(y))
    hidden = dropped == module.NUM_CLASSES
    assert abs(hidden.mean() - 0.25) < 0.01
    np.testing.assert_array_equal(dropped[~hidden], np.asarray(y)[~hidden])


def test_ema_weights_follow_the_trained_weights_with_a_warming_decay(generated_diffusion):
    module = generated_diffusion(f"{LINEAR}{MLP}{FEW_STEPS}\nema: 0.9")
    model = module.build_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np.asarray(w) for w in model.denoiser.weights]
    np.testing.assert_array_equal(before[0], np.asarray(model.ema_denoiser.weights[0]))
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    model.fit(x, batch_size=64, epochs=1, verbose=0)  # one step: n = 1, decay = 2 / 11
    decay = min(0.9, 2.0 / 11.0)
    for old, new, ema in zip(
        before, model.denoiser.weights, model.ema_denoiser.weights, strict=True
    ):
        new = np.asarray(new)
        assert not np.allclose(new, old) or new.ndim == 0
        np.testing.assert_allclose(np.asarray(ema), decay * old + (1 - decay) * new, atol=1e-6)
    assert not model.ema_denoiser.trainable_weights  # only the optimizer moves the denoiser


# --------------------------------------------------------------------------- layers


def test_sinusoidal_embedding_is_the_transformers():
    layer = diffusion_layers.SinusoidalEmbedding(8)
    t = np.array([0, 1, 17, 999])
    frequencies = 10000.0 ** (-np.arange(4) / 4)
    expected = np.concatenate(
        [np.sin(t[:, None] * frequencies), np.cos(t[:, None] * frequencies)], 1
    )
    np.testing.assert_allclose(np.asarray(layer(tf.constant(t, tf.int32))), expected, atol=1e-4)
    with pytest.raises(ValueError, match="even"):
        diffusion_layers.SinusoidalEmbedding(7)


@pytest.mark.parametrize(
    ("layer", "inputs"),
    [
        (diffusion_layers.SinusoidalEmbedding(16, name="s"), [(5,)]),
        (
            diffusion_layers.ResidualBlock(16, groups=4, dropout=0.1, name="r"),
            [(2, 8, 8, 8), (2, 12)],
        ),
        (
            diffusion_layers.ResidualBlock(8, groups=4, kernel_regularizer="l2", name="r2"),
            [(2, 4, 4, 8), (2, 12)],
        ),
        (diffusion_layers.AttentionBlock(groups=4, name="a"), [(2, 4, 4, 8)]),
    ],
    ids=["sinusoidal", "residual-widening", "residual-same", "attention"],
)
def test_layers_rebuild_from_their_config(layer, inputs):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s).astype("float32") for s in inputs]
    args = arrays if len(arrays) > 1 else arrays[0]
    output = np.asarray(layer(args))
    clone = type(layer).from_config(layer.get_config())
    clone(args)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(args)), output, atol=1e-6)
    assert output.shape == tuple(
        layer.compute_output_shape(
            [a.shape for a in arrays] if len(arrays) > 1 else arrays[0].shape
        )
    )


# --------------------------------------------------------------------------- metrics


def test_denoising_loss_estimates_the_expected_loss_over_uniform_timesteps(generated_diffusion):
    from types import SimpleNamespace

    module = generated_diffusion(f"{LINEAR}{MLP}{FEW_STEPS}")
    model = module.build_model()
    x = np.random.default_rng(0).normal(size=(500, 2)).astype("float32")
    data = SimpleNamespace(x_val=x, y_val=None)
    stratified = diffusion.evaluate(model, data, {"metrics": ["denoising_loss"]})
    assert stratified == diffusion.evaluate(model, data, {"metrics": ["denoising_loss"]})
    assert diffusion.evaluate(model, data, {"metrics": []}) == {}
    # Monte Carlo over t ~ U{0..T-1} with many draws, as training samples it
    n = 200_000
    rng = np.random.default_rng(1)
    x0 = tf.constant(x[rng.integers(0, len(x), n)])
    t = tf.constant(rng.integers(0, 40, n), tf.int32)
    noise = tf.constant(rng.normal(size=(n, 2)), tf.float32)
    monte_carlo = float(np.mean(np.asarray(model.denoising_loss(model.ema_denoiser, x0, t, noise))))
    assert stratified["denoising_loss"] == pytest.approx(monte_carlo, rel=0.05)
