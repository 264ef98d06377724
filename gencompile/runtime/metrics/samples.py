"""Sample-quality metrics of any generated model: draw samples, compare them with real data.

Every family's `evaluate` ends with `sample_quality(model, data, config)`. It draws
`evaluation.num_samples` samples with `model.sample`, maps them back to the data's units,
and compares them with the held-out split (the training split when there is none):

    fd_digits          Frechet distance in the features of a small digits classifier
    fid                Frechet distance in InceptionV3 pool features (images)
    kid                kernel inception distance (and kid_std over 100 subsets)
    inception_score    Inception Score over 10 splits (and inception_score_std)
    precision_recall   improved precision and recall, k = 3
    energy_distance    energy distance in data units (low-dimensional data)
    mode_coverage      modes_captured and high_quality (ring8, grid25)

`kid` and `precision_recall` use the digits classifier's features for the digits,
InceptionV3's for other images, and the data itself for vectors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from gencompile.runtime.metrics import distances, features
from gencompile.runtime.sources import mode_centers

SAMPLES_PER_CALL = 500  # samples are drawn in chunks, with a progress bar
KID_SEED = 0  # the random subsets of KID


def draw_samples(model: keras.Model, count: int, data: Any) -> np.ndarray:
    """`count` samples of the model, in the data's original units."""
    bar = keras.utils.Progbar(count, unit_name="sample") if sys.stdout.isatty() else None
    chunks = []
    for start in range(0, count, SAMPLES_PER_CALL):
        n = min(SAMPLES_PER_CALL, count - start)
        chunks.append(np.asarray(keras.ops.convert_to_numpy(model.sample(n)), np.float32))
        if bar is not None:
            bar.update(start + n)
    return data.preprocessor.inverse(np.concatenate(chunks))


def reference_data(data: Any) -> np.ndarray:
    """Real data in its original units: the held-out split, else the training split."""
    reference = data.x_val if len(data.x_val) else data.x_train
    return data.preprocessor.inverse(np.asarray(reference, np.float32))


def is_digits(data: Any) -> bool:
    return data.source.get("type") == "builtin" and data.source.get("name") == "digits"


class FeatureSpaces:
    """Features of the real and generated sets, computed once per evaluation."""

    def __init__(self, real: np.ndarray, fake: np.ndarray, data: Any, config: dict[str, Any]):
        self.real, self.fake, self.data, self.config = real, fake, data, config
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.notes: dict[str, float] = {}

    def _cached(self, name: str, compute: Callable[[], tuple[np.ndarray, np.ndarray]]):
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    def digits(self) -> tuple[np.ndarray, np.ndarray]:
        def compute() -> tuple[np.ndarray, np.ndarray]:
            classifier = features.digits_classifier()
            self.notes["fd_digits_classifier_accuracy"] = classifier.accuracy
            return (
                features.digits_features(classifier, self.real),
                features.digits_features(classifier, self.fake),
            )

        return self._cached("digits", compute)

    def _inception_both(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        def compute():
            network = features.inception_network(self.config.get("inception_weights"))
            low = float(min(self.real.min(), 0.0))
            value_range = (low, float(self.real.max()))
            real = features.inception_features(network, self.real, value_range)
            fake = features.inception_features(network, self.fake, value_range)
            return real, fake

        return self._cached("inception", compute)

    def inception(self) -> tuple[np.ndarray, np.ndarray]:
        (real_pool, _), (fake_pool, _) = self._inception_both()
        return real_pool, fake_pool

    def inception_probabilities(self) -> np.ndarray:
        return self._inception_both()[1][1]

    def default(self) -> tuple[np.ndarray, np.ndarray]:
        """The feature space of kid and precision_recall for this data."""
        if is_digits(self.data):
            return self.digits()
        if self.data.kind == "image":
            return self.inception()
        flat = (self.real.reshape(len(self.real), -1), self.fake.reshape(len(self.fake), -1))
        return flat


def sample_quality(model: keras.Model, data: Any, config: dict[str, Any]) -> dict[str, float]:
    """The sample-quality metrics among `config["metrics"]` (an empty dict if none)."""
    wanted = [m for m in config["metrics"] if m in SAMPLE_METRICS]
    if not wanted:
        return {}
    real = reference_data(data)
    fake = draw_samples(model, int(config["num_samples"]), data)
    spaces = FeatureSpaces(real, fake, data, config)
    metrics: dict[str, float] = {}
    for name in wanted:
        metrics.update(METRICS[name](spaces))
    metrics.update(spaces.notes)
    return metrics


def _fd_digits(spaces: FeatureSpaces) -> dict[str, float]:
    return {"fd_digits": distances.frechet_distance_of(*spaces.digits())}


def _fid(spaces: FeatureSpaces) -> dict[str, float]:
    return {"fid": distances.frechet_distance_of(*spaces.inception())}


def _kid(spaces: FeatureSpaces) -> dict[str, float]:
    estimate = distances.kernel_inception_distance(*spaces.default(), seed=KID_SEED)
    return {"kid": estimate.mean, "kid_std": estimate.std}


def _inception_score(spaces: FeatureSpaces) -> dict[str, float]:
    estimate = distances.inception_score(spaces.inception_probabilities())
    return {"inception_score": estimate.mean, "inception_score_std": estimate.std}


def _precision_recall(spaces: FeatureSpaces) -> dict[str, float]:
    precision, recall = distances.precision_recall(*spaces.default(), k=3)
    return {"precision": precision, "recall": recall}


def _energy_distance(spaces: FeatureSpaces) -> dict[str, float]:
    real, fake = spaces.real, spaces.fake
    value = distances.energy_distance(real.reshape(len(real), -1), fake.reshape(len(fake), -1))
    return {"energy_distance": value}


def _mode_coverage(spaces: FeatureSpaces) -> dict[str, float]:
    source = spaces.data.source
    coverage = distances.mode_coverage(
        spaces.fake, mode_centers(source["name"], source), std=float(source["std"])
    )
    return {
        "modes_captured": float(coverage.modes_captured),
        "high_quality": coverage.high_quality_fraction,
    }


METRICS: dict[str, Callable[[FeatureSpaces], dict[str, float]]] = {
    "fd_digits": _fd_digits,
    "fid": _fid,
    "kid": _kid,
    "inception_score": _inception_score,
    "precision_recall": _precision_recall,
    "energy_distance": _energy_distance,
    "mode_coverage": _mode_coverage,
}
SAMPLE_METRICS = tuple(METRICS)  # the spec's evaluation.SAMPLE_METRICS (a test checks)
