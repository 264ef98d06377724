"""The `sweep:` block: the ranges `gencompile sweep --search optuna` draws trials from.

    sweep:
      metric: elbo                    # default: the spec's first evaluation metric
      trials: 20
      parameters:
        model.latent_dim: {type: int, low: 4, high: 32}
        training.optimizer.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-2}
        model.encoder.activation: {type: choice, values: [relu, silu]}

A parameter's key is a field path as `--set` writes it. Each trial is the spec with the
drawn values set, so every path and every value a range can give (its ends, each choice)
is checked here against the field itself: a path the spec has no field for, or a range
the field would refuse, is a located problem before anything runs. The block describes
a search, not a model: a training ignores it and it stays out of the resolved spec (the
lock), so a trial's lock reads as any run's.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from gencompile.errors import Problem, SpecError
from gencompile.spec.base import PositiveInt, StrictModel
from gencompile.spec.loader import Marks, PathKey, parse_override


class UniformRange(StrictModel):
    """A float drawn uniformly from [low, high]."""

    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> UniformRange:
        _check_order(self.low, self.high)
        return self


class LogUniformRange(StrictModel):
    """A positive float drawn uniformly in log space (learning rates, weights)."""

    type: Literal["log_uniform"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LogUniformRange:
        _check_order(self.low, self.high)
        return self


class IntRange(StrictModel):
    """An integer drawn from low, low + step, ..., high (both ends included)."""

    type: Literal["int"]
    low: int
    high: int
    step: PositiveInt = 1
    log: bool = Field(False, description="Draw uniformly in log space (low must be >= 1).")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_order(self.low, self.high)
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log: true needs low >= 1 and step 1 (Optuna's rule)")
        return self


class Choice(StrictModel):
    """One of the listed values (any YAML: numbers, names, lists such as [256, 128])."""

    type: Literal["choice"]
    values: list[Any] = Field(min_length=1, max_length=1000)


Parameter = Annotated[
    UniformRange | LogUniformRange | IntRange | Choice, Field(discriminator="type")
]


class SweepSpec(StrictModel):
    """What `gencompile sweep --search optuna` searches: ranges over any field paths."""

    parameters: dict[str, Parameter] = Field(
        min_length=1,
        description="Field path (as --set writes it, e.g. model.latent_dim) -> its range.",
    )
    metric: str | None = Field(
        None,
        description="The metric to optimize: one of metrics.json (held-out, after training) "
        "or a per-epoch validation log such as val_loss (which allows pruning). Default: "
        "the first evaluation metric.",
    )
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="Default: from the metric (elbo: maximize; nll, losses: minimize)."
    )
    trials: PositiveInt = Field(20, description="How many trials the search runs in all.")


def _check_order(low: float, high: float) -> None:
    if not low < high:
        raise ValueError(f"low must be below high (got low {low}, high {high})")


def candidates(parameter: Parameter) -> list[Any]:
    """Values the range can give that reach every edge the field may refuse: its ends and
    middle, each choice."""
    if isinstance(parameter, Choice):
        return list(parameter.values)
    if isinstance(parameter, IntRange):
        last = parameter.low + (parameter.high - parameter.low) // parameter.step * parameter.step
        return sorted({parameter.low, last})
    if isinstance(parameter, LogUniformRange):
        middle = math.sqrt(parameter.low * parameter.high)
        return [parameter.low, middle, parameter.high]
    return [parameter.low, (parameter.low + parameter.high) / 2, parameter.high]


def override_text(path: str, value: Any) -> str:
    """The `--set` text that gives `path` this value (JSON is YAML the loader reads back)."""
    return f"{path}={json.dumps(value)}"


# Validates a spec's data with one field set as `--set` sets it; raises SpecError. Passed
# in (gencompile.spec.check_trial) because validating a spec validates its sweep's trials.
TrialCheck = Callable[[dict[str, Any], PathKey, Any], None]


def value_problems(
    data: dict[str, Any],
    marks: Marks,
    path: str,
    values: list[Any],
    where: PathKey,
    check_trial: TrialCheck,
) -> list[Problem]:
    """Problems of the spec `data` with `path` set to each of `values`, located at `where`
    (the sweep parameter, or a --grid option): the field's own message, and what to do."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for value in values:
        trial = copy.deepcopy({k: v for k, v in data.items() if k != "sweep"})
        try:
            key, parsed = parse_override(override_text(path, value))
            check_trial(trial, key, parsed)
        except SpecError as err:
            found = err.problems
        else:
            continue
        for problem in found:
            same = (problem.path, re.sub(r"\(got .*?\)", "", problem.message))
            if same in seen:  # one line per problem, not one per value
                continue
            seen.add(same)
            message = f"{problem.path or path} would be refused for the value "
            message += f"{json.dumps(value)}: {problem.message}"
            unknown = "unknown key" in problem.message or "cannot set inside" in problem.message
            hint = problem.hint or (
                "give a field path of the spec, as --set writes it"
                if unknown
                else "choose values the field accepts"
            )
            problems.append(marks.problem(where, message, hint, at_key=True))
    return problems


def sweep_problems(
    data: dict[str, Any], marks: Marks, sweep: SweepSpec | None, check_trial: TrialCheck
) -> list[Problem]:
    """Every sweep parameter's path and range checked against the field it sets."""
    if sweep is None:
        return []
    problems: list[Problem] = []
    for path, parameter in sweep.parameters.items():
        where = ("sweep", "parameters", path)
        problems += value_problems(data, marks, path, candidates(parameter), where, check_trial)
    return problems


__all__ = [
    "Choice",
    "IntRange",
    "LogUniformRange",
    "Parameter",
    "SweepSpec",
    "TrialCheck",
    "UniformRange",
    "candidates",
    "override_text",
    "sweep_problems",
    "value_problems",
]
