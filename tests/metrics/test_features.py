"""Feature extractors: the cached digits classifier and the InceptionV3 loading path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from gencompile.errors import RunError
from gencompile.runtime.metrics import features
from gencompile.runtime.metrics.distances import frechet_distance_of


def test_digits_classifier_is_accurate_cached_and_repeatable(feature_cache: Path) -> None:
    first = features.digits_classifier()
    assert first.accuracy > 0.95
    cached = sorted(p.name for p in feature_cache.iterdir())
    assert cached == ["fd_digits-v2-s0-e20-lr0.002.json", "fd_digits-v2-s0-e20-lr0.002.weights.h5"]
    again = features.digits_classifier()  # from the cache
    digits = load_digits().images[:50]
    np.testing.assert_array_equal(
        features.digits_features(first, digits), features.digits_features(again, digits)
    )
    retrained, accuracy = features.train_digits_classifier()  # same seeds, same weights
    assert accuracy == pytest.approx(first.accuracy)
    for a, b in zip(retrained.get_weights(), first.features.get_weights(), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_fd_digits_separates_real_digits_from_noise() -> None:
    classifier = features.digits_classifier()
    images = load_digits().images
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    real_a, real_b = images[order[:800]], images[order[800:1600]]
    noise = rng.uniform(0, 16, size=(800, 8, 8))
    real_fd = frechet_distance_of(
        features.digits_features(classifier, real_a), features.digits_features(classifier, real_b)
    )
    noise_fd = frechet_distance_of(
        features.digits_features(classifier, real_b), features.digits_features(classifier, noise)
    )
    assert noise_fd > 20 * real_fd


@pytest.fixture(scope="module")
def random_inception():
    return features.inception_network(None)


def test_inception_gives_pool_features_and_class_probabilities(random_inception) -> None:
    rng = np.random.default_rng(1)
    gray = rng.uniform(0, 16, size=(3, 8, 8, 1)).astype(np.float32)
    pool, probabilities = features.inception_features(random_inception, gray, (0.0, 16.0))
    assert pool.shape == (3, 2048) and probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    colour = rng.uniform(0, 255, size=(2, 12, 10, 3)).astype(np.float32)
    pool, _ = features.inception_features(random_inception, colour, (0.0, 255.0))
    assert pool.shape == (2, 2048) and np.all(np.isfinite(pool))


def test_inception_inputs_are_resized_and_scaled_as_the_reference_does() -> None:
    images = np.array([[[[0.0], [16.0]], [[8.0], [16.0]]]], np.float32)  # 2x2, one channel
    x = features.inception_inputs(images, (0.0, 16.0)).numpy()
    assert x.shape == (1, 299, 299, 3)
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_allclose(x[0, 0, 0], [-1.0, -1.0, -1.0], atol=1e-6)  # black corner
    np.testing.assert_allclose(x[0, -1, -1], [1.0, 1.0, 1.0], atol=1e-6)  # white corner


def test_inception_loads_weights_from_a_local_file(random_inception, tmp_path: Path) -> None:
    path = tmp_path / "inception.weights.h5"
    random_inception.save_weights(path)
    loaded = features.inception_network(str(path))
    images = np.random.default_rng(2).uniform(0, 1, size=(2, 8, 8, 3)).astype(np.float32)
    expected = features.inception_features(random_inception, images, (0.0, 1.0))
    got = features.inception_features(loaded, images, (0.0, 1.0))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_missing_inception_weights_say_how_to_get_them(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"weights file not found.*--inception-weights"):
        features.inception_network(str(tmp_path / "absent.h5"))

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(RunError, match=r"no network.*download inception_v3_weights"):
        features.inception_network("imagenet")
