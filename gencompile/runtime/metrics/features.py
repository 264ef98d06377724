"""Feature extractors for sample-quality metrics: a digits classifier and InceptionV3.

`digits`: a small convolutional classifier trained on scikit-learn's 8x8 digits with fixed
seeds (it never touches the global random state, so an evaluation gives the same numbers
whether or not the classifier was cached). It is trained once and cached in the user's cache
folder (`$GENCOMPILE_CACHE`, else `$XDG_CACHE_HOME/gencompile`, else `~/.cache/gencompile`)
with its held-out accuracy. Its 64-unit penultimate layer gives the features of `fd_digits`.

`inception`: keras.applications' InceptionV3. Weights come from a local file (the spec's
`evaluation.inception_weights` or `--inception-weights`), else from keras' own download
when the machine is online; without either, evaluation stops with that advice (random
weights, which give plausible-looking but meaningless numbers, are for tests only). A
file that is not keras' ImageNet file is used, and its metrics carry a caveat
(`weights_caveat`) that the CLI, the report and `compare` show.
Images are resized to 299x299 with bilinear interpolation and scaled to [-1, 1], as the
reference FID implementation feeds them; the 2048-d average pool gives FID/KID features
and the softmax gives the Inception Score's class probabilities.

The network is Keras's InceptionV3, not the TensorFlow `inception-2015-12-05` graph that
published FID and Inception Scores are computed with (Salimans et al.'s code, TTUR,
pytorch-fid): different weights, so different numbers for the same images. fid, kid and
inception_score are comparable between gencompile runs that use the same weights (their
sha256 is in computed_with), not with published tables; `COMPARABLE` says so in
metrics.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.files import atomic_save_weights, atomic_write_json, sha256_file
from gencompile.progress import progress_bar
from gencompile.runtime.repro import weights_sha256

DIGITS_VERSION = 2  # bump when the classifier's architecture changes
DIGITS_SEED = 0
DIGITS_EPOCHS = 20
DIGITS_LEARNING_RATE = 2e-3
DIGITS_SCALE = 16.0  # scikit-learn's digits take the values 0..16
INCEPTION_SIZE = 299
INCEPTION_FEATURES = 2048  # avg_pool's width: FID's covariances are this square
BATCH = 64
FEATURE_DTYPE = "float32"  # the feature networks' policy, whatever the run's (mixed) one


@contextmanager
def feature_precision() -> Iterator[None]:
    """Build, train and load the feature networks in float32 whatever the global dtype
    policy (a mixed-precision run sets mixed_float16; `gencompile evaluate` sets the run's):
    their features, and so fd_digits, fid and kid, must not depend on the run's precision.
    Layers keep the policy they were built with, so the networks compute in float32 later
    too, under any global policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(FEATURE_DTYPE)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def cache_dir() -> Path:
    if os.environ.get("GENCOMPILE_CACHE"):
        return Path(os.environ["GENCOMPILE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gencompile"


def traced(network: Callable[[tf.Tensor], Any]) -> Callable[[tf.Tensor], Any]:
    """`network` as one graph function, shared by every batch and every call."""
    return tf.function(network, reduce_retracing=True)


def batched_predict(
    run: Callable[[tf.Tensor], Any], images: np.ndarray, label: str
) -> list[np.ndarray]:
    """Run a traced function over `images` in batches, with progress."""
    pieces: list[list[np.ndarray]] = []
    with progress_bar(label, len(images), "images") as update:
        for start in range(0, len(images), BATCH):
            out = run(tf.constant(images[start : start + BATCH], tf.float32))
            pieces.append([np.asarray(o, np.float64) for o in tf.nest.flatten(out)])
            update(min(start + BATCH, len(images)))
    return [np.concatenate(parts) for parts in zip(*pieces, strict=True)]


# --------------------------------------------------------------------------- digits


@dataclass(frozen=True)
class DigitsClassifier:
    features: keras.Model  # image (8, 8, 1) in data units 0..16 -> 64 features
    accuracy: float  # on the classifier's own held-out fifth of the digits
    predict: Callable[[tf.Tensor], Any]  # `features` traced once
    weights_sha256: str  # of the weights in use: tells a cache trained elsewhere apart

    def describe(self) -> dict[str, Any]:
        """What metrics.json records of the network (`computed_with`)."""
        return {
            "network": f"digits classifier v{DIGITS_VERSION}, 64 penultimate features",
            "weights_sha256": self.weights_sha256,
            "held_out_accuracy": self.accuracy,
        }


def build_digits_classifier() -> keras.Model:
    """Conv-conv-pool-dense; every initializer seeded so that training is repeatable."""
    seeds = iter(range(DIGITS_SEED, DIGITS_SEED + 10))

    def init() -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=next(seeds))

    inputs = keras.Input((8, 8, 1), name="digit")
    x = keras.layers.Rescaling(1.0 / DIGITS_SCALE)(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init())(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer=init())(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu", name="features", kernel_initializer=init())(x)
    logits = keras.layers.Dense(10, name="logits", kernel_initializer=init())(x)
    return keras.Model(inputs, logits, name="digits_classifier")


def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images[..., None].astype(np.float32)
    return train_test_split(
        images, bunch.target, test_size=0.2, random_state=DIGITS_SEED, stratify=bunch.target
    )


def train_digits_classifier() -> tuple[keras.Model, float]:
    x_train, x_test, y_train, y_test = _digits_split()
    model = build_digits_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(DIGITS_LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # Our own shuffling, every epoch's order laid out in advance, so that training uses no
    # global random state and runs as one `fit` call.
    rng = np.random.default_rng(DIGITS_SEED)
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(DIGITS_EPOCHS)])
    model.fit(x_train[order], y_train[order], batch_size=64, epochs=1, shuffle=False, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return model, float(accuracy)


def digits_classifier() -> DigitsClassifier:
    """The cached classifier, trained on first use (a few seconds), in float32 whatever the
    global dtype policy (`feature_precision`)."""
    with feature_precision():
        return _digits_classifier()


def _digits_classifier() -> DigitsClassifier:
    folder = cache_dir()
    # The name changes with anything that changes the trained weights (the dtype: entries
    # of an earlier version trained under a run's mixed_float16 policy are not reused).
    stem = (
        f"fd_digits-v{DIGITS_VERSION}-s{DIGITS_SEED}-e{DIGITS_EPOCHS}"
        f"-lr{DIGITS_LEARNING_RATE:g}-{FEATURE_DTYPE}"
    )
    weights, card = folder / f"{stem}.weights.h5", folder / f"{stem}.json"
    model = build_digits_classifier()
    if weights.exists() and card.exists():
        try:
            model.load_weights(weights)
            accuracy = float(json.loads(card.read_text())["held_out_accuracy"])
        except (OSError, ValueError, KeyError):
            weights.unlink(missing_ok=True)  # a damaged cache entry: train again
            return _digits_classifier()
    else:
        print("fd_digits: training the digits feature classifier (once; it is then cached)")
        model, accuracy = train_digits_classifier()
        folder.mkdir(parents=True, exist_ok=True)
        atomic_save_weights(weights, model)
        atomic_write_json(card, {"held_out_accuracy": accuracy, "version": DIGITS_VERSION})
    features = keras.Model(model.input, model.get_layer("features").output)
    predict = traced(lambda x: features(x, training=False))
    return DigitsClassifier(features, accuracy, predict, weights_sha256(model))


def digits_features(classifier: DigitsClassifier, images: np.ndarray) -> np.ndarray:
    """64-d features of 8x8 digit images in data units (0..16)."""
    images = np.asarray(images, np.float32).reshape(-1, 8, 8, 1)
    return batched_predict(classifier.predict, images, "fd_digits: features")[0]


# --------------------------------------------------------------------------- inception

OFFLINE_HINT = (
    "download inception_v3_weights_tf_dim_ordering_tf_kernels.h5 (keras.applications' "
    "ImageNet weights) on a machine that is online, then pass it with "
    "`gencompile evaluate RUN --inception-weights PATH` or evaluation.inception_weights"
)
IMAGENET_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + IMAGENET_FILE
)
IMAGENET_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"  # keras.applications' own check of the file
DOWNLOAD_TIMEOUT = 20.0  # seconds a silent connection may stall before the download fails


COMPARABLE = (
    "with gencompile runs whose InceptionV3 weights have the same sha256; not with "
    "published FID or Inception Score tables (TTUR, pytorch-fid, Salimans et al.), which "
    "use TensorFlow's inception-2015-12-05 graph, a different network"
)


# computed_with's `caveat` of a metric in the features of InceptionV3 weights that are not
# keras' ImageNet file: accepted (a user's own file), but shown beside the number.
NOT_IMAGENET_WEIGHTS = (
    "InceptionV3's weights are not keras' ImageNet file (md5 differs): unless they are the "
    "same weights saved otherwise, the number measures nothing comparable"
)


def weights_caveat(described: dict[str, Any]) -> dict[str, str]:
    """computed_with's caveat of a metric in the features `described` (a network's
    `describe()`): InceptionV3 weights that are not keras' ImageNet file; else none."""
    return (
        {"caveat": NOT_IMAGENET_WEIGHTS} if described.get("keras_imagenet_weights") is False else {}
    )


@dataclass(frozen=True)
class InceptionNetwork:
    model: keras.Model  # image -> (2048 pool features, 1000 class probabilities)
    weights: str  # the file the weights came from ("random (tests only)" in tests)
    weights_sha256: str | None
    imagenet: bool  # the file is keras.applications' ImageNet weights

    def describe(self) -> dict[str, Any]:
        """What metrics.json records of the network (`computed_with`)."""
        return {
            "network": "InceptionV3 avg_pool (2048) and softmax (1000)",
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "keras_imagenet_weights": self.imagenet,
            "comparable": COMPARABLE,
        }


def _download_imagenet_weights() -> Path:
    """keras' cached copy of the ImageNet weights, downloaded once when the machine is online.

    A socket timeout bounds every connect and read, so an offline machine (or one whose
    network silently drops packets) fails in seconds instead of hanging.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        path = keras.utils.get_file(
            IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5
        )
    except Exception as err:  # download failures come as several exception types
        raise RunError(
            f"InceptionV3's ImageNet weights are needed and could not be downloaded ({err}); "
            f"{OFFLINE_HINT}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return Path(path)


def inception_weights_file(weights: str | None) -> Path:
    """The local file of InceptionV3's weights: `weights` (a path), else keras' download.

    Random weights are never a fallback: FID and Inception Scores from them look like
    numbers but measure nothing.
    """
    if weights in (None, "imagenet"):
        return _download_imagenet_weights()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise RunError(f"InceptionV3 weights file not found: {weights}; {OFFLINE_HINT}")
    return path


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inception_network(
    weights: str | Path | None, *, _random_weights_for_tests: bool = False
) -> InceptionNetwork:
    """InceptionV3 answering (2048 pool features, 1000 class probabilities).

    `weights`: a local file of the full network's weights, or None (or "imagenet") for
    keras' download; without either, a RunError with the advice to pass a file.
    `_random_weights_for_tests`: random weights, for tests of the code path only.
    Built in float32 whatever the global dtype policy (`feature_precision`).
    """
    with feature_precision():
        return _inception_network(weights, _random_weights_for_tests)


def _inception_network(
    weights: str | Path | None, _random_weights_for_tests: bool
) -> InceptionNetwork:
    if _random_weights_for_tests:
        base = keras.applications.InceptionV3(include_top=True, weights=None)
        return InceptionNetwork(_with_pool(base), "random (tests only)", None, False)
    path = inception_weights_file(None if weights is None else str(weights))
    base = keras.applications.InceptionV3(include_top=True, weights=None)
    try:
        base.load_weights(path)
    except Exception as err:  # h5py/keras raise many types for a wrong or corrupt file
        raise RunError(
            f"cannot load InceptionV3 weights from {path} ({err}); {OFFLINE_HINT}"
        ) from None
    return InceptionNetwork(
        _with_pool(base), str(path), sha256_file(path), _md5(path) == IMAGENET_MD5
    )


def _with_pool(base: keras.Model) -> keras.Model:
    pool = base.get_layer("avg_pool").output
    return keras.Model(base.input, [pool, base.output], name="inception_features")


def inception_inputs(x: tf.Tensor, value_range: tuple[float, float]) -> tf.Tensor:
    """Images in data units -> 299x299 RGB in [-1, 1] (grayscale repeated to 3 channels)."""
    low, high = value_range
    x = tf.clip_by_value((x - low) / max(high - low, 1e-12), 0.0, 1.0) * 255.0
    if x.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)
    x = tf.image.resize(x, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
    return keras.applications.inception_v3.preprocess_input(x)


def inception_features(
    network: InceptionNetwork, images: np.ndarray, value_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Pool features and class probabilities, resizing one batch at a time."""
    model = network.model
    pool, probabilities = batched_predict(
        traced(lambda x: model(inception_inputs(x, value_range), training=False)),
        np.asarray(images, np.float32),
        "InceptionV3: features",
    )
    return pool, probabilities
