"""Cross-field checks of a validated spec, each a pure function returning located problems.

pydantic checks each value on its own; these checks relate values across sections (data
against model, metrics against family). Shape checks need inferred shapes and live in the
compiler (`gencompile.compiler.layers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gencompile.datafiles import held_out_count, split_holding_out
from gencompile.errors import Problem
from gencompile.levels import source_levels
from gencompile.metric_minimums import IS_SPLITS, PR_NEIGHBOURS, REAL_MINIMUM, SAMPLE_MINIMUM
from gencompile.parent_runs import run_problem, weights_problem
from gencompile.spec.data import (
    BUILTIN_ARGUMENTS,
    DATA_LEVELS,
    BuiltinSource,
    CsvSource,
    ImagesSource,
    KerasSource,
    ParquetSource,
    is_text_source,
)
from gencompile.spec.diagnostics import did_you_mean
from gencompile.spec.evaluation import (
    BUILTIN_SAMPLE_METRICS,
    DEFAULT_NUM_SAMPLES,
    FID_FEATURES,
    FID_NUM_SAMPLES,
    HELDOUT_METRICS,
    IMAGE_ONLY_METRICS,
    LABELLED_SAMPLE_METRICS,
    METRIC_DATA,
    METRIC_DATA_ADVICE,
    SAMPLE_METRICS,
    VECTOR_ONLY_METRICS,
)
from gencompile.spec.families.autoregressive import check_autoregressive
from gencompile.spec.families.mixture import check_mixture
from gencompile.spec.loader import Marks, PathKey
from gencompile.spec.logs import log_direction, logged_metrics
from gencompile.spec.networks import KerasApplication, Network, Residual
from gencompile.spec.root import Spec

# Built-in data sets with class labels, and how many classes they have (None: from args).
LABELLED_BUILTINS = {
    "digits": 10,
    "moons": 2,
    "circles": 2,
    "ring8": 8,
    "grid25": 25,
    "blobs": None,
    "shapes2d": 4,  # the shape: square, ellipse, heart, triangle
}
KERAS_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
# A Frechet distance compares covariances of its network's features: with fewer samples
# (or real examples) than features they are singular and the distance heavily biased (the
# digits classifier's 64: real digits against real digits score 154 from 10 samples, 5
# from 1617), so fid and fd_digits refuse fewer (gencompile.runtime.metrics.samples).
FD_DIGITS_FEATURES = 64
FRECHET_FEATURES = {"fid": FID_FEATURES, "fd_digits": FD_DIGITS_FEATURES}
NETWORKS = {"fid": "InceptionV3", "fd_digits": "the digits classifier"}
# Why each other sample metric needs its SAMPLE_MINIMUM.
SAMPLE_NEEDS = {
    "kid": "its unbiased estimate compares pairs of distinct samples",
    "energy_distance": "it compares pairs of distinct samples",
    "mode_coverage": "statistics of at least 2 samples",
    "precision_recall": f"more than its k = {PR_NEIGHBOURS} nearest neighbours",
    "inception_score": f"at least one in each of its {IS_SPLITS} splits",
}
# The fewest real examples a sample metric compares the samples with (the held-out split
# when there is one): a Frechet distance one per feature, the others as the runtime needs
# (gencompile.metric_minimums).
REFERENCE_MINIMUM = {**FRECHET_FEATURES, **REAL_MINIMUM}

Found = Iterator[tuple[PathKey, str, str | None]]


def check_builtin_arguments(spec: Spec) -> Found:
    source = spec.data.source
    if not isinstance(source, BuiltinSource):
        return
    allowed = BUILTIN_ARGUMENTS[source.name]
    for arg in sorted(source.model_fields_set - {"type", "name", "classes", "fraction"}):
        if arg not in allowed:
            takes = ", ".join(allowed) if allowed else "no arguments"
            yield (
                ("data", "source", arg),
                f"builtin data set '{source.name}' takes no argument '{arg}'",
                did_you_mean(arg, list(allowed)) or f"it takes {takes}",
            )


def check_class_filter(spec: Spec) -> Found:
    """`classes:` keeps classes a labelled built-in data set has."""
    source = spec.data.source
    if not isinstance(source, BuiltinSource) or source.classes is None:
        return
    if source.name not in LABELLED_BUILTINS:
        labelled = ", ".join(LABELLED_BUILTINS)
        yield (
            ("data", "source", "classes"),
            f"builtin data set '{source.name}' has no labels to keep classes of",
            f"remove classes:, or use a labelled data set: {labelled}",
        )
        return
    _, count = source_classes(spec)
    for i, label in enumerate(source.classes):
        if count is not None and label >= count:
            yield (
                ("data", "source", "classes", i),
                f"'{source.name}' has classes 0..{count - 1}, not {label}",
                None,
            )


def check_fraction(spec: Spec) -> Found:
    """`fraction:` draws from example arrays; the text data set is a stream of lines."""
    source = spec.data.source
    if (
        isinstance(source, BuiltinSource)
        and source.fraction is not None
        and source.name == "arithmetic"
    ):
        yield (
            ("data", "source", "fraction"),
            "builtin data set 'arithmetic' is text: fraction applies to example arrays",
            "remove fraction:, or lower n_samples",
        )


def source_classes(spec: Spec) -> tuple[bool, int | None]:
    """(has labels, number of classes if known without reading files)."""
    source = spec.data.source
    if source.type == "builtin":
        if source.name not in LABELLED_BUILTINS:
            return False, None
        if source.name == "blobs":
            return True, int(source.arguments()["centers"])
        return True, LABELLED_BUILTINS[source.name]
    if source.type == "keras":
        return True, KERAS_CLASSES[source.name]
    if source.type == "npz":
        return source.labels is not None, None
    if source.type in ("csv", "parquet"):
        return source.label_column is not None, None
    if source.type == "images":
        return True, None  # class subfolders; checked when the data is read
    if source.type == "tfrecord":
        return source.features.label is not None, None
    return False, None


def check_conditional_labels(spec: Spec) -> Found:
    conditional = getattr(spec.model, "conditional", None)
    if conditional is None:
        return
    has_labels, classes = source_classes(spec)
    if not has_labels:
        yield (
            ("model", "conditional"),
            f"a conditional {spec.model.family} needs labelled data, but data.source "
            f"({spec.data.source.type}) has no labels",
            "use a labelled source: a builtin such as digits, npz with `labels:`, "
            "csv or parquet with `label_column:`, or an image folder with class subfolders",
        )
    elif classes is not None and classes != conditional.num_classes:
        yield (
            ("model", "conditional", "num_classes"),
            f"the data has {classes} classes but num_classes is {conditional.num_classes}",
            f"set num_classes: {classes}",
        )


def check_unit_interval_likelihood(spec: Spec) -> Found:
    likelihood = getattr(spec.model, "likelihood", None)
    if likelihood is None or likelihood.type not in ("bernoulli", "categorical"):
        return
    if spec.data.preprocessing.scale != (0.0, 1.0):
        yield (
            ("model", "likelihood", "type"),
            f"a {likelihood.type} likelihood models values in [0, 1], "
            "but the data is not scaled to [0, 1]",
            "set data.preprocessing: {scale: [0, 1]}",
        )


def check_bernoulli_bits_per_dim(spec: Spec) -> Found:
    """bits_per_dim needs a normalised likelihood: a bernoulli one of data that is not
    binary (every built-in and keras data set) is a cross-entropy, not -log p(x). Files are
    checked by the runtime, which sees their values."""
    likelihood = getattr(spec.model, "likelihood", None)
    metrics = list(spec.evaluation.metrics or ())
    source = spec.data.source
    if likelihood is None or likelihood.type != "bernoulli" or "bits_per_dim" not in metrics:
        return
    if not isinstance(source, (BuiltinSource, KerasSource)):
        return
    levels = DATA_LEVELS.get(source.name)
    what = f"its {levels} grey levels" if levels else "its continuous values"
    better = (
        f"use model.likelihood: {{type: categorical, bins: {levels}}}, one bin per level"
        if levels
        else "use model.likelihood: {type: gaussian} or {type: logistic}"
    )
    yield (
        ("evaluation", "metrics", metrics.index("bits_per_dim")),
        f"bits_per_dim needs a normalised likelihood, but a bernoulli likelihood of the "
        f"'{source.name}' data ({what}, not 0 and 1) is a cross-entropy, not -log p(x)",
        f"{better}; or drop bits_per_dim: elbo and iwae_nll are reported as cross-entropies",
    )


def density_on_levels(spec: Spec) -> tuple[int, str, str] | None:
    """(levels, what the model is, what to do) when the model scores data with known
    discrete levels by a continuous density, with no dequantization: its log-density at
    the levels is not the log of a probability, so it has no bits of information."""
    levels = source_levels(spec.data.source.model_dump(mode="json"))
    if levels is None:
        return None
    model = spec.model
    likelihood = getattr(model, "likelihood", None)
    if model.family == "flow" and model.dequantization is None:
        return (
            levels,
            "a flow without dequantization",
            (f"add model.dequantization: {{type: uniform, bins: {levels}}}"),
        )
    if model.family == "mixture":
        return (
            levels,
            "a Gaussian mixture",
            (
                "remove bits_per_dim: a Gaussian mixture has no discrete form here, and its "
                "nll is reported labelled as a density"
            ),
        )
    if (
        model.family == "vae"
        and likelihood is not None
        and likelihood.type
        in (
            "gaussian",
            "logistic",
        )
    ):
        return (
            levels,
            f"a {likelihood.type} likelihood",
            (f"use model.likelihood: {{type: categorical, bins: {levels}}}, one bin per level"),
        )
    return None


def check_density_bits_per_dim(spec: Spec) -> Found:
    """bits_per_dim of data with known discrete levels needs a probability of each level:
    a continuous density evaluated at the levels (a mixture, a gaussian or logistic
    likelihood, a flow without dequantization) is not one, and can beat any real code
    length by shrinking its variance. Files of numbers have no known levels."""
    metrics = list(spec.evaluation.metrics or ())
    found = density_on_levels(spec) if "bits_per_dim" in metrics else None
    if found is None:
        return
    levels, what, advice = found
    yield (
        ("evaluation", "metrics", metrics.index("bits_per_dim")),
        f"bits_per_dim needs a probability of each of the data's {levels} levels, but "
        f"{what} gives a density at them, not bits of information",
        advice,
    )


def check_metrics(spec: Spec) -> Found:
    available = type(spec.model).metrics_available
    for i, name in enumerate(spec.evaluation.metrics or ()):
        if name not in available and name not in LABELLED_SAMPLE_METRICS:
            yield (
                ("evaluation", "metrics", i),
                f"metric '{name}' is not available for family {spec.model.family}; "
                f"available: {', '.join(available)}",
                did_you_mean(name, available),
            )


def check_metric_data(spec: Spec) -> Found:
    """fd_digits, mode_coverage and mig are defined for particular built-in data sets."""
    source = spec.data.source
    name = source.name if isinstance(source, BuiltinSource) else None
    for i, metric in enumerate(spec.evaluation.metrics or ()):
        needs = METRIC_DATA.get(metric)
        if needs and name not in needs:
            data = f"the built-in '{name}' data" if name else f"{source.type} data"
            yield (
                ("evaluation", "metrics", i),
                f"metric '{metric}' is defined for the built-in {' or '.join(needs)} data, "
                f"not {data}",
                METRIC_DATA_ADVICE.get(
                    metric,
                    "use kid or precision_recall (any data), fid (images) or "
                    "energy_distance (vectors)",
                ),
            )


def check_labelled_sample_metrics(spec: Spec) -> Found:
    """tstr and tstr_augmentation train a classifier on labelled samples: a conditional model
    (whose data has labels: `check_conditional_labels`) draws them."""
    for i, metric in enumerate(spec.evaluation.metrics or ()):
        if metric not in LABELLED_SAMPLE_METRICS:
            continue
        family = spec.model.family
        why = f"metric '{metric}' trains a classifier on labelled samples of the model"
        if "conditional" not in type(spec.model).model_fields:
            yield (
                ("evaluation", "metrics", i),
                f"{why}, and the {family} family has no conditional models",
                "use a conditional vae, gan or diffusion model, such as specs/cvae_digits.yaml",
            )
        elif getattr(spec.model, "conditional", None) is None:
            yield (
                ("evaluation", "metrics", i),
                f"{why}, but this {family} is not conditional (no model.conditional)",
                "set model.conditional: {num_classes: N} on labelled data, "
                "as specs/cvae_digits.yaml does",
            )


def check_early_stopping(spec: Spec) -> Found:
    stopping = spec.training.early_stopping
    if stopping is None:
        return
    known = logged_metrics(spec, validated=True)  # a val_ one without a split: told below
    if stopping.monitor not in known:
        yield (
            ("training", "early_stopping", "monitor"),
            f"'{stopping.monitor}' is not a logged metric; logged: {', '.join(known)}",
            did_you_mean(stopping.monitor, known),
        )
    elif stopping.monitor.startswith("val_") and spec.data.validation_split == 0:
        yield (
            ("training", "early_stopping", "monitor"),
            f"monitoring '{stopping.monitor}' needs a validation split, but validation_split is 0",
            "set data.validation_split (e.g. 0.1) or monitor a training metric",
        )
    elif stopping.mode == "auto" and log_direction(stopping.monitor) is None:
        yield (
            ("training", "early_stopping", "monitor"),
            f"cannot tell whether a higher or a lower '{stopping.monitor}' is better",
            "set training.early_stopping.mode: min or max",
        )


def check_optimizers(spec: Spec) -> Found:
    """`training.optimizers` only for families with one optimizer per network, and then
    `training.optimizer` must not be set if every role has its own."""
    optimizers = spec.training.optimizers
    if optimizers is None:
        return
    if "optimizers" in unused_training(spec.model):
        return  # refused, with the family's reason, by check_unused_training
    roles = getattr(type(spec.model), "optimizer_roles", ())
    if not roles:
        yield (
            ("training", "optimizers"),
            f"the {spec.model.family} family trains with one optimizer",
            "use training.optimizer",
        )
        return
    given = [role for role in roles if getattr(optimizers, role) is not None]
    if len(given) == len(roles) and "optimizer" in spec.training.model_fields_set:
        yield (
            ("training", "optimizer"),
            f"unused: training.optimizers sets the {' and the '.join(roles)} optimizers",
            "remove training.optimizer, or leave a role out of training.optimizers to use it",
        )


def unused_training(model: Any) -> dict[str, tuple[str, str]]:
    """The training settings a family's model does not use (its `unused_training`, if it
    declares one), each with the message and hint that refuse it."""
    declared = getattr(model, "unused_training", None)
    return {} if declared is None else dict(declared())


def check_unused_training(spec: Spec) -> Found:
    """A training setting the family does not use is refused where the spec sets it."""
    for key, (message, hint) in unused_training(spec.model).items():
        if spec.training.is_set(key):
            yield ("training", key), message, hint


def _network_fields(spec: Spec) -> Iterator[tuple[PathKey, Network]]:
    for name, value in spec.model:
        if isinstance(value, Network):
            yield ("model", name), value


def check_layer_names(spec: Spec) -> Found:
    """Layer names must be unique inside one network: they name Keras layers."""
    for path, network in _network_fields(spec):
        seen: dict[str, PathKey] = {}
        for layer_path, layer in _walk_layers(network.layers or [], (*path, "layers")):
            if layer.name is None:
                continue
            if layer.name in seen:
                yield (
                    (*layer_path, "name"),
                    f"layer name '{layer.name}' is used twice in this network",
                    "give each layer a unique name",
                )
            seen[layer.name] = layer_path


def _walk_layers(layers: list[Any], path: PathKey) -> Iterator[tuple[PathKey, Any]]:
    for i, layer in enumerate(layers):
        yield (*path, i), layer
        if isinstance(layer, Residual):
            yield from _walk_layers(layer.layers, (*path, i, "layers"))


def application_weights_files(spec: Spec) -> list[tuple[PathKey, str]]:
    """The weights files of the spec's keras_application layers, with their paths."""
    return [
        ((*layer_path, "weights"), layer.weights)
        for path, network in _network_fields(spec)
        for layer_path, layer in _walk_layers(network.layers or [], (*path, "layers"))
        if isinstance(layer, KerasApplication) and layer.weights is not None
    ]


def evaluated_metrics(spec: Spec) -> list[str]:
    """The metrics a run computes: evaluation.metrics, or when null the defaults."""
    if spec.evaluation.metrics is not None:
        return list(spec.evaluation.metrics)
    return default_metrics(spec)


def default_metrics(spec: Spec) -> list[str]:
    """The family's default metrics (which may depend on the data), plus, for families that
    ask for them, the built-in data set's offline sample-quality metrics; held-out ones
    only with a validation split."""
    model, source = spec.model, spec.data.source
    metrics: list[str] = (
        model.default_metrics(spec.data)
        if hasattr(model, "default_metrics")
        else list(type(model).metrics_default)
    )
    if getattr(type(model), "sample_metrics_by_default", False) and source.type == "builtin":
        metrics = [*metrics, *BUILTIN_SAMPLE_METRICS.get(source.name, ())]
    if spec.data.validation_split == 0:
        # Without a held-out split these would be missing from metrics.json; leaving
        # them out here makes the lock and the report say what is computed.
        metrics = [m for m in metrics if m not in HELDOUT_METRICS]
    return metrics


# The built-in data sets of images (gencompile.compiler.data_shapes infers the same, a
# test checks); the others are vectors, but arithmetic, which is text.
IMAGE_BUILTINS = ("digits", "shapes2d")


def builtin_kind(source: BuiltinSource) -> str:
    """'image', 'vector' or 'text': what the examples of a built-in data set are."""
    if is_text_source(source):
        return "text"
    return "image" if source.name in IMAGE_BUILTINS else "vector"


def fits_kind(metric: str, kind: str) -> bool:
    """Whether a metric applies to data of this kind (the compiler refuses the others)."""
    if metric in IMAGE_ONLY_METRICS:
        return kind == "image"
    if metric in VECTOR_ONLY_METRICS:
        return kind == "vector"
    return not (kind == "text" and metric in SAMPLE_METRICS)


def source_kind(source: Any) -> str | None:
    """'image', 'vector' or 'text' where the source's type says it (a built-in data set, a
    table, an image folder, a text file); None for arrays and records of any shape."""
    if isinstance(source, BuiltinSource):
        return builtin_kind(source)
    if isinstance(source, (CsvSource, ParquetSource)):
        return "vector"
    if isinstance(source, ImagesSource):
        return "image"
    return "text" if is_text_source(source) else None


def metrics_for_data(spec: Spec) -> list[str]:
    """The metrics a run computes, but those that do not apply to the data's kind (where
    the source says it): the compiler refuses them saying why, and checking their sizes
    first would send the user after more data for a metric that can never apply."""
    kind = source_kind(spec.data.source)
    if kind is None:
        return evaluated_metrics(spec)
    return [metric for metric in evaluated_metrics(spec) if fits_kind(metric, kind)]


def num_samples(spec: Spec) -> int:
    """evaluation.num_samples, or its default: more when fid is asked (FID_NUM_SAMPLES)."""
    given = spec.evaluation.num_samples
    if given is not None:
        return given
    return FID_NUM_SAMPLES if "fid" in evaluated_metrics(spec) else DEFAULT_NUM_SAMPLES


def check_sample_count(spec: Spec) -> Found:
    """Too few samples for a sample metric: a Frechet distance (fid, fd_digits) of fewer
    samples than its network's features is heavily biased (the sample covariance is
    singular), and kid, precision_recall, inception_score... cannot be computed at all."""
    given = spec.evaluation.num_samples
    if given is None:  # the default is enough for each (FID_NUM_SAMPLES with fid)
        return
    for metric in metrics_for_data(spec):
        problem = too_few_samples(metric, given)
        if problem is not None:
            yield ("evaluation", "num_samples"), *problem
            return


def too_few_samples(metric: str, count: int) -> tuple[str, str] | None:
    """The message and advice when `count` samples are too few for `metric`, else None."""
    if metric in FRECHET_FEATURES:
        return _too_few_for_frechet(metric, count)
    need = SAMPLE_MINIMUM.get(metric, 0)
    if count >= need:
        return None
    return (
        f"{metric} needs at least {need} samples ({SAMPLE_NEEDS[metric]}), not {count}",
        f"set evaluation.num_samples to at least {need} ({DEFAULT_NUM_SAMPLES} is the "
        f"default: leave it out; of a trained run: gencompile evaluate RUN --num-samples "
        f"{DEFAULT_NUM_SAMPLES})",
    )


def _too_few_for_frechet(metric: str, count: int) -> tuple[str, str] | None:
    need = FRECHET_FEATURES[metric]
    if count >= need:
        return None
    default = FID_NUM_SAMPLES if metric == "fid" else DEFAULT_NUM_SAMPLES
    recommended = ", as TTUR recommends," if metric == "fid" else ""
    return (
        f"{metric} compares covariances of {NETWORKS[metric]}'s {need} features, and "
        f"{count} samples are fewer than that: {metric} would be heavily biased (two sets "
        "of the same distribution would score far from 0)",
        f"set evaluation.num_samples to at least {need} ({default}{recommended} is the "
        f"default with {metric}: leave it out; of a trained run: gencompile evaluate RUN "
        f"--num-samples {default}), or use kid, which is unbiased with fewer samples",
    )


def check_held_out_size(spec: Spec) -> Found:
    """A sample metric compares the samples with the held-out split: a built-in data set's
    size is known, so a split too small for it is refused here, not after training."""
    count, fraction = spec.data.example_count(), spec.data.validation_split
    if count is None:
        return
    for metric in metrics_for_data(spec):
        need = REFERENCE_MINIMUM.get(metric, 0)
        asked = spec.evaluation.metrics or []
        at_metric: PathKey = ("evaluation", "metrics")
        if metric in asked:
            at_metric = (*at_metric, asked.index(metric))
        if fraction == 0 and count < need:  # the samples are compared with the training split
            yield (
                at_metric,
                f"{metric} compares the samples with at least {need} real examples, and "
                f"without a validation split it has the {count} training examples",
                "use more data, or another metric (kid is unbiased with few examples)",
            )
            return
        if fraction == 0:
            continue
        held = held_out_count(count, fraction)
        if held < need and held_out_count(count, MOST_HELD_OUT) < need:
            yield (
                at_metric,
                f"{metric} compares the samples with at least {need} held-out examples, and "
                f"the data has {count} examples in all",
                "use more data, or another metric (kid is unbiased with few examples)",
            )
            return
        if held < need:
            least = split_holding_out(need, count)
            example = ", e.g. 0.1" if held_out_count(count, 0.1) >= need else ""
            yield (
                ("data", "validation_split"),
                f"{fraction:g} holds out {held} of the {count} examples, and {metric} "
                f"compares the samples with at least {need} held-out examples",
                f"set data.validation_split to at least {least:g} ({need} examples){example}",
            )
            return


MOST_HELD_OUT = 0.5  # the largest validation_split the advice above suggests


# The divisors listed for a steps_per_execution that divides no epoch: up to auto's cap.
MOST_STEPS_PER_EXECUTION = 32  # gencompile.runtime.training.MAX_STEPS_PER_EXECUTION


def epoch_steps(spec: Spec) -> tuple[int, str] | None:
    """The training steps of an epoch and how they are counted, where the spec alone says:
    training.steps_per_epoch, or a built-in data set's training split in batches (every
    batch counts, the last one too). Text is cut into windows only when it is read."""
    training, data = spec.training, spec.data
    if training.steps_per_epoch is not None:
        return training.steps_per_epoch, "training.steps_per_epoch"
    count = data.example_count()
    if count is None or is_text_source(data.source):
        return None
    train = count - held_out_count(count, data.validation_split)
    return -(-train // data.batch_size), f"{train} training examples / batch {data.batch_size}"


def check_steps_per_execution(spec: Spec) -> Found:
    """A number of steps per call must divide the steps of an epoch (Keras would run the
    epoch's last call on into the next epoch's batches: the runtime refuses it, after the
    run folder is made). Under a distribution strategy it is 1 or auto (TrainingSpec)."""
    per_call = spec.training.steps_per_execution
    if per_call == "auto" or spec.training.distribution.strategy != "none":
        return
    found = epoch_steps(spec)
    if found is None or found[0] % per_call == 0:
        return
    steps, counted = found
    most = max(per_call, MOST_STEPS_PER_EXECUTION)
    divisors = [str(d) for d in range(1, min(steps, most) + 1) if steps % d == 0]
    yield (
        ("training", "steps_per_execution"),
        f"{per_call} does not divide the {steps} steps of an epoch ({counted})",
        f"use {', '.join(divisors)} or auto",
    )


def check_init_from_files(spec: Spec) -> Found:
    """The run or weights file `model.init_from` names, read from the files alone: a run
    folder that finished training a model of this family, or a weights file that exists.
    Not one of CHECKS: it reads the disk, so it runs for a spec about to be used (a spec
    file), not for a run's lock (whose parent may since have moved)."""
    init_from = getattr(spec.model, "init_from", None)  # a registered family may lack it
    if init_from is None:
        return
    if init_from.run is not None:
        found = run_problem(init_from.run, spec.model.family)
    else:
        found = weights_problem(str(init_from.weights))
    if found is not None:
        yield ("model", "init_from", init_from.key), found[0], found[1]


def check_heldout_metrics(spec: Spec) -> Found:
    asked = set(spec.evaluation.metrics or ())
    if spec.data.validation_split == 0 and asked & set(HELDOUT_METRICS):
        yield (
            ("evaluation", "metrics"),
            "held-out metrics need a validation split, but data.validation_split is 0",
            "set data.validation_split (e.g. 0.1)",
        )


# Every name a metric of evaluation.metrics writes into metrics.json, when not its own
# alone (gencompile.runtime.metrics.samples and .tstr).
METRIC_NAMES = {
    "precision_recall": ("precision", "recall"),
    "mode_coverage": ("modes_captured", "high_quality"),
    "kid": ("kid", "kid_std"),
    "inception_score": ("inception_score", "inception_score_std"),
    "fd_digits": ("fd_digits", "fd_digits_classifier_accuracy"),
    "tstr": ("tstr_accuracy", "trtr_accuracy", "tstr_ratio"),
    "tstr_augmentation": ("subset_accuracy", "augmented_accuracy"),
}


def written_metrics(spec: Spec) -> list[str]:
    """The names this spec's evaluation writes into metrics.json."""
    return [
        name for metric in evaluated_metrics(spec) for name in METRIC_NAMES.get(metric, (metric,))
    ]


def metric_problem(metric: str, spec: Spec) -> tuple[str, str] | None:
    """Why this spec's runs do not produce `metric` (in metrics.json or history.csv), with
    what to do; None when they do. A sweep compares its trials by it: `sweep.metric` is
    checked here, `gencompile sweep --metric` by the sweep's plan."""
    written, logged = written_metrics(spec), logged_metrics(spec)
    if metric in written or metric in logged:
        return None
    if metric in logged_metrics(spec, validated=True):  # a val_ log, and no split
        return (
            f"{metric} is a validation log, and this spec holds out no data",
            "set data.validation_split (e.g. 0.1), or choose another metric",
        )
    message = (
        f"this spec's runs do not produce {metric!r} (metrics.json: "
        f"{', '.join(written) or 'none'}; per-epoch logs: {', '.join(logged)})"
    )
    if metric in type(spec.model).metrics_available:
        return message, f"add {metric} to evaluation.metrics, or give one of these"
    return message, did_you_mean(metric, [*written, *logged]) or "give one of these"


def producible_metrics(spec: Spec) -> list[str]:
    """Every name this spec's runs could write, whatever evaluation.metrics and the split
    ask for: the family's metrics (each name they write) and its logs, val_ ones too."""
    asked = [*type(spec.model).metrics_available, *LABELLED_SAMPLE_METRICS]
    written = [name for metric in asked for name in METRIC_NAMES.get(metric, (metric,))]
    return [*written, *logged_metrics(spec, validated=True)]


def check_sweep_metric(spec: Spec) -> Found:
    """The metric a sweep's trials are compared by is one this family's runs produce. One
    that evaluation.metrics or the split leaves out is told by `gencompile sweep` (the same
    metric_problem): a training's --set of them should not be refused for a sweep block."""
    metric = spec.sweep.metric if spec.sweep is not None else None
    if metric is None or metric in producible_metrics(spec):
        return
    found = metric_problem(metric, spec)
    if found is not None:
        yield ("sweep", "metric"), *found


def check_text_data(spec: Spec) -> Found:
    """Text is modelled by the autoregressive family only; txt samples need text."""
    text = is_text_source(spec.data.source)
    if text and spec.model.family != "autoregressive":
        yield (
            ("model", "family"),
            f"data.source is text, which the {spec.model.family} family does not model",
            "use family: autoregressive",
        )
    if not text and spec.output.samples.format == "txt":
        yield (
            ("output", "samples", "format"),
            "txt samples are written for text data, but data.source is not text",
            "set format: png or npz",
        )


CHECKS: tuple[Callable[[Spec], Found], ...] = (
    check_builtin_arguments,
    check_class_filter,
    check_fraction,
    check_conditional_labels,
    check_unit_interval_likelihood,
    check_bernoulli_bits_per_dim,
    check_density_bits_per_dim,
    check_metrics,
    check_metric_data,
    check_labelled_sample_metrics,
    check_early_stopping,
    check_unused_training,
    check_steps_per_execution,
    check_optimizers,
    check_layer_names,
    check_heldout_metrics,
    check_held_out_size,
    check_sample_count,
    check_text_data,
    check_sweep_metric,
    check_autoregressive,
    check_mixture,
)


# Rules against what a new run would train or evaluate badly. A run's own lock need not
# meet them to be opened: it may have been written before a rule existed, and it samples,
# evaluates, resumes and reproduces as it trained (`validate_raw(..., opened=True)`).
# `gencompile evaluate` checks the evaluation rules on the metrics and count it is asked for.
TRAINING_RULES: tuple[Callable[[Spec], Found], ...] = (
    check_unused_training,
    check_steps_per_execution,
    check_sweep_metric,
)
EVALUATION_RULES: tuple[Callable[[Spec], Found], ...] = (check_held_out_size, check_sample_count)


def run_checks(
    spec: Spec, marks: Marks, checks: tuple[Callable[[Spec], Found], ...] = CHECKS
) -> list[Problem]:
    return [
        marks.problem(path, message, hint)
        for check in checks
        for path, message, hint in check(spec)
    ]


def opened_run_checks() -> tuple[Callable[[Spec], Found], ...]:
    """The checks an opened run's lock must pass: all but the training and evaluation rules."""
    return tuple(c for c in CHECKS if c not in TRAINING_RULES + EVALUATION_RULES)
