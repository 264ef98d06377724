"""A continued run's spec.yaml (its lock's `spec_source`) trains the run: the continuation
sets its epochs (EM: its iterations, where they grew) and says so in a header, keeping the
rest of the text as it was."""

from __future__ import annotations

from typing import Any

from gencompile.continuation import CONTINUED, continued_source, with_epochs
from gencompile.spec import load_spec_text
from gencompile.spec.loader import parse_yaml

SOURCE = """\
spec_version: 1
name: vae  # a comment the user wrote
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
training:
  epochs: 2   # short, for a try
  optimizer: {type: adam, learning_rate: 0.01}
"""


def lock_of(source: str, resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = resolved or load_spec_text(source).spec.model_dump(mode="json")
    return {"spec_source": source, "resolved_spec": spec}


def continued(source: str, before: int, after: int) -> str:
    lock = lock_of(source)
    return continued_source(lock, with_epochs(lock, after), before, after)


def test_the_epochs_line_changes_and_the_rest_stays_byte_for_byte() -> None:
    text = continued(SOURCE, 2, 5)
    header, body = text.split("\n", 1)
    assert header.startswith(CONTINUED) and "2 epochs trained, then on to 5" in header
    assert body == SOURCE.replace("epochs: 2   #", "epochs: 5   #")
    assert load_spec_text(text).spec.training.epochs == 5


def test_a_second_continuation_replaces_the_first_header() -> None:
    text = continued(continued(SOURCE, 2, 5), 5, 9)
    assert text.count(CONTINUED) == 1 and "5 epochs trained, then on to 9" in text
    assert text.split("\n", 1)[1] == SOURCE.replace("epochs: 2   #", "epochs: 9   #")


def test_flow_style_epochs_are_edited_in_place() -> None:
    block = SOURCE[SOURCE.index("training:") :]
    source = SOURCE.replace(block, "training: {epochs: 2, optimizer: {type: adam}}\n")
    body = continued(source, 2, 12).split("\n", 1)[1]
    assert body == source.replace("{epochs: 2,", "{epochs: 12,")


def test_epochs_the_source_leaves_to_the_default_are_written_out() -> None:
    source = SOURCE.split("training:")[0]
    text = continued(source, 100, 120)
    data, _ = parse_yaml(text, "spec.yaml")
    assert data["training"] == {"epochs": 120}
    assert data["model"]["latent_dim"] == 2
    assert load_spec_text(text).spec.training.epochs == 120


def test_em_iterations_change_only_where_they_grew() -> None:
    source = """\
spec_version: 1
name: gmm
data:
  source: {type: builtin, name: moons}
model: {family: mixture, components: 3, algorithm: {type: em, max_iter: 4}}
evaluation: {metrics: [nll]}
training: {epochs: 4}
"""
    text = continued(source, 4, 9)
    assert "algorithm: {type: em, max_iter: 9}" in text and "training: {epochs: 9}" in text
    roomy = source.replace("max_iter: 4", "max_iter: 50")
    text = continued(roomy, 4, 9)
    assert "max_iter: 50" in text and "training: {epochs: 9}" in text
    spec = load_spec_text(text).spec
    assert (spec.training.epochs, spec.model.algorithm.max_iter) == (9, 50)
