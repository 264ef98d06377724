"""A generated language model starts at the unigram distribution of its training text.

`initialize(data)` (called by `training.fit` before a fresh fit, and by `init_from` before
merging a parent's weights) sets the output bias to the tokens' log-frequencies, so the
first steps learn context rather than how common each token is.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import autoregressive as ar
from gencompile.runtime.contract import InitializedFromData


def test_unigram_log_probs_are_add_one_smoothed_target_frequencies() -> None:
    # Targets are every column but the first: tokens 1, 1, 2 and 1, 2, 2 -> counts 0, 3, 3, 0.
    windows = np.array([[3, 1, 1, 2], [0, 1, 2, 2]], dtype=np.int32)
    log_p = ar.unigram_log_probs(windows, vocab_size=4)
    assert log_p.dtype == np.float32 and log_p.shape == (4,)
    np.testing.assert_allclose(np.exp(log_p), [1 / 10, 4 / 10, 4 / 10, 1 / 10], rtol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_initialize_starts_the_model_at_the_unigram_distribution(generated, kind: str) -> None:
    module = generated(kind)
    model = module.build_model()
    assert isinstance(model, InitializedFromData)  # so training.fit calls it on a fresh fit
    rng = np.random.default_rng(0)
    vocab = module.VOCAB_SIZE
    frequencies = 0.5 ** np.arange(vocab)  # a skewed unigram distribution
    frequencies /= frequencies.sum()
    windows = rng.choice(vocab, size=(256, module.CONTEXT_LENGTH + 1), p=frequencies)
    windows = windows.astype(np.int32)

    def mean_nll() -> float:
        return float(tf.reduce_mean(model.token_nll(tf.constant(windows))))

    fresh = mean_nll()
    model.initialize(SimpleNamespace(x_train=windows))
    bias = model.network.get_layer("logits").bias.numpy()
    np.testing.assert_allclose(bias, ar.unigram_log_probs(windows, vocab), rtol=1e-6)
    # The cross-entropy now starts near the unigram entropy, well below the uniform log V.
    targets = windows[:, 1:].ravel()
    unigram = -float(np.mean(ar.unigram_log_probs(windows, vocab)[targets]))
    assert unigram < math.log(vocab) - 1.0
    assert mean_nll() < fresh - 0.5
    # The unigram's perplexity, whatever the body: a transformer's output kernel starts at
    # zero (its LayerNorm-ed features through a random kernel started it at 23.6 against a
    # unigram 12.4 on the arithmetic); a recurrent body's features start near zero.
    kernel = model.network.get_layer("logits").kernel.numpy()
    assert kernel.any() == (kind == "lstm")  # the LSTM keeps its kernel: it learns faster
    assert math.exp(mean_nll()) == pytest.approx(math.exp(unigram), abs=1e-3)
    if kind == "lstm":  # small outputs of the body: near uniform before initialize
        assert fresh == pytest.approx(math.log(vocab), abs=0.2)
