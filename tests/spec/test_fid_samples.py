"""fid with fewer samples, or held-out examples, than InceptionV3's 2048 features is heavily
biased: refused at validate time where that is known, and the default num_samples is
10000 (TTUR's recommendation) when fid is asked."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec_text

SPEC = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: shapes2d, n_samples: 20000}
  validation_split: 0.2
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo, fid]
"""


def test_the_default_num_samples_is_10000_with_fid_and_2000_without() -> None:
    plan = lower(load_spec_text(SPEC))
    assert plan.evaluation["num_samples"] == 10_000
    plain = lower(load_spec_text(SPEC.replace("[elbo, fid]", "[elbo, kid]")))
    assert plain.evaluation["num_samples"] == 2000


def test_fewer_samples_than_features_is_refused_at_num_samples() -> None:
    text = SPEC.replace("  metrics: [elbo, fid]", "  metrics: [elbo, fid]\n  num_samples: 2000")
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "spec.yaml")
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("evaluation.num_samples", 15)
    assert "2048 features" in problem.message and "2000 samples" in problem.message
    assert "at least 2048" in problem.hint and "10000" in problem.hint and "kid" in problem.hint
    load_spec_text(text.replace("num_samples: 2000", "num_samples: 2048"))
    load_spec_text(text.replace("[elbo, fid]", "[elbo, kid]"))  # kid is unbiased: any count


def test_a_held_out_split_smaller_than_the_features_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(SPEC.replace("validation_split: 0.2", "validation_split: 0.05"))
    [problem] = info.value.problems
    assert problem.path == "data.validation_split"
    assert "fid compares the samples with at least 2048 held-out examples" in problem.message
    assert problem.hint == "set data.validation_split to at least 0.1024 (2048 examples)"


def test_without_a_validation_split_the_training_examples_are_counted() -> None:
    small = SPEC.replace("n_samples: 20000", "n_samples: 2000").replace(
        "validation_split: 0.2", "validation_split: 0.0"
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(small.replace("[elbo, fid]", "[fid]"))
    [problem] = info.value.problems
    assert problem.path == "evaluation.metrics[0]"
    assert "without a validation split it has the 2000 training examples" in problem.message
    load_spec_text(
        small.replace("n_samples: 2000", "n_samples: 3000").replace("[elbo, fid]", "[fid]")
    )


def test_fid_on_data_too_small_for_it_is_refused_at_the_metric() -> None:
    digits = SPEC.replace(
        "{type: builtin, name: shapes2d, n_samples: 20000}", "{type: builtin, name: digits}"
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(digits, "spec.yaml")
    [problem] = info.value.problems
    assert problem.path == "evaluation.metrics[1]"
    assert "at least 2048 held-out examples" in problem.message and "1797" in problem.message
    assert "kid" in problem.hint


def test_the_runtime_refuses_fid_of_too_few_samples_before_any_feature() -> None:
    from gencompile.runtime.metrics import samples

    def no_features():
        raise AssertionError("computed features")

    data = SimpleNamespace(x_val=np.zeros((3000, 4)), x_train=np.zeros((9000, 4)))
    spaces = SimpleNamespace(
        fake=np.zeros((500, 8, 8, 3)), real=np.zeros((3000, 8, 8, 3)), inception=no_features
    )
    with pytest.raises(ValueError, match="fewer samples than InceptionV3's 2048 features") as err:
        samples._fid(spaces)
    message = samples._not_computed("fid", err.value, 500, 3000, data)
    assert "raise evaluation.num_samples" in message
    spaces.fake = np.zeros((2048, 8, 8, 3))
    spaces.real = np.zeros((1000, 8, 8, 3))
    with pytest.raises(ValueError) as err:
        samples._fid(spaces)
    message = samples._not_computed("fid", err.value, 2048, 1000, data)
    assert "holds 1000 example(s), and fid compares the samples with at least 2048" in message
