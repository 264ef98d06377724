"""The context of one lowering: the spec, the problems found, the family-independent parts.

Each family's lowering parts (`compiler/families/`) receive a `Lowering` and build their
networks and model plan from it; the passes of `compiler/lower.py` call them in order.
This module imports no family, so the families can import it. Problems are collected and
raised together.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from gencompile.compiler.data_shapes import DataShape, DataShapeError, infer_data_shape
from gencompile.compiler.plan import ExtraPlan, NetworkPlan, PathKey, ProjectPlan, Shape
from gencompile.errors import Problem, SpecError
from gencompile.spec import LoadedSpec
from gencompile.spec.base import python_name
from gencompile.spec.checks import default_metrics, num_samples
from gencompile.spec.evaluation import (
    IMAGE_ONLY_METRICS,
    SAMPLE_METRICS,
    VECTOR_ONLY_METRICS,
)
from gencompile.spec.logs import log_direction
from gencompile.spec.root import Spec

FamilyModelT = TypeVar("FamilyModelT")
ModelPlanT = TypeVar("ModelPlanT")


class Lowering:
    """Context of one lowering: the spec, its marks, and the problems found so far."""

    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        self.problems: list[Problem] = []

    def report(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(self.loaded.marks.problem(path, message, hint))

    def family_model(self, cls: type[FamilyModelT]) -> FamilyModelT:
        """The spec's `model:` section as the family's own model (the registry picked the
        family by this section's tag, so a mismatch is a compiler bug)."""
        model = self.spec.model
        if not isinstance(model, cls):
            raise TypeError(f"{type(model).__name__} is not a {cls.__name__}")
        return model

    def fail_if_problems(self) -> None:
        if self.problems:
            raise SpecError(self.problems)

    # -- family-independent sections --------------------------------------------------------
    def data_shape(self) -> DataShape:
        try:
            shape = infer_data_shape(self.spec.data)
        except DataShapeError as err:
            self.report(err.path, str(err), err.hint)
            self.fail_if_problems()
            raise AssertionError("unreachable") from None
        if self.spec.data.augmentation and shape.kind != "image":
            self.report(
                ("data", "augmentation"),
                f"augmentation layers apply to images, but the data is {shape.kind} data "
                f"of shape {shape.shape}",
                "remove data.augmentation",
            )
        return shape

    def data_config(self, with_labels: bool) -> dict[str, Any]:
        data = self.spec.data
        source = data.source.model_dump(mode="json")
        if data.source.type == "builtin":
            source = {"type": "builtin", "name": data.source.name, **data.source.arguments()}
        return {
            "source": source,
            "validation_split": data.validation_split,
            "preprocessing": data.preprocessing.model_dump(mode="json"),
            "augmentation": [a.model_dump(mode="json") for a in data.augmentation],
            "batch_size": data.batch_size,
            "shuffle_buffer": data.shuffle_buffer,
            "cache": data.cache,
            "with_labels": with_labels,
            "drop_remainder": False,
        }

    def training_config(self) -> dict[str, Any]:
        training: dict[str, Any] = type_first(self.spec.training.model_dump(mode="json"))
        training.pop("regularization")  # lowered into the layers' kernel regularizers
        if training.get("optimizers") is None:  # one optimizer: no per-network entry
            training.pop("optimizers", None)
        stopping = training.get("early_stopping")
        if stopping is not None and stopping["mode"] == "auto":  # Keras' auto knows losses only
            stopping["mode"] = log_direction(stopping["monitor"])  # known: spec checks
        return training

    def regularizer(self) -> tuple[float, float] | None:
        reg = self.spec.training.regularization
        return (reg.l1, reg.l2) if (reg.l1 or reg.l2) else None

    def kernel_penalty_words(self, joiner: str = " + ") -> str:
        """The regularizer for a loss's description: " + L2 1e-05 penalties on the kernels"."""
        regularizer = self.regularizer()
        if regularizer is None:
            return ""
        terms = [f"{n} {v:g}" for n, v in zip(("L1", "L2"), regularizer, strict=True) if v]
        return f"{joiner}{' and '.join(terms)} penalties on the kernels"

    def evaluation_config(self) -> dict[str, Any]:
        evaluation = self.spec.evaluation.model_dump(mode="json")
        if evaluation["metrics"] is None:
            evaluation["metrics"] = self.default_metrics()
        evaluation["num_samples"] = num_samples(self.spec)  # its default depends on fid
        return evaluation

    def default_metrics(self) -> list[str]:
        """The family's defaults with the data set's sample metrics (spec.checks')."""
        return default_metrics(self.spec)

    def check_metric_data_kind(self, kind: str) -> None:
        """Image metrics need images and vector metrics vectors (`kind`: the data's)."""
        for i, name in enumerate(self.spec.evaluation.metrics or ()):
            if name in SAMPLE_METRICS and kind == "text":
                self.report(
                    ("evaluation", "metrics", i),
                    f"metric '{name}' compares images or vectors, but the data is text",
                    "use perplexity, bits_per_char, bleu or validity for text",
                )
            elif name in IMAGE_ONLY_METRICS and kind != "image":
                self.report(
                    ("evaluation", "metrics", i),
                    f"metric '{name}' compares images through InceptionV3, but the data is "
                    f"{kind} data",
                    "use energy_distance, kid or precision_recall for vectors",
                )
            elif name in VECTOR_ONLY_METRICS and kind != "vector":
                self.report(
                    ("evaluation", "metrics", i),
                    f"metric '{name}' is computed on low-dimensional vectors, but the data is "
                    f"{kind} data",
                    "use fd_digits (digits), fid or kid for images",
                )

    def resolved_spec(self) -> dict[str, Any]:
        """The spec with every default filled in (what the lock records)."""
        resolved = self.spec.model_dump(mode="json")
        resolved["data"]["source"] = self.data_config(False)["source"]
        resolved["evaluation"] = self.evaluation_config()
        if resolved["training"].get("optimizers") is None:
            resolved["training"].pop("optimizers", None)
        return resolved

    @property
    def package(self) -> str:
        return python_name(self.spec.name)

    def project_plan(
        self,
        data: DataShape,
        model: ModelPlanT,
        networks: tuple[NetworkPlan, ...],
        loss_in_words: str,
        *,
        num_classes: int | None = None,
        data_shape: Shape | None = None,
        data_config: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        evaluation: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        resolved: dict[str, Any] | None = None,
        extra: ExtraPlan | None = None,
    ) -> ProjectPlan[ModelPlanT]:
        """The family's plan with the family-independent sections filled in; a family
        passes a section only when it changed it (the mixture's epochs, a text model's
        tokenizer)."""
        spec = self.spec
        if data_config is None:
            data_config = self.data_config(with_labels=num_classes is not None)
        if num_classes is not None:  # the runtime refuses labels the model has no class for
            data_config = {**data_config, "num_classes": num_classes}
        return ProjectPlan(
            name=spec.name,
            package=self.package,
            family=spec.model.family,
            description=spec.description,
            seed=spec.seed,
            data=data_config,
            data_shape=data.shape if data_shape is None else data_shape,
            data_kind=data.kind,
            num_classes=num_classes,
            training=self.training_config() if training is None else training,
            evaluation=self.evaluation_config() if evaluation is None else evaluation,
            output=spec.output.model_dump(mode="json") if output is None else output,
            model=model,
            networks=networks,
            resolved_spec=self.resolved_spec() if resolved is None else resolved,
            loss_in_words=loss_in_words,
            extra=ExtraPlan() if extra is None else extra,
        )


# What memory can hold. Sizes within int32 can still ask for more than any machine has; a
# spec that does fails here, located, instead of as an allocation error in TensorFlow.
MAX_PARAMETERS = 2**30  # float32 weights: 4 GiB, and Adam keeps two more copies
MAX_VALUES = 2**28  # floats in one layer's output for one example, or in a sample array


def _values(shape: Shape) -> int:
    return math.prod(d for d in shape if d is not None)


def check_sizes(lowering: Lowering, plan: ProjectPlan[object]) -> None:
    """Refuse networks and sample arrays too large for memory, at the value that made them."""
    total, largest = 0, None
    for network in plan.networks:
        for layer in network.layers:
            where = layer.source or ("model", network.name)
            total += layer.params or 0
            if largest is None or (layer.params or 0) > largest[0]:
                largest = (layer.params or 0, where, f"{network.name}.{layer.name}")
            values = _values(layer.output_shape)
            if values > MAX_VALUES:
                lowering.report(
                    where,
                    f"the {network.name}'s layer {layer.name} outputs {values:,} values per "
                    f"example (at most {MAX_VALUES:,})",
                    "use smaller sizes",
                )
    if total > MAX_PARAMETERS and largest is not None:
        lowering.report(
            largest[1],
            f"the model has {total:,} parameters, more than memory holds (at most "
            f"{MAX_PARAMETERS:,}); the largest layer is {largest[2]} ({largest[0]:,})",
            "use smaller widths",
        )
    example = _values(plan.data_shape) if None not in plan.data_shape else 0
    spec = lowering.spec
    counts = [
        (("evaluation", "num_samples"), num_samples(spec)),
        (("output", "samples", "count"), spec.output.samples.count),
        (("data", "source", "n_samples"), getattr(spec.data.source, "n_samples", None) or 0),
    ]
    for path, count in counts:
        if count * example > MAX_VALUES:
            lowering.report(
                path,
                f"{count:,} examples of shape {plan.data_shape} are {count * example:,} values, "
                f"more than memory holds (at most {MAX_VALUES:,})",
                "ask for fewer",
            )


def type_first(value: Any) -> Any:
    """Dicts with their `type` key first, as a person would write them."""
    if isinstance(value, dict):
        ordered = {"type": value["type"]} if "type" in value else {}
        return {**ordered, **{k: type_first(v) for k, v in value.items() if k != "type"}}
    if isinstance(value, list):
        return [type_first(v) for v in value]
    return value
