"""Train on synthetic, test on real: the classifier experiments on arrays (cheap), the metric
through a tiny conditional VAE's run, and the refusals of models that have no labels."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from gencompile.errors import RunError, SpecError
from gencompile.runtime.metrics import tstr
from gencompile.runtime.metrics.tstr import (
    Labelled,
    augmentation_accuracies,
    balanced_labels,
    check_labelled,
    stratified_subset,
    tstr_accuracies,
)
from gencompile.spec import evaluation as spec_evaluation
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
CONDITIONAL = "model.conditional={num_classes: 10}"
TSTR_METRICS = "evaluation.metrics=[elbo, tstr, tstr_augmentation]"
ACCURACIES = (
    "tstr_accuracy",
    "trtr_accuracy",
    "subset_accuracy",
    "augmented_accuracy",
)


@pytest.fixture(scope="module")
def digits() -> tuple[Labelled, Labelled]:
    """The 8x8 digits in their own units (0..16), a stratified 90/10 split."""
    data = load_digits()
    x = data.images.astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.1, stratify=data.target, random_state=0
    )
    return Labelled(x_train, y_train), Labelled(x_test, y_test)


# ---------------------------------------------------------------- the classifier experiments


def test_trained_on_real_digits_the_classifier_is_accurate(digits) -> None:
    train, test = digits
    found = tstr_accuracies(train, train, test)  # "samples" that are the real split itself
    assert found.trtr.accuracy > 0.9 and found.trtr.converged
    assert found.tstr == found.trtr and found.ratio == 1.0


@pytest.mark.parametrize("kind", ["noise", "constant"])
def test_samples_that_carry_no_class_give_chance_accuracy(digits, kind) -> None:
    train, test = digits
    labels = balanced_labels(range(10), len(train))
    rng = np.random.default_rng(0)
    if kind == "noise":
        x = rng.uniform(0, 16, size=train.x.shape).astype(np.float32)
    else:
        x = np.full(train.x.shape, 8.0, np.float32)
    found = tstr_accuracies(Labelled(x, labels), train, test)
    assert found.tstr.accuracy < 0.2  # chance: 0.1 (10 balanced classes)
    assert found.trtr.accuracy > 0.9
    assert found.ratio == pytest.approx(found.tstr.accuracy / found.trtr.accuracy)


def test_results_repeat_exactly(digits) -> None:
    train, test = digits
    noisy = Labelled(train.x + np.random.default_rng(1).normal(0, 4, train.x.shape), train.y)
    first = tstr_accuracies(noisy, train, test), augmentation_accuracies(noisy, train, test, 7)
    again = tstr_accuracies(noisy, train, test), augmentation_accuracies(noisy, train, test, 7)
    assert first == again


def test_good_samples_help_a_tenth_of_the_labels_and_noise_does_not(digits) -> None:
    train, test = digits
    subset = stratified_subset(train.y, 0.1, seed=3)
    rest = np.setdiff1d(np.arange(len(train)), subset)
    good = augmentation_accuracies(train.take(rest), train, test, seed=3)
    assert good.subset_examples == len(subset) == int(0.1 * len(train))  # 161
    assert good.augmented.accuracy > good.subset.accuracy
    assert good.augmented.accuracy == pytest.approx(
        tstr_accuracies(train, train, test).trtr.accuracy, abs=0.03
    )
    noise = Labelled(np.full((1000, 8, 8, 1), 8.0, np.float32), balanced_labels(range(10), 1000))
    bad = augmentation_accuracies(noise, train, test, seed=3)
    assert bad.subset == good.subset  # the same fixed subset
    assert bad.augmented.accuracy < bad.subset.accuracy


def test_the_subset_is_stratified_and_fixed_by_its_seed(digits) -> None:
    labels = digits[0].y
    chosen = stratified_subset(labels, 0.1, seed=3)
    assert np.array_equal(chosen, stratified_subset(labels, 0.1, seed=3))
    assert not np.array_equal(chosen, stratified_subset(labels, 0.1, seed=4))
    per_class, all_per_class = np.bincount(labels[chosen]), np.bincount(labels)
    np.testing.assert_allclose(per_class, 0.1 * all_per_class, atol=1)


def test_a_class_too_small_for_the_subset_is_refused() -> None:
    labels = np.array([0] * 30 + [1])
    with pytest.raises(RunError, match="tstr_augmentation needs more labelled training"):
        stratified_subset(labels, 0.1, seed=0)


def test_a_model_that_diverged_is_refused() -> None:
    class Diverged:
        def sample(self, n: int, labels: object) -> np.ndarray:
            return np.full((n, 3), np.nan, np.float32)

    data = SimpleNamespace(preprocessor=SimpleNamespace(inverse=lambda x: x))
    with pytest.raises(RunError, match="samples hold NaN or infinite values"):
        tstr.draw_labelled(Diverged(), balanced_labels(range(2), 4), data)


def test_balanced_labels_cycle_through_the_classes() -> None:
    labels = balanced_labels(np.array([2, 5, 7]), 10)
    np.testing.assert_array_equal(labels, [2, 5, 7, 2, 5, 7, 2, 5, 7, 2])
    assert labels.dtype == np.int32


def test_the_spec_and_the_runtime_know_the_same_names() -> None:
    assert spec_evaluation.LABELLED_SAMPLE_METRICS == tstr.LABELLED_SAMPLE_METRICS
    assert set(tstr.LABELLED_SAMPLE_METRICS) <= set(spec_evaluation.HELDOUT_METRICS)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("spec", "settings", "message"),
    [
        (
            "vae_digits.yaml",
            ["evaluation.metrics=[elbo, tstr]"],
            "evaluation.metrics[1]: metric 'tstr' trains a classifier on labelled samples of "
            "the model, but this vae is not conditional (no model.conditional) (set "
            "model.conditional: {num_classes: N} on labelled data, as specs/cvae_digits.yaml",
        ),
        (
            "flow_digits.yaml",
            ["evaluation.metrics=[tstr_augmentation]"],
            "evaluation.metrics[0]: metric 'tstr_augmentation' trains a classifier on labelled "
            "samples of the model, and the flow family has no conditional models (use a "
            "conditional vae, gan or diffusion model, such as specs/cvae_digits.yaml)",
        ),
        (
            "cvae_digits.yaml",
            ["evaluation.metrics=[tstr]", "data.validation_split=0"],
            "held-out metrics need a validation split, but data.validation_split is 0",
        ),
    ],
)
def test_the_spec_refuses_tstr_without_labelled_samples(spec, settings, message) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(ROOT / "specs" / spec, settings)
    assert message in str(info.value)


def test_conditional_specs_accept_tstr() -> None:
    for spec in ("cvae_digits.yaml", "cgan_digits.yaml", "cdiffusion_digits.yaml"):
        loaded = load_spec(ROOT / "specs" / spec, ["evaluation.metrics=[tstr, tstr_augmentation]"])
        assert loaded.spec.evaluation.metrics == ["tstr", "tstr_augmentation"]


def test_evaluate_names_the_run_that_cannot_draw_labels(run_cli, tiny_vae_spec, tmp_path) -> None:
    built = tmp_path / "built"
    assert run_cli("build", str(tiny_vae_spec), "-o", str(built))[0] == 0
    code, _, err = run_cli("evaluate", str(built), "--metrics", "tstr")
    assert code == 2
    text = " ".join(err.split())
    assert f"evaluate {built} --metrics: evaluation.metrics[0]: metric 'tstr'" in text
    assert "this vae is not conditional" in text and "specs/cvae_digits.yaml" in text


class Unconditional:
    """A model of a module without NUM_CLASSES (this one), as unconditional families are."""


def test_the_runtime_refuses_a_model_without_classes() -> None:
    data = SimpleNamespace(y_train=np.zeros(4), x_val=np.zeros((2, 3)))
    config = {"metrics": ["elbo", "tstr"]}
    with pytest.raises(RunError, match="tstr: Unconditional is not a conditional model"):
        check_labelled(Unconditional(), data, config)
    check_labelled(Unconditional(), data, {"metrics": ["elbo"]})  # not asked: nothing to check


# ---------------------------------------------------------------- through a run


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory: pytest.TempPathFactory, tiny_vae_spec: Path):
    from gencompile.runs import train

    run_dir = tmp_path_factory.mktemp("tstr") / "run"
    return train(tiny_vae_spec, [CONDITIONAL, TSTR_METRICS], run_dir=run_dir, quiet=True)


def test_a_conditional_run_reports_accuracies(cvae_run) -> None:
    metrics = cvae_run.metrics
    for name in ACCURACIES:
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["trtr_accuracy"] > 0.9
    assert metrics["tstr_ratio"] == pytest.approx(
        metrics["tstr_accuracy"] / metrics["trtr_accuracy"]
    )
    record = json.loads((cvae_run.run_dir / "metrics.json").read_text())
    how = record["computed_with"]
    # as many samples as real training examples; all tested on the held-out split
    assert how["tstr_accuracy"]["samples"] == how["trtr_accuracy"]["examples"] == 1617
    assert how["trtr_accuracy"]["split"] == "train" and "samples" not in how["trtr_accuracy"]
    assert how["tstr_accuracy"]["reference"] == {"split": "validation", "examples": 180}
    augmented = how["augmented_accuracy"]
    assert augmented["samples"] == 1617 and augmented["examples"] == 161  # 10 % of 1617
    assert augmented["subset_of"] == 1617 and augmented["subset_seed"] == 3  # the spec's seed
    assert "samples" not in how["subset_accuracy"]
    assert how["subset_accuracy"]["examples"] == 161
    # A VAE's samples are its decoder's means: said of each number trained on them only.
    for name in ("tstr_accuracy", "tstr_ratio", "augmented_accuracy"):
        assert how[name]["decoder_means"] is True, name
    assert "decoder_means" not in how["trtr_accuracy"] | how["subset_accuracy"]
    assert "LogisticRegression(lbfgs, max_iter=1000, random_state=0)" in augmented["classifier"]
    report = (cvae_run.run_dir / "report.md").read_text()
    assert "| tstr_accuracy |" in report and "1617 samples vs 180 validation" in report


def test_evaluate_gives_the_same_numbers_again(cvae_run) -> None:
    from gencompile.runs import evaluate

    again = evaluate(cvae_run.run_dir, ["tstr", "tstr_augmentation"])
    for name in (*ACCURACIES, "tstr_ratio"):
        assert again[name] == cvae_run.metrics[name], name
