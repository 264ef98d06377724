"""Lowering: a validated spec becomes a `ProjectPlan` (defaults filled, shapes inferred).

The entry point: it looks the spec's family up in the registry, runs the family's
lowering on a shared `Lowering` context, then the checks every family shares. Families
import the context (`compiler/lowering.py`), never this module, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

from gencompile.compiler.families import REGISTRY
from gencompile.compiler.family import Family, check_capabilities
from gencompile.compiler.lowering import Lowering, check_sizes
from gencompile.compiler.plan import ProjectPlan
from gencompile.spec import LoadedSpec


def lower(loaded: LoadedSpec, families: Mapping[str, Family] = REGISTRY) -> ProjectPlan[object]:
    """Spec -> ProjectPlan, through the family's registered lowering."""
    lowering = Lowering(loaded)
    family = families[loaded.spec.model.family]
    check_capabilities(lowering, family)  # reported with the family's own problems
    plan = family.lower(lowering)
    lowering.check_metric_data_kind()
    check_sizes(lowering, plan)
    lowering.fail_if_problems()
    return plan
