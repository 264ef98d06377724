"""Lowering: a validated spec becomes a `ProjectPlan` (defaults filled, shapes inferred).

The entry point runs `PASSES` in order over one `LoweringState`, the way sqlglot's
optimizer runs its rules: shared passes (capabilities, data shape, metric kinds, sizes)
around the family's own parts (`Family.check`, `.networks`, `.plan`, see
`compiler/family.py`), with `stop_if_problems` wherever a later pass needs the earlier
ones sound. Problems are reported in pass order and raised together. Families import the
context (`compiler/lowering.py`), never this module, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.families import REGISTRY
from gencompile.compiler.family import Family, check_capabilities
from gencompile.compiler.lowering import Lowering, check_sizes
from gencompile.compiler.plan import ProjectPlan
from gencompile.compiler.transfer import with_init_from
from gencompile.spec import LoadedSpec


@dataclass
class LoweringState:
    """What the passes share: the context, the family, and what earlier passes added."""

    low: Lowering
    family: Family[Any, Any]
    data_shape: DataShape | None = None
    facts: Any = None  # the family's own type (see Family.check)
    built: Any = None  # the family's own type (see Family.networks)
    plan: ProjectPlan[object] | None = None

    @property
    def data(self) -> DataShape:
        if self.data_shape is None:
            raise AssertionError("the data_shape pass has not run")
        return self.data_shape

    @property
    def project(self) -> ProjectPlan[object]:
        if self.plan is None:
            raise AssertionError("the model_plan pass has not run")
        return self.plan


def capabilities(state: LoweringState) -> None:
    """Report what the spec asks of the family that it cannot do (reported first)."""
    check_capabilities(state.low, state.family)


def data_shape(state: LoweringState) -> None:
    """Add the data's shape and kind; stops at once if they cannot be determined."""
    state.data_shape = state.low.data_shape()


def family_checks(state: LoweringState) -> None:
    """Report the family's cross-field and data problems; add what its checks learned."""
    state.facts = state.family.check(state.low, state.data)


def stop_if_problems(state: LoweringState) -> None:
    """Raise every problem reported so far: the passes after this need a sound spec."""
    state.low.fail_if_problems()


def networks(state: LoweringState) -> None:
    """Add the family's networks with their heads (shape problems reported, located)."""
    state.built = state.family.networks(state.low, state.data, state.facts)


def model_plan(state: LoweringState) -> None:
    """Add the project plan: the family's model plan and loss in words, the shared sections
    (data, training, evaluation, the resolved spec) from `Lowering.project_plan`."""
    state.plan = state.family.plan(state.low, state.data, state.facts, state.built)


def init_from(state: LoweringState) -> None:
    """Add `model.init_from` as the runtime reads it (its networks checked, its line kept)."""
    state.plan = with_init_from(state.low, state.project)


def replica_slices(state: LoweringState) -> None:
    """Under a strategy, tell the runtime whether the family's steps take a replica's empty
    slice of a batch (`Capabilities.empty_replica_slices`), or need batches kept from it."""
    training = state.project.training
    if training["distribution"]["strategy"] == "none":
        return
    distribution = {
        **training["distribution"],
        "empty_slices": state.family.capabilities.empty_replica_slices,
    }
    state.plan = replace(state.project, training={**training, "distribution": distribution})


def metric_kinds(state: LoweringState) -> None:
    """Report metrics that do not fit the data's kind (image metrics need images, ...)."""
    state.low.check_metric_data_kind(state.data.kind)


def sizes(state: LoweringState) -> None:
    """Report networks and sample arrays too large for memory, where their sizes come from."""
    check_sizes(state.low, state.project)


Pass = Callable[[LoweringState], None]

PASSES: tuple[Pass, ...] = (
    capabilities,
    data_shape,
    family_checks,
    stop_if_problems,
    networks,
    stop_if_problems,
    model_plan,
    init_from,
    replica_slices,
    metric_kinds,
    sizes,
    stop_if_problems,
)


def lower(
    loaded: LoadedSpec, families: Mapping[str, Family[Any, Any]] = REGISTRY
) -> ProjectPlan[object]:
    """Spec -> ProjectPlan, through `PASSES` with the spec's registered family."""
    lowering = Lowering(loaded)
    state = LoweringState(lowering, families[loaded.spec.model.family])
    for run in PASSES:
        run(state)
    return state.project
