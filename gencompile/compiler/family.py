"""A generative family as one object: its spec model, capabilities, lowering and template.

The registry (`compiler/families/__init__.py`) lists one `Family` per family; the shared
lowering entry point (`compiler/lower.py`) looks families up there and checks a spec
against the family's capabilities before the family's own lowering runs, so a refusal
reads the same for every family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import ProjectPlan
from gencompile.spec.evaluation import OutputSpec
from gencompile.spec.training import Distribution

# What the spec language can ask for, read from its fields so the two cannot drift apart.
STRATEGIES: tuple[str, ...] = get_args(Distribution.model_fields["strategy"].annotation)
EXPORTS: tuple[str, ...] = get_args(get_args(OutputSpec.model_fields["export"].annotation)[0])


@dataclass(frozen=True)
class Refusal:
    """Why a family lacks a capability, and what to write instead."""

    why: str
    hint: str


@dataclass(frozen=True)
class Capabilities:
    """What a family can do beyond its own fields. Metrics are declared on the spec model
    (`metrics_available`), because `gencompile validate` checks them without the compiler."""

    strategies: tuple[str, ...] = STRATEGIES
    mixed_precision: Refusal | None = None  # None: available
    refused_exports: Mapping[str, Refusal] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def exports(self) -> tuple[str, ...]:
        return tuple(e for e in EXPORTS if e not in self.refused_exports)


@dataclass(frozen=True)
class Family:
    """One generative family, registered once."""

    name: str  # the spec's `model.family` tag
    spec_model: type[Any]  # the pydantic model of its `model:` section
    lower: Callable[[Lowering], ProjectPlan[object]]
    capabilities: Capabilities = Capabilities()
    # A folder holding `model/<name>.py.j2` outside gencompile's templates (None: built in).
    template_dir: Path | None = None

    @property
    def template(self) -> str:
        return f"model/{self.name}.py.j2"

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.spec_model.metrics_available)


def check_capabilities(low: Lowering, family: Family) -> None:
    """Report what the spec asks of the family that the family cannot do."""
    spec, able = low.spec, family.capabilities
    if spec.training.mixed_precision and able.mixed_precision is not None:
        low.report(
            ("training", "mixed_precision"),
            f"mixed precision is not available for the {family.name} family: "
            f"{able.mixed_precision.why}",
            able.mixed_precision.hint,
        )
    strategy = spec.training.distribution.strategy
    if strategy not in able.strategies:
        low.report(
            ("training", "distribution", "strategy"),
            f"the {strategy} strategy is not available for the {family.name} family",
            f"use strategy: {' or '.join(able.strategies)}",
        )
    for i, export in enumerate(spec.output.export):
        refusal = able.refused_exports.get(export)
        if refusal is not None:
            low.report(
                ("output", "export", i),
                f"the {export} export is not available for the {family.name} family: {refusal.why}",
                refusal.hint,
            )
