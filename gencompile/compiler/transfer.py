"""Lowering `model.init_from`: the plain config the runtime's `init_from` module reads.

The weights themselves are read at train time (a run may not exist yet when the spec is
built); here the spec's networks are checked against the model's and the spec line of
`init_from` is recorded, so that a mismatch found at train time is located in the spec.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import ProjectPlan
from gencompile.spec.diagnostics import did_you_mean

# Families whose plan lists every network the weights file holds under the same name.
# A flow's transforms (coupling_1, actnorm_1, ...) and a mixture's parameters are named
# by the runtime, so their `networks:` are checked at train time.
NAMED_NETWORKS = ("vae", "gan", "diffusion", "autoregressive")
# A mixture's weights are the model's own variables, not a network's: this unit names them.
MIXTURE_UNIT = "mixture"


def init_from_config(low: Lowering, plan: ProjectPlan[object]) -> dict[str, Any] | None:
    """`INIT_FROM` of the generated train.py, or None when the spec has no init_from."""
    init_from = getattr(low.spec.model, "init_from", None)  # a registered family may lack it
    if init_from is None:
        return None
    family = plan.family
    if family in NAMED_NETWORKS and init_from.networks is not None:
        known = [network.name for network in plan.networks]
        for i, name in enumerate(init_from.networks):
            if name not in known:
                suggestion = did_you_mean(name, known)
                low.report(
                    ("model", "init_from", "networks", i),
                    f"the {family} model has no network '{name}'; it has {', '.join(known)}",
                    suggestion or f"name one of {', '.join(known)}",
                )
    mark = low.loaded.marks.locate(("model", "init_from"), at_key=True)
    where = mark.file if mark.line is None else f"{mark.file}:{mark.line}:{mark.column}"
    return {
        init_from.key: init_from.path,
        "networks": init_from.networks,
        "strict": init_from.strict,
        "family": family,
        # A mixture's parameters are the model's own variables; every other family's
        # own variables (a KL weight, a data spread) are settings, not learned weights.
        "own_weights": MIXTURE_UNIT if family == "mixture" else None,
        "where": where,
    }


def with_init_from(low: Lowering, plan: ProjectPlan[object]) -> ProjectPlan[object]:
    config = init_from_config(low, plan)
    return plan if config is None else replace(plan, init_from=config)
