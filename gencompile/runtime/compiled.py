"""One compiled function per model and purpose: traced once, not at every call.

`gencompile serve` scores request after request, and a metric or a conditional marginal
asks the same model many times: a `tf.function` built per call traces the whole model
anew each time (0.1-0.3 s, and TensorFlow's retracing warnings in the server's log).
`compiled(model, body)` keeps one per (model, body), with `reduce_retracing` so batches of
other sizes reuse one general trace.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

# Held weakly on both sides: a model no longer used (a sweep's previous one) can be freed.
_COMPILED: weakref.WeakKeyDictionary[keras.Model, dict[Callable[..., Any], Any]] = (
    weakref.WeakKeyDictionary()
)


def compiled(model: keras.Model, body: Callable[..., Any]) -> Any:
    """`body(model, *args)` as a `tf.function` of `*args`, the same one at every call for
    this model. `body` must be a module-level function (its identity is the cache key)."""
    per_model = _COMPILED.setdefault(model, {})
    function = per_model.get(body)
    if function is None:
        # Without AutoGraph, as Keras traces train_step: converting every function the
        # model calls took most of the trace; the graph is the same (no tensor-dependent
        # branches). In a partial: TensorFlow counts traces by a function's code object,
        # which every model's closure would share (a sweep's fifth model read as a
        # retrace, with TF's warning); a partial has none, so each model counts alone.
        function = tf.function(
            functools.partial(_call, weakref.ref(model), body),
            reduce_retracing=True,
            autograph=False,
        )
        per_model[body] = function
    return function


def _call(network: Callable[[], keras.Model], body: Callable[..., Any], *args: Any) -> Any:
    return body(network(), *args)  # runs while tracing only
