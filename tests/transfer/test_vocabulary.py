"""A language model fine-tuned on a text with a larger vocabulary: the tokens both know
keep their embedding rows and output units, new tokens start fresh."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from gencompile.compiler.transfer import TOKEN_AXES
from gencompile.runs import train
from gencompile.runtime.init_from import merge, token_mapping

ROOT = Path(__file__).resolve().parents[2]
NETWORK = "{type: lstm, layers: 1, units: 16, embedding_dim: 8}"
CHILD = """\
spec_version: 1
name: tl-text
data:
  source: {{type: text, path: {corpus}}}
  batch_size: 16
model:
  family: autoregressive
  tokenizer: {{type: char}}
  context_length: 16
  network: {network}
  init_from: {{run: {parent}}}
training:
  epochs: 1
  steps_per_epoch: 2
  fine_tune: {{learning_rate_multipliers: {{network: 0.0}}}}  # nothing moves: compare as loaded
evaluation: {{metrics: []}}
"""


def tokens(run: Path) -> list[str]:
    [vocabulary] = run.glob("*/vocabulary.json")
    return list(json.loads(vocabulary.read_text())["tokens"])


def arrays(run: Path, layer: str) -> list[np.ndarray]:
    with h5py.File(run / "model.weights.h5") as weights:
        group = weights["layers/functional/layers"]
        for key in group:
            if group[key]["vars"].attrs.get("name") == layer:
                variables = group[key]["vars"]
                return [variables[k][()] for k in sorted(variables, key=int)]
    raise AssertionError(f"no layer {layer}")


@pytest.mark.slow  # two language-model trainings
def test_known_tokens_keep_their_rows_and_new_ones_start_fresh(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    small = [
        "data.source.n_samples=400",
        f"model.network={NETWORK}",
        "model.context_length=16",
        "training.steps_per_epoch=2",
        "evaluation.metrics=[]",
    ]
    train(ROOT / "specs" / "charlm_arithmetic.yaml", small, epochs=1, run_dir=parent, quiet=True)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one plus two is three: 1+2=3\nten minus four: 10-4=6\n" * 20)
    spec = tmp_path / "text.yaml"
    spec.write_text(CHILD.format(corpus=corpus, network=NETWORK, parent=parent))
    child = tmp_path / "child"
    train(spec, run_dir=child, quiet=True)

    before, after = tokens(parent), tokens(child)
    known = [t for t in after if t in before]
    new = [t for t in after if t not in before]
    assert "+" in known and "o" in new and after != before
    report = json.loads((child / "init_from.json").read_text())
    assert report["vocabulary"] == {"known": len(known), "new": new}
    (embedding_before,), (embedding_after,) = (
        arrays(r, "token_embedding") for r in (parent, child)
    )
    (kernel_before, bias_before), (kernel_after, bias_after) = (
        arrays(r, "logits") for r in (parent, child)
    )
    assert embedding_after.shape[0] == len(after) > embedding_before.shape[0] == len(before)
    for token in known:
        i, j = after.index(token), before.index(token)
        assert np.array_equal(embedding_after[i], embedding_before[j]), token
        assert np.array_equal(kernel_after[:, i], kernel_before[:, j]), token
        assert bias_after[i] == bias_before[j]
    for token in new:  # fresh: none of the parent's rows
        row = embedding_after[after.index(token)]
        assert not any(np.array_equal(row, old) for old in embedding_before)


def language_model(vocabulary: int, seed: int) -> keras.Model:
    """A generated language model's shape: the network `network` in the model's layer list,
    its token-indexed layers named as the generated code names them."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, 4, name="token_embedding")(inputs)
    x = keras.layers.LSTM(3, return_sequences=True, name="lstm_1")(x)
    network = keras.Model(inputs, keras.layers.Dense(vocabulary, name="logits")(x), name="network")
    return keras.Sequential([keras.Input((None,), dtype="int32"), network])


def test_merging_onto_a_larger_vocabulary_keeps_known_rows_exactly(tmp_path: Path) -> None:
    """The remapping itself, without training: fast enough for the default tier."""
    parent_tokens, child_tokens = ["\n", "+", "1", "2"], ["\n", "1", "2", "a", "b"]
    for folder, known in (("parent/lm", parent_tokens), ("child/lm", child_tokens)):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "vocabulary.json").write_text(json.dumps({"tokens": known}))
    config = {
        "run": str(tmp_path / "parent"),
        "networks": None,
        "strict": True,
        "own_weights": None,
        "vocabulary": {"file": "lm/vocabulary.json", "axes": TOKEN_AXES},
        "where": "spec.yaml:12:3",
    }
    mapping = token_mapping(config, tmp_path / "child")
    assert mapping is not None and mapping.new == ["a", "b"]
    parent_file, child_file = tmp_path / "parent.weights.h5", tmp_path / "child.weights.h5"
    parent, child = language_model(len(parent_tokens), 1), language_model(len(child_tokens), 2)
    parent.save_weights(parent_file)
    child.save_weights(child_file)
    fresh = [np.array(w) for w in child.get_weights()]

    merged = merge(parent_file, child_file, config, mapping)
    taken, left = merged.taken, merged.fresh
    assert sorted(taken) == [
        "network.logits",
        "network.lstm_1/lstm_cell",
        "network.token_embedding",
    ]
    assert left == []
    child.load_weights(child_file)
    # Keras' order: embedding; LSTM kernel, recurrent kernel, bias; logits kernel, bias.
    embedding, *lstm, kernel, bias = child.get_weights()
    old_embedding, *old_lstm, old_kernel, old_bias = parent.get_weights()
    for i, token in enumerate(child_tokens):
        if token in parent_tokens:  # known: the parent's row and output unit, bit for bit
            j = parent_tokens.index(token)
            assert np.array_equal(embedding[i], old_embedding[j]), token
            assert np.array_equal(kernel[:, i], old_kernel[:, j]), token
            assert bias[i] == old_bias[j], token
        else:  # new: the child's own fresh row and unit
            assert np.array_equal(embedding[i], fresh[0][i]), token
            assert np.array_equal(kernel[:, i], fresh[4][:, i]), token
            assert bias[i] == fresh[5][i], token
    for mine, theirs in zip(lstm, old_lstm, strict=True):  # same shapes: taken whole
        assert np.array_equal(mine, theirs)
