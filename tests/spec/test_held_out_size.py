"""A held-out split too small for a sample metric is refused at data.validation_split when
the built-in data set's size is known, before anything trains; for data files the
runtime's message names the held-out side."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: digits}
  validation_split: 0.0001
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo, fd_digits]
"""


def test_a_split_too_small_for_fd_digits_is_located_with_what_to_set() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC, "spec.yaml")
    [problem] = info.value.problems
    assert (problem.path, problem.line, problem.column) == ("data.validation_split", 5, 21)
    assert problem.message == (
        "0.0001 holds out 1 of the 1797 examples, and fd_digits compares the samples with "
        "at least 64 held-out examples"
    )
    assert problem.hint == "set data.validation_split to at least 0.0357 (64 examples), e.g. 0.1"
    load_spec_text(SPEC.replace("0.0001", "0.0357"))  # 64 held out: one per feature


def test_given_with_set_it_is_located_at_the_option() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(ROOT / "specs" / "vae_digits.yaml", ["data.validation_split=0.0001"])
    [problem] = info.value.problems
    assert problem.file == "--set" and problem.path == "data.validation_split"
    assert "holds out 1 of the 1797 examples, and fd_digits" in problem.message


def test_default_metrics_count_and_unknown_sizes_are_left_to_the_runtime() -> None:
    # a GAN's default sample metrics on ring8 (energy_distance compares with real data)
    ring8 = ROOT / "specs" / "gan_ring8.yaml"
    with pytest.raises(SpecError, match="energy_distance compares the samples with at least 2"):
        load_spec(ring8, ["data.validation_split=0.00001"])
    # precision and recall need more than their 3 neighbours
    with pytest.raises(SpecError, match="precision_recall compares the samples with at least 4"):
        load_spec_text(SPEC.replace("fd_digits", "precision_recall").replace("0.0001", "0.0012"))
    # a class filter leaves the count to the draw: the runtime says it
    load_spec_text(SPEC.replace("name: digits}", "name: digits, classes: [1, 2]}"))
    # no sample metric: any split will do
    load_spec_text(SPEC.replace("[elbo, fd_digits]", "[elbo]"))


def test_the_runtime_names_the_held_out_split_when_it_is_too_small() -> None:
    from gencompile.runtime.metrics.samples import _not_computed

    data = SimpleNamespace(x_val=np.zeros((1, 4)), x_train=np.zeros((100, 4)))
    message = _not_computed("fd_digits", ValueError("x must be ..."), 2000, 1, data)
    assert message == (
        "cannot compute fd_digits: the validation split holds 1 example(s), and fd_digits "
        "compares the samples with at least 64; raise data.validation_split (e.g. 0.1) for "
        "more held-out examples"
    )
    assert "evaluation.num_samples" not in message
    # too few samples is still the samples' problem
    other = _not_computed("precision_recall", ValueError("need more"), 3, 50, data)
    assert "raise evaluation.num_samples" in other
