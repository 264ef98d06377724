"""A language model fine-tuned on a text with a larger vocabulary: the tokens both know
keep their embedding rows and output units, new tokens start fresh."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.runs import train

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
