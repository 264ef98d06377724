"""Runtime of generated autoregressive models: sampling math, scheduled sampling, metrics.

- `filter_logits` / `draw`: temperature, top-k and top-p (nucleus) filtering, then one
  categorical draw per row from a stateless seed (so a compiled sampling loop is
  deterministic and never retraces);
- `mix_predictions`: parallel scheduled sampling (teacher forcing below 1);
- `unigram_log_probs`: the training text's token log-frequencies, where a language model's
  output bias starts (`initialize`), so training begins at the unigram distribution;
- `evaluate(model, data, config)`: held-out metrics. Text: `perplexity` (per token),
  `bits_per_char`, `bleu` (sacrebleu, model continuations of held-out prompts against the
  held-out text that follows them) and `validity` (the built-in arithmetic language:
  fraction of sampled lines that are correct sums). Images: `nll` (nats per image) and
  `bits_per_dim`, refused when distinct held-out pixel values share one of the model's
  levels (`metrics.levels.merged_levels`: the NLL would be that of a coarsened image).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime.compiled import compiled
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.levels import merged_levels, merged_levels_message
from gencompile.runtime.metrics.results import Metrics, held_out
from gencompile.runtime.metrics.samples import sample_quality
from gencompile.runtime.splits import batches, head_positions, mean_of
from gencompile.text import Tokenizer, arithmetic_validity, unknown_prompt_message

NEG_INF = float("-inf")
BLEU_PAIRS = 64  # held-out prompts continued for BLEU (at most)
VALIDITY_SEQUENCES = 128  # sampled sequences whose lines are checked (at most)
EVAL_BATCH = 256
# Pixel values within this of each other are one value of the data (float32 rounding).


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer a project was built with (its `vocabulary.json`)."""
    return Tokenizer.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def unigram_log_probs(windows: np.ndarray, vocab_size: int) -> np.ndarray:
    """log p(token) of each of `vocab_size` tokens as a target of the training windows.

    Add-one smoothed, so a token the training text never shows (`<unk>`) gets a finite,
    small log-probability. A softmax over these logits is the unigram distribution: a
    language model whose output bias starts here spends its first steps on context instead
    of on learning how common each token is (from a zero bias it starts uniform).
    """
    targets = np.asarray(windows)[:, 1:].ravel()  # every token a window predicts
    counts = np.bincount(targets, minlength=vocab_size)[:vocab_size].astype(np.float64)
    return np.log((counts + 1.0) / (counts.sum() + vocab_size)).astype(np.float32)


# --------------------------------------------------------------------------- sampling


def filter_logits(logits: tf.Tensor, temperature: Any, top_k: Any, top_p: Any) -> tf.Tensor:
    """logits / temperature, with every token outside the top-k and outside the top-p
    nucleus set to -inf. top_k = 0 and top_p = 1 keep every token; the likeliest token is
    always kept. logits: (batch, vocab)."""
    logits = tf.cast(logits, tf.float32) / tf.cast(temperature, tf.float32)
    vocab = tf.shape(logits)[-1]
    top_k = tf.cast(top_k, tf.int32)
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    kth = tf.math.top_k(logits, k).values[:, -1:]
    logits = tf.where(logits < kth, NEG_INF, logits)
    # Nucleus: keep the likeliest tokens until their probability reaches top_p.
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    before = tf.cumsum(tf.nn.softmax(ranked, axis=-1), axis=-1, exclusive=True)
    kept = before < tf.cast(top_p, tf.float32)
    threshold = tf.reduce_min(tf.where(kept, ranked, float("inf")), axis=-1, keepdims=True)
    return tf.where(logits < threshold, NEG_INF, logits)


def draw(logits: tf.Tensor, temperature: Any, top_k: Any, top_p: Any, seed: tf.Tensor):
    """One token per row from the filtered logits; `seed` is a stateless seed of shape (2,)."""
    filtered = filter_logits(logits, temperature, top_k, top_p)
    return tf.random.stateless_categorical(filtered, 1, seed, dtype=tf.int32)[:, 0]


def mix_predictions(inputs: tf.Tensor, predictions: tf.Tensor, ratio: float, seed: Any):
    """Parallel scheduled sampling: input t >= 1 is kept with probability `ratio`, else it
    is replaced by the model's own sample of it, `predictions[:, t - 1]` (drawn from the
    logits at position t - 1 of a first pass). The first input is always kept."""
    keep = keras.random.uniform(tf.shape(inputs), seed=seed) < ratio
    keep = tf.concat([tf.ones_like(keep[:, :1]), keep[:, 1:]], axis=1)
    shifted = tf.concat([inputs[:, :1], tf.cast(predictions[:, :-1], inputs.dtype)], axis=1)
    return tf.where(keep, inputs, shifted)


def write_column(tokens: tf.Tensor, t: tf.Tensor, column: tf.Tensor) -> tf.Tensor:
    """`tokens` with column t replaced by `column` (batch,)."""
    at = tf.range(tf.shape(tokens)[1])[None] == t
    return tf.where(at, tf.cast(column, tokens.dtype)[:, None], tokens)


def complete_lines(prompt: str, continuation: str) -> list[str]:
    """The lines a continuation writes from start to line break: its last, cut-off line is
    dropped, and so is its first unless the prompt ended a line."""
    lines = continuation.split("\n")[:-1]
    return lines if prompt.endswith("\n") else lines[1:]


# --------------------------------------------------------------------------- metrics


def _batches(x: Any, size: int = EVAL_BATCH) -> Iterator[tf.Tensor]:
    for rows in batches(x, size):
        yield tf.constant(rows)


def text_nll(model: keras.Model, windows: np.ndarray) -> tuple[float, int]:
    """(summed -log p of every predicted token in nats, number of predicted tokens)."""
    per_token = compiled(model, _token_nll)
    total = sum(float(tf.reduce_sum(tf.cast(per_token(w), tf.float64))) for w in _batches(windows))
    return total, int(windows.shape[0] * (windows.shape[1] - 1))


def _token_nll(model: keras.Model, windows: tf.Tensor) -> tf.Tensor:
    return model.token_nll(windows, training=False)


def _image_nll(model: keras.Model, xb: tf.Tensor) -> tf.Tensor:
    return model.image_nll(xb, training=False)


def bleu(model: keras.Model, data: Any, pairs: int) -> float:
    """sacrebleu corpus BLEU of continuations of held-out prompts against the held-out text.

    Each of up to `pairs` held-out windows is cut in two: the model continues the first
    half (with the spec's sampling settings) for as many tokens as the second half holds.
    The references are the held-out text those tokens stand for, unknown words (characters)
    as written: `<unk>` on both sides would match and score a model for not knowing.
    """
    import sacrebleu

    positions = head_positions(data.x_val, pairs)
    windows = np.asarray(data.x_val[positions])
    half = windows.shape[1] // 2
    tokenizer = data.text.tokenizer
    generated = model.generate_tokens(windows[:, :half], windows.shape[1] - half)[:, half:]
    hypotheses = [tokenizer.decode(_known(tokenizer, row)) for row in generated]
    references = _held_out_stretches(data, positions * (windows.shape[1] - 1), half)
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def _known(tokenizer: Tokenizer, ids: np.ndarray) -> np.ndarray:
    """`ids` without the unknown token: it stands for no text the references hold."""
    return ids if tokenizer.unknown_id is None else ids[ids != tokenizer.unknown_id]


def _held_out_stretches(data: Any, starts: np.ndarray, half: int) -> list[str]:
    """The held-out text of each window's second half (the window at token `start` of the
    held-out text spans `context_length + 1` tokens), spelled as the tokenizer decodes."""
    tokenizer = data.text.tokenizer
    pieces = tokenizer.pieces(data.text.held_out)
    if len(pieces) != len(data.text.held_out_ids):  # the windows are not this text's
        raise RunError(
            "bleu: the held-out text does not match its tokens, so the references cannot be "
            "read; train the spec again"
        )
    length = data.x_val.shape[1]
    return [tokenizer.spell(pieces[s + half : s + length]) for s in starts.tolist()]


def validity(model: keras.Model, sequences: int, words: bool = False) -> float:
    """Fraction of the complete lines of sampled text that are correct sums `a+b=c` (with
    `words`, as word tokens decode them: `a + b = c`). Without a complete line there is
    no fraction: a RunError says what to change."""
    prompt = model.default_prompt()
    continuations = model.sample_text(sequences, include_prompt=False)
    lines = [line for text in continuations for line in complete_lines(prompt, text)]
    correct, total = arithmetic_validity(lines, words)
    if total == 0:
        raise RunError(
            f"validity: none of the {len(continuations)} sampled continuations holds a "
            "complete line (from a line break to the next), so there is no fraction of "
            "correct sums; use a longer model.sampling.length, or train longer if the model "
            "writes no line breaks"
        )
    return correct / total


def image_nll_batches(model: keras.Model, x: Any) -> Iterator[np.ndarray]:
    """-log p(x) of each image (nats), from the model's per-pixel conditionals, batch by
    batch, reading the split `x` as it goes."""
    per_image = compiled(model, _image_nll)
    for xb in _batches(x):
        yield per_image(xb).numpy().astype(np.float64)


def _check_characters_scored(tokenizer: Tokenizer, held_out: np.ndarray) -> None:
    """Refuse bits per character unless the tokens predict every held-out character: not
    word tokens (no whitespace token; an unknown word is one <unk>), not char tokens of
    characters the training text never showed (each one <unk>)."""
    advice = "use perplexity, or a byte tokenizer (model.tokenizer: {type: byte})"
    if tokenizer.type == "word":
        raise RunError(
            "bits_per_char: word tokens predict no whitespace and spell an unknown word as one "
            f"<unk>, so they do not score every character; {advice}"
        )
    unknown = int(np.count_nonzero(held_out == tokenizer.unknown_id))
    if tokenizer.unknown_id is not None and unknown:
        raise RunError(
            f"bits_per_char: {unknown} held-out character(s) are not in the vocabulary of the "
            f"training text and read as <unk>, so they would not be scored as characters; "
            f"{advice}"
        )


def _check_levels(model: keras.Model, x: Any) -> None:
    """Refuse an image NLL that would be the NLL of a coarsened image (see `merged_levels`)."""
    merged = merged_levels(lambda xb: model.to_levels(xb)[0], x)
    if merged is not None:
        raise RunError(
            merged_levels_message(
                "nll and bits_per_dim",
                merged,
                "use model.network.likelihood: {type: categorical, bins: N} with one bin for "
                "each value of the data (bins - 1 a multiple of the data's levels - 1; "
                "bernoulli: binary data only), or remove nll and bits_per_dim from "
                "evaluation.metrics",
            )
        )


def check_likelihood_metrics(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse an image NLL of coarsened pixels, or bits per character the tokens do not
    spell. Needs only the data and the model's levels or tokenizer, so training asks it
    first (`FamilyEvaluation.check`)."""
    wanted = set(config["metrics"])
    if not len(data.x_val):
        return
    if data.kind != "text" and {"nll", "bits_per_dim"} & wanted:
        _check_levels(model, data.x_val)
    if data.kind == "text" and "bits_per_char" in wanted:
        held_out_ids = data.text.held_out_ids
        _check_characters_scored(data.text.tokenizer, held_out_ids)


def check_prompt(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse, before training, a model.sampling.prompt the training text's vocabulary
    cannot spell: the run's samples would continue `<unk>` tokens, silently (the spec's
    checks refuse it where validate reads the text; `sample --prompt` says the same)."""
    if data.kind != "text":
        return
    message = unknown_prompt_message(data.text.tokenizer, model.default_prompt())
    if message is not None:
        raise RunError(f"model.sampling.prompt: {message}")


@evaluation(check_likelihood_metrics, check_prompt)
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The configured metrics on the held-out split (and on samples, for validity)."""
    wanted = config["metrics"]
    metrics = Metrics()
    if data.kind != "text":
        if len(data.x_val) and ({"nll", "bits_per_dim"} & set(wanted)):
            check_likelihood_metrics(model, data, config)
            nll = mean_of(image_nll_batches(model, data.x_val))
            dims = int(np.prod(data.element_shape))
            how = held_out(data.x_val, exact=True)
            if "nll" in wanted:
                metrics.add("nll", nll, how)
            if "bits_per_dim" in wanted:
                metrics.add("bits_per_dim", nll / (dims * math.log(2)), how)
        return metrics.merge(sample_quality(model, data, config))
    if len(data.x_val) and ({"perplexity", "bits_per_char"} & set(wanted)):
        check_likelihood_metrics(model, data, config)
        held_out_ids = data.text.held_out_ids
        total, tokens = text_nll(model, data.x_val)
        how = held_out(data.x_val, tokens=tokens)
        if "perplexity" in wanted:
            metrics.add("perplexity", math.exp(total / tokens), how)
        if "bits_per_char" in wanted:
            # Characters spelled by the predicted tokens: the held-out text's characters in
            # proportion to the tokens scored (exact for char tokens).
            characters = len(data.text.held_out) * tokens / len(held_out_ids)
            metrics.add("bits_per_char", total / (characters * math.log(2)), how)
    if "bleu" in wanted and len(data.x_val):
        pairs = min(BLEU_PAIRS, int(config["num_samples"]), len(data.x_val))
        metrics.add("bleu", bleu(model, data, pairs), held_out(data.x_val, prompts=pairs))
    if "validity" in wanted:
        count = min(VALIDITY_SEQUENCES, int(config["num_samples"]))
        words = data.text.tokenizer.type == "word"
        metrics.add("validity", validity(model, count, words), {"sequences": count})
    return metrics
