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
    # a generated data set's class filter leaves the count to the draw: the runtime says it
    blobs = SPEC.replace("name: digits}", "name: blobs, classes: [1, 2]}")
    load_spec_text(blobs.replace("fd_digits", "precision_recall"))
    # no sample metric: any split will do
    load_spec_text(SPEC.replace("[elbo, fd_digits]", "[elbo]"))


def test_the_digits_of_chosen_classes_are_counted_at_validate_time() -> None:
    # load_digits' classes are fixed: 0 and 1 hold 178 + 182 examples, 0.1 holds out 36
    chosen = SPEC.replace("name: digits}", "name: digits, classes: [0, 1]}")
    with pytest.raises(SpecError) as info:
        load_spec_text(chosen.replace("0.0001", "0.1"), "spec.yaml")
    [problem] = info.value.problems
    assert problem.path == "data.validation_split"
    assert problem.message == (
        "0.1 holds out 36 of the 360 examples, and fd_digits compares the samples with at "
        "least 64 held-out examples"
    )
    assert problem.hint == "set data.validation_split to at least 0.1778 (64 examples)"
    load_spec_text(chosen.replace("0.0001", "0.1778"))  # the advice works: 64 held out
    # fraction: keeps a share of the chosen classes (round(0.5 x 178) = 89 of the zeros)
    zeros = SPEC.replace("name: digits}", "name: digits, classes: [0], fraction: 0.5}")
    with pytest.raises(SpecError, match="the data has 89 examples in all"):
        load_spec_text(zeros.replace("0.0001", "0.1"))
    # a class digits lack is refused for itself, not counted (nor an IndexError)
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC.replace("name: digits}", "name: digits, classes: [12]}"))
    assert [p.message for p in info.value.problems] == ["'digits' has classes 0..9, not 12"]


def test_the_digits_per_class_are_load_digits_own() -> None:
    from sklearn.datasets import load_digits

    from gencompile.spec.data import DIGITS_EXAMPLES, DIGITS_PER_CLASS

    counts = np.bincount(load_digits().target)
    assert tuple(counts.tolist()) == DIGITS_PER_CLASS
    assert sum(DIGITS_PER_CLASS) == DIGITS_EXAMPLES


def test_the_runtime_names_the_held_out_split_when_it_is_too_small() -> None:
    from gencompile.runtime.metrics.samples import _not_computed

    data = SimpleNamespace(x_val=np.zeros((1, 4)), x_train=np.zeros((100, 4)))
    message = _not_computed("fd_digits", ValueError("x must be ..."), 2000, 1, data)
    assert message == (
        "cannot compute fd_digits: the validation split holds 1 example(s), and fd_digits "
        "compares the samples with at least 64; use more data, or another metric (kid is "
        "unbiased with few examples)"
    )
    assert "evaluation.num_samples" not in message
    # the advice is the split that holds enough out of both splits' 1000 examples
    data = SimpleNamespace(x_val=np.zeros((36, 4)), x_train=np.zeros((964, 4)))
    message = _not_computed("fd_digits", ValueError("x must be ..."), 2000, 36, data)
    assert message.endswith("; set data.validation_split to at least 0.064 (64 examples)")
    # too few samples is still the samples' problem
    other = _not_computed("precision_recall", ValueError("need more"), 3, 50, data)
    assert "raise evaluation.num_samples" in other
