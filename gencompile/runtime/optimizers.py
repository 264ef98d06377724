"""Optimizers and learning-rate schedules built from the compiler's plain config dicts.

Generated code carries its optimizer settings as literals and calls `make_optimizer`, so
the mapping from spec names to Keras arguments lives here, once, as small tables.
Everything returned is a stock Keras object (or a Keras-serializable schedule), so a
saved model reloads without gencompile-specific glue beyond the registered `LinearWarmup`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule

# type -> (Keras class, arguments specific to that optimizer). Arguments shared by every
# Keras optimizer are in _COMMON_ARGS and are passed only when set (not None).
_OPTIMIZERS: dict[str, tuple[type[keras.optimizers.Optimizer], tuple[str, ...]]] = {
    "adam": (keras.optimizers.Adam, ("beta_1", "beta_2", "epsilon")),
    "adamw": (keras.optimizers.AdamW, ("beta_1", "beta_2", "epsilon")),
    "rmsprop": (keras.optimizers.RMSprop, ("rho", "momentum", "epsilon")),
    "sgd": (keras.optimizers.SGD, ("momentum", "nesterov")),
}
_COMMON_ARGS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm")

_SCHEDULES = ("constant", "cosine_decay", "exponential_decay", "piecewise_constant")


@keras.saving.register_keras_serializable(package="gencompile")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Ramp linearly from 0 to `target` over `warmup_steps`, then follow `after`.

    `after` (a schedule or a float) is evaluated at `step - warmup_steps`, so its decay
    starts when the warmup ends, as Keras' own `CosineDecay(warmup_steps=...)` does.
    Keras schedules other than `CosineDecay` have no warmup, hence this wrapper.
    """

    def __init__(
        self,
        warmup_steps: int,
        target: float,
        after: LearningRate,
        name: str = "LinearWarmup",
    ):
        super().__init__()
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1. Received: warmup_steps={warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.target = float(target)
        self.after = after
        self.name = name

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warmup = ops.cast(self.warmup_steps, "float32")
        ramp = self.target * step / warmup
        if isinstance(self.after, keras.optimizers.schedules.LearningRateSchedule):
            rest = ops.cast(self.after(ops.maximum(step - warmup, 0.0)), "float32")
        else:
            rest = ops.cast(self.after, "float32")
        return ops.where(step < warmup, ramp, rest)

    def get_config(self) -> dict[str, Any]:
        after = self.after
        if isinstance(after, keras.optimizers.schedules.LearningRateSchedule):
            after = keras.saving.serialize_keras_object(after)
        return {
            "warmup_steps": self.warmup_steps,
            "target": self.target,
            "after": after,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LinearWarmup:
        config = dict(config)
        if isinstance(config["after"], dict):
            config["after"] = keras.saving.deserialize_keras_object(config["after"])
        return cls(**config)


def make_schedule(learning_rate: float, schedule: dict | None, total_steps: int) -> LearningRate:
    """Turn a schedule config into what a Keras optimizer takes as `learning_rate`.

    `total_steps` (epochs x steps per epoch) sizes the cosine decay so it ends with training.
    A `warmup_steps > 0` on schedules without a native warmup wraps them in `LinearWarmup`.
    """
    learning_rate = float(learning_rate)
    if schedule is None:
        return learning_rate
    kind = schedule.get("type", "constant")
    warmup_steps = int(schedule.get("warmup_steps") or 0)
    schedules = keras.optimizers.schedules

    if kind == "cosine_decay":
        return schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(1, int(total_steps) - warmup_steps),
            alpha=float(schedule.get("alpha", 0.0)),
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )

    after: LearningRate
    if kind == "constant":
        after = learning_rate
    elif kind == "exponential_decay":
        after = schedules.ExponentialDecay(
            initial_learning_rate=learning_rate,
            decay_steps=int(schedule["decay_steps"]),
            decay_rate=float(schedule["decay_rate"]),
            staircase=bool(schedule.get("staircase", False)),
        )
    elif kind == "piecewise_constant":
        after = schedules.PiecewiseConstantDecay(
            boundaries=[int(b) for b in schedule["boundaries"]],
            values=[float(v) for v in schedule["values"]],
        )
    else:
        raise ValueError(
            f"Unknown learning-rate schedule type {kind!r}; expected one of "
            f"{', '.join(_SCHEDULES)}. Received: schedule={schedule!r}"
        )
    if warmup_steps:
        return LinearWarmup(warmup_steps, target=_initial_value(after, learning_rate), after=after)
    return after


def _initial_value(schedule: LearningRate, learning_rate: float) -> float:
    """The rate a warmup should reach: where the wrapped schedule starts."""
    if isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay):
        return float(schedule.values[0])
    return learning_rate


def make_optimizer(
    config: dict, schedule: dict | None = None, total_steps: int = 1
) -> keras.optimizers.Optimizer:
    """Build the Keras optimizer named by `config["type"]`, passing only arguments it accepts.

    The compiler fills every key for every type, so arguments that do not apply to the
    chosen optimizer (e.g. `momentum` for Adam) are dropped here rather than rejected.
    """
    kind = str(config.get("type", "")).lower()
    if kind not in _OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer type {config.get('type')!r}; expected one of "
            f"{', '.join(sorted(_OPTIMIZERS))}. Received: config={config!r}"
        )
    cls, specific = _OPTIMIZERS[kind]
    kwargs: dict[str, Any] = {
        name: config[name] for name in specific if config.get(name) is not None
    }
    kwargs.update({name: config[name] for name in _COMMON_ARGS if config.get(name) is not None})
    kwargs["learning_rate"] = make_schedule(
        config.get("learning_rate", 1e-3), schedule, total_steps
    )
    return cls(**kwargs)
