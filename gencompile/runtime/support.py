"""Where a likelihood is positive (its support), in the model's units: the values an
anomaly score (`runtime.scores`) and the held-out metrics give -log p = +inf, and the words
that explain them. A bernoulli's [0, 1], the levels a categorical or dequantized model
knows, a logit transform's domain. A vector's `scale` is fitted on the training split, so a
new (or held-out) value beyond a feature's training range lands outside [0, 1]
(`Support.beyond` names the features, for the messages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from gencompile.runtime import flows
from gencompile.runtime.splits import labelled_batches

BATCH = 512  # examples scored or checked at a time


@dataclass(frozen=True)
class Support:
    """The values (model units) a score's likelihood gives positive probability: `inside`
    says it per value; `why` names the likelihood and its range `span` (model units), and
    `advice` what scores such values finitely, for the messages. `levels`: the count of a
    model of discrete levels k / (levels - 1) (None: a range), which reads a value between
    them as the level it rounds to (`scores.off_level_value` refuses it)."""

    why: str
    inside: Callable[[np.ndarray], np.ndarray]
    span: tuple[float, float] = (0.0, 1.0)
    advice: str = ""
    levels: int | None = None

    def explained(self, preprocessor: Any) -> str:
        """`why` in the model's units, and the span in the data's when the preprocessing is
        one map for every value (images; a vector's features each have their own)."""
        if np.ndim(preprocessor.center) or np.ndim(preprocessor.factor):
            return f"{self.why} (the model's units)"
        low, high = sorted(float(v) for v in preprocessor.inverse(np.array(self.span)))
        return f"{self.why} (the model's units; {low:.6g}..{high:.6g} in the data's)"

    def rows(self, x: Any) -> np.ndarray:
        """Per example of split or array `x`: are all its values inside?"""
        parts = (
            self.inside(np.asarray(xb, np.float32)).reshape(len(xb), -1).all(axis=1)
            for xb, _ in labelled_batches(x, None, BATCH)
        )
        return np.concatenate([np.zeros((0,), bool), *parts])

    def beyond(self, x: np.ndarray, outside: np.ndarray) -> np.ndarray:
        """Per value position of examples `x` (an array): is it outside in any `outside` row?"""
        values = np.asarray(x[outside], np.float32)
        return ~self.inside(values).reshape(values.shape).all(axis=0)


GAUSSIAN = "a gaussian likelihood (model.likelihood: {type: gaussian}) scores such values finitely"


def unit_interval(what: str) -> Support:
    return Support(
        f"{what} gives values outside [0, 1] probability 0",
        lambda v: (v >= 0.0) & (v <= 1.0),
        advice=GAUSSIAN,
    )


def level_support(
    what: str, levels: int, rounded: Callable[[Any], Any], advice: str = ""
) -> Support:
    """The values a model of `levels` discrete levels k / (levels - 1) rounds to one of
    them without clipping: `rounded` is the model's own unclipped rounding (float32)."""

    def inside(v: np.ndarray) -> np.ndarray:
        k = np.asarray(rounded(v.astype(np.float32)))
        return (k >= 0) & (k <= levels - 1)

    why = f"{what} gives values that round to none of its {levels} levels k / {levels - 1}"
    return Support(f"{why} in [0, 1] probability 0", inside, advice=advice, levels=levels)


def likelihood_support(likelihood: Any) -> Support | None:
    name = getattr(likelihood, "name", None)
    if name == "bernoulli":
        return unit_interval("a bernoulli likelihood")
    if name == "categorical":
        bins = int(likelihood.bins)
        return level_support("a categorical likelihood", bins, likelihood.rounded, GAUSSIAN)
    return None  # a density on the real line


def flow_support(model: keras.Model) -> Support | None:
    """Where a flow's likelihood is positive (model units): a dequantized flow's levels, a
    first logit transform's domain; None for a flow on the whole real line."""
    if model.dequantization is not None:
        quantizer = model.dequantization
        advice = "a flow without dequantization scores such values finitely"
        return level_support("the dequantized flow", quantizer.bins, quantizer.rounded, advice)
    first = model.transforms[0] if model.transforms else None
    if isinstance(first, flows.Logit):  # logit(alpha + (1 - 2 alpha) x): p in (0, 1)
        a = first.alpha
        low, high = -a / (1 - 2 * a), (1 - a) / (1 - 2 * a)

        def inside(v: np.ndarray) -> np.ndarray:  # p as the transform computes it (float32)
            p = np.float32(a) + np.float32(1.0 - 2.0 * a) * v.astype(np.float32)
            return (p > 0) & (p < 1)

        return Support(
            f"the flow's logit transform is defined on ({low:.4g}, {high:.4g}) only",
            inside,
            (low, high),
            "a flow without the logit transform scores such values finitely",
        )
    return None


def outside_advice(support: Support | None, x: Any, outside: np.ndarray, data: Any) -> str:
    """For a message: the first example outside the support, for rows of features (an
    array) which features hold the values outside, then what scores such values finitely."""
    if support is None or not outside.any():
        return ""
    where = f"the first is example {int(np.argmax(outside))}"
    if isinstance(x, np.ndarray) and x.ndim == 2:
        where += _features_outside(np.flatnonzero(support.beyond(x, outside)), data)
    return where + (f"; {support.advice}" if support.advice else "")


def _features_outside(beyond: np.ndarray, data: Any) -> str:
    """The features `beyond` by name and, under a min-max `scale` fitted on the training
    split (whose bounds are then its min and max), the first one's training range."""
    if not beyond.size:
        return ""
    known = tuple(data.feature_names or ())
    names = [str(known[i]) if i < len(known) else f"x{i}" for i in beyond[:3]]
    more = f" and {len(beyond) - 3} more" if len(beyond) > 3 else ""
    said = f"; feature(s) {', '.join(names)}{more}"
    preprocessor, scale = data.preprocessor, data.preprocessor.scale
    if scale is None or preprocessor.standardize or not np.ndim(preprocessor.factor):
        return f"{said} hold the values outside"
    low, high = preprocessor.inverse(np.array(scale)[:, None])[:, beyond[0]]
    return (
        f"{said} lie beyond the training split's range ({names[0]}: {low:.6g}..{high:.6g}), "
        f"which data.preprocessing.scale maps onto [{scale[0]:g}, {scale[1]:g}]"
    )
