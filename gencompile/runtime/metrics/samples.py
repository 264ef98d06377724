"""Sample-quality metrics of any generated model: draw samples, compare them with real data.

Every family's `evaluate` ends with `sample_quality(model, data, config)`. It draws
`evaluation.num_samples` samples with `model.sample`, maps them back to the data's units,
and compares them with the held-out split (the training split when there is none; its first
`REFERENCE_EXAMPLES` examples when it holds more):

    fd_digits          Frechet distance in the features of a small digits classifier
    fid                Frechet distance in InceptionV3 pool features (images)
    kid                kernel inception distance (and kid_std over 100 subsets)
    inception_score    Inception Score over 10 splits (and inception_score_std)
    precision_recall   improved precision and recall, k = 3
    energy_distance    energy distance in data units (low-dimensional data)
    mode_coverage      modes_captured and high_quality (ring8, grid25; of the modes of
                       data.source.classes when it is set)

A VAE's (and a VQ-VAE's) samples are its decoder's means E[x | z] of prior draws, as image
VAEs are usually scored, not draws from p(x | z): computed_with says `decoder_means: true`.
A conditional model's samples are of the classes its training split holds, equally many of
each (`data.source.classes` may keep a few): computed_with says which (`sample_labels`).
`kid` and `precision_recall` use the digits classifier's features for the digits,
InceptionV3's for other images, and the data itself for vectors. InceptionV3 needs its real
ImageNet weights (`with_inception_weights` checks for them before anything is drawn); a
file that is not keras' ImageNet file is used, with a `caveat` in computed_with.
The answer is a `Metrics`: the values, and what each was computed with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from gencompile.datafiles import held_out_count, split_holding_out
from gencompile.errors import RunError
from gencompile.metric_minimums import IS_SPLITS, PR_NEIGHBOURS, SAMPLE_MINIMUM
from gencompile.metric_minimums import REAL_MINIMUM as REAL_FEWEST
from gencompile.progress import progress_bar
from gencompile.runtime.conditional import balanced_labels, model_classes
from gencompile.runtime.metrics import distances, features
from gencompile.runtime.metrics.results import Metrics
from gencompile.runtime.sources import data_mode_centers
from gencompile.runtime.splits import head

SAMPLES_PER_CALL = 500  # samples are drawn in chunks, with a progress bar
REFERENCE_EXAMPLES = 10_000  # real examples the samples are compared with, at most
KID_SEED = 0  # the random subsets of KID
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
MODE_THRESHOLD = 3.0  # standard deviations around a mode
INCEPTION_METRICS = ("fid", "inception_score")  # always in InceptionV3's features
DEFAULT_SPACE_METRICS = ("kid", "precision_recall")  # in the data's default feature space
Features = tuple[np.ndarray, np.ndarray]


def draw_samples(
    model: keras.Model, count: int, data: Any, labels: np.ndarray | None = None
) -> np.ndarray:
    """`count` samples of the model (of the given classes, when `labels` are given), in
    the data's original units."""
    chunks = []
    with progress_bar("drawing samples", count, "samples") as update:
        for start in range(0, count, SAMPLES_PER_CALL):
            n = min(SAMPLES_PER_CALL, count - start)
            if labels is None:
                drawn = model.sample(n)
            else:
                part = keras.ops.convert_to_tensor(labels[start : start + n], "int32")
                drawn = model.sample(n, labels=part)
            chunks.append(np.asarray(keras.ops.convert_to_numpy(drawn), np.float32))
            update(start + n)
    return data.preprocessor.inverse(np.concatenate(chunks))


def sample_labels(model: keras.Model, data: Any, count: int) -> np.ndarray | None:
    """The labels a conditional model's scored samples are drawn with: equally many of each
    class the training split holds, as tstr draws them. The model's own default cycles
    through all NUM_CLASSES, classes that `data.source.classes` may have left out of
    training and of the reference. None for an unconditional model."""
    y_train = getattr(data, "y_train", None)
    if model_classes(model) is None or y_train is None:
        return None
    return balanced_labels(np.unique(np.asarray(y_train)).tolist(), count)


def labels_description(labels: np.ndarray | None) -> dict[str, Any]:
    """`computed_with`'s note of the classes the samples were drawn of ({} if unlabelled)."""
    if labels is None:
        return {}
    classes = [int(c) for c in np.unique(labels)]
    return {"sample_labels": {"classes": classes, "per_class": "equal counts"}}


def decoder_means(model: keras.Model) -> dict[str, bool]:
    """`computed_with`'s note when `model.sample(n)`, what the sample metrics score, returns
    the likelihood's means E[x | z] rather than draws from p(x | z): a VAE's and a VQ-VAE's
    default (`sample(..., mean=True)`), the usual convention for image VAEs. {} otherwise."""
    try:
        parameter = inspect.signature(model.sample).parameters.get("mean")
    except (TypeError, ValueError):  # a sample without a signature to read
        return {}
    return {"decoder_means": True} if parameter is not None and parameter.default is True else {}


def reference_split(data: Any) -> str:
    """The split samples are compared with: the held-out one, else the training one."""
    return "validation" if len(data.x_val) else "train"


def example_total(data: Any) -> int:
    """The examples of both splits, which data.validation_split divides."""
    return len(data.x_train) + len(data.x_val)


def reference_rows(data: Any) -> Any:
    """The split samples are compared with (loaded, or read on demand when it streams)."""
    return data.x_val if reference_split(data) == "validation" else data.x_train


def reference_data(data: Any) -> np.ndarray:
    """Real data in its original units: the first REFERENCE_EXAMPLES examples of the
    held-out split, else of the training split, in the seeded permutation's order (a seeded
    random subset: `splits.head`), all of it when it holds fewer. Never more, so that a
    streamed split is not read whole into memory; loaded and streamed data use the same
    rows (streamed tfrecord shards too)."""
    return data.preprocessor.inverse(head(reference_rows(data), REFERENCE_EXAMPLES))


def reference_description(data: Any, real: np.ndarray) -> dict[str, Any]:
    """`computed_with`'s reference: the split and the examples used (and of how many, when
    they are a subset of it)."""
    total = len(reference_rows(data))
    described = {"split": reference_split(data), "examples": len(real)}
    return described if len(real) == total else {**described, "subset_of": total}


def is_digits_source(source: dict[str, Any]) -> bool:
    return source.get("type") == "builtin" and source.get("name") == "digits"


def is_digits(data: Any) -> bool:
    return is_digits_source(data.source)


def inception_metrics(metrics: Sequence[str], kind: str, source: dict[str, Any]) -> list[str]:
    """The metrics among `metrics` that need InceptionV3 on this data: fid and
    inception_score always, kid and precision_recall on images other than the digits."""
    images = kind == "image" and not is_digits_source(source)
    return [m for m in metrics if m in INCEPTION_METRICS or (images and m in DEFAULT_SPACE_METRICS)]


def with_inception_weights(
    config: dict[str, Any], kind: str, source: dict[str, Any]
) -> dict[str, Any]:
    """`config` with `inception_weights` resolved to a local file when a wanted metric needs
    InceptionV3 (keras' download if no file is given). A check that takes seconds, so that
    an evaluation without real weights stops before any expensive work."""
    if not inception_metrics(config["metrics"], kind, source):
        return config
    path = features.inception_weights_file(config.get("inception_weights"))
    return {**config, "inception_weights": str(path)}


# The nominal range of the values of image sources whose levels are known, in data units.
EIGHT_BIT = (0.0, 255.0)
BUILTIN_IMAGE_RANGES = {"digits": (0.0, features.DIGITS_SCALE), "shapes2d": (0.0, 1.0)}


def nominal_range(source: dict[str, Any]) -> tuple[float, float] | None:
    """The range an image source's values are drawn from, when its levels are known: 8-bit
    pixels (image folders, keras' data sets, tfrecord images), the digits' 0..16, shapes2d's
    0..1. None for arrays of unknown units (npz, npy, tfrecord arrays)."""
    kind = source.get("type")
    if kind == "builtin":
        return BUILTIN_IMAGE_RANGES.get(str(source.get("name")))
    if kind in ("images", "keras"):
        return EIGHT_BIT
    x = (source.get("features") or {}).get("x") or {}
    return EIGHT_BIT if kind == "tfrecord" and x.get("type") == "image" else None


def inception_range(source: dict[str, Any], real: np.ndarray) -> tuple[tuple[float, float], str]:
    """The data-unit range mapped to InceptionV3's [-1, 1], and where it comes from: the
    data's nominal range when it is known (the held-out images' own extremes would stretch
    images whose brightest value is not the brightest level), else the reference images'
    observed range (from 0 when none is negative)."""
    nominal = nominal_range(source)
    if nominal is not None:
        return nominal, "the data's nominal range"
    low = float(min(real.min(), 0.0))
    return (low, float(real.max())), "the reference images' observed range (units unknown)"


class FeatureSpaces:
    """Features of the real and generated sets, computed once per evaluation, and a
    description of each space for `computed_with`."""

    def __init__(self, real: np.ndarray, fake: np.ndarray, data: Any, config: dict[str, Any]):
        self.real, self.fake, self.data, self.config = real, fake, data, config
        self._cache: dict[str, tuple[Features, Features] | Features] = {}
        self.described: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, float] = {}

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    def digits(self) -> Features:
        def compute() -> Features:
            classifier = features.digits_classifier()
            self.notes["fd_digits_classifier_accuracy"] = classifier.accuracy
            self.described["digits"] = classifier.describe()
            return (
                features.digits_features(classifier, self.real),
                features.digits_features(classifier, self.fake),
            )

        return self._cached("digits", compute)

    def _inception_both(self) -> tuple[Features, Features]:
        def compute() -> tuple[Features, Features]:
            network = features.inception_network(self.config.get("inception_weights"))
            value_range, origin = inception_range(self.data.source, self.real)
            self.described["inception"] = {
                **network.describe(),
                "input_range": list(value_range),
                "input_range_from": origin,
            }
            real = features.inception_features(network, self.real, value_range)
            fake = features.inception_features(network, self.fake, value_range)
            return real, fake

        return self._cached("inception", compute)

    def inception(self) -> Features:
        (real_pool, _), (fake_pool, _) = self._inception_both()
        return real_pool, fake_pool

    def inception_probabilities(self) -> np.ndarray:
        return self._inception_both()[1][1]

    def default_name(self) -> str:
        """The feature space of kid and precision_recall for this data."""
        if is_digits(self.data):
            return "digits"
        return "inception" if self.data.kind == "image" else "data"

    def default(self) -> Features:
        name = self.default_name()
        if name == "digits":
            return self.digits()
        if name == "inception":
            return self.inception()
        self.described["data"] = {"network": "none: the data's own values, flattened"}
        return self.real.reshape(len(self.real), -1), self.fake.reshape(len(self.fake), -1)

    def describe(self, name: str) -> dict[str, Any]:
        """computed_with of a metric in the `name` space (with its weights' caveat)."""
        described = self.described[name]
        return {"features": described, **features.weights_caveat(described)}


def sample_quality(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """The sample-quality metrics among `config["metrics"]` (empty if none)."""
    metrics = Metrics()
    wanted = [m for m in config["metrics"] if m in SAMPLE_METRICS]
    if not wanted:
        return metrics
    real = reference_data(data)
    count = int(config["num_samples"])
    labels = sample_labels(model, data, count)
    fake = draw_samples(model, count, data, labels)
    if not np.isfinite(fake).all():
        raise RunError(
            f"{', '.join(wanted)}: the model's samples hold NaN or infinite values, so the "
            "model diverged; look at the run's history.csv and train again with a lower "
            "learning_rate or clipnorm"
        )
    metrics.samples = fake  # samples.png shows what was scored (`training.drawn_samples`)
    spaces = FeatureSpaces(real, fake, data, config)
    common = {
        "samples": len(fake),
        **decoder_means(model),
        **labels_description(labels),
        "reference": reference_description(data, real),
    }
    for name in wanted:
        try:
            values, how = METRICS[name](spaces)
        except ValueError as err:  # too few samples, ill-conditioned covariances...
            raise RunError(_not_computed(name, err, len(fake), len(real), data)) from None
        how = {k: v for k, v in {**common, **how}.items() if v is not None}
        for key, value in values.items():
            metrics.add(key, value, how)
    if "fd_digits_classifier_accuracy" in spaces.notes:
        metrics.add(
            "fd_digits_classifier_accuracy",
            spaces.notes["fd_digits_classifier_accuracy"],
            spaces.describe("digits"),
        )
    return metrics


Computed = tuple[dict[str, float], dict[str, Any]]  # values, and what they were computed with
# A Frechet distance needs as many samples and real examples as its network has features
# (one per feature, or the covariances are singular and the distance heavily biased: real
# digits score 154 against real digits from 10 samples, 5 from 1617): the spec's
# gencompile.spec.checks.FRECHET_FEATURES.
FRECHET_FEATURES = {
    "fid": (features.INCEPTION_FEATURES, "InceptionV3"),
    "fd_digits": (64, "the digits classifier"),  # its penultimate layer's width
}


def _fd_digits(spaces: FeatureSpaces) -> Computed:
    _enough_for_frechet("fd_digits", spaces)
    value = distances.frechet_distance_of(*spaces.digits())
    return {"fd_digits": value}, spaces.describe("digits")


def _fid(spaces: FeatureSpaces) -> Computed:
    _enough_for_frechet("fid", spaces)
    value = distances.frechet_distance_of(*spaces.inception())
    return {"fid": value}, spaces.describe("inception")


def _enough_for_frechet(name: str, spaces: FeatureSpaces) -> None:
    """Refuse, before any feature is computed, a Frechet distance of fewer samples or real
    examples than its network's features: their covariances would be singular and the
    distance heavily biased (the spec's checks refuse the same where the counts are known)."""
    count, network = FRECHET_FEATURES[name]
    if len(spaces.fake) < count:
        raise ValueError(
            f"fewer samples than {network}'s {count} features bias {name} heavily; it needs "
            f"at least {count}{' (TTUR recommends 10000)' if name == 'fid' else ''}, and kid "
            "is unbiased with fewer"
        )
    if len(spaces.real) < count:
        raise ValueError("too few real examples")  # `_not_computed` says what to do


def _kid(spaces: FeatureSpaces) -> Computed:
    real, fake = spaces.default()
    estimate = distances.kernel_inception_distance(
        real, fake, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=KID_SEED
    )
    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    how = {**spaces.describe(spaces.default_name()), "subsets": KID_SUBSETS}
    return {"kid": estimate.mean, "kid_std": estimate.std}, {**how, "subset_size": size}


def _inception_score(spaces: FeatureSpaces) -> Computed:
    estimate = distances.inception_score(spaces.inception_probabilities(), splits=IS_SPLITS)
    how = {**spaces.describe("inception"), "splits": IS_SPLITS, "reference": None}
    return {"inception_score": estimate.mean, "inception_score_std": estimate.std}, how


def _precision_recall(spaces: FeatureSpaces) -> Computed:
    precision, recall = distances.precision_recall(*spaces.default(), k=PR_NEIGHBOURS)
    how = {**spaces.describe(spaces.default_name()), "k": PR_NEIGHBOURS}
    return {"precision": precision, "recall": recall}, how


def _energy_distance(spaces: FeatureSpaces) -> Computed:
    real, fake = spaces.real, spaces.fake
    value = distances.energy_distance(real.reshape(len(real), -1), fake.reshape(len(fake), -1))
    return {"energy_distance": value}, {"features": {"network": "none: data units"}}


def _mode_coverage(spaces: FeatureSpaces) -> Computed:
    source = spaces.data.source
    centres = data_mode_centers(source)  # of data.source.classes alone when it is set
    coverage = distances.mode_coverage(
        spaces.fake, centres, std=float(source["std"]), threshold=MODE_THRESHOLD
    )
    values = {
        "modes_captured": float(coverage.modes_captured),
        "high_quality": coverage.high_quality_fraction,
    }
    how = {"modes": len(centres), "threshold_std": MODE_THRESHOLD, "reference": None}
    return values, how


def too_few_real(name: str, real: int, split: str, total: int = 0) -> str:
    """`name: the split holds ...; what to do` when `real` reference examples are fewer
    than the metric compares its samples with, else "". `total` is the examples of both
    splits, which the advice of a validation split is computed from."""
    need = REAL_MINIMUM.get(name, 0)
    if real >= need:
        return ""
    more = _more_held_out(need, total) if split == "validation" else "use more data"
    return (
        f"{name}: the {split} split holds {real} example(s), and {name} compares the "
        f"samples with at least {need}; {more}"
    )


MOST_HELD_OUT = 0.5  # the largest validation_split advised (as gencompile.spec.checks)


def _more_held_out(need: int, total: int) -> str:
    """The validation_split that holds out `need` of `total` examples, when one up to
    MOST_HELD_OUT does (the spec's checks advise the same for a built-in data set)."""
    if held_out_count(total, MOST_HELD_OUT) < need:
        return "use more data, or another metric (kid is unbiased with few examples)"
    fraction = split_holding_out(need, total)
    return f"set data.validation_split to at least {fraction:g} ({need} examples)"


def check_reference_size(model: keras.Model, data: Any, config: dict[str, Any]) -> None:
    """Refuse, before training, a sample metric whose reference split holds too few
    examples: a data file's size is known only once it is read (the spec's checks refuse
    it for a built-in data set)."""
    wanted = [m for m in config["metrics"] if m in SAMPLE_METRICS]
    if not wanted:
        return
    rows = reference_rows(data)
    real = min(len(rows), REFERENCE_EXAMPLES)
    for name in wanted:
        too_few = too_few_real(name, real, reference_split(data), example_total(data))
        if too_few:
            raise RunError(too_few)


def _not_computed(name: str, err: ValueError, samples: int, real: int, data: Any) -> str:
    """Why a sample metric failed, naming the side that holds too few rows when one does
    (the spec's checks refuse a held-out split too small for a built-in data set; a data
    file's size is known only here)."""
    split = reference_split(data)
    need_samples = SAMPLE_MINIMUM.get(name, 0)
    if samples < need_samples:  # the spec's checks refuse this too, at evaluation.num_samples
        return (
            f"cannot compute {name}: it needs at least {need_samples} samples, not {samples}; "
            f"raise evaluation.num_samples (of a trained run: gencompile evaluate RUN "
            f"--num-samples {need_samples} or more)"
        )
    too_few = too_few_real(name, real, split, example_total(data))
    if too_few:
        return f"cannot compute {too_few}"
    return (
        f"cannot compute {name}: {err} ({samples} samples against {real} {split} examples); "
        "raise evaluation.num_samples (of a trained run: gencompile evaluate RUN "
        "--num-samples N), or data.validation_split for more held-out examples"
    )


# The fewest real examples each metric compares the samples with: one per feature of a
# Frechet distance's network, gencompile.metric_minimums' for the others (the spec's checks
# hold the same numbers for built-in data, gencompile.spec.checks.REFERENCE_MINIMUM).
REAL_MINIMUM = {
    **{name: count for name, (count, _) in FRECHET_FEATURES.items()},
    **REAL_FEWEST,
}


METRICS: dict[str, Callable[[FeatureSpaces], Computed]] = {
    "fd_digits": _fd_digits,
    "fid": _fid,
    "kid": _kid,
    "inception_score": _inception_score,
    "precision_recall": _precision_recall,
    "energy_distance": _energy_distance,
    "mode_coverage": _mode_coverage,
}
SAMPLE_METRICS = tuple(METRICS)  # the spec's evaluation.SAMPLE_METRICS (a test checks)
