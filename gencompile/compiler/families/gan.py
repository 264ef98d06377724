"""Lowering of the `gan` family: generator and discriminator networks with their heads.

The generator maps z (and a class y) to one example: its body's output is projected to the
data's shape by a dense layer (flat bodies) or a 3x3 convolution (bodies that end with an
image of the data's height and width). The discriminator maps an example (and y) to one
unbounded score: a logit for the losses with real/fake targets, a critic value for the
hinge and Wasserstein losses. A class y is one-hot coded or embedded and concatenated to z,
to x's features (dense bodies) or to x's channels (convolutional bodies).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gencompile.catalog.gan import LOSSES, PENALTIES, AdversarialLoss, GradientPenalty
from gencompile.compiler.applications import data_scale
from gencompile.compiler.data_classes import check_data_classes
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import Capabilities, Family
from gencompile.compiler.lowering import Lowering, type_first
from gencompile.compiler.networks import NetworkBuilder, expand, spectrally_normalized, walk
from gencompile.compiler.plan import NetworkPlan, PathKey, ProjectPlan, Shape
from gencompile.compiler.shapes import ShapeError, features, fmt, known, size, vector
from gencompile.spec.families.gan import GANModel
from gencompile.spec.networks import (
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    Network,
    Reshape,
    UpSampling2D,
)
from gencompile.spec.training import Adam


@dataclass(frozen=True)
class GANPlan:
    latent_dim: int
    data_shape: Shape
    num_classes: int | None
    prior: dict[str, Any]
    loss: AdversarialLoss  # the template renders its functions and formulas
    penalty: GradientPenalty | None
    penalty_weight: float
    # Lazy regularization: the penalty on every penalty_interval-th discriminator update.
    penalty_interval: int
    # model.augmentation resolved (type, policy and ADA's settings), or None.
    augmentation: dict[str, Any] | None
    critic_steps: int
    label_smoothing: float
    ema: float
    output_activation: str  # linear | tanh | sigmoid (resolved)
    generator: NetworkPlan
    discriminator: NetworkPlan


OutputActivation = Literal["linear", "tanh", "sigmoid"]


def output_activation(model: GANModel, scale: tuple[float, float] | None) -> OutputActivation:
    """The generator's output activation; `auto` follows the data's value range."""
    if model.output_activation != "auto":
        return model.output_activation
    if scale == (-1.0, 1.0):
        return "tanh"
    if scale == (0.0, 1.0):
        return "sigmoid"
    return "linear"


# -- conditioning on a class --------------------------------------------------------------


def _class_code(net: NetworkBuilder, conditional: Any) -> tuple[str, int]:
    """The class input y and its code: a one-hot vector or a learned embedding."""
    y = net.input("y", (), "int32")
    k = conditional.num_classes
    if conditional.encoding == "one_hot":
        args: tuple[tuple[str, Any], ...] = (("num_tokens", k), ("output_mode", "one_hot"))
        layer = net.layer("one_hot", "layers.CategoryEncoding", args, (k,), 0, name="class_code")
        return net.add("y_code", layer, (y,)), k
    dim = conditional.embedding_dim or 16
    embedding = Embedding(type="embedding", input_dim=k, output_dim=dim, name="class_code")
    return net.add("y_code", net.synth(embedding, (), kind="embedding"), (y,)), dim


def _join_class(
    net: NetworkBuilder, h: str, shape: Shape, code: str, dim: int
) -> tuple[str, Shape]:
    """Concatenate the class code to flat features, or as constant channels of an image."""
    if len(shape) == 3:
        pixel = Reshape(type="reshape", target_shape=[1, 1, dim], name="class_code_pixel")
        code = net.add("y_code", net.synth(pixel, (dim,), kind="reshape"), (code,))
        height, width, _ = known(shape, "the class code map")
        tile = UpSampling2D(type="upsampling2d", size=(height, width), name="class_code_map")
        code = net.add("y_code", net.synth(tile, (1, 1, dim), kind="upsampling2d"), (code,))
    joined = (*shape[:-1], features(shape, "concat") + dim)
    concat = net.layer("concat", "layers.Concatenate", (), joined, 0, name="with_class")
    return net.add("h", concat, (h, code), packed=True), joined


# -- the two networks ---------------------------------------------------------------------

GENERATOR_HEADS = [
    "output_dense",
    "output_conv",
    "to_data_shape",
    "class_code",
    "class_code_pixel",
    "class_code_map",
    "with_class",
]
DISCRIMINATOR_HEADS = [
    "score",
    "features",
    "flatten_x",
    "class_code",
    "class_code_pixel",
    "class_code_map",
    "with_class",
]


def _last_layer_path(network: Network, path: PathKey) -> PathKey:
    return expand(network, path)[1][-1]


def _generator(low: Lowering, data_shape: Shape, activation: OutputActivation) -> NetworkPlan:
    model = low.family_model(GANModel)
    net = NetworkBuilder(
        "generator",
        low.regularizer(),
        low.report,
        mixed_precision=low.spec.training.mixed_precision,
    )
    net.reserve(GENERATOR_HEADS)
    z = net.input("z", (model.latent_dim,))
    h, shape = z, vector(model.latent_dim)
    if model.conditional is not None:
        code, dim = _class_code(net, model.conditional)
        h, shape = _join_class(net, h, shape, code, dim)
    h, shape = net.body(model.generator, ("model", "generator"), h, shape)
    _generator_head(low, net, h, shape, data_shape, activation)
    doc = (
        "G(z, y): maps z and a class y to one example."
        if model.conditional
        else "G(z): maps z to one example."
    )
    return net.build(doc, ("x",))


def _generator_head(
    low: Lowering,
    net: NetworkBuilder,
    h: str,
    shape: Shape,
    data_shape: Shape,
    activation: OutputActivation,
) -> None:
    """Dense (+ reshape) from a flat body, a 3x3 convolution from an image of the data's
    height and width; the output `x` is one example."""
    act = activation if activation != "linear" else None
    if len(shape) == 1:
        dense = Dense(type="dense", units=size(data_shape), activation=act, name="output_dense")
        if len(data_shape) == 1:
            net.add("x", net.synth(dense, shape), (h,))
            return
        head = net.synth(dense, shape)
        h = net.add("h", head, (h,))
        reshape = Reshape(
            type="reshape", target_shape=list(known(data_shape, "reshape")), name="to_data_shape"
        )
        net.add("x", net.synth(reshape, head.output_shape, kind="reshape"), (h,))
    elif len(shape) == 3 and len(data_shape) == 3 and shape[:2] == data_shape[:2]:
        conv = Conv2D(
            type="conv2d",
            filters=features(data_shape, "conv2d"),
            kernel_size=3,
            activation=act,
            name="output_conv",
        )
        net.add("x", net.synth(conv, shape), (h,))
    else:
        model = low.family_model(GANModel)
        low.report(
            _last_layer_path(model.generator, ("model", "generator")),
            f"the generator's body ends with shape {fmt(shape)}, which cannot be turned into "
            f"one example of the data's shape {fmt(data_shape)}",
            _generator_shape_hint(shape, data_shape),
        )
        raise ShapeError("generator head")


def _generator_shape_hint(shape: Shape, data_shape: Shape) -> str:
    if len(shape) == 3 and len(data_shape) == 3:
        (h, w, _), (dh, dw, _) = known(shape, "a hint"), known(data_shape, "a hint")
        if dh % h == 0 and dw % w == 0 and dh // h == dw // w:
            factor = dh // h
            return (
                f"end the body with a {dh}x{dw} image: add a conv2d_transpose with strides "
                f"{factor} (or an upsampling2d of size {factor}) after it"
            )
        return f"end the body with an image of height {dh} and width {dw}, or with a dense layer"
    return "end the body with a flat vector (dense) or an image of the data's height and width"


def _discriminator(low: Lowering, data_shape: Shape, spectral_norm: bool) -> NetworkPlan:
    model = low.family_model(GANModel)
    net = NetworkBuilder(
        "discriminator",
        low.regularizer(),
        low.report,
        spectral_norm,
        mixed_precision=low.spec.training.mixed_precision,
    )
    net.reserve(DISCRIMINATOR_HEADS)
    x = net.input("x", data_shape)
    net.image_input = (x, data_scale(low.spec))  # where a keras_application may read x
    h, shape = x, data_shape
    layers, _ = expand(model.discriminator, ("model", "discriminator"))
    if model.conditional is not None:
        if len(shape) > 1 and layers[0].type == "dense":
            flatten = net.synth(Flatten(type="flatten", name="flatten_x"), shape, kind="flatten")
            h, shape = net.add("h", flatten, (h,)), flatten.output_shape
        code, dim = _class_code(net, model.conditional)
        h, shape = _join_class(net, h, shape, code, dim)
        net.conditioned = True
    h, shape = net.body(model.discriminator, ("model", "discriminator"), h, shape)
    if len(shape) > 1:
        flatten = net.synth(Flatten(type="flatten", name="features"), shape, kind="flatten")
        h, shape = net.add("h", flatten, (h,)), flatten.output_shape
    score = Dense(type="dense", units=1, name="score")
    if spectral_norm:
        dense = net.synth(spectrally_normalized(score), shape, kind="spectral_norm")
    else:
        dense = net.synth(score, shape)
    net.add("score", dense, (h,))
    kind = LOSSES[model.loss.type].score
    given = "an example x and its class y" if model.conditional else "an example x"
    return net.build(
        f"D(x{', y' if model.conditional else ''}): maps {given} to one score ({kind}).",
        ("score",),
    )


# -- cross-field checks -------------------------------------------------------------------


def _discriminator_layers(model: GANModel) -> list[tuple[PathKey, Any]]:
    layers, paths = expand(model.discriminator, ("model", "discriminator"))
    return walk(layers, paths)


def check(low: Lowering, scale: tuple[float, float] | None, standardize: bool) -> None:
    """Problems that relate the GAN's options to each other and to the data."""
    model = low.family_model(GANModel)
    loss = LOSSES[model.loss.type]
    penalty = PENALTIES[model.gradient_penalty.type] if model.gradient_penalty else None
    if model.label_smoothing > 0 and not loss.has_labels:
        labelled = [other.name for other in LOSSES.values() if other.has_labels]
        low.report(
            ("model", "label_smoothing"),
            f"label smoothing changes the real examples' target label, but the {loss.name} "
            "loss has no labels",
            f"set label_smoothing: 0, or use the {', '.join(labelled[:-1])} or {labelled[-1]} loss",
        )
    layers = _discriminator_layers(model)
    has_spectral_layers = any(layer.type == "spectral_norm" for _, layer in layers)
    constrained = penalty is not None or model.spectral_norm or has_spectral_layers
    if loss.needs_lipschitz and not constrained:
        low.report(
            ("model", "loss", "type"),
            "a Wasserstein critic must be kept 1-Lipschitz, or its scores grow without bound",
            "add gradient_penalty: {type: wgan_gp, weight: 10.0} or spectral_norm: true",
        )
    top = [(p, layer) for p, layer in layers if len(p) == 4]  # not inside residual blocks
    if top:
        path, last = top[-1]
        inner = last.layer if last.type == "spectral_norm" else last
        if inner.type == "dense" and inner.units == 1:
            sigmoid = inner.activation == "sigmoid"
            needs_unbounded = loss.unbounded_score or (
                penalty is not None and penalty.unbounded_score
            )
            objective = penalty.name if penalty else loss.name
            why = (
                f"; a sigmoid would also bound the score, which the {objective} "
                "objective needs unbounded"
                if sigmoid and needs_unbounded
                else ""
            )
            low.report(
                path,
                "the discriminator's body ends in a single unit"
                + (" with a sigmoid" if sigmoid else "")
                + ": the compiler appends the output layer itself (one linear score per "
                "example; the losses apply the sigmoid where they need it)" + why,
                "remove this layer: the body holds only the hidden layers",
            )
    if penalty and penalty.refuses_batch_norm:
        for where, layer in layers:
            if layer.type == "batch_norm":
                low.report(
                    where,
                    "batch normalisation mixes the examples of a batch, so the "
                    f"{penalty.title} penalty on each example's gradient no longer holds",
                    "use layer_norm (as the WGAN-GP paper does), or no normalisation",
                )
    _check_output_activation(low, scale, standardize)


def _check_output_activation(
    low: Lowering, scale: tuple[float, float] | None, standardize: bool
) -> None:
    model = low.family_model(GANModel)
    wanted = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}.get(model.output_activation)
    if wanted is None or scale == wanted:
        return
    if scale is not None:
        where = f"scaled to [{scale[0]:g}, {scale[1]:g}]"
    elif standardize:
        where = "standardized"
    else:
        where = "not scaled"
    low.report(
        ("model", "output_activation"),
        f"a {model.output_activation} output lies in ({wanted[0]:g}, {wanted[1]:g}), but the "
        f"data is {where}",
        f"set data.preprocessing: {{scale: [{wanted[0]:g}, {wanted[1]:g}]}}, or "
        "output_activation: auto",
    )


def _check_augmentation(low: Lowering, data: DataShape, scale: tuple[float, float] | None) -> None:
    """model.augmentation transforms images, and its color and cutout values assume [-1, 1]."""
    model = low.family_model(GANModel)
    augmentation = model.augmentation
    if augmentation is None:
        return
    if data.kind != "image":
        low.report(
            ("model", "augmentation"),
            f"{augmentation.type} transforms images, but the data is {data.kind} data of "
            f"shape {fmt(data.shape)}",
            "remove model.augmentation",
        )
        return
    if scale != (-1.0, 1.0) and any(p in ("color", "cutout") for p in augmentation.policy):
        low.report(
            ("model", "augmentation", "policy"),
            "the color and cutout augmentations assume images scaled to [-1, 1] (brightness "
            "shifts by up to 0.5, cutout and padding fill with 0, mid-grey)",
            "set data.preprocessing: {scale: [-1, 1]}, or keep only translation in the policy",
        )


# -- optimizers and words -----------------------------------------------------------------

GAN_OPTIMIZER = Adam(type="adam", learning_rate=2.0e-4, beta_1=0.5)


def optimizers(low: Lowering, training: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One optimizer per network: `training.optimizers.<role>`, else `training.optimizer`.

    With neither given, both use Adam(2e-4, beta_1 0.5) (DCGAN's setting), resolved in full.
    """
    spec_training = low.spec.training
    fallback = training["optimizer"]
    if "optimizer" not in spec_training.model_fields_set:
        fallback = type_first(GAN_OPTIMIZER.model_dump(mode="json"))
    given = spec_training.optimizers
    resolved = {}
    for role in ("generator", "discriminator"):
        choice = getattr(given, role) if given is not None else None
        resolved[role] = type_first(choice.model_dump(mode="json")) if choice else fallback
    return resolved


def _optimizer_words(config: dict[str, Any]) -> str:
    extra = ", ".join(
        f"{k} {v:g}"
        for k, v in config.items()
        if k in ("beta_1", "momentum", "clipnorm", "global_clipnorm", "clipvalue") and v is not None
    )
    return f"{config['type']} lr {config['learning_rate']:g}" + (f" ({extra})" if extra else "")


def _augmentation_words(augmentation: Any, loss: str) -> str:
    policy = ", ".join(augmentation.policy)
    if augmentation.type == "diffaugment":
        return (
            f"; the discriminator sees real and generated images through DiffAugment "
            f"({policy}), a random differentiable transformation drawn per example, in both "
            "updates"
        )
    return (
        f"; the discriminator sees real and generated images through adaptive augmentation "
        f"(ADA: {policy}, each applied with probability p, which starts at "
        f"{augmentation.initial_p:g} and moves every {augmentation.interval} discriminator "
        f"updates to steer r_t, the mean sign of {_boundary_words(loss)} on real images, to "
        f"{augmentation.target:g}, "
        f"by up to 1 per "
        f"{augmentation.ramp_images:,} real examples)"
    )


def _boundary_words(loss: str) -> str:
    """D's score measured from the loss's boundary between real and generated: r_t's sign."""
    threshold = LOSSES[loss].accuracy_threshold
    return "D's logit" if not threshold else f"D(x) - {threshold:g}"


def _words(model: Any, penalty_weight: float, kernel_penalties: str) -> str:
    real = f"{1 - model.label_smoothing:g}"
    words = LOSSES[model.loss.type].words.format(real=real)
    if model.gradient_penalty is not None:
        penalty = PENALTIES[model.gradient_penalty.type]
        words += "; the discriminator's loss adds " + penalty.words.format(
            weight=penalty_weight, half=penalty_weight / 2
        )
        interval = getattr(model.gradient_penalty, "interval", 1)
        if interval > 1:
            words += f", lazily: on every {interval}th discriminator update only, times {interval}"
    if model.augmentation is not None:
        words += _augmentation_words(model.augmentation, model.loss.type)
    if model.critic_steps > 1:
        words += (
            f"; {model.critic_steps} discriminator updates (each on fresh draws of z) per "
            "generator update"
        )
    if model.label_smoothing:
        words += f" (one-sided label smoothing: real examples are labelled {real})"
    return words + ", averaged over the batch" + kernel_penalties


def check_gan(low: Lowering, data: DataShape) -> OutputActivation:
    """The GAN's cross-field and data checks; returns the generator's output activation."""
    preprocessing = low.spec.data.preprocessing
    low_high = preprocessing.scale
    scale = (float(low_high[0]), float(low_high[1])) if low_high else None
    check(low, scale, preprocessing.standardize)
    _check_augmentation(low, data, scale)
    check_data_classes(low)
    return output_activation(low.family_model(GANModel), scale)


def gan_networks(
    low: Lowering, data: DataShape, activation: OutputActivation
) -> tuple[NetworkPlan, ...]:
    """The generator and the discriminator with their heads; a shape problem in one is
    reported and the other is still built (its problems reported too)."""
    model = low.family_model(GANModel)
    networks: list[NetworkPlan] = []
    builds: tuple[Callable[[], NetworkPlan], ...] = (
        lambda: _generator(low, data.shape, activation),
        lambda: _discriminator(low, data.shape, model.spectral_norm),
    )
    for build in builds:
        with contextlib.suppress(ShapeError):  # reported with its location
            networks.append(build())
    return tuple(networks)


def plan_gan(
    low: Lowering,
    data: DataShape,
    activation: OutputActivation,
    networks: tuple[NetworkPlan, ...],
) -> ProjectPlan[GANPlan]:
    """The GAN's plan, one optimizer per network (resolved in the lock), and its losses in
    words."""
    model = low.family_model(GANModel)
    generator, discriminator = networks
    num_classes = model.conditional.num_classes if model.conditional else None
    penalty = model.gradient_penalty
    plan = GANPlan(
        latent_dim=model.latent_dim,
        data_shape=data.shape,
        num_classes=num_classes,
        prior=model.prior.model_dump(mode="json"),
        loss=LOSSES[model.loss.type],
        penalty=PENALTIES[penalty.type] if penalty else None,
        penalty_weight=penalty.weight if penalty else 0.0,
        penalty_interval=getattr(penalty, "interval", 1),
        augmentation=model.augmentation.model_dump(mode="json") if model.augmentation else None,
        critic_steps=model.critic_steps,
        label_smoothing=model.label_smoothing,
        ema=model.ema,
        output_activation=activation,
        generator=generator,
        discriminator=discriminator,
    )
    training = low.training_config()
    roles = optimizers(low, training)
    training.pop("optimizer")  # replaced by one optimizer per network
    training["optimizers"] = roles
    resolved = low.resolved_spec()
    resolved["training"].pop("optimizer")
    resolved["training"]["optimizers"] = roles
    resolved["model"]["output_activation"] = activation
    words = _words(model, plan.penalty_weight, low.kernel_penalty_words())
    return low.project_plan(
        data,
        plan,
        (generator, discriminator),
        words,
        num_classes=num_classes,
        training=training,
        resolved=resolved,
        extra={
            "fitting": _fitting_words(model, roles),
            **({"ema_copy": "generator"} if model.ema > 0 else {}),
        },
    )


def _fitting_words(model: GANModel, roles: dict[str, Any]) -> str:
    """The model card's line on how the two networks are fitted."""
    return (
        f"generator: {_optimizer_words(roles['generator'])}; discriminator: "
        f"{_optimizer_words(roles['discriminator'])}; {model.critic_steps} discriminator "
        f"update{'s' if model.critic_steps > 1 else ''} per generator update"
        + (f"; samples from an EMA of the generator (decay {model.ema:g})" if model.ema else "")
    )


FAMILY = Family(
    "gan",
    GANModel,
    check_gan,
    gan_networks,
    plan_gan,
    Capabilities(latent_pictures=("interpolations",)),
)
