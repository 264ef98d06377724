"""A recurrent language model samples by carrying its cells' states while the text fits in
CONTEXT_LENGTH tokens (one cell step per token; re-reading the whole window from zero
states took ~100 times the work), and re-reads the window beyond it: the same tokens as
re-reading the window at every step, for prompts shorter and longer than the context."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import autoregressive


def window_sampler(model, context_length: int):
    """The sampling loop as it was: every step re-reads the last window from zero states."""

    @tf.function
    def generate(prompts, steps, temperature, top_k, top_p, seed):
        start = tf.shape(prompts)[1]
        tokens = tf.concat([prompts, tf.zeros((tf.shape(prompts)[0], steps), tf.int32)], 1)

        def step(t, tokens):
            window = tokens[:, tf.maximum(t - context_length, 0) : t]
            logits = model.network(window, training=False)[:, -1]
            token = autoregressive.draw(logits, temperature, top_k, top_p, seed + t)
            return t + 1, autoregressive.write_column(tokens, t, token)

        return tf.while_loop(lambda t, _: t < start + steps, step, (start, tokens))[1]

    return generate


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_carried_states_draw_the_tokens_of_the_window(generated, kind: str) -> None:
    module = generated(kind)
    model = module.build_model()
    rng = np.random.default_rng(0)
    for weight in model.network.weights:  # varied next-token distributions, not near uniform
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
    reference = window_sampler(model, module.CONTEXT_LENGTH)
    options = (tf.constant(1.0), tf.constant(0), tf.constant(1.0), tf.constant([7, 9]))
    for length in (1, 5, module.CONTEXT_LENGTH, module.CONTEXT_LENGTH + 3):
        prompts = tf.constant(rng.integers(1, module.VOCAB_SIZE, (8, length)), tf.int32)
        steps = tf.constant(2 * module.CONTEXT_LENGTH)  # on beyond the context
        drawn = model.generate(prompts, steps, *options).numpy()
        np.testing.assert_array_equal(drawn, reference(prompts, steps, *options).numpy())
        assert len({row.tobytes() for row in drawn}) > 1  # the draws differ: a real check


def test_only_the_steps_beyond_the_context_re_read_the_window(generated) -> None:
    module = generated("gru")
    model = module.build_model()
    reads = tf.Variable(0)
    whole = model.network.call

    def counted(*args, **kwargs):  # each run of the whole network on a window, counted
        reads.assign_add(1)
        return whole(*args, **kwargs)

    model.network.call = counted
    context = module.CONTEXT_LENGTH
    prompts = tf.ones((2, 1), tf.int32)
    options = (tf.constant(1.0), tf.constant(0), tf.constant(1.0), tf.constant([1, 2]))
    model.generate(prompts, tf.constant(2 * context), *options)
    # Tokens 1..2C are drawn after reading 1..2C tokens: the first C fit in the context.
    assert int(reads.numpy()) == context
