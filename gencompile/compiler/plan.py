"""The resolved plan a spec lowers to: every default filled, every shape known.

Templates read only plans. A network is a straight line of `Step`s, each assigning one
variable from one Keras layer call, so generated builders read like hand-written
functional-API code and `gencompile explain` can list the same layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar

Shape = tuple[int | None, ...]
PathKey = tuple[str | int, ...]

# The family's own plan dataclass (VAEPlan, GANPlan, ... or a registered family's own).
# Covariant: a ProjectPlan[VAEPlan] is a ProjectPlan[object] for family-independent code.
ModelPlanT = TypeVar("ModelPlanT", covariant=True)


@dataclass(frozen=True)
class LayerPlan:
    """One Keras layer constructor call."""

    kind: str  # spec layer type, or a head's role ("head", "one_hot", ...)
    cls: str  # constructor from a fixed table, e.g. "layers.Dense"
    args: tuple[tuple[str, Any], ...]  # keyword arguments: literals or a wrapped LayerPlan
    name: str
    output_shape: Shape
    params: int | None
    positional: int = 0  # how many leading args are passed positionally
    regularizer: tuple[float, float] | None = None  # (l1, l2) kernel regularizer
    source: PathKey | None = None  # where the spec wrote it (None: appended by the compiler)
    trainable: bool = True  # false: `trainable: false` on it or on its residual block
    pretrained: bool = False  # a keras_application whose weights train.py loads from a file
    # Of `params`, the non-trainable state no gradient step changes even while the layer
    # trains (batch norm's moving statistics, spectral norm's u): Keras' non_trainable_weights.
    state: int = 0


@dataclass(frozen=True)
class Step:
    """`target = layer(inputs)`; with no layer, a plain alias `target = inputs[0]`."""

    target: str
    inputs: tuple[str, ...]
    layer: LayerPlan | None = None
    packed: bool = False  # call with a list: layer([a, b])
    call_args: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class InputPlan:
    var: str
    shape: Shape
    dtype: str = "float32"


# The argument of a spectral normalization wrapper under mixed precision: it runs in float32.
# In float16, the policy's compute dtype, its power iteration overflows a cast (the bound
# 1 / epsilon on the inverse norm) and the float32 kernel it writes back at every training
# step is rounded to float16, losing the precision mixed precision keeps in the weights.
FLOAT32_SPECTRAL_NORM = ("dtype", "float32")


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    doc: str
    inputs: tuple[InputPlan, ...]
    steps: tuple[Step, ...]
    outputs: tuple[str, ...]
    custom_imports: tuple[tuple[str, str, str], ...] = ()  # (module, class, alias)
    frozen: bool = False  # `freeze: true`: every weight, heads included
    # training.fine_tune.unfreeze_after_epochs: frozen (learning rate 0) only until then
    frozen_until: int | None = None
    # (layer name, weights file) of its keras_application layers with pretrained weights
    application_weights: tuple[tuple[str, str], ...] = ()
    # How many layers of the model build it, each with its own weights (a flow's coupling
    # repeated: one conditioner builder, a copy per coupling); its counts are one copy's.
    copies: int = 1

    @property
    def builder(self) -> str:
        return f"build_{self.name}"

    @property
    def float32_spectral_norm(self) -> bool:
        """Whether its spectral normalization runs in float32 (under mixed precision)."""
        return any(FLOAT32_SPECTRAL_NORM in layer.args for layer in self.layers)

    @property
    def held_state(self) -> tuple[str, ...]:
        """What the comment of a frozen network says it keeps, by the layers it has: batch
        norms (an application's included) and spectral norms change weights without a
        gradient while they train."""
        found = _all(self)
        batch_norm = any(
            layer.kind == "batch_norm" or (layer.kind == "keras_application" and layer.state)
            for layer in found
        )
        spectral_norm = any(layer.kind == "spectral_norm" for layer in found)
        return (
            *(("batch-norm layers keep their moving statistics",) if batch_norm else ()),
            *(("spectral-norm layers keep their kernels and vector u",) if spectral_norm else ()),
        )

    @property
    def frozen_params(self) -> int:
        """Trainable weights that are frozen (every one of them if the network is frozen);
        non-trainable state is not among them (`state_params`)."""
        return sum(
            (layer.params or 0) - layer.state
            for layer in self.layers
            if self.frozen or not layer.trainable
        )

    @property
    def state_params(self) -> int:
        """Non-trainable state: batch-norm moving statistics, spectral norm's vector u, ..."""
        return sum(layer.state for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        """What gradient steps change: Keras' trainable count of the built network."""
        return self.params - self.frozen_params - self.state_params

    @property
    def layers(self) -> tuple[LayerPlan, ...]:
        return tuple(s.layer for s in self.steps if s.layer is not None)

    @property
    def params(self) -> int:
        return sum(layer.params or 0 for layer in self.layers)


class ExtraPlan(TypedDict, total=False):
    """What some families add to the plan. Keys, not attributes with None, because the
    model card tests them with `is defined`."""

    total_params: int  # weights outside the networks too (a flow)
    files: dict[str, str]  # data files beside the code: name -> text (a text vocabulary)
    fitting: str  # how the model card says the model is fitted (a mixture's EM)
    sampling: str  # how the model card says samples are drawn (diffusion)
    ema_copy: str  # the network the model holds (and saves) a second copy of: its EMA


@dataclass(frozen=True)
class ProjectPlan(Generic[ModelPlanT]):
    """Everything emission needs: family-independent settings plus the family's model plan."""

    name: str  # spec name, e.g. "vae-digits"
    package: str  # python package, e.g. "vae_digits"
    family: str
    description: str
    seed: int
    data: dict[str, Any]  # runtime config of gencompile.runtime.data.load_data
    data_shape: Shape
    data_kind: str  # "image" | "vector"
    num_classes: int | None
    training: dict[str, Any]
    evaluation: dict[str, Any]
    output: dict[str, Any]
    model: ModelPlanT
    networks: tuple[NetworkPlan, ...]
    resolved_spec: dict[str, Any]
    loss_in_words: str
    extra: ExtraPlan = field(default_factory=ExtraPlan)
    # `model.init_from` as the runtime reads it (gencompile.runtime.init_from), or None.
    init_from: dict[str, Any] | None = None

    @property
    def custom_imports(self) -> tuple[tuple[str, str, str], ...]:
        """`from module import Class as alias` lines for custom layers (opt-in only)."""
        found = (item for network in self.networks for item in network.custom_imports)
        return tuple(dict.fromkeys(found))

    @property
    def application_weights(self) -> dict[str, dict[str, str]]:
        """Network -> {keras_application layer -> weights file} that train.py loads."""
        return {
            network.name: dict(network.application_weights)
            for network in self.networks
            if network.application_weights
        }

    @property
    def untrained_params(self) -> int:
        """The networks' weights no gradient step changes: frozen layers and non-trainable
        state (batch-norm statistics, spectral norm's vectors)."""
        return sum(n.params - n.trainable_params for n in self.networks)

    @property
    def ema_copy_params(self) -> int:
        """The weights of the EMA copy the model holds and saves beside the network it
        averages (`extra['ema_copy']`); 0 without one."""
        name = self.extra.get("ema_copy")
        return next((n.params for n in self.networks if n.name == name), 0) if name else 0

    @property
    def uses_regularizers(self) -> bool:
        return any(layer.regularizer for network in self.networks for layer in _all(network))

    @property
    def uses_runtime_layers(self) -> bool:
        return any(
            layer.cls.startswith("gencompile_layers.")
            for network in self.networks
            for layer in _all(network)  # a wrapper's or a residual body's layers too
        )


def _all(network: NetworkPlan) -> list[LayerPlan]:
    """Every layer of a network, wrapped ones (spectral_norm) included."""
    found: list[LayerPlan] = []
    pending = list(network.layers)
    while pending:
        layer = pending.pop()
        found.append(layer)
        pending.extend(v for _, v in layer.args if isinstance(v, LayerPlan))
    return found
