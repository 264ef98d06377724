"""Generated GANs train: every loss and gradient penalty for a few steps, the conditional
generator follows its label, samples come from the averaged generator, both optimizers are
loss-scaled under mixed precision and restored from a checkpoint."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runs import train
from gencompile.runtime import checkpoints, training
from gencompile.runtime.callbacks import GradientMonitor
from gencompile.sampling import sample

STEPS = 4
RING = np.random.default_rng(0).normal(size=(STEPS * 32, 2)).astype("float32")


def compiled(generated, epochs: int = 1):
    keras.utils.set_random_seed(5)
    data = SimpleNamespace(steps_per_epoch=STEPS)
    return training.build_and_compile(
        generated.module.build_model, generated.training, data, epochs=epochs
    )


def fit(model: keras.Model, dataset: tf.data.Dataset | None = None, epochs: int = 1) -> dict:
    """The last epoch's logs of `model.fit` on `dataset` (default: the ring, batches of 32)."""
    dataset = dataset if dataset is not None else tf.data.Dataset.from_tensor_slices(RING)
    history = model.fit(dataset.batch(32), epochs=epochs, verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}


def snapshot(network: keras.Model) -> list[np.ndarray]:
    return [w.numpy().copy() for w in network.trainable_weights]


def changed(before: list[np.ndarray], network: keras.Model) -> bool:
    """Every kernel moved (a Wasserstein critic's output bias has no gradient: it cancels)."""
    return all(
        not np.array_equal(old, new.numpy())
        for old, new in zip(before, network.trainable_weights, strict=True)
        if old.ndim >= 2
    )


CASES = {
    "non_saturating+r1": "  gradient_penalty: {type: r1, weight: 1.0}",
    "minimax": "  loss: {type: minimax}\n  label_smoothing: 0.1",
    "hinge+spectral_norm": "  loss: {type: hinge}\n  spectral_norm: true",
    "least_squares": "  loss: {type: least_squares}\n  label_smoothing: 0.2",
    "wasserstein+wgan_gp": (
        "  loss: {type: wasserstein}\n  gradient_penalty: {type: wgan_gp}\n  critic_steps: 3"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_loss_and_penalty_trains(generated_gan, case: str) -> None:
    generated = generated_gan(model=CASES[case])
    model = compiled(generated)
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    logs = fit(model)
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert set(logs) >= {"d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"}
    assert logs["d_grad_norm"] > 0 and logs["g_grad_norm"] > 0
    assert changed(g_before, model.generator) and changed(d_before, model.discriminator)
    critic_steps = getattr(generated.module, "CRITIC_STEPS", 1)  # emitted when above 1
    assert int(model.generator_optimizer.iterations) == STEPS
    assert int(model.discriminator_optimizer.iterations) == critic_steps * STEPS
    if "gradient_penalty" in CASES[case]:
        assert logs["gradient_penalty"] > 0
    assert np.asarray(model.sample(5)).shape == (5, 2)


@pytest.mark.parametrize("encoding", ["one_hot", "embedding"])
def test_conditional_generator_output_changes_with_the_label(generated_gan, encoding) -> None:
    generated = generated_gan(
        model=f"  conditional: {{num_classes: 8, encoding: {encoding}}}",
        discriminator="{layers: [{type: dense, units: 16}]}",
    )
    model = compiled(generated)
    if encoding == "one_hot":  # trained a little; the embedding's variant as initialised
        labels = (np.arange(STEPS * 32) % 8).astype("int32")
        fit(model, tf.data.Dataset.from_tensor_slices((RING, labels)))
    z = model.sample_latent(8, seed=3)
    outputs = [np.asarray(model.generate(z, tf.fill([8], label))) for label in range(8)]
    for a in range(8):
        for b in range(a + 1, 8):
            assert np.abs(outputs[a] - outputs[b]).max() > 1e-4, (a, b)
    same = np.asarray(model.generate(z, tf.fill([8], 5)))
    np.testing.assert_array_equal(same, outputs[5])  # and nothing else changes it
    chosen = np.asarray(model.sample(8, labels=[2] * 8, seed=3))
    np.testing.assert_allclose(chosen, outputs[2], rtol=1e-6)


def test_conditional_convolutional_networks_take_the_label(generated_gan) -> None:
    generated = generated_gan(
        model="  conditional: {num_classes: 10, encoding: embedding, embedding_dim: 3}",
        data="digits",
        preprocessing="{scale: [-1.0, 1.0]}",
        generator=(
            "{layers: [{type: dense, units: 32}, {type: reshape, target_shape: [2, 2, 8]},"
            " {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 4}]}"
        ),
        discriminator="{layers: [{type: conv2d, filters: 4, kernel_size: 3, strides: 2}]}",
    )
    model = compiled(generated)
    assert model.discriminator.get_layer("with_class").output.shape[1:] == (8, 8, 4)
    x = np.random.default_rng(1).uniform(-1, 1, size=(4, 8, 8, 1)).astype("float32")
    y = np.arange(4, dtype="int32")
    z = model.sample_latent(4, seed=0)
    zeros, ones = (np.asarray(model.generate(z, tf.fill([4], k))) for k in (0, 1))
    assert zeros.shape == (4, 8, 8, 1) and np.abs(zeros).max() <= 1.0  # tanh output
    assert np.abs(zeros - ones).max() > 1e-4
    scores = model([x, y])  # the discriminator's scores
    assert scores.shape == (4, 1)
    assert np.abs(scores.numpy() - model([x, (y + 1) % 10]).numpy()).max() > 1e-6


def test_ema_weights_differ_after_training_and_are_the_ones_sampled(generated_gan) -> None:
    model = compiled(generated_gan(model="  ema: 0.9"))
    raw, averaged = model.generator, model.ema_generator
    for a, b in zip(raw.weights, averaged.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # the average starts at G
    fit(model, epochs=2)
    assert all(
        not np.allclose(a.numpy(), b.numpy())
        for a, b in zip(raw.trainable_weights, averaged.weights, strict=True)
    )
    assert not averaged.trainable_weights  # never trained itself
    z = model.sample_latent(16, seed=9)
    sampled = np.asarray(model.sample(16, seed=9))
    np.testing.assert_allclose(sampled, averaged(z).numpy(), rtol=1e-6)
    assert np.abs(sampled - raw(z).numpy()).max() > 1e-4


def test_without_ema_samples_come_from_the_generator(generated_gan) -> None:
    model = compiled(generated_gan())
    assert not hasattr(model, "ema_generator")
    z = model.sample_latent(4, seed=1)
    np.testing.assert_allclose(np.asarray(model.sample(4, seed=1)), model.generator(z).numpy())


def test_mixed_precision_scales_both_optimizers(generated_gan) -> None:
    generated = generated_gan(
        model="  gradient_penalty: {type: wgan_gp}",
        training="  mixed_precision: true\n  optimizers:\n    discriminator: {type: rmsprop}",
    )
    try:
        model = compiled(generated)
        assert model.generator.layers[-1].compute_dtype == "float16"
        for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
            assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.discriminator_optimizer.inner_optimizer, keras.optimizers.RMSprop)
        logs = fit(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it
    assert all(np.isfinite(v) for v in logs.values()), logs
    # Unscaled norms, without the first steps whose scaled gradients overflowed (skipped).
    assert 0 < logs["d_grad_norm"] < 100 and 0 < logs["g_grad_norm"] < 100
    assert np.asarray(model.sample(3)).dtype == np.float32


def test_spectral_norm_under_mixed_precision_runs_in_float32(generated_gan) -> None:
    """In float16 (Keras' default under the policy) the wrapper's power iteration overflowed
    a cast (NumPy's RuntimeWarning) and rounded the float32 kernels to float16 every step."""
    generated = generated_gan(
        model="  loss: {type: hinge}\n  spectral_norm: true",
        training="  mixed_precision: true",
    )
    try:
        model = compiled(generated)
        wrappers = [
            layer
            for layer in model.discriminator.layers
            if isinstance(layer, keras.layers.SpectralNormalization)
        ]
        assert wrappers and all(w.compute_dtype == "float32" for w in wrappers)
        assert all(w.layer.compute_dtype == "float16" for w in wrappers)  # the layer itself
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            logs = fit(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it
    assert all(np.isfinite(v) for v in logs.values()), logs
    kernels = [w.layer.kernel.numpy() for w in wrappers]
    assert not all(np.array_equal(k.astype(np.float16).astype(np.float32), k) for k in kernels)


def mixed_gan(generated_gan, scale: float) -> keras.Model:
    """The tiny GAN under mixed precision, both loss scales starting at `scale` (the caller
    restores the float32 policy)."""
    model = compiled(generated_gan(training="  mixed_precision: true"))
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        optimizer.dynamic_scale.assign(scale)
    return model


def monitored_fit(model: keras.Model, steps: int) -> tuple[dict, list[str]]:
    """The epoch's logs of `steps` batches of the ring, and what the GradientMonitor warned."""
    data = tf.data.Dataset.from_tensor_slices(RING).repeat().take(steps * 32).batch(32)
    said: list[str] = []
    monitor = GradientMonitor(warn=said.append)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[monitor])
    return {k: v[-1] for k, v in history.history.items()}, said


def test_steps_skipped_by_loss_scaling_leave_the_norms_finite(generated_gan) -> None:
    try:
        model = mixed_gan(generated_gan, 2.0**40)  # the first steps overflow, then halve it
        logs, said = monitored_fit(model, steps=64)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        assert 0 < int(optimizer.iterations) < 64  # some steps skipped, some applied
    assert 0 < logs["d_grad_norm"] < 1e3 and 0 < logs["g_grad_norm"] < 1e3, logs
    assert said == []


def test_an_epoch_of_skipped_steps_has_no_norms_and_no_advice(generated_gan) -> None:
    try:
        model = mixed_gan(generated_gan, 1e38)  # every step of the epoch overflows
        logs, said = monitored_fit(model, steps=STEPS)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it
    assert int(model.generator_optimizer.iterations) == 0
    assert np.isnan(logs["d_grad_norm"]) and np.isnan(logs["g_grad_norm"])  # not 0.0
    assert len(said) == 2, said
    assert all("loss scaling (mixed precision) skipped every step" in s for s in said)
    assert not any("exploding" in s or "vanishing" in s for s in said)


def test_checkpoint_restores_both_optimizers(generated_gan, tmp_path) -> None:
    generated = generated_gan(model="  ema: 0.5\n  critic_steps: 2")
    model = compiled(generated)
    fit(model)
    checkpoints.save_checkpoint(model, tmp_path, 1)
    restored = compiled(generated)
    assert checkpoints.restore_latest(restored, tmp_path) == 1
    for ours, theirs in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for role in ("generator_optimizer", "discriminator_optimizer"):
        ours, theirs = getattr(model, role), getattr(restored, role)
        assert int(theirs.iterations) == int(ours.iterations) > 0
        for a, b in zip(ours.variables, theirs.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_a_gan_run_is_reproducible_and_samples_a_chosen_class(tmp_path) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "cgan_digits.yaml"
    tiny = ["training.steps_per_epoch=3"]
    first = train(spec, tiny, epochs=2, run_dir=tmp_path / "a", quiet=True)
    second = train(spec, tiny, epochs=2, run_dir=tmp_path / "b", quiet=True)
    assert first.record["weights_sha256"] == second.record["weights_sha256"]
    assert first.record["final"] == second.record["final"]
    path = sample(first.run_dir, 6, tmp_path / "threes.npz", labels=[3] * 6)
    with np.load(path) as arrays:
        threes = arrays["samples"]
    assert threes.shape == (6, 8, 8, 1)
    assert threes.min() >= 0.0 and threes.max() <= 16.0  # the digits' grey levels
    # A GAN has no diffusion sampler: refused in one line, before anything is drawn.
    with pytest.raises(RunError, match="--sampler has no meaning for a gan model"):
        sample(first.run_dir, 6, tmp_path / "ddim.npz", labels=[3] * 6, sampler="ddim")
    assert not (tmp_path / "ddim.npz").exists()
    # Its temperature scales z: the same seed at another temperature draws other digits.
    cool = sample(first.run_dir, 6, tmp_path / "cool.npz", labels=[3] * 6, temperature=0.5)
    with np.load(cool) as arrays:
        assert arrays["samples"].shape == threes.shape
        assert not np.array_equal(arrays["samples"], threes)
