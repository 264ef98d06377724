"""`Metrics`: metric values together with what each was computed with."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gencompile.errors import RunError
from gencompile.levels import source_levels
from gencompile.runtime.splits import batches

# computed_with's `caveat` of a likelihood metric whose Bernoulli log-probability scores
# values other than 0 and 1 (grey levels): minus a binary cross-entropy, whose exp does not
# sum or integrate to 1 over x, so the number is not -log p(x) of any distribution of x.
NON_BINARY_BERNOULLI = "Bernoulli cross-entropy on non-binary data, not a normalised likelihood"
# computed_with's `caveat` of a continuous density's NLL of data with known discrete levels
# (a mixture, a gaussian or logistic likelihood, a flow without dequantization): -log of a
# density at the levels, per unit of the data's values, not -log of a probability.
DENSITY_ON_LEVELS = (
    "continuous density at the data's {levels} discrete levels (per unit of the data's "
    "values), not a probability: not comparable with a discrete NLL"
)


class Metrics(dict[str, float]):
    """Metric name -> value, a plain dict to every caller; `computed_with` maps each name to
    what its value was computed with (sample counts, data split and its size, feature
    network and the sha256 of its weights, seeds), which metrics.json records beside it.
    `samples`: the samples the sample-quality metrics scored (data units), if any were
    drawn, so that samples.png can show those instead of drawing as many again."""

    def __init__(self) -> None:
        super().__init__()
        self.computed_with: dict[str, dict[str, Any]] = {}
        self.samples: Any = None

    def add(self, name: str, value: float, how: Mapping[str, Any]) -> None:
        """Record `value` and what it was computed with; a NaN or infinite value is refused
        (metrics.json holds numbers a strict JSON reader accepts, never NaN or Infinity).
        Metrics are computed after training, which stops at a non-finite loss (NaNGuard):
        the loss stayed finite, so the message names both causes left, not divergence."""
        value = float(value)
        if not math.isfinite(value):
            raise RunError(
                f"{name} is {value}: the model's samples or likelihoods are not finite, though "
                "its training loss stayed finite (training stops at a non-finite one); "
                "held-out values beyond the training split's range or units, where the model "
                "gives no density, cause that (check data.preprocessing against the data), as "
                "does a model that diverged away from its training data (look at the run's "
                "history.csv, and train again with a lower learning_rate or clipnorm)"
            )
        self[name] = value
        self.computed_with[name] = dict(how)

    def merge(self, other: Mapping[str, float]) -> Metrics:
        """Add every value of `other` (and what it was computed with, if it says)."""
        how = getattr(other, "computed_with", {})
        for name, value in other.items():
            self.add(name, value, how.get(name, {}))
        if getattr(other, "samples", None) is not None:
            self.samples = other.samples
        return self


def held_out(x: Any, **how: Any) -> dict[str, Any]:
    """`computed_with` of a metric of the held-out split `x`."""
    return {"split": "validation", "examples": len(x), **how}


def non_binary(x: Any, batch_size: int = 4096) -> bool:
    """Whether split `x` holds a value other than 0 and 1 (read up to the first one)."""
    return any(bool(np.any((xb != 0) & (xb != 1))) for xb in batches(x, batch_size))


def density_caveat(data: Any) -> dict[str, str]:
    """`computed_with`'s caveat of a continuous density's NLL of `data` (a loaded data set)
    when its source has known discrete levels (`gencompile.levels`); {} otherwise."""
    levels = source_levels(getattr(data, "source", None) or {})
    return {} if levels is None else {"caveat": DENSITY_ON_LEVELS.format(levels=levels)}


def density_bits_per_dim(what: str, advice: str) -> RunError:
    """The refusal of bits_per_dim from a continuous density of data with discrete levels
    (validation refuses it first; this guards a run of an older lock)."""
    return RunError(
        f"bits_per_dim: the data has discrete levels, and {what} gives a density at them, "
        f"not a probability, so it has no bits of information; {advice}, or remove "
        "bits_per_dim from evaluation.metrics"
    )


def likelihood_caveat(likelihood: Any, x: Any) -> dict[str, str]:
    """`computed_with`'s caveat of a likelihood metric of the split `x`: a Bernoulli
    likelihood on non-binary data (the digits scaled to [0, 1]) is a cross-entropy, not a
    normalised likelihood; {} for every other case."""
    if getattr(likelihood, "name", None) != "bernoulli" or not non_binary(x):
        return {}
    return {"caveat": NON_BINARY_BERNOULLI}
