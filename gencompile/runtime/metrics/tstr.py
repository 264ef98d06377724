"""Train on synthetic, test on real (TSTR), and the augmentation experiment.

Two metrics of a conditional model, each a classifier of the data's labels scored on the
real held-out split:

    tstr                tstr_accuracy: trained on labelled samples of the model (balanced
                        over the training split's classes, as many as that split holds);
                        trtr_accuracy: the same classifier trained on the real training
                        split (the reference); tstr_ratio = tstr / trtr
    tstr_augmentation   subset_accuracy: trained on a fixed stratified 10 % of the real
                        training split; augmented_accuracy: that 10 % plus the samples

The classifier is scikit-learn's `LogisticRegression` (lbfgs, `max_iter` 1000,
`random_state` 0) on the flattened values, standardised by a `StandardScaler` fitted on its
own training set. Samples are mapped back to the data's units by the run's preprocessing,
so the classifier sees them as it sees real data. The samples are drawn from the
evaluation's seeded state: the same weights give the same numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from gencompile.errors import RunError
from gencompile.progress import progress_bar
from gencompile.runtime.conditional import balanced_labels, model_classes
from gencompile.runtime.metrics.results import Metrics
from gencompile.runtime.metrics.samples import decoder_means
from gencompile.runtime.splits import head_positions

if TYPE_CHECKING:  # scikit-learn is imported when a metric needs it: not by every run
    from sklearn.pipeline import Pipeline

LABELLED_SAMPLE_METRICS = ("tstr", "tstr_augmentation")  # the spec's names (a test checks)
MAX_ITER = 1000
CLASSIFIER_SEED = 0
SUBSET_FRACTION = 0.1  # of the real training labels, in the augmentation experiment
# Real examples per split (and samples drawn), at most: a streamed split is not read whole.
MAX_EXAMPLES = 20_000
SAMPLES_PER_CALL = 500
CONDITIONAL_EXAMPLE = "specs/cvae_digits.yaml"


@dataclass(frozen=True)
class Labelled:
    """Examples in data units (any shape; flattened for the classifier) and their labels."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def rows(self) -> np.ndarray:
        return self.x.reshape(len(self.x), -1).astype(np.float64)

    def __add__(self, other: Labelled) -> Labelled:
        return Labelled(np.concatenate([self.x, other.x]), np.concatenate([self.y, other.y]))

    def take(self, indices: np.ndarray) -> Labelled:
        return Labelled(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class Scored:
    """A classifier's accuracy on the real held-out split, and whether lbfgs converged."""

    accuracy: float
    converged: bool


def classifier() -> Pipeline:
    """The fixed classifier of every experiment: standardise, then logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=CLASSIFIER_SEED)
    )


def classifier_description() -> dict[str, Any]:
    return {
        "classifier": f"scikit-learn StandardScaler + LogisticRegression(lbfgs, "
        f"max_iter={MAX_ITER}, random_state={CLASSIFIER_SEED})"
    }


def train_and_test(train: Labelled, test: Labelled) -> Scored:
    """Accuracy on `test` of the classifier fitted on `train`."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    if len(np.unique(train.y)) < 2:
        raise RunError("cannot train a classifier on one class: the training set needs two")
    model = classifier()
    # One BLAS thread: the same sums in the same order on any machine, and on these small
    # matrices threads cost more than they save (30x slower on a busy 2-core machine).
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train.rows(), train.y)
        accuracy = float(model.score(test.rows(), test.y))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return Scored(accuracy, converged)


@dataclass(frozen=True)
class TSTR:
    """The classifier trained on samples (tstr) and on the real training split (trtr)."""

    tstr: Scored
    trtr: Scored

    @property
    def ratio(self) -> float:
        if self.trtr.accuracy == 0:
            raise RunError(
                "tstr: the classifier trained on the real training split gets no held-out "
                "example right, so tstr_ratio has no meaning; check the data's labels"
            )
        return self.tstr.accuracy / self.trtr.accuracy


def tstr_accuracies(synthetic: Labelled, real_train: Labelled, real_test: Labelled) -> TSTR:
    """TSTR and its reference, TRTR: one classifier trained on the samples, one on the real
    training split, both tested on the real held-out split."""
    return TSTR(train_and_test(synthetic, real_test), train_and_test(real_train, real_test))


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a fixed stratified `fraction` of `labels` (scikit-learn's split, `seed`)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    try:
        chosen, _ = train_test_split(
            indices, train_size=fraction, stratify=labels, random_state=seed
        )
    except ValueError as err:  # a class too small to be represented in the subset
        raise RunError(
            f"cannot take a stratified {fraction:.0%} of the {len(labels)} training labels: "
            f"{err}; tstr_augmentation needs more labelled training examples of every class"
        ) from None
    return np.sort(chosen)


@dataclass(frozen=True)
class Augmentation:
    """The classifier trained on a subset of the real training split, alone and with the
    samples added."""

    subset: Scored
    augmented: Scored
    subset_examples: int


def augmentation_accuracies(
    synthetic: Labelled, real_train: Labelled, real_test: Labelled, seed: int
) -> Augmentation:
    """A stratified SUBSET_FRACTION of the real training split alone, and with the samples."""
    subset = real_train.take(stratified_subset(real_train.y, SUBSET_FRACTION, seed))
    return Augmentation(
        subset=train_and_test(subset, real_test),
        augmented=train_and_test(subset + synthetic, real_test),
        subset_examples=len(subset),
    )


def draw_labelled(model: keras.Model, labels: np.ndarray, data: Any) -> Labelled:
    """Samples of the given classes, in the data's original units."""
    chunks = []
    with progress_bar("tstr: drawing labelled samples", len(labels), "samples") as update:
        for start in range(0, len(labels), SAMPLES_PER_CALL):
            part = labels[start : start + SAMPLES_PER_CALL]
            drawn = model.sample(len(part), labels=keras.ops.convert_to_tensor(part, "int32"))
            chunks.append(np.asarray(keras.ops.convert_to_numpy(drawn), np.float32))
            update(start + len(part))
    samples = data.preprocessor.inverse(np.concatenate(chunks))
    if not np.isfinite(samples).all():
        raise RunError(
            "tstr: the model's samples hold NaN or infinite values, which no classifier can "
            "train on; the model diverged: look at history.csv and train it again"
        )
    return Labelled(samples, labels)


def wanted_metrics(config: dict[str, Any]) -> list[str]:
    return [m for m in config["metrics"] if m in LABELLED_SAMPLE_METRICS]


def check_labelled(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse, before any work, to compute the wanted metrics of a model that cannot draw
    labelled samples, or on data without labels or without a held-out split."""
    wanted = wanted_metrics(config)
    if not wanted:
        return
    names = " and ".join(wanted)
    if model_classes(model) is None:
        raise RunError(
            f"{names}: {type(model).__name__} is not a conditional model, so it cannot draw "
            "labelled samples to train a classifier on; train a conditional vae, gan or "
            f"diffusion model (model.conditional), such as {CONDITIONAL_EXAMPLE}"
        )
    if data.y_train is None:
        raise RunError(f"{names}: the data has no labels to train and test a classifier with")
    if len(data.x_val) == 0:
        raise RunError(
            f"{names}: tests on the real held-out split, but there is none; "
            "set data.validation_split (e.g. 0.1) and train again"
        )


def real_split(x: Any, y: np.ndarray, data: Any) -> tuple[Labelled, dict[str, Any]]:
    """The first MAX_EXAMPLES examples of a split (a seeded random subset, loaded or
    streamed: `head_positions`) with their labels, in data units, and how many of how many."""
    positions = head_positions(x, MAX_EXAMPLES)
    rows = np.asarray(x[positions])
    described: dict[str, Any] = {"examples": len(rows)}
    if len(rows) < len(x):
        described["subset_of"] = len(x)
    return Labelled(data.preprocessor.inverse(rows), np.asarray(y)[positions]), described


def labelled_sample_metrics(
    model: keras.Model, data: Any, config: dict[str, Any], seed: int
) -> Metrics:
    """The metrics among `config["metrics"]` that train a classifier on labelled samples
    (empty if none). `seed` (the evaluation's) fixes the augmentation experiment's subset."""
    metrics = Metrics()
    wanted = wanted_metrics(config)
    if not wanted:
        return metrics
    check_labelled(model, data, config)
    real_train, train_how = real_split(data.x_train, data.y_train, data)
    real_test, test_how = real_split(data.x_val, data.y_val, data)
    classes = np.unique(real_train.y)
    synthetic = draw_labelled(model, balanced_labels(classes, len(real_train)), data)
    # What each number was trained on: samples (`samples`) and/or real training examples
    # (`split`, `examples`); all are tested on the held-out split (`reference`).
    common = {
        **classifier_description(),
        "classes": len(classes),
        "reference": {"split": "validation", **test_how},
    }
    samples = {"samples": len(synthetic), **decoder_means(model)}
    # `converged` (a result) and `subset_seed` (a seed) do not count in `compare` (report.py)
    real = {"split": "train", **train_how}
    if "tstr" in wanted:
        found = tstr_accuracies(synthetic, real_train, real_test)
        tstr_how = {**common, **samples, "converged": found.tstr.converged}
        metrics.add("tstr_accuracy", found.tstr.accuracy, tstr_how)
        trtr_how = {**common, **real, "converged": found.trtr.converged}
        metrics.add("trtr_accuracy", found.trtr.accuracy, trtr_how)
        metrics.add("tstr_ratio", found.ratio, {**common, **samples, **real})
    if "tstr_augmentation" in wanted:
        augmented = augmentation_accuracies(synthetic, real_train, real_test, seed)
        subset = {
            "split": "train",
            "examples": augmented.subset_examples,
            "subset_of": len(real_train),
            "subset_seed": seed,
        }
        subset_how = {**common, **subset, "converged": augmented.subset.converged}
        metrics.add("subset_accuracy", augmented.subset.accuracy, subset_how)
        both = {**common, **samples, **subset, "converged": augmented.augmented.converged}
        metrics.add("augmented_accuracy", augmented.augmented.accuracy, both)
    return metrics
