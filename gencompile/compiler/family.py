"""A generative family as one object: its spec model, capabilities, lowering parts and template.

The registry (`compiler/families/__init__.py`) lists one `Family` per family. A family
declares its lowering as three parts, which the passes of `compiler/lower.py` call in
order around the shared ones: `check` (cross-field and data checks, returning what they
learned), `networks` (its networks with their heads) and `plan` (model plan, loss in
words, the project plan). Capabilities are checked by one shared pass, so a refusal reads
the same for every family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar, get_args

from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import ProjectPlan
from gencompile.spec.evaluation import OutputSpec
from gencompile.spec.training import Distribution

# What the spec language can ask for, read from its fields so the two cannot drift apart.
STRATEGIES: tuple[str, ...] = get_args(Distribution.model_fields["strategy"].annotation)
EXPORTS: tuple[str, ...] = get_args(get_args(OutputSpec.model_fields["export"].annotation)[0])
# The pictures of the latent space a run's report can show (`output.report.latent_pictures`;
# drawn by gencompile.runtime.report_pictures).
LATENT_PICTURES = ("reconstructions", "map", "traversal", "interpolations")


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
    # Of LATENT_PICTURES, those that mean something for the family (none: a family whose
    # latent space has no picture worth its cost at the end of every training).
    latent_pictures: tuple[str, ...] = ()
    # (Training settings a family ignores are declared on its spec model, `unused_training`,
    # and refused when the spec validates: gencompile.spec.checks.check_unused_training.)
    # Whether its train and test steps take a replica's empty slice of a batch (no
    # convolution, which fails on one; statistics that are sums). Under a strategy, other
    # families leave out a last training batch that would leave a replica without an
    # example, and refuse held-out data whose last batch would (runtime/replica_batches.py).
    empty_replica_slices: bool = False

    @property
    def exports(self) -> tuple[str, ...]:
        return tuple(e for e in EXPORTS if e not in self.refused_exports)


FactsT = TypeVar("FactsT")  # what a family's checks learned (None for most)
BuiltT = TypeVar("BuiltT")  # what a family's networks pass built


def no_checks(low: Lowering, data: DataShape) -> None:
    """The checks of a family with none of its own."""


def no_networks(low: Lowering, data: DataShape, facts: object) -> tuple[()]:
    """The networks of a family without any (the mixture)."""
    return ()


@dataclass(frozen=True)
class Family(Generic[FactsT, BuiltT]):
    """One generative family, registered once; its lowering parts in the order they run."""

    name: str  # the spec's `model.family` tag
    spec_model: type[Any]  # the pydantic model of its `model:` section
    # Problems relating the family's fields to each other and to the data (reported, not
    # raised); returns what later parts need from them.
    check: Callable[[Lowering, DataShape], FactsT]
    # The networks with their heads; shape problems are reported, located.
    networks: Callable[[Lowering, DataShape, FactsT], BuiltT]
    # The model plan and loss in words, through `Lowering.project_plan`.
    plan: Callable[[Lowering, DataShape, FactsT, BuiltT], ProjectPlan[object]]
    capabilities: Capabilities = Capabilities()
    # A folder holding `model/<name>.py.j2` outside gencompile's templates (None: built in).
    template_dir: Path | None = None

    @property
    def template(self) -> str:
        return f"model/{self.name}.py.j2"

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.spec_model.metrics_available)


def check_capabilities(low: Lowering, family: Family[Any, Any]) -> None:
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
