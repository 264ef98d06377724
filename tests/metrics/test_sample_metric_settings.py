"""Sample metrics computed as defined: fd_digits refuses too few samples or real
examples as fid does; `compare` counts only settings, not per-run results; `evaluate
--num-samples` is checked with the metrics it draws for; a conditional model's scored samples
are of the classes it trained on."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec_text

DIGITS = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
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

# ------------------------------------------------ fd_digits: one sample per feature at least


def test_fd_digits_of_fewer_samples_than_features_is_refused_at_num_samples() -> None:
    text = DIGITS + "  num_samples: 63\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "spec.yaml")
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("evaluation.num_samples", 15)
    assert problem.message.startswith(
        "fd_digits compares covariances of the digits classifier's 64 features, and 63 "
        "samples are fewer than that"
    )
    assert problem.hint is not None
    assert "at least 64" in problem.hint and "--num-samples" in problem.hint
    assert "kid" in problem.hint
    load_spec_text(DIGITS + "  num_samples: 64\n")
    load_spec_text(text.replace("fd_digits", "kid"))  # kid is unbiased: any count


def test_a_held_out_split_smaller_than_the_digits_features_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(DIGITS.replace("0.1", "0.02"))
    [problem] = info.value.problems
    assert problem.path == "data.validation_split"
    assert problem.message == (
        "0.02 holds out 36 of the 1797 examples, and fd_digits compares the samples with at "
        "least 64 held-out examples"
    )


def test_the_runtime_refuses_fd_digits_of_too_few_samples_or_examples_before_features() -> None:
    from gencompile.runtime.metrics import samples

    def no_features() -> None:
        raise AssertionError("computed features")

    data = SimpleNamespace(x_val=np.zeros((37, 8, 8, 1)), x_train=np.zeros((300, 8, 8, 1)))
    spaces: Any = SimpleNamespace(
        fake=np.zeros((10, 8, 8, 1)), real=np.zeros((180, 8, 8, 1)), digits=no_features
    )
    with pytest.raises(ValueError, match="fewer samples than the digits classifier's 64") as err:
        samples._fd_digits(spaces)
    message = samples._not_computed("fd_digits", err.value, 10, 180, data)
    assert "gencompile evaluate RUN --num-samples N" in message
    spaces.fake, spaces.real = np.zeros((64, 8, 8, 1)), np.zeros((37, 8, 8, 1))
    with pytest.raises(ValueError) as err:
        samples._fd_digits(spaces)
    message = samples._not_computed("fd_digits", err.value, 64, 37, data)
    assert "holds 37 example(s), and fd_digits compares the samples with at least 64" in message


def test_the_spec_and_the_runtime_hold_the_same_minimums() -> None:
    from gencompile.runtime.metrics import samples
    from gencompile.spec import checks

    counts = {name: count for name, (count, _) in samples.FRECHET_FEATURES.items()}
    assert counts == checks.FRECHET_FEATURES
    assert samples.REAL_MINIMUM == checks.REFERENCE_MINIMUM


# ------------------------------------------- compare: per-run results are not settings


def _copy_with(run: Path, to: Path, **entries: Any) -> Path:
    """A copy of `run` whose elbo computed_with holds `entries` too."""
    shutil.copytree(run, to)
    path = to / "metrics.json"
    record = json.loads(path.read_text())
    record["computed_with"]["elbo"].update(entries)
    path.write_text(json.dumps(record))
    return to


def test_compare_ignores_what_each_run_found(trained_vae: Path, tmp_path: Path, run_cli) -> None:
    from gencompile.comparison import compare
    from gencompile.report import compare_runs

    def found(finals: list[float], used: int, converged: bool) -> dict[str, Any]:
        return {
            "em_start": {"chosen": 0, "of": 2, "final_log_likelihoods": finals},
            "effective_components": used,
            "free_parameters": 100 + used,
            "gap_per_factor": {"x": finals[0]},
            "converged": converged,
            "prior_epochs": used,
            "subset_seed": used,
        }

    one = _copy_with(trained_vae, tmp_path / "one", **found([-5.547014, -6.1], 8, True))
    two = _copy_with(trained_vae, tmp_path / "two", **found([-5.547015, -6.2], 7, False))
    assert compare_runs([one, two]).not_alike == []
    assert compare([one, two]).not_alike == []
    code, out, err = run_cli("compare", str(one), str(two))
    assert code == 0 and "computed differently" not in out, err
    # a setting that differs still counts
    other = _copy_with(trained_vae, tmp_path / "other", examples=12)
    assert compare_runs([one, other]).not_alike == ["elbo"]
    assert compare([one, other]).not_alike == ["elbo"]


# ------------------------------------------- evaluate: --num-samples is checked with the metrics

SHAPES_FID = (
    DIGITS.replace(
        "{type: builtin, name: digits}", "{type: builtin, name: shapes2d, n_samples: 20000}"
    )
    .replace("0.1", "0.2")
    .replace("[elbo, fd_digits]", "[elbo]")
)


def test_fid_of_a_trained_run_is_checked_with_the_samples_asked_for() -> None:
    from gencompile.runs import checked_metrics

    plan = lower(load_spec_text(SHAPES_FID))
    lock = {"resolved_spec": plan.resolved_spec}  # num_samples pinned to 2000
    assert lock["resolved_spec"]["evaluation"]["num_samples"] == 2000
    checked_metrics(lock, ["fid"], "evaluate RUN", 10_000)  # enough: accepted
    with pytest.raises(SpecError) as info:
        checked_metrics(lock, ["fid"], "evaluate RUN")  # the run's 2000 samples
    [problem] = info.value.problems
    assert problem.file == "evaluate RUN --metrics"
    assert "2000 samples are fewer" in problem.message
    assert (
        problem.hint is not None and "gencompile evaluate RUN --num-samples 10000" in problem.hint
    )
    with pytest.raises(SpecError) as info:
        checked_metrics(lock, ["fid"], "evaluate RUN", 100)
    [problem] = info.value.problems
    assert (problem.file, problem.path) == (
        "evaluate RUN --num-samples 100",
        "evaluation.num_samples",
    )


def test_evaluate_refuses_too_few_samples_for_fd_digits_in_one_line(
    trained_vae: Path, tmp_path: Path, run_cli
) -> None:
    run = shutil.copytree(trained_vae, tmp_path / "run")
    before = (run / "metrics.json").read_bytes()
    code, _, err = run_cli("evaluate", str(run), "--metrics", "fd_digits", "--num-samples", "10")
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line.startswith(
        f"{run}".join(("evaluate ", " --num-samples 10: evaluation.num_samples: fd_digits "))
    )
    assert "--num-samples" in line.split("(", 1)[1] and "Traceback" not in err
    assert (run / "metrics.json").read_bytes() == before  # nothing computed, nothing lost


# ------------------------------------- a conditional model's samples: the trained classes


class Conditional:
    """As a generated conditional model: `sample` cycles through all NUM_CLASSES labels
    unless given some; each sample is its label (so the scored values show the labels)."""

    drawn: list[np.ndarray] = []

    def sample(self, num_samples: int, labels: Any = None) -> np.ndarray:
        if labels is None:
            labels = np.arange(num_samples) % 10
        labels = np.asarray(labels)
        self.drawn.append(labels)
        return np.stack([labels, labels], axis=1).astype(np.float32)


@pytest.fixture
def generated_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Conditional` comes from a generated module of 10 classes."""
    module = ModuleType("generated_conditional")
    module.NUM_CLASSES = 10  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(Conditional, "__module__", module.__name__)
    monkeypatch.setattr(Conditional, "drawn", [])


def test_samples_of_a_conditional_model_are_of_the_training_classes(generated_module) -> None:
    from gencompile.runtime.metrics.samples import sample_quality

    kept = np.array([3, 5, 5, 3, 5, 3, 3, 5] * 10)  # data.source.classes: [3, 5]
    data = SimpleNamespace(
        x_val=np.stack([kept, kept], axis=1).astype(np.float32),
        y_train=kept,
        preprocessor=SimpleNamespace(inverse=lambda x: x),
        source={"type": "builtin", "name": "moons", "classes": [3, 5]},
        kind="vector",
    )
    config = {"metrics": ["energy_distance"], "num_samples": 1001}
    metrics = sample_quality(Conditional(), data, config)
    labels = np.concatenate(Conditional.drawn)
    assert len(labels) == 1001 and set(labels.tolist()) == {3, 5}
    assert abs(int(np.sum(labels == 3)) - int(np.sum(labels == 5))) <= 1  # balanced
    how = metrics.computed_with["energy_distance"]
    assert how["sample_labels"] == {"classes": [3, 5], "per_class": "equal counts"}
    assert metrics["energy_distance"] < 0.1  # samples of 3 and 5 against a reference of 3 and 5


def test_an_unconditional_model_draws_without_labels() -> None:
    from gencompile.runtime.metrics.samples import labels_description, sample_labels

    data = SimpleNamespace(y_train=np.array([0, 1]))
    assert sample_labels(SimpleNamespace(sample=None), data, 4) is None
    assert labels_description(None) == {}
