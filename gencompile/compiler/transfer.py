"""Lowering `model.init_from`: the plain config the runtime's `init_from` module reads.

The weights themselves are read at train time; the parent's files (its folder, weights,
status and family, or the weights file) are checked when a spec file validates
(gencompile.spec.checks.check_init_from_files), and here the spec's networks against the
model's. A mismatch found at
train time is located in the project's copy of the spec (the runtime reads its line), so
that the generated code does not depend on where the spec came from.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import NetworkPlan, ProjectPlan
from gencompile.spec.diagnostics import did_you_mean

# Families whose plan lists every network the weights file holds under the same name.
# A flow's transforms (coupling_1, actnorm_1, ...) and a mixture's parameters are named
# by the runtime, so their `networks:` are checked at train time.
NAMED_NETWORKS = ("vae", "gan", "diffusion", "autoregressive")
# Families whose train step applies training.fine_tune's learning-rate factors (the
# optimizer of `model.compile`, and a GAN's per-network ones) to their named networks.
FINE_TUNED = (*NAMED_NETWORKS, "vq_vae")
# Networks fitted in a stage of their own, by an optimizer those factors do not reach: a
# VQ-VAE's prior (model.prior.learning_rate), fitted after the encoder and decoder.
OWN_STAGE = {"vq_vae": ("prior_network", "prior")}
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
    return {
        init_from.key: init_from.path,
        "networks": init_from.networks,
        "strict": init_from.strict,
        "family": family,
        # A mixture's parameters are the model's own variables; every other family's
        # own variables (a KL weight, a data spread) are settings, not learned weights.
        "own_weights": MIXTURE_UNIT if family == "mixture" else None,
        "vocabulary": vocabulary_config(plan),
    }


# A language model's layers indexed by token id, and the axis of each of their arrays
# that is (embedding rows; the logits' kernel columns and bias).
TOKEN_AXES = {"token_embedding": [0], "logits": [1, 0]}


def vocabulary_config(plan: ProjectPlan[object]) -> dict[str, Any] | None:
    """Where a language model's vocabulary is (relative to the project) and which arrays
    are indexed by token, so that a parent with another vocabulary can be remapped: known
    tokens keep their rows, new ones start fresh."""
    if "vocabulary.json" not in plan.extra.get("files", {}):
        return None
    return {"file": f"{plan.package}/vocabulary.json", "axes": TOKEN_AXES}


def with_init_from(low: Lowering, plan: ProjectPlan[object]) -> ProjectPlan[object]:
    """The plan with `init_from` and `training.fine_tune` as the runtime reads them."""
    config = init_from_config(low, plan)
    plan = fine_tune_config(low, plan)
    return plan if config is None else replace(plan, init_from=config)


def fine_tune_config(low: Lowering, plan: ProjectPlan[object]) -> ProjectPlan[object]:
    """`training.fine_tune` for the runtime (gencompile.runtime.fine_tune): the networks'
    learning-rate factors and, with unfreeze_after_epochs, what is frozen until then. What
    unfreezes is trainable in Keras from the start (its learning rate 0 until then), so the
    compiled train step and the optimizer see the same weights throughout."""
    training = dict(plan.training)
    training.pop("fine_tune", None)
    fine_tune = low.spec.training.fine_tune
    if fine_tune is None:
        return replace(plan, training=training)
    own_stage = OWN_STAGE.get(plan.family, ())
    names = [network.name for network in plan.networks if network.name not in own_stage]
    for name in fine_tune.learning_rate_multipliers:
        path = ("training", "fine_tune", "learning_rate_multipliers", name)
        if plan.family not in FINE_TUNED:
            low.report(
                path,
                f"the {plan.family} family has no named networks to give learning rates",
                "remove training.fine_tune.learning_rate_multipliers",
            )
        elif name in own_stage:
            low.report(
                path,
                f"the {plan.family} model's {name} is fitted after the other networks, by an "
                "optimizer of its own that training.fine_tune does not scale",
                "set model.prior.learning_rate instead",
            )
        elif name not in names:
            hint = did_you_mean(name, names) or f"name one of {', '.join(names)}"
            low.report(path, f"the model has no network '{name}'; it has {', '.join(names)}", hint)
    after = fine_tune.unfreeze_after_epochs
    frozen: list[str] = []
    networks = plan.networks
    if after is not None and plan.family not in FINE_TUNED:
        low.report(
            ("training", "fine_tune", "unfreeze_after_epochs"),
            f"the {plan.family} family has no named networks to unfreeze on a schedule",
            "freeze without a schedule (freeze: true, trainable: false), or remove it",
        )
    elif after is not None:
        frozen = frozen_parts(plan)
        if not frozen:
            low.report(
                ("training", "fine_tune", "unfreeze_after_epochs"),
                "nothing is frozen, so nothing unfreezes",
                "freeze a network (freeze: true) or layers (trainable: false), or remove it",
            )
        networks = tuple(unfrozen_in_keras(network, after) for network in plan.networks)
        plan = replace(plan, model=with_networks(plan.model, networks))
    training["fine_tune"] = {
        "unfreeze_after_epochs": after,
        "learning_rate_multipliers": dict(fine_tune.learning_rate_multipliers),
        "frozen": frozen,
    }
    return replace(plan, training=training, networks=networks)


def frozen_parts(plan: ProjectPlan[object]) -> list[str]:
    """What the spec freezes: whole networks by name, layers as `network.layer`."""
    parts: list[str] = []
    for network in plan.networks:
        if network.frozen:
            parts.append(network.name)
            continue
        parts.extend(
            f"{network.name}.{layer.name}" for layer in network.layers if not layer.trainable
        )
    return parts


def unfrozen_in_keras(network: NetworkPlan, after: int) -> NetworkPlan:
    """The network with its frozen layers written trainable (their learning rate is 0 until
    epoch `after`); the plan still marks them frozen for `explain`."""
    steps = tuple(
        replace(
            step,
            layer=replace(
                step.layer, args=tuple(a for a in step.layer.args if a != ("trainable", False))
            ),
        )
        if step.layer is not None and not step.layer.trainable
        else step
        for step in network.steps
    )
    frozen = network.frozen or any(not layer.trainable for layer in network.layers)
    return replace(network, steps=steps, frozen_until=after if frozen else None)


def with_networks(model: Any, networks: tuple[NetworkPlan, ...]) -> Any:
    """The family's model plan with its network fields (what templates render) replaced by
    the networks of the same name."""
    if not is_dataclass(model) or isinstance(model, type):
        return model
    by_name = {network.name: network for network in networks}
    changes = {
        item.name: by_name.get(value.name, value)
        for item in fields(model)
        if isinstance(value := getattr(model, item.name), NetworkPlan)
    }
    return replace(model, **changes)
