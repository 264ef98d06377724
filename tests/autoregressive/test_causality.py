"""Causal structure of generated autoregressive networks, and their compiled sampling loops.

A model of p(x_t | x_<t) must give logits at position t that do not depend on tokens after
t: changing token t + 1 (or any later one) must leave the logits at positions <= t exactly
as they were. For a PixelCNN the same holds for pixels in raster order, and the logits of
a pixel must not depend on that pixel itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

TEXT_NETWORKS = ["lstm", "gru", "transformer", "transformer_sinusoidal"]


@pytest.mark.parametrize("kind", TEXT_NETWORKS)
def test_changing_a_token_never_changes_earlier_logits(generated, kind: str) -> None:
    module = generated(kind)
    model = module.build_model()
    rng = np.random.default_rng(0)
    steps = module.CONTEXT_LENGTH
    tokens = rng.integers(1, module.VOCAB_SIZE, size=(4, steps)).astype("int32")
    before = model(tokens).numpy()
    assert before.shape == (4, steps, module.VOCAB_SIZE)
    for t in (0, 5, steps - 2):
        changed = tokens.copy()
        changed[:, t + 1] = (changed[:, t + 1] % (module.VOCAB_SIZE - 1)) + 1  # another token
        after = model(changed).numpy()
        np.testing.assert_array_equal(after[:, : t + 1], before[:, : t + 1])
        # ... while the logits from position t + 1 on do see the change.
        assert np.abs(after[:, t + 1 :] - before[:, t + 1 :]).max() > 1e-6


@pytest.mark.parametrize("kind", ["pixelcnn", "pixelcnn_bernoulli"])
def test_changing_a_pixel_never_changes_its_own_or_earlier_logits(generated, kind: str) -> None:
    module = generated(kind)
    model = module.build_model()
    height, width, _ = module.DATA_SHAPE
    rng = np.random.default_rng(0)
    images = rng.integers(0, module.LEVELS, size=(3, *module.DATA_SHAPE)) / (module.LEVELS - 1)
    images = images.astype("float32")
    before = model(images).numpy().reshape(3, height * width, -1)
    for pixel in (0, 9, 27, height * width - 2):
        row, col = divmod(pixel, width)
        changed = images.copy()
        changed[:, row, col, 0] = 1.0 - changed[:, row, col, 0]
        after = model(changed).numpy().reshape(3, height * width, -1)
        np.testing.assert_array_equal(after[:, : pixel + 1], before[:, : pixel + 1])
        assert np.abs(after[:, pixel + 1 :] - before[:, pixel + 1 :]).max() > 1e-6


def test_sampling_loop_is_traced_once_and_continues_the_prompt(generated) -> None:
    module = generated("transformer")
    model = module.build_model()
    first = model.sample(3, prompt="12+", length=10)
    second = model.sample(5, prompt="\n7", length=4, temperature=0.5, top_k=3, top_p=0.9)
    assert first.shape == (3, 13) and second.shape == (5, 6)
    assert model.generate.experimental_get_tracing_count() == 1
    assert module.TOKENIZER.decode(first[0, :3]) == "12+"
    assert first.min() >= 0 and first.max() < module.VOCAB_SIZE
    texts = model.sample_text(2, prompt="3+4=", length=6)
    assert all(t.startswith("3+4=") and len(t) == 10 for t in texts)


def test_recurrent_sampling_is_seeded_and_greedy_with_top_k_1(generated) -> None:
    module = generated("lstm")
    model = module.build_model()
    a, b = model.sample(4, length=8), model.sample(4, length=8)
    assert not np.array_equal(a, b)  # the sample seed generator moves on
    greedy = model.sample(4, length=8, top_k=1)
    assert (greedy == greedy[0]).all()  # one prompt, no randomness left: identical rows
    assert model.generate.experimental_get_tracing_count() == 1


def test_pixel_sampling_is_one_traced_loop(generated) -> None:
    module = generated("pixelcnn")
    model = module.build_model()
    images = model.sample(3).numpy()
    more = model.sample(2, temperature=0.7).numpy()
    assert images.shape == (3, *module.DATA_SHAPE) and more.shape == (2, *module.DATA_SHAPE)
    levels = images * (module.LEVELS - 1)
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)  # on the grey levels
    assert model.generate.experimental_get_tracing_count() == 1


def test_scheduled_sampling_mixes_in_the_models_own_samples(generated) -> None:
    module = generated("gru", teacher_forcing=0.5)
    model = module.build_model()
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, module.VOCAB_SIZE, size=(64, module.CONTEXT_LENGTH)).astype("int32")
    mixed = model.scheduled_inputs(tf.constant(inputs)).numpy()
    np.testing.assert_array_equal(mixed[:, 0], inputs[:, 0])  # nothing predicts the first
    replaced = (mixed[:, 1:] != inputs[:, 1:]).mean()
    # Half the inputs are replaced by samples, which differ from a random token most times.
    assert 0.3 < replaced < 0.5, replaced
    model.compile(optimizer="adam")
    windows = rng.integers(1, module.VOCAB_SIZE, size=(4, module.CONTEXT_LENGTH + 1))
    history = model.fit(tf.data.Dataset.from_tensors(windows.astype("int32")), verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("kind", [*TEXT_NETWORKS, "pixelcnn", "pixelcnn_bernoulli"])
def test_compiler_parameter_counts_match_keras(generated, kind: str) -> None:
    """What `gencompile explain` and the model card say equals what Keras builds."""
    module = generated(kind)
    network = module.build_network()
    plan_layers = {layer.name: layer.params for layer in module.PLAN.networks[0].layers}
    for layer in network.layers[1:]:
        assert layer.count_params() == plan_layers[layer.name], layer.name
    assert network.count_params() == module.PLAN.networks[0].params
