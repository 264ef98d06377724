"""Fine-tuning schedules (`training.fine_tune`): per-network learning rates and unfreezing.

Each network named in `learning_rate_multipliers`, and each part frozen until
`unfreeze_after_epochs`, gets a factor on the learning rate of its weights. The factor is
a variable that a callback sets at the start of every epoch (0 while frozen, then the
network's multiplier), so the compiled train step is traced once and a resumed run sets the
same factors as an uninterrupted one. The optimizer applies the factor by updating each
group of weights with `learning_rate * factor`: the update of SGD, Adam or any Keras
optimizer scales exactly, and so does a decoupled weight decay (AdamW's); a factor of 0
leaves the weights bit for bit. A frozen part stays trainable in Keras (so that the step is
traced once), so its layers with state of their own are told apart by the factor too: while
it is 0 they run in inference mode, as Keras runs a frozen one (batch norm's moving
statistics used and kept; spectral norm's kernel and vector u kept), and its gradients,
which Keras would not have, are left out of `global_clipnorm`'s norm and of the logged
`grad_norm` (`trained`).
"""

from __future__ import annotations

import weakref
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from gencompile.errors import RunError
from gencompile.runtime.contract import TrainingConfig

# model -> {id of a variable of a part that is or can be at a factor of 0: its factor}
HELD_AT_0: weakref.WeakKeyDictionary[keras.Model, dict[int, tf.Variable]] = (
    weakref.WeakKeyDictionary()
)


def callbacks(model: keras.Model, training: TrainingConfig) -> list[keras.callbacks.Callback]:
    """Install the learning-rate factors on the model's optimizers; the callback that sets
    them each epoch (none without `training.fine_tune`)."""
    config = training.get("fine_tune")
    if not config:
        return []
    factors = {
        part: (multiplier(config, part), tf.Variable(1.0, trainable=False, name="lr_factor"))
        for part in parts(config)
    }
    groups = {part: variables_of(model, part) for part in factors}
    held = {part for part, (value, _) in factors.items() if value == 0}  # a factor of 0 for good
    unfreezing = [part for part in scheduled_frozen(config) if part not in held]
    HELD_AT_0[model] = {
        variable: factors[part][1]
        for variable, part in owners(groups).items()
        if part in held or part in unfreezing
    }
    for optimizer in optimizers_of(model):
        scale_learning_rates(optimizer, groups, {part: f for part, (_, f) in factors.items()})
        clip_trained_only(
            optimizer, groups, held, unfreezing, factors[unfreezing[0]][1] if unfreezing else None
        )
    stilled: set[int] = set()  # a layer in two frozen parts takes the first one's factor
    for part in scheduled_frozen(config):
        for layer in stateful_layers_of(layer_of(model, part)):
            if id(layer) not in stilled:
                stilled.add(id(layer))
                hold_state_while_frozen(layer, factors[part][1])
    return [LearningRateFactors(factors, set(config["frozen"]), config["unfreeze_after_epochs"])]


def trained(model: keras.Model, grads: list[Any], variables: list[Any]) -> list[Any]:
    """`grads` (of `variables`) with those of the parts at a learning-rate factor of 0 as
    zeros: the gradients of what trains, whose norm the generated train_step logs as
    `grad_norm` (Keras leaves a frozen part's out: it is not among the trainable weights).
    Unchanged without parts that can be at 0."""
    factors = HELD_AT_0.get(model, {})
    return [
        grad
        if grad is None or id(variable) not in factors
        else zero_unless(factors[id(variable)] > 0, tf.convert_to_tensor(grad))
        for grad, variable in zip(grads, variables, strict=True)
    ]


def none_trains(model: keras.Model, variables: list[Any]) -> bool:
    """Whether every one of `variables` is at a learning-rate factor of 0 now (its epoch's):
    the norm of `trained` gradients over them is 0 as a frozen network's, no sign of
    vanishing gradients (`callbacks.GradientMonitor`)."""
    factors = HELD_AT_0.get(model, {})
    return bool(variables) and all(
        id(v) in factors and float(factors[id(v)].numpy()) == 0 for v in variables
    )


def zero_unless(condition: Any, grad: Any) -> Any:
    """`grad`, or zeros where `condition` is false (a non-finite gradient too)."""
    return tf.where(condition, grad, tf.zeros_like(grad))


def parts(config: dict[str, Any]) -> list[str]:
    """Frozen parts first, so that a layer frozen inside a network with a multiplier is
    grouped by its freeze (and takes the network's multiplier once unfrozen)."""
    named = scheduled_frozen(config)
    return named + [n for n in config["learning_rate_multipliers"] if n not in named]


def scheduled_frozen(config: dict[str, Any]) -> list[str]:
    """The parts frozen by a factor of 0 until `unfreeze_after_epochs` (without it, the
    generated code freezes them in Keras for good)."""
    return list(config["frozen"]) if config["unfreeze_after_epochs"] else []


def multiplier(config: dict[str, Any], part: str) -> float:
    """A part's factor once trained: its network's multiplier, else 1."""
    return float(config["learning_rate_multipliers"].get(part.split(".")[0], 1.0))


def variables_of(model: keras.Model, part: str) -> list[keras.Variable]:
    """The trainable variables of a network (`encoder`) or of one of its layers
    (`decoder.first`)."""
    return list(layer_of(model, part).trainable_variables)


def layer_of(model: keras.Model, part: str) -> keras.layers.Layer:
    """A network (`encoder`) or one of its layers (`decoder.first`)."""
    network_name, _, layer_name = part.partition(".")
    network = getattr(model, network_name, None)
    if not isinstance(network, keras.Model):
        raise RunError(f"training.fine_tune: the model has no network '{network_name}'")
    return network.get_layer(layer_name) if layer_name else network


def batch_norms_of(layer: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """The batch-norm layers in a layer (itself included) and in everything it holds."""
    return layers_of_types(layer, (keras.layers.BatchNormalization,))


def stateful_layers_of(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers in a layer (itself included) whose training call changes their weights
    without a gradient: batch norms (moving statistics) and spectral norms (kernel, u)."""
    return layers_of_types(
        layer, (keras.layers.BatchNormalization, keras.layers.SpectralNormalization)
    )


def layers_of_types(layer: keras.layers.Layer, types: tuple[type, ...]) -> list[Any]:
    return [
        found
        for found in layer._flatten_layers(include_self=True, recursive=True)
        if isinstance(found, types)
    ]


def hold_state_while_frozen(layer: keras.layers.Layer, factor: tf.Variable) -> None:
    """While its part's factor is 0 a training call runs the layer in inference mode, as a
    Keras-frozen layer runs: a batch norm normalises with its moving statistics and keeps
    them, a spectral norm keeps its kernel and vector u. A condition on the variable, so
    that the compiled step serves both."""
    call = layer.call

    def call_unless_frozen(inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        if not training:
            return call(inputs, training=training, **kwargs)
        return tf.cond(
            factor > 0,
            lambda: call(inputs, training=True, **kwargs),
            lambda: call(inputs, training=False, **kwargs),
        )

    layer.call = call_unless_frozen


def optimizers_of(model: keras.Model) -> list[keras.optimizers.Optimizer]:
    """The model's optimizer and its networks' own (a GAN's), unwrapped from loss scaling."""
    found = [model.optimizer] + [
        value
        for name, value in vars(model).items()
        if name.endswith("_optimizer") and isinstance(value, keras.optimizers.Optimizer)
    ]
    unique = {id(o): getattr(o, "inner_optimizer", o) for o in found if o is not None}
    return list(unique.values())


def scale_learning_rates(
    optimizer: keras.optimizers.Optimizer,
    groups: dict[str, list[keras.Variable]],
    factors: dict[str, tf.Variable],
) -> None:
    """Update each group's variables with the learning rate times the group's factor: one
    backend update per group, in the order the optimizer received them otherwise. The
    decoupled weight decay (AdamW's), which Keras applies before the update with the bare
    learning rate, is scaled by the same factor."""
    owner = owners(groups)
    update = optimizer._backend_update_step
    decay = optimizer._apply_weight_decay

    def grouped_update(grads: list[Any], variables: list[Any], learning_rate: Any) -> None:
        by_part: dict[str | None, tuple[list[Any], list[Any]]] = {}
        for grad, variable in zip(grads, variables, strict=True):
            pair = by_part.setdefault(owner.get(id(variable)), ([], []))
            pair[0].append(grad)
            pair[1].append(variable)
        for part, (part_grads, part_variables) in by_part.items():
            rate = learning_rate if part is None else learning_rate * factors[part]
            update(part_grads, part_variables, rate)

    def grouped_decay(variables: list[Any]) -> None:
        decay([v for v in variables if id(v) not in owner])
        if optimizer.weight_decay is None:
            return
        for variable in variables:
            if id(variable) in owner and optimizer._use_weight_decay(variable):
                scaled_decay(optimizer, variable, factors[owner[id(variable)]])

    optimizer._backend_update_step = grouped_update
    optimizer._apply_weight_decay = grouped_decay


def owners(groups: dict[str, list[keras.Variable]]) -> dict[int, str]:
    """Variable id -> its part: the first part listing a variable owns it."""
    owner: dict[int, str] = {}
    for part, variables in groups.items():
        for variable in variables:
            owner.setdefault(id(variable), part)
    return owner


def clip_trained_only(
    optimizer: keras.optimizers.Optimizer,
    groups: dict[str, list[keras.Variable]],
    held: set[str],
    unfreezing: list[str],
    unfrozen: tf.Variable | None,
) -> None:
    """`global_clipnorm` over the gradients of the weights that train, as Keras clips when
    the parts at a factor of 0 are frozen (not in the list): the parts `held` at 0 for good,
    and the `unfreezing` ones while their factor (`unfrozen`, which they share) is 0. Each
    norm is Keras' own over the same gradients in the same order, so the trained weights'
    updates are bit for bit those of a run that freezes those parts in Keras; a condition
    on the factor picks it, so that the compiled step serves both. Every gradient is
    scaled alike (a frozen part's moves nothing at a learning rate of 0). `clipnorm` and
    `clipvalue` clip each gradient alone: nothing to change."""
    owner = owners(groups)
    clip = optimizer._clip_gradients
    apply_gradients = optimizer._backend_apply_gradients
    variables_now: list[list[Any]] = [[]]  # the variables of the gradients being clipped

    def apply_and_clip(grads: list[Any], variables: list[Any]) -> Any:
        variables_now[0] = list(variables)  # read by clip_trained while this call traces
        return apply_gradients(grads, variables)

    def clip_trained(grads: list[Any]) -> list[Any]:
        limit = optimizer.global_clipnorm
        if optimizer.clipnorm or not limit or limit <= 0:
            return clip(grads)
        parts = [owner.get(id(v)) for v in variables_now[0]]

        def norm(left_out: set[str]) -> Any:
            return trained_norm(grads, parts, left_out)

        if unfrozen is None:
            use_norm = norm(held)
        else:
            frozen = held | set(unfreezing)
            use_norm = tf.cond(unfrozen > 0, lambda: norm(held), lambda: norm(frozen))
        # keras.optimizers' clip_by_global_norm, with that norm
        scale = limit * ops.minimum(1.0 / use_norm, 1.0 / limit) + (use_norm - use_norm)
        return [g * scale if g is not None else g for g in grads]

    optimizer._backend_apply_gradients = apply_and_clip
    optimizer._clip_gradients = clip_trained


def trained_norm(grads: list[Any], parts: list[str | None], left_out: set[str]) -> Any:
    """Keras' global norm (the same operations) of the gradients of parts not `left_out`."""
    squared = [
        ops.sum(ops.square(g))
        for g, part in zip(grads, parts, strict=True)
        if g is not None and part not in left_out
    ]
    return ops.sqrt(ops.sum(ops.stack(squared))) if squared else ops.zeros(())


def scaled_decay(optimizer: keras.optimizers.Optimizer, variable: Any, factor: tf.Variable) -> None:
    """Keras' decoupled weight decay (`variable * weight_decay * learning_rate`) times the
    factor: the same bits with a factor of 1, none moved with 0."""
    dtype = variable.dtype
    step = (
        variable * tf.cast(optimizer.weight_decay, dtype) * tf.cast(optimizer.learning_rate, dtype)
    )
    variable.assign_sub(step * tf.cast(factor, dtype))


class LearningRateFactors(keras.callbacks.Callback):
    """At each epoch's start: 0 for frozen parts before `unfreeze_after`, else their
    multiplier. Set every epoch, so that a resumed run has the factors of its epoch."""

    def __init__(
        self,
        factors: dict[str, tuple[float, tf.Variable]],
        frozen: set[str],
        unfreeze_after: int | None,
    ):
        super().__init__()
        self.factors, self.frozen, self.unfreeze_after = factors, frozen, unfreeze_after

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        still_frozen = self.unfreeze_after is not None and epoch < self.unfreeze_after
        for part, (value, factor) in self.factors.items():
            factor.assign(0.0 if still_frozen and part in self.frozen else value)
