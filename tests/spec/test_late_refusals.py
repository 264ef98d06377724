"""What `validate` accepted and training refused later, after its epochs: each is refused at
validation, at the field that causes it (file:line: field: what; what to do)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gencompile.errors import Problem, SpecError
from gencompile.spec import load_spec_text
from gencompile.spec.data import BuiltinSource

MOONS = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: moons, n_samples: 500}
  validation_split: 0.2
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: gaussian}
evaluation:
  metrics: [elbo, METRIC]
  num_samples: COUNT
"""


def refused(text: str) -> Problem:
    """The one problem of a spec `validate` refuses."""
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "spec.yaml")
    [problem] = info.value.problems
    return problem


def moons(metric: str, count: int) -> str:
    return MOONS.replace("METRIC", metric).replace("COUNT", str(count))


# ------------------------------------- evaluation.num_samples too few for a sample metric


@pytest.mark.parametrize(
    ("metric", "least"), [("kid", 2), ("precision_recall", 4), ("energy_distance", 2)]
)
def test_too_few_samples_for_a_sample_metric_are_refused_at_num_samples(
    metric: str, least: int
) -> None:
    problem = refused(moons(metric, least - 1))
    assert (problem.file, problem.line, problem.path) == ("spec.yaml", 14, "evaluation.num_samples")
    assert problem.message.startswith(f"{metric} needs at least {least} samples (")
    assert problem.message.endswith(f"), not {least - 1}")
    assert problem.hint is not None
    assert problem.hint.startswith(f"set evaluation.num_samples to at least {least} ")
    assert "gencompile evaluate RUN --num-samples" in problem.hint
    load_spec_text(moons(metric, least))


def test_inception_score_needs_a_sample_in_each_of_its_splits() -> None:
    digits = moons("inception_score", 9).replace(
        "{type: builtin, name: moons, n_samples: 500}", "{type: builtin, name: digits}"
    )
    problem = refused(digits)
    assert problem.path == "evaluation.num_samples"
    assert problem.message == (
        "inception_score needs at least 10 samples (at least one in each of its 10 splits), not 9"
    )
    load_spec_text(digits.replace("num_samples: 9", "num_samples: 10"))


def test_evaluate_num_samples_too_few_for_kid_is_refused_at_the_option() -> None:
    from gencompile.compiler.lower import lower
    from gencompile.runs import checked_metrics

    lock = {"resolved_spec": lower(load_spec_text(moons("kid", 100))).resolved_spec}
    checked_metrics(lock, None, "evaluate RUN", 2)
    with pytest.raises(SpecError) as info:
        checked_metrics(lock, None, "evaluate RUN", 1)
    [problem] = info.value.problems
    assert (problem.file, problem.path) == (
        "evaluate RUN --num-samples 1",
        "evaluation.num_samples",
    )
    assert problem.message.startswith("kid needs at least 2 samples")


def test_the_spec_and_the_runtime_hold_the_same_sample_minimums() -> None:
    from gencompile.metric_minimums import SAMPLE_MINIMUM
    from gencompile.runtime.metrics import samples

    assert set(SAMPLE_MINIMUM) | {"fid", "fd_digits"} == set(samples.METRICS)


def test_the_runtime_names_too_few_samples_without_internal_names() -> None:
    """A run that reaches evaluation with too few (an older lock): said in the user's
    terms, not the statistics' argument names."""
    import numpy as np

    from gencompile.runtime.metrics import distances, samples

    data = SimpleNamespace(x_val=np.zeros((10, 2)))
    with pytest.raises(ValueError) as err:
        distances.kernel_inception_distance(np.zeros((10, 2)), np.zeros((1, 2)))
    assert "fake" not in str(err.value) and "the samples" in str(err.value)
    message = samples._not_computed("kid", err.value, 1, 10, data)
    assert message.startswith("cannot compute kid: it needs at least 2 samples, not 1; ")
    assert "(n, d)" not in message and "fake" not in message


# ------------------------------------- steps_per_epoch of an EM mixture: EM needs every batch

GMM = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: blobs, n_samples: 600}
model:
  family: mixture
  components: 3
  algorithm: {type: ALGORITHM}
training:
  steps_per_epoch: 3
"""


@pytest.mark.parametrize(("algorithm", "name"), [("em", "EM"), ("variational", "variational EM")])
def test_steps_per_epoch_of_an_em_mixture_is_refused(algorithm: str, name: str) -> None:
    problem = refused(GMM.replace("ALGORITHM", algorithm))
    assert (problem.line, problem.path) == (10, "training.steps_per_epoch")
    assert problem.message.startswith(
        f"{name} accumulates every batch of the training split per iteration"
    )
    assert problem.hint is not None and problem.hint.startswith("remove training.steps_per_epoch")
    load_spec_text(GMM.replace("ALGORITHM", "gradient"))  # minibatches: any number of them


# ------------------------------------- steps_per_execution must divide the steps of an epoch

DIGITS = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 64
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo]
training:
  steps_per_execution: 32
"""


def test_steps_per_execution_not_dividing_a_builtin_epoch_is_refused_with_the_divisors() -> None:
    """1797 digits, 180 held out: 1617 training examples in 26 batches of 64 (as the
    runtime counts them, which refused 32 only once training started)."""
    problem = refused(DIGITS)
    assert (problem.line, problem.path) == (17, "training.steps_per_execution")
    assert problem.message == (
        "32 does not divide the 26 steps of an epoch (1617 training examples / batch 64)"
    )
    assert problem.hint == "use 1, 2, 13, 26 or auto"
    load_spec_text(DIGITS.replace("steps_per_execution: 32", "steps_per_execution: 13"))


def test_steps_per_execution_is_checked_against_steps_per_epoch() -> None:
    text = DIGITS.replace(
        "steps_per_execution: 32", "steps_per_execution: 5\n  steps_per_epoch: 12"
    )
    problem = refused(text)
    assert problem.message == (
        "5 does not divide the 12 steps of an epoch (training.steps_per_epoch)"
    )
    assert problem.hint == "use 1, 2, 3, 4, 6, 12 or auto"
    load_spec_text(text.replace("steps_per_epoch: 12", "steps_per_epoch: 10"))


def test_steps_per_execution_of_unknown_data_size_is_left_to_the_runtime() -> None:
    # blobs' per-class counts depend on the draw (digits' are fixed: counted, see below)
    blobs = "{type: builtin, name: blobs, classes: [0, 1]}"
    text = DIGITS.replace("{type: builtin, name: digits}", blobs)
    load_spec_text(text.replace("bernoulli", "gaussian").replace("{scale: [0.0, 1.0]}", "{}"))


@pytest.mark.parametrize(
    "source",
    [
        "{type: builtin, name: digits}",
        "{type: builtin, name: moons, n_samples: 999}",
        "{type: builtin, name: digits, classes: [0, 1]}",  # 360 of load_digits' fixed 1797
        "{type: builtin, name: digits, classes: [3, 8], fraction: 0.3}",
    ],
)
def test_the_spec_counts_an_epoch_as_the_runtime_does(source: str) -> None:
    from gencompile.compiler.lower import lower
    from gencompile.runtime.data import load_data
    from gencompile.spec.checks import epoch_steps

    text = DIGITS.replace("{type: builtin, name: digits}", source).replace(
        "steps_per_execution: 32", "steps_per_execution: 1"
    )
    if "moons" in source:
        text = text.replace("bernoulli", "gaussian").replace(
            "  preprocessing: {scale: [0.0, 1.0]}\n", ""
        )
    loaded = load_spec_text(text)
    found = epoch_steps(loaded.spec)
    assert found is not None
    data = load_data(lower(loaded).data, seed=loaded.spec.seed)
    assert found[0] == data.steps_per_epoch


# ------------------------------------- sweep.metric: one the spec's runs produce


def with_sweep(metric: str) -> str:
    return DIGITS.replace("steps_per_execution: 32", "epochs: 2") + (
        f"sweep:\n  metric: {metric}\n  parameters:\n"
        "    model.latent_dim: {type: int, low: 2, high: 4}\n"
    )


def test_validate_refuses_a_sweep_metric_the_family_never_produces() -> None:
    text = with_sweep("val_los")
    problem = refused(text)
    assert (problem.path, problem.line) == ("sweep.metric", 19)
    assert problem.message.startswith(
        "this spec's runs do not produce 'val_los' (metrics.json: elbo; per-epoch logs: loss,"
    )
    assert problem.hint == "did you mean 'val_loss'?"


def test_a_sweep_metric_the_settings_leave_out_is_told_by_the_sweep_not_a_training(
    tmp_path: Path,
) -> None:
    """kid is a VAE's metric that this evaluation.metrics does not ask for: a training of
    the spec (whose --set may change evaluation.metrics) is not refused for its sweep block;
    the sweep is, before any trial, at the same line with the same check."""
    from gencompile.sweep.plan import plan_sweep

    text = with_sweep("kid")
    load_spec_text(text)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        plan_sweep(path, search="optuna", sweeps_dir=tmp_path / "sweeps")
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("sweep.metric", 19)
    assert problem.message.startswith("this spec's runs do not produce 'kid'")
    assert problem.hint == "add kid to evaluation.metrics, or give one of these"


# ------------------------------------- a metric for another kind of data: that first


@pytest.mark.parametrize("evaluation", ["metrics: [fid]", "{metrics: [fid], num_samples: 100}"])
def test_fid_on_vectors_is_refused_for_the_kind_not_first_for_the_size(evaluation: str) -> None:
    """4000 moons are too few for fid's 2048 held-out examples, but no number of them
    would do: the refusal says fid needs images, not "use more data"."""
    from gencompile.compiler.lower import lower

    text = MOONS.replace("n_samples: 500", "n_samples: 4000").replace(
        "evaluation:\n  metrics: [elbo, METRIC]\n  num_samples: COUNT\n",
        f"evaluation: {evaluation}\n",
    )
    if evaluation.startswith("metrics"):
        text = text.replace("evaluation: metrics: [fid]", "evaluation:\n  metrics: [fid]")
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, "spec.yaml"))
    [problem] = info.value.problems
    assert problem.path == "evaluation.metrics[0]"
    assert problem.message.startswith("metric 'fid' compares images through InceptionV3, but")


def test_the_spec_knows_each_builtin_data_kind_as_the_compiler_does() -> None:
    from gencompile.compiler.data_shapes import infer_data_shape
    from gencompile.spec.checks import builtin_kind
    from gencompile.spec.data import BUILTIN_ARGUMENTS, DataSpec

    for name in BUILTIN_ARGUMENTS:
        data = DataSpec.model_validate({"source": {"type": "builtin", "name": name}})
        assert isinstance(data.source, BuiltinSource)
        assert builtin_kind(data.source) == infer_data_shape(data).kind, name


def test_an_image_metric_on_a_table_is_refused_for_the_kind_not_for_the_count(
    tmp_path: Path,
) -> None:
    """A CSV is vector data whatever its size: inception_score on 5 samples is refused for
    needing images, not sent after 10 samples first (the re-review's repro)."""
    from gencompile.compiler.lower import lower

    table = tmp_path / "table.csv"
    table.write_text("a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(300)))
    text = (
        "spec_version: 1\nname: table\n"
        f"data:\n  source: {{type: csv, path: {table}}}\n  preprocessing: {{standardize: true}}\n"
        "model:\n  family: vae\n  latent_dim: 2\n  encoder: {mlp: [8]}\n  decoder: {mlp: [8]}\n"
        "  likelihood: {type: gaussian}\n"
        "evaluation:\n  metrics: [inception_score]\n  num_samples: 5\n"
    )
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, "spec.yaml"))
    [problem] = info.value.problems
    assert problem.path == "evaluation.metrics[0]"
    assert "compares images through InceptionV3, but the data is vector data" in problem.message
