"""Feature extractors: the cached digits classifier and the InceptionV3 loading path."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from gencompile.errors import RunError
from gencompile.files import sha256_file
from gencompile.runtime.metrics import features
from gencompile.runtime.metrics.distances import frechet_distance_of


def test_digits_classifier_is_accurate_cached_and_repeatable(feature_cache: Path) -> None:
    first = features.digits_classifier()
    assert first.accuracy > 0.95
    # (the session-wide cache may also hold other tests' entries, e.g. `tables/`)
    cached = sorted(p.name for p in feature_cache.iterdir() if p.name.startswith("fd_digits"))
    assert cached == [
        "fd_digits-v2-s0-e20-lr0.002-float32.json",
        "fd_digits-v2-s0-e20-lr0.002-float32.weights.h5",
    ]
    again = features.digits_classifier()  # from the cache
    digits = load_digits().images[:50]
    np.testing.assert_array_equal(
        features.digits_features(first, digits), features.digits_features(again, digits)
    )
    retrained, accuracy = features.train_digits_classifier()  # same seeds, same weights
    assert accuracy == pytest.approx(first.accuracy)
    for a, b in zip(retrained.get_weights(), first.features.get_weights(), strict=False):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert again.weights_sha256 == first.weights_sha256  # what computed_with records
    assert again.describe()["held_out_accuracy"] == first.accuracy


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
def random_inception() -> features.InceptionNetwork:
    return features.inception_network(None, _random_weights_for_tests=True)


@pytest.mark.slow
def test_inception_gives_pool_features_and_class_probabilities(random_inception) -> None:
    rng = np.random.default_rng(1)
    gray = rng.uniform(0, 16, size=(3, 8, 8, 1)).astype(np.float32)
    pool, probabilities = features.inception_features(random_inception, gray, (0.0, 16.0))
    assert pool.shape == (3, 2048) and probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    colour = rng.uniform(0, 255, size=(2, 12, 10, 3)).astype(np.float32)
    pool, _ = features.inception_features(random_inception, colour, (0.0, 255.0))
    assert pool.shape == (2, 2048) and np.all(np.isfinite(pool))
    assert random_inception.describe()["weights"] == "random (tests only)"


def test_inception_inputs_are_resized_and_scaled_as_the_reference_does() -> None:
    images = np.array([[[[0.0], [16.0]], [[8.0], [16.0]]]], np.float32)  # 2x2, one channel
    x = features.inception_inputs(images, (0.0, 16.0)).numpy()
    assert x.shape == (1, 299, 299, 3)
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_allclose(x[0, 0, 0], [-1.0, -1.0, -1.0], atol=1e-6)  # black corner
    np.testing.assert_allclose(x[0, -1, -1], [1.0, 1.0, 1.0], atol=1e-6)  # white corner


@pytest.mark.slow
def test_inception_loads_weights_from_a_local_file(random_inception, tmp_path: Path) -> None:
    path = tmp_path / "inception.weights.h5"
    random_inception.model.save_weights(path)
    loaded = features.inception_network(str(path))
    images = np.random.default_rng(2).uniform(0, 1, size=(2, 8, 8, 3)).astype(np.float32)
    expected = features.inception_features(random_inception, images, (0.0, 1.0))
    got = features.inception_features(loaded, images, (0.0, 1.0))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # metrics.json records which weights: this file, by hash, and not keras' ImageNet file
    assert loaded.describe() == {
        "network": "InceptionV3 avg_pool (2048) and softmax (1000)",
        "weights": str(path),
        "weights_sha256": sha256_file(path),
        "keras_imagenet_weights": False,
        "comparable": features.COMPARABLE,
    }


def test_inception_numbers_are_not_claimed_comparable_with_published_ones() -> None:
    """Keras's InceptionV3 is not the inception-2015-12-05 graph of published FID and
    Inception Scores: metrics.json says what the numbers compare with, even with keras'
    own ImageNet weights."""
    described = features.InceptionNetwork(None, "imagenet.h5", "0" * 64, True).describe()
    said = described["comparable"]
    assert "not with published" in said and "inception-2015-12-05" in said


def test_a_file_that_is_not_inception_weights_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("not weights")
    with pytest.raises(RunError, match=r"cannot load InceptionV3 weights from .*notes\.h5"):
        features.inception_network(str(path))


def test_without_weights_there_is_no_random_fallback(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"weights file not found.*--inception-weights"):
        features.inception_network(str(tmp_path / "absent.h5"))

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    for weights in (None, "imagenet"):
        with pytest.raises(RunError, match=r"no network.*--inception-weights PATH"):
            features.inception_network(weights)


def test_a_stalled_download_fails_within_the_timeout(monkeypatch, tmp_path: Path) -> None:
    """A network that accepts and never answers (a black hole) must not hang evaluation."""
    from keras.src.backend import config

    # An empty keras home: a cached weights file would make the download unnecessary.
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    proxy = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setattr(features, "DOWNLOAD_TIMEOUT", 1.0)
    start = time.monotonic()
    try:
        with pytest.raises(RunError, match=r"could not be downloaded.*--inception-weights"):
            features.inception_weights_file(None)
    finally:
        silent.close()
    assert time.monotonic() - start < 10
    assert socket.getdefaulttimeout() is None  # the process-wide timeout is put back


@pytest.fixture
def mixed_global_policy():
    """The global dtype policy of a mixed-precision run (and of `gencompile evaluate` of
    one), restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.slow  # ~11-12 s: trains a classifier / several fits
def test_the_digits_classifier_is_float32_under_a_mixed_policy(
    tmp_path: Path, monkeypatch, mixed_global_policy
) -> None:
    """Trained (and cached) during a mixed-precision run, the classifier must be the one a
    float32 run trains: float32 weights and computations, the same features, so that
    fd_digits does not depend on the run's precision (or on which run filled the cache)."""
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "mixed"))
    mixed = features.digits_classifier()
    assert keras.mixed_precision.global_policy().name == "mixed_float16"  # left as it was
    for layer in mixed.features.layers[1:]:
        assert layer.compute_dtype == "float32", layer.name
        assert all(w.dtype == "float32" for w in layer.weights), layer.name
    keras.mixed_precision.set_global_policy("float32")
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "float32"))
    plain = features.digits_classifier()
    keras.mixed_precision.set_global_policy("mixed_float16")
    assert mixed.weights_sha256 == plain.weights_sha256
    digits = load_digits().images[:200]
    got, expected = features.digits_features(mixed, digits), features.digits_features(plain, digits)
    np.testing.assert_array_equal(got, expected)


def test_inception_is_built_in_float32_under_a_mixed_policy(mixed_global_policy) -> None:
    network = features.inception_network(None, _random_weights_for_tests=True)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert {layer.compute_dtype for layer in network.model.layers[1:]} == {"float32"}
