"""Runtime pieces of the autoregressive family: logit filtering, scheduled sampling, BLEU
through sacrebleu, arithmetic validity of samples, text data windows and masks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

from gencompile.runtime import autoregressive as ar
from gencompile.runtime.layers import causal_mask
from gencompile.runtime.metrics.levels import merged_levels
from gencompile.text import fit_tokenizer, split_text, windows

LOGITS = tf.math.log(tf.constant([[0.5, 0.2, 0.15, 0.1, 0.05]]))


def kept(filtered: tf.Tensor) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.isfinite(filtered.numpy()[0]))]


def test_top_k_keeps_the_k_likeliest_tokens() -> None:
    assert kept(ar.filter_logits(LOGITS, 1.0, 0, 1.0)) == [0, 1, 2, 3, 4]
    assert kept(ar.filter_logits(LOGITS, 1.0, 2, 1.0)) == [0, 1]
    assert kept(ar.filter_logits(LOGITS, 1.0, 99, 1.0)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "top_p, expected",
    [(0.4, [0]), (0.5, [0]), (0.6, [0, 1]), (0.8, [0, 1, 2]), (0.86, [0, 1, 2, 3]), (1.0, None)],
)
def test_top_p_keeps_the_smallest_nucleus_reaching_p(top_p: float, expected) -> None:
    assert kept(ar.filter_logits(LOGITS, 1.0, 0, top_p)) == (expected or [0, 1, 2, 3, 4])


def test_temperature_sharpens_and_draws_follow_the_filtered_distribution() -> None:
    cold = tf.nn.softmax(ar.filter_logits(LOGITS, 0.5, 0, 1.0)).numpy()[0]
    probs = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    np.testing.assert_allclose(cold, probs**2 / (probs**2).sum(), rtol=1e-5)
    batch = tf.tile(LOGITS, (20000, 1))
    draws = ar.draw(batch, 1.0, 3, 1.0, tf.constant([1, 2])).numpy()
    frequencies = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(frequencies, [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85, 0, 0], atol=0.02)
    again = ar.draw(batch, 1.0, 3, 1.0, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(draws, again)  # stateless: the seed decides


def test_mix_predictions_keeps_inputs_with_the_teacher_forcing_ratio() -> None:
    inputs = tf.zeros((200, 50), tf.int32)
    predictions = tf.ones((200, 50), tf.int32)
    import keras

    seed = keras.random.SeedGenerator(0)
    assert ar.mix_predictions(inputs, predictions, 1.0, seed).numpy().sum() == 0
    none_kept = ar.mix_predictions(inputs, predictions, 0.0, seed).numpy()
    assert (none_kept[:, 0] == 0).all() and (none_kept[:, 1:] == 1).all()
    half = ar.mix_predictions(inputs, predictions, 0.7, seed).numpy()[:, 1:]
    assert abs(half.mean() - 0.3) < 0.02
    # The input at t is replaced by the prediction made at t - 1.
    ramp = tf.tile(tf.range(50)[None], (2, 1))
    shifted = ar.mix_predictions(ramp * 0, ramp + 100, 0.0, seed).numpy()
    assert shifted[0].tolist() == [0, *range(100, 149)]


def test_complete_lines_drop_cut_lines() -> None:
    assert ar.complete_lines("\n", "1+2=3\n4+4=8\n5+") == ["1+2=3", "4+4=8"]
    assert ar.complete_lines("1+", "2=3\n4+4=8\n5+") == ["4+4=8"]


class FakeLanguageModel:
    """Stands in for a generated model: continues prompts with the given tokens."""

    def __init__(self, tokenizer, continuation=None, texts=None):
        self.tokenizer, self.continuation, self.texts = tokenizer, continuation, texts

    def generate_tokens(self, prompts, steps):
        return np.concatenate([prompts, self.continuation(prompts, steps)], axis=1)

    def default_prompt(self) -> str:
        return "\n"

    def sample_text(self, count, include_prompt=True):
        return self.texts[:count]


def text_data(text: str, context_length: int = 24, tokenizer_config=None):
    train, held_out = split_text(text, 0.5)
    tokenizer = fit_tokenizer(tokenizer_config or {"type": "char"}, train)
    return SimpleNamespace(
        x_val=windows(tokenizer.encode(held_out), context_length),
        text=SimpleNamespace(
            tokenizer=tokenizer, held_out=held_out, held_out_ids=tokenizer.encode(held_out)
        ),
    )


def test_bleu_scores_continuations_against_the_held_out_text_with_sacrebleu() -> None:
    words = "the quick brown fox jumps over the lazy dog and runs far away "
    data = text_data(words * 20)
    half = data.x_val.shape[1] // 2
    truth = data.x_val[:, half:]
    perfect = FakeLanguageModel(data.text.tokenizer, lambda p, steps: truth[: len(p), :steps])
    assert ar.bleu(perfect, data, pairs=5) == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    noisy = truth.copy()
    noisy[:, ::3] = rng.integers(1, data.text.tokenizer.vocab_size, size=noisy[:, ::3].shape)
    model = FakeLanguageModel(data.text.tokenizer, lambda p, steps: noisy[: len(p), :steps])
    decode = data.text.tokenizer.decode
    expected = sacrebleu.corpus_bleu(
        [decode(r) for r in noisy[:5]], [[decode(r) for r in truth[:5]]]
    ).score
    assert ar.bleu(model, data, pairs=5) == pytest.approx(expected)
    assert expected < 60.0


def test_bleu_of_word_tokens_gives_unknown_words_no_credit() -> None:
    """The references are the held-out words as written: a model saying `<unk>` for every
    word scored 8 BLEU when both sides read `<unk>`; it scores 0."""
    rng = np.random.default_rng(1)
    common = ["the", "a", "of", "and", "to", "in"]
    rare = [f"w{i}" for i in range(300)]  # each seen once or never: mostly outside the vocabulary
    words = [common[i % 6] if i % 2 else rare[rng.integers(300)] for i in range(2000)]
    data = text_data(" ".join(words), 16, {"type": "word", "vocab_size": 20})
    tokenizer = data.text.tokenizer
    half = data.x_val.shape[1] // 2
    truth = data.x_val[:, half:]
    assert (truth == tokenizer.unknown_id).mean() > 0.3
    unknown = FakeLanguageModel(tokenizer, lambda p, steps: np.zeros((len(p), steps), np.int32))
    assert ar.bleu(unknown, data, pairs=8) == 0.0
    perfect = FakeLanguageModel(tokenizer, lambda p, steps: truth[: len(p), :steps])
    held = data.text.held_out.split()
    written = [" ".join(held[16 * i + half : 16 * i + 17]) for i in range(8)]
    known = [tokenizer.decode(r[r != 0]) for r in truth[:8]]
    expected = sacrebleu.corpus_bleu(known, [written]).score
    assert ar.bleu(perfect, data, pairs=8) == pytest.approx(expected)
    assert expected < 60.0  # the words it cannot spell are missed, not matched


def test_validity_counts_correct_complete_lines() -> None:
    texts = ["1+2=3\n2+2=5\n10+5=15\n9+", "7+7=14\n\n3+3=6\n"]
    model = FakeLanguageModel(None, texts=texts)
    # complete lines: 1+2=3 ok, 2+2=5 no, 10+5=15 ok, 7+7=14 ok, "" no, 3+3=6 ok
    assert ar.validity(model, 2) == pytest.approx(4 / 6)


def test_validity_of_a_word_model_that_writes_the_data_is_one() -> None:
    from gencompile.text import arithmetic_text

    text = arithmetic_text(200, 99, 0)
    tokenizer = fit_tokenizer({"type": "word", "vocab_size": 500}, text)
    lines = tokenizer.decode(tokenizer.encode(text)).split("\n")  # "85 + 63 = 148", ...
    texts = ["\n".join(lines[:20]) + "\n", "\n".join(lines[20:40]) + "\n"]
    model = FakeLanguageModel(tokenizer, texts=texts)
    model.variables = []
    data = SimpleNamespace(
        kind="text", x_val=np.zeros((0, 9)), text=SimpleNamespace(tokenizer=tokenizer)
    )
    metrics = ar.evaluate(model, data, {"metrics": ["validity"], "num_samples": 2})
    assert metrics["validity"] == 1.0


def test_validity_without_a_complete_line_is_refused() -> None:
    from gencompile.errors import RunError

    model = FakeLanguageModel(None, texts=["12+34=4", "7+7=1"])  # sampling.length too short
    with pytest.raises(RunError, match="none of the 2 sampled continuations") as info:
        ar.validity(model, 2)
    assert "longer model.sampling.length" in str(info.value)


@pytest.mark.parametrize(
    "tokenizer, text, words",
    [
        ("char", "abcdefgh " * 40 + "abc xyz " * 20, "held-out character\\(s\\) are not in the"),
        ("word", "the cat sat on the mat . " * 40, "word tokens predict no whitespace"),
    ],
)
def test_bits_per_char_is_refused_unless_every_character_is_scored(tokenizer, text, words):
    from gencompile.errors import RunError

    train, held_out = split_text(text, 0.5)
    fitted = fit_tokenizer({"type": tokenizer, "vocab_size": 100}, train)
    data = SimpleNamespace(
        kind="text",
        x_val=windows(fitted.encode(held_out), 8),
        text=SimpleNamespace(
            tokenizer=fitted, held_out=held_out, held_out_ids=fitted.encode(held_out)
        ),
    )
    model = SimpleNamespace(variables=[])  # refused before the model is asked anything
    with pytest.raises(RunError, match=words) as info:
        ar.evaluate(model, data, {"metrics": ["perplexity", "bits_per_char"], "num_samples": 8})
    assert "use perplexity" in str(info.value) and "{type: byte}" in str(info.value)


class FakePixelCNN:
    """Stands in for a generated PixelCNN of `levels` levels (2: Bernoulli pixels): its
    `to_levels` as the template writes it, and a uniform NLL per pixel."""

    variables: list = []

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def to_levels(self, x):
        levels = tf.clip_by_value(tf.round(x * (self.levels - 1)), 0.0, self.levels - 1.0)
        return tf.cast(levels, tf.int32), levels / (self.levels - 1)

    def image_nll(self, x, training=False):
        pixels = float(np.prod(x.shape[1:]))
        return tf.fill(tf.shape(x)[:1], pixels * float(np.log(self.levels)))


def grey_images(levels: int, count: int = 300) -> SimpleNamespace:
    """Held-out images of `levels` grey levels k / (levels - 1), as data scaled to [0, 1]."""
    rng = np.random.default_rng(0)
    x = (rng.integers(0, levels, size=(count, 4, 4, 1)) / (levels - 1)).astype(np.float32)
    return SimpleNamespace(kind="image", x_val=x, element_shape=(4, 4, 1), y_train=None)


@pytest.mark.parametrize("data_levels, model_levels", [(17, 17), (17, 33), (2, 2), (5, 256)])
def test_image_nll_of_pixels_that_each_hold_one_data_value(data_levels, model_levels) -> None:
    config = {"metrics": ["nll", "bits_per_dim"], "num_samples": 8}
    metrics = ar.evaluate(FakePixelCNN(model_levels), grey_images(data_levels), config)
    assert metrics["bits_per_dim"] == pytest.approx(np.log2(model_levels))


@pytest.mark.parametrize("model_levels", [5, 2])  # 5 bins; Bernoulli pixels (thresholded)
def test_image_nll_is_refused_when_data_values_share_a_level(model_levels) -> None:
    from gencompile.errors import RunError

    config = {"metrics": ["nll", "bits_per_dim"], "num_samples": 8}
    with pytest.raises(RunError, match="coarsened copy of the data") as info:
        ar.evaluate(FakePixelCNN(model_levels), grey_images(17), config)
    assert "bins: N" in str(info.value) and "remove" in str(info.value)
    model = FakePixelCNN(model_levels)
    level, low, high = merged_levels(lambda xb: model.to_levels(xb)[0], grey_images(17).x_val)
    assert low < high and round(low * 16) != round(high * 16)  # two of the data's levels
    assert round(low * (model_levels - 1)) == round(high * (model_levels - 1)) == level


@pytest.mark.parametrize("mask_type, centre", [("A", 0.0), ("B", 1.0)])
def test_causal_mask_hides_the_future_in_raster_order(mask_type: str, centre: float) -> None:
    mask = causal_mask(5, 2, 3, mask_type)[:, :, 0, 0]
    assert mask[:2].all() and not mask[3:].any()  # rows above: seen; rows below: hidden
    assert mask[2].tolist() == [1.0, 1.0, centre, 0.0, 0.0]


def test_text_data_holds_out_the_end_and_checks_the_vocabulary(tmp_path) -> None:
    from gencompile.errors import RunError
    from gencompile.runtime.data import load_data

    path = tmp_path / "corpus.txt"
    path.write_text("abcdefgh" * 50 + "XYZ" * 20, encoding="utf-8")
    train, _ = split_text(path.read_text(), 0.2)
    tokenizer = fit_tokenizer({"type": "char"}, train)
    config = {
        "source": {"type": "text", "path": str(path), "encoding": "utf-8"},
        "validation_split": 0.2,
        "batch_size": 4,
        "tokenizer": {"type": "char", "size": tokenizer.vocab_size, "sha256": tokenizer.sha256},
        "context_length": 8,
    }
    data = load_data(config, seed=0)
    assert data.kind == "text" and data.x_train.shape[1] == 9
    assert data.text.held_out == ("abcdefgh" * 50 + "XYZ" * 20)[-92:]
    assert (data.x_val == 0).mean() > 0.5  # X, Y, Z never occur in training: unknown
    first = next(iter(data.epochs(0, 1)))
    assert first.shape == (4, 9) and first.dtype == tf.int32
    path.write_text("completely different text" * 30, encoding="utf-8")
    with pytest.raises(RunError, match="the text changed"):
        load_data(config, seed=0)
