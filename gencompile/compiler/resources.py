"""How much memory a plan needs to train, estimated before TensorFlow starts.

A spec such as `--set model.latent_dim=1000000000` lowers happily (shapes are only
numbers) and then dies deep inside TensorFlow with ResourceExhaustedError. The estimate
adds up what training holds at once, from the lowered plan alone:

- the parameters with their gradients and two optimizer slots (Adam's moments), float32;
- one batch of activations: every layer's output, kept for the backward pass, and its
  gradient;
- the data as loaded (`datafiles.BYTES_PER_LOADED_VALUE` a value, or per byte of text),
  or, for a source that streams, its indices and the streaming pass's fixed buffers;
- TensorFlow itself.

It errs low (unknown parameter counts count as zero, buffers of the framework are left
out), so a spec it refuses cannot fit; `check_memory` refuses only those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gencompile.compiler.plan import LayerPlan, ProjectPlan, Shape
from gencompile.data_size import streams
from gencompile.datafiles import (
    BYTES_PER_LOADED_VALUE,
    BYTES_PER_STREAMED_EXAMPLE,
    BYTES_PER_TEXT_BYTE,
    MEMORY_VARIABLE,
    STREAM_FIXED_BYTES,
    DataFileError,
    array_header,
    available_memory,
    count_images,
    csv_extent,
    format_bytes,
    npz_header,
    parquet_schema,
)
from gencompile.errors import RunError

FLOAT32 = 4
COPIES_PER_PARAMETER = 4  # the weight, its gradient, two optimizer slots
# (an EMA copy's weights are one copy more each: no gradient, no optimizer state)
COPIES_PER_ACTIVATION = 2  # the output kept for the backward pass, and its gradient
RUNTIME_BYTES = 512 << 20  # importing TensorFlow and Keras alone: 640 MiB RSS (measured)
KERAS_EXAMPLES = {"mnist": 70000, "fashion_mnist": 70000, "cifar10": 60000, "cifar100": 60000}
DIGITS_EXAMPLES = 1797


@dataclass(frozen=True)
class Heaviest:
    """The layer that contributes most to one term, for the advice in a refusal."""

    network: str
    layer: str
    amount: int  # parameters, or values per example
    source: tuple[str | int, ...] | None = None  # where the spec wrote the layer

    def __str__(self) -> str:
        if self.source is None:
            return f"{self.network}/{self.layer}"
        where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in self.source)
        return f"{self.network}/{self.layer} ({where.lstrip('.')})"


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    model_bytes: int
    activation_bytes: int
    data_bytes: int
    runtime_bytes: int
    batch_size: int
    largest: Heaviest | None  # the layer with the most parameters
    widest: Heaviest | None  # the layer with the largest output
    ema_parameters: int = 0  # an EMA copy's weights, in model_bytes too
    untrained: int = 0  # of `parameters`, those without gradient or optimizer state
    workers: int = 1  # local processes, each holding TensorFlow, the model and the data

    @property
    def per_worker(self) -> int:
        return self.model_bytes + self.activation_bytes + self.data_bytes + self.runtime_bytes

    @property
    def total(self) -> int:
        return self.per_worker * self.workers

    def _needed(self) -> str:
        """'517.1 MiB', or with workers '2.0 GiB (517.1 MiB x 4 workers)'."""
        if self.workers == 1:
            return format_bytes(self.total)
        each = f"{format_bytes(self.per_worker)} x {self.workers} workers"
        return f"{format_bytes(self.total)} ({each})"

    def summary(self) -> str:
        """One line: the total and its parts (with workers: the parts of one worker's)."""
        held = [f"{self.untrained:,} untrained"] if self.untrained else []
        held += [f"an EMA copy of {self.ema_parameters:,}"] if self.ema_parameters else []
        more = f" ({' and '.join(held)} included)" if held else ""
        trained = self.parameters - self.untrained
        each = ", each worker" if self.workers > 1 else ""
        return (
            f"about {self._needed()} to train{each}: {trained:,} parameters with "
            f"gradients and optimizer state {format_bytes(self.model_bytes)}{more}, one batch of "
            f"{self.batch_size} {format_bytes(self.activation_bytes)}, the data "
            f"{format_bytes(self.data_bytes)}, TensorFlow {format_bytes(self.runtime_bytes)}"
        )

    def advice(self, room: int | None = None, origin: str = "") -> str:
        """What to do about an estimate over `room` bytes (`origin`: where that figure comes
        from, as `available_memory` says it): shrink the largest part, named down to the
        layer. When that part is TensorFlow's fixed share, or it alone exceeds `room` (each
        worker's share of it), only more memory helps (or, if the rest could still fit,
        shrinking the spec's largest)."""
        share = None if room is None else room // self.workers  # what one worker may hold
        spec_terms = (self.model_bytes, self.activation_bytes, self.data_bytes)
        if self.runtime_bytes < max(spec_terms) and (share is None or self.runtime_bytes < share):
            return self._shrink()
        where = (
            f"raise {MEMORY_VARIABLE} to at least {self._needed()}"
            if MEMORY_VARIABLE in origin
            else f"run it where at least {self._needed()} of memory is free"
        )
        each = " in each worker" if self.workers > 1 else ""
        memory = (
            f"TensorFlow itself needs about {format_bytes(self.runtime_bytes)}{each}, the "
            f"largest part (the model, a batch and the data take "
            f"{format_bytes(sum(spec_terms))}): {where}"
        )
        if share is not None and self.runtime_bytes >= share:
            return memory
        return f"{memory}, or {self._shrink()}"

    def _shrink(self) -> str:
        """The largest of the spec's terms, and how to shrink it."""
        terms = {
            "model": self.model_bytes,
            "activations": self.activation_bytes,
            "data": self.data_bytes,
        }
        largest = max(terms, key=terms.__getitem__)
        if largest == "model" and self.largest is not None:
            layer = self.largest
            why = (
                "lower its size or the size of the layer before it"
                if layer.source is not None
                else "the compiler sizes it from the spec (e.g. model.latent_dim) and the layer "
                "before it: lower those"
            )
            return f"shrink the model: {layer} alone holds {layer.amount:,} parameters; {why}"
        if largest == "activations" and self.widest is not None:
            return (
                f"lower data.batch_size (now {self.batch_size}) or the size of {self.widest}, "
                f"{self.widest.amount:,} values per example"
            )
        return "use less data (fewer examples, or a smaller file or image size)"


def _all_layers(plan: ProjectPlan[object]) -> list[tuple[str, LayerPlan]]:
    return [(network.name, layer) for network in plan.networks for layer in network.layers]


def _values(shape: Shape) -> int:
    return math.prod(1 if d is None else int(d) for d in shape)


def _parameters(plan: ProjectPlan[object]) -> tuple[int, Heaviest | None]:
    layers = [(net, layer) for net, layer in _all_layers(plan) if layer.params]
    counted = sum(layer.params or 0 for _, layer in layers)
    largest = max(layers, key=lambda item: item[1].params or 0, default=None)
    heaviest = None
    if largest is not None:
        net, layer = largest
        heaviest = Heaviest(net, layer.name, layer.params or 0, layer.source)
    # Families whose parameters live outside networks count them in the model (mixtures,
    # MAF) or state their total (a flow, a VQ-VAE's codebook, a VAE's posterior flow/prior).
    stated = plan.extra.get("total_params", 0)
    return max(counted, stated, int(getattr(plan.model, "num_params", 0) or 0)), heaviest


def _activations(plan: ProjectPlan[object]) -> tuple[int, Heaviest | None]:
    """Values one example produces across all layers, and the widest layer."""
    layers = [(net, layer, _values(layer.output_shape)) for net, layer in _all_layers(plan)]
    total = sum(values for _, _, values in layers)
    model = plan.model
    if hasattr(model, "components") and hasattr(model, "features"):  # a mixture's E-step
        total += int(model.components) * int(model.features)
    widest = max(layers, key=lambda item: item[2], default=None)
    if widest is None:
        return total, None
    net, layer, values = widest
    return total, Heaviest(net, layer.name, values, layer.source)


def _file_size(path: Any) -> int:
    try:
        return Path(str(path)).stat().st_size
    except OSError:
        return 0  # the compiler has already reported a missing file


def _examples(source: dict[str, Any]) -> int | None:
    """How many examples an array source holds, from what can be known without reading it."""
    kind = source.get("type")
    try:
        if kind == "builtin":
            return DIGITS_EXAMPLES if source.get("name") == "digits" else source.get("n_samples")
        if kind == "keras":
            return KERAS_EXAMPLES.get(source.get("name", ""), 0)
        if kind == "npy":
            return array_header(source["path"], "data.source.path")[0][0]
        if kind == "parquet":
            return parquet_schema(source["path"], "data.source.path")[1]
        if kind == "csv":  # estimated from its first MiB
            return csv_extent(source)[0]
        if kind == "npz":
            return npz_header(source["path"], source["key"], "data.source.path")[0][0]
        if kind == "images":
            return count_images(source["dir"])
        if kind == "tfrecord":
            from gencompile.tfrecords import estimated_records

            return estimated_records(source)
    except (DataFileError, OSError, IndexError, KeyError):
        return None
    return None


def _data_bytes(plan: ProjectPlan[object]) -> int:
    source = plan.data.get("source", {})
    kind = source.get("type")
    if kind == "csv" and _streams(source, plan.data.get("cache", "auto")):
        return (_examples(source) or 0) * (BYTES_PER_STREAMED_EXAMPLE + 4) + STREAM_FIXED_BYTES
    if kind == "text":
        return _file_size(source.get("path")) * BYTES_PER_TEXT_BYTE
    if kind == "builtin" and source.get("name") == "arithmetic":
        digits = len(str(int(source.get("max_operand", 99))))
        return int(source.get("n_samples", 0)) * (3 * digits + 4) * BYTES_PER_TEXT_BYTE
    count = _examples(source) or 0
    if _streams(source, plan.data.get("cache", "auto")):
        return int(count) * BYTES_PER_STREAMED_EXAMPLE + STREAM_FIXED_BYTES
    return int(count) * _values(plan.data_shape) * BYTES_PER_LOADED_VALUE


def _streams(source: dict[str, Any], cache: str) -> bool:
    try:
        return streams(source, cache)
    except (DataFileError, OSError, KeyError):
        return False  # the compiler has already reported an unreadable file


def estimate_memory(plan: ProjectPlan[object]) -> MemoryEstimate:
    """What training `plan` needs in memory, term by term."""
    parameters, largest = _parameters(plan)
    per_example, widest = _activations(plan)
    batch_size = int(plan.data.get("batch_size", 1))
    examples = _examples(plan.data.get("source", {}))
    if examples:  # a batch larger than the data set is the whole data set
        batch_size = min(batch_size, int(examples))
    ema, untrained = plan.ema_copy_params, min(plan.untrained_params, parameters)
    trained = parameters - untrained  # the others hold no gradient or optimizer state
    return MemoryEstimate(
        parameters=parameters,
        model_bytes=(trained * COPIES_PER_PARAMETER + untrained + ema) * FLOAT32,
        activation_bytes=batch_size * per_example * FLOAT32 * COPIES_PER_ACTIVATION,
        data_bytes=_data_bytes(plan),
        runtime_bytes=RUNTIME_BYTES,
        batch_size=batch_size,
        largest=largest,
        widest=widest,
        ema_parameters=ema,
        untrained=untrained,
    )


def check_memory(plan: ProjectPlan[object], workers: int = 1) -> MemoryEstimate:
    """The estimate, or a RunError when it exceeds the memory the machine has left.

    `workers`: local worker processes (`--workers N`), each of which loads TensorFlow, the
    model and the whole data, so N times one process's estimate must fit.
    """
    estimate = replace(estimate_memory(plan), workers=max(1, workers))
    room, origin = available_memory()
    if estimate.total > room:
        raise RunError(
            f"{plan.name} needs {estimate.summary()}; this machine has {format_bytes(room)} "
            f"{origin}; {estimate.advice(room, origin)}"
        )
    return estimate
