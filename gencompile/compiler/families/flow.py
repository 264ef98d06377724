"""Lowering of the `flow` family: the transform list unrolled, with shapes and conditioners.

`repeat:` fields and `{type: repeat}` blocks are unrolled into one constructor call per
transform, so the generated `build_transforms()` lists the flow exactly as it runs. Copies
alternate: consecutive couplings flip their mask (`parity`), consecutive MAFs reverse
their autoregressive order. Each coupling entry of the spec gets one named builder for its
shift/log-scale network (the spec's hidden body plus two heads: glorot-initialised on
vectors, zero-initialised on images so that a deep stack starts as the identity; `head_init`
chooses); each copy calls it for its own weights.

A `split` (multi-scale factor-out) ends a scale: half the channels leave the flow, and z
becomes a flat vector joining those parts to what stays to the end (`part_shapes`). A
learned prior gets a named builder too: a zero-initialised 3x3 convolution of the kept half
giving the factored half's mean and log-scale.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from gencompile.compiler.data_levels import check_bins, data_levels
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import Capabilities, Family, Refusal
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.networks import NetworkBuilder, expand, walk
from gencompile.compiler.plan import LayerPlan, NetworkPlan, PathKey, ProjectPlan, Shape
from gencompile.compiler.shapes import ShapeError, features, fmt, known, size
from gencompile.spec.families.flow import FlowModel
from gencompile.spec.networks import Conv2D, Dense, Network, Reshape

KIND_WORDS = {
    "affine_coupling": ("affine coupling", "affine couplings"),
    "actnorm": ("actnorm", "actnorms"),
    "permutation": ("permutation", "permutations"),
    "invertible_dense": ("invertible dense map", "invertible dense maps"),
    "maf": ("MAF layer", "MAF layers"),
    "squeeze": ("squeeze", "squeezes"),
    "split": ("split", "splits"),
    "logit": ("logit", "logits"),
}
KIND_NAMES = {
    "affine_coupling": "coupling",
    "actnorm": "actnorm",
    "permutation": "permutation",
    "invertible_dense": "invertible_dense",
    "maf": "maf",
    "squeeze": "squeeze",
    "split": "split",
    "logit": "logit",
}
RUNTIME_CLASSES = {
    "affine_coupling": "flows.AffineCoupling",
    "actnorm": "flows.ActNorm",
    "permutation": "flows.Permutation",
    "invertible_dense": "flows.InvertibleDense",
    "maf": "flows.MAF",
    "squeeze": "flows.Squeeze",
    "split": "flows.Split",
    "logit": "flows.Logit",
}
# The runtime's defaults: arguments equal to these are left out of generated code.
RUNTIME_DEFAULTS = {"scale": "tanh", "clamp": 2.0, "activation": "relu", "reverse": False}


@dataclass(frozen=True)
class TransformPlan:
    """One transform of the unrolled flow: its constructor call and the shapes around it."""

    layer: LayerPlan  # flows.<Class>(...), arguments as literals
    input_shape: Shape
    output_shape: Shape
    params: int  # trainable parameters
    source: PathKey  # the spec entry it comes from


@dataclass(frozen=True)
class _Call:
    """What one runtime transform's constructor call needs besides its class and name."""

    args: tuple[tuple[str, Any], ...] = ()
    positional: int = 0
    params: int = 0  # trainable
    output_shape: Shape | None = None  # None: the input's shape
    regularized: bool = False
    state: int = 0  # non-trainable values the layer holds besides (Keras' non_trainable_weights)


@dataclass(frozen=True)
class FlowPlan:
    data_shape: Shape
    latent_shape: Shape  # the shape of z (squeezes change it; flat past splits)
    base: str  # normal | logistic
    bins: int | None  # uniform dequantization levels, None for continuous data
    transforms: tuple[TransformPlan, ...]
    # One builder per coupling entry of the spec, then one per learned split prior.
    conditioners: tuple[NetworkPlan, ...]
    uses_actnorm: bool
    uses_regularizers: bool
    num_params: int
    # With splits: the shapes of z's parts, each split's factored half then the final part.
    part_shapes: tuple[Shape, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """How many transforms of each kind, in order of first appearance."""
        found: dict[str, int] = {}
        for transform in self.transforms:
            found[transform.layer.kind] = found.get(transform.layer.kind, 0) + 1
        return found


def unrolled(transforms: list[Any], path: PathKey) -> Iterator[tuple[Any, PathKey]]:
    """Each transform of the flow in order, with its spec path; repeats expanded."""
    for i, transform in enumerate(transforms):
        where = (*path, i)
        if transform.type == "repeat":
            for _ in range(transform.times):
                yield from unrolled(transform.transforms, (*where, "transforms"))
        else:
            for _ in range(getattr(transform, "repeat", 1)):
                yield transform, where


def _hidden_network(transform: Any) -> Network:
    hidden = transform.hidden
    if isinstance(hidden, Network):
        return hidden
    return Network(mlp=list(hidden), activation=transform.activation)


class FlowLowering:
    """The state of one flow's lowering: shapes, counters and the conditioners made so far."""

    def __init__(self, low: Lowering):
        self.low = low
        self.seed = low.spec.seed
        self.counters: dict[str, int] = {}
        self.position = 0
        self.conditioners: dict[PathKey, NetworkPlan] = {}
        self.couplings = 0
        self.mafs = 0
        self.squeezed = False  # a squeeze came before: a split may follow
        self.parts: list[Shape] = []  # the shapes the splits factor out, in order
        self.priors: dict[tuple[PathKey, Shape], NetworkPlan] = {}

    def name(self, kind: str) -> str:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{KIND_NAMES[kind]}_{self.counters[kind]}"

    def report(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.low.report(path, message, hint)
        raise ShapeError(message)

    # -- one transform -----------------------------------------------------------------------
    def transform(self, spec: Any, path: PathKey, shape: Shape) -> TransformPlan:
        self.position += 1
        kind = spec.type
        name = self.name(kind)
        call = TRANSFORMS[kind](self, spec, path, shape, name)
        out = call.output_shape or shape
        regularizer = self.low.regularizer() if call.regularized else None
        layer = LayerPlan(
            kind,
            RUNTIME_CLASSES[kind],
            call.args,
            name,
            out,
            call.params + call.state,
            call.positional,
            regularizer,
            path,
            state=call.state,
        )
        return TransformPlan(layer, shape, out, call.params, path)

    # Each runtime transform's arguments, output shape and parameter count, in one place.
    def _actnorm(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        return _Call(params=2 * features(shape, "actnorm"))  # a scale and a shift per channel

    def _permutation(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        if features(shape, "permutation") < 2:
            image = len(shape) == 3
            what = "channel" if image else "feature"
            self.report(
                path,
                f"a permutation of a single {what} does nothing (shape {fmt(shape)})",
                "squeeze the images first, or remove it" if image else "remove it",
            )
        args: tuple[tuple[str, Any], ...] = (("order", spec.order),)
        if spec.order == "random":
            args += (("seed", self.seed + self.position),)
        return _Call(args, positional=1)

    def _invertible_dense(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        channels = features(shape, "invertible_dense")
        # Trained: the LU factors L and U (c x c each) and log_s (c); fixed: the permutation
        # P (c x c) and the signs (c), as the runtime's InvertibleDense holds them.
        return _Call(
            (("seed", self.seed + self.position),),
            params=2 * channels * channels + channels,
            state=channels * channels + channels,
        )

    def _maf(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        reverse = self.mafs % 2 == 1
        self.mafs += 1
        dims = size(shape)
        # The MADE's masked dense layers: dims -> hidden... -> a shift and a scale per dim.
        widths = [dims, *spec.hidden, 2 * dims]
        params = sum(a * b + b for a, b in itertools.pairwise(widths))
        args: tuple[tuple[str, Any], ...] = (("hidden", tuple(spec.hidden)),)
        for key, value in (
            ("activation", spec.activation),
            ("reverse", reverse),
            ("scale", spec.scale),
            ("clamp", spec.clamp),
        ):
            if value != RUNTIME_DEFAULTS[key]:
                args += ((key, value),)
        return _Call(args, positional=1, params=params, regularized=True)

    def _squeeze(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        if len(shape) != 3:
            self.report(
                path,
                f"squeeze reshapes images, but the flow's input here is a vector {fmt(shape)}",
                "remove it",
            )
        sizes = known(shape, "squeeze")
        if sizes[0] % 2 or sizes[1] % 2:
            self.report(
                path, f"squeeze needs an even height and width, but gets shape {fmt(shape)}", None
            )
        self.squeezed = True
        return _Call(output_shape=(sizes[0] // 2, sizes[1] // 2, 4 * sizes[2]))

    def _split(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        if len(shape) != 3:
            self.report(
                path,
                f"a split factors out half the channels of images, but the flow's input here "
                f"is a vector {fmt(shape)}",
                "remove it",
            )
        if not self.squeezed:
            self.report(
                path,
                f"a split factors out channels at a coarser scale, but no squeeze comes before "
                f"it (shape {fmt(shape)})",
                "put a {type: squeeze} before it",
            )
        height, width, channels = known(shape, "split")
        if channels % 2:
            self.report(
                path,
                f"a split factors out half the channels, but the input here has an odd "
                f"number of them: {fmt(shape)}",
                "put a squeeze before it (4 times the channels), or remove it",
            )
        kept = (height, width, channels // 2)
        self.parts.append(kept)
        if spec.prior.type == "normal":
            return _Call(output_shape=kept)
        network = self.priors.get((path, kept))
        if network is None:
            network = self._prior_network(kept)
            self.priors[(path, kept)] = network
        builder = LayerPlan("builder", network.builder, (), f"{name}_prior", kept, None)
        return _Call((("network", builder),), 1, network.trainable_params, kept)

    def _prior_network(self, kept: Shape) -> NetworkPlan:
        """Glow's learned prior: mean and log-scale of the factored half from the kept half,
        each a 3x3 convolution starting at zero (so the prior starts as N(0, I))."""
        number = len(self.priors) + 1
        net = NetworkBuilder(f"split_prior_{number}", self.low.regularizer(), self.low.report)
        net.reserve(["mean", "log_scale"])
        h = net.input("kept", kept)
        zeros = (("kernel_initializer", "zeros"),)
        channels = int(kept[-1] or 0)  # an image shape: its channels are known
        for head in ("mean", "log_scale"):
            conv = Conv2D(type="conv2d", filters=channels, kernel_size=3, name=head)
            net.add(head, net.synth(conv, kept, extra=zeros), (h,))
        doc = f"Mean and log-scale of the channels a split factors out, from the {fmt(kept)} kept."
        return net.build(doc, ("mean", "log_scale"))

    def _logit(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        self._check_logit(path)
        return _Call((("alpha", spec.alpha),), positional=1)

    def _check_logit(self, path: PathKey) -> None:
        data, model = self.low.spec.data, self.low.family_model(FlowModel)
        in_unit_interval = model.dequantization is not None or data.preprocessing.scale == (
            0.0,
            1.0,
        )
        if self.position != 1 or not in_unit_interval:
            self.report(
                (*path, "type"),
                "logit maps values in [0, 1] to the real line, so it must be the first "
                "transform of data scaled to [0, 1]",
                "put it first and set data.preprocessing: {scale: [0, 1]}",
            )

    def _coupling(self, spec: Any, path: PathKey, shape: Shape, name: str) -> _Call:
        image = len(shape) == 3
        if spec.mask == "alternating" and image:
            self.report(
                (*path, "mask"),
                f"an alternating mask splits the features of vectors, but the flow's input "
                f"here is an image {fmt(shape)}",
                "use mask: checkerboard or mask: channel",
            )
        if spec.mask in ("checkerboard", "channel") and not image:
            self.report(
                (*path, "mask"),
                f"a {spec.mask} mask needs image data (height, width, channels), but the "
                f"flow's input here is a vector {fmt(shape)}",
                "use mask: alternating",
            )
        if spec.mask == "alternating" and known(shape, "coupling")[0] < 2:
            self.report((*path, "mask"), "a coupling needs at least 2 features", None)
        if spec.mask == "channel" and features(shape, "coupling") < 2:
            self.report(
                (*path, "mask"),
                f"a channel mask splits the channels, but the input here has one: {fmt(shape)}",
                "put a squeeze before it (or use mask: checkerboard)",
            )
        network = self.conditioners.get(path)
        if network is None:
            network = self._conditioner(spec, path, shape)
            self.conditioners[path] = network
        elif network.inputs[0].shape != shape:
            self.report(
                path,
                f"the copies of this coupling see different shapes "
                f"({fmt(network.inputs[0].shape)} and {fmt(shape)})",
                "give each shape its own coupling entry",
            )
        parity = self.couplings % 2
        self.couplings += 1
        builder = LayerPlan("builder", network.builder, (), f"{name}_network", shape, None)
        args: tuple[tuple[str, Any], ...] = (
            ("network", builder),
            ("mask", spec.mask),
            ("parity", parity),
        )
        # Glow's sigmoid scale has no bound to set: its clamp is not written.
        keys = ("scale",) if spec.scale == "sigmoid" else ("scale", "clamp")
        for key in keys:
            if getattr(spec, key) != RUNTIME_DEFAULTS[key]:
                args += ((key, getattr(spec, key)),)
        # A coupling's parameters are its conditioner network's.
        return _Call(
            args, positional=1, params=network.trainable_params, state=network.state_params
        )

    def _conditioner(self, spec: Any, path: PathKey, shape: Shape) -> NetworkPlan:
        number = len(self.conditioners) + 1
        net = NetworkBuilder(f"conditioner_{number}", self.low.regularizer(), self.low.report)
        heads = ["shift", "log_scale", "shift_image", "log_scale_image"]
        net.reserve(heads)
        hidden = _hidden_network(spec)
        hidden_path = (*path, "hidden")
        self._check_names(hidden, hidden_path)
        x = net.input("x_masked", shape)
        h, body = net.body(hidden, hidden_path, x, shape)
        self._conditioner_heads(net, h, body, shape, hidden, hidden_path, spec.head_init)
        doc = f"Shift and log-scale of an affine coupling on {fmt(shape)}, from its masked input."
        return net.build(doc, ("shift", "log_scale"))

    def _conditioner_heads(
        self,
        net: NetworkBuilder,
        h: str,
        body: Shape,
        shape: Shape,
        hidden: Network,
        hidden_path: PathKey,
        head_init: str,
    ) -> None:
        """A shift and a log-scale of the input's shape. On vectors the heads start random
        (Keras's glorot_uniform): at a fixed budget that learns faster than an identity
        start. On images they start at zero, so a deep stack starts as the identity (Glow).
        `head_init` other than auto picks one for both."""
        if head_init == "auto":
            head_init = "glorot_uniform" if len(shape) == 1 else "zeros"
        # glorot_uniform is Keras's default: the generated layer then names no initializer.
        init = (("kernel_initializer", "zeros"),) if head_init == "zeros" else ()
        if len(body) == 1:
            for head in ("shift", "log_scale"):
                layer = Dense(type="dense", units=size(shape), name=head)
                dense = net.synth(layer, body, extra=init)
                net.add(head, dense, (h,))
                if len(shape) > 1:
                    reshape = Reshape(
                        type="reshape",
                        target_shape=list(known(shape, "reshape")),
                        name=f"{head}_image",
                    )
                    net.add(head, net.synth(reshape, dense.output_shape, kind="reshape"), (head,))
        elif len(body) == 3 and len(shape) == 3 and body[:2] == shape[:2]:
            for head in ("shift", "log_scale"):
                conv = Conv2D(
                    type="conv2d", filters=features(shape, "conv2d"), kernel_size=3, name=head
                )
                net.add(head, net.synth(conv, body, extra=init), (h,))
        else:
            target = "the flow's input here" if len(shape) == 1 else "the image's height and width"
            self.report(
                _last_layer(hidden, hidden_path),
                f"the coupling's hidden network ends with shape {fmt(body)}, which cannot be "
                f"projected to a shift and scale of shape {fmt(shape)}",
                f"end the body with a flat vector (dense) or with {target} (conv2d, padding same)",
            )

    def _check_names(self, network: Network, path: PathKey) -> None:
        """Layer names must be unique inside one network: they name Keras layers."""
        layers, paths = expand(network, path)
        seen: set[str] = set()
        for layer_path, layer in walk(layers, paths):
            if layer.name is None:
                continue
            if layer.name in seen:
                self.report(
                    (*layer_path, "name"),
                    f"layer name '{layer.name}' is used twice in this network",
                    "give each layer a unique name",
                )
            seen.add(layer.name)


TRANSFORMS = {
    "affine_coupling": FlowLowering._coupling,
    "actnorm": FlowLowering._actnorm,
    "permutation": FlowLowering._permutation,
    "invertible_dense": FlowLowering._invertible_dense,
    "maf": FlowLowering._maf,
    "squeeze": FlowLowering._squeeze,
    "split": FlowLowering._split,
    "logit": FlowLowering._logit,
}


def _last_layer(network: Network, path: PathKey) -> PathKey:
    if network.layers:
        return (*path, "layers", len(network.layers) - 1)
    return (*path, "mlp", len(network.mlp or [0]) - 1)


def _check_dequantization(low: Lowering) -> None:
    """Dequantization needs discrete data in [0, 1], with levels the bins can hold."""
    spec = low.spec
    dequantization = low.family_model(FlowModel).dequantization
    if dequantization is None:
        return
    source = spec.data.source
    if source.type == "builtin" and data_levels(source) is None:
        low.report(
            ("model", "dequantization"),
            f"dequantization turns discrete data into a density, but the builtin data "
            f"set '{source.name}' is continuous",
            "remove model.dequantization",
        )
        return
    if spec.data.preprocessing.scale != (0.0, 1.0):
        low.report(
            ("model", "dequantization"),
            "dequantization reads the discrete levels off data scaled to [0, 1], but the data "
            "is not scaled to [0, 1]",
            "set data.preprocessing: {scale: [0, 1]}",
        )
    check_bins(low, ("model", "dequantization", "bins"), dequantization.bins)


def check_flow(low: Lowering, data: DataShape) -> None:
    """The dequantization against the data (see `_check_dequantization`)."""
    _check_dequantization(low)


@dataclass(frozen=True)
class FlowNetworks:
    """The unrolled transforms, the shape they end with, and the couplings' conditioners."""

    transforms: tuple[TransformPlan, ...]
    latent_shape: Shape
    conditioners: tuple[NetworkPlan, ...]
    part_shapes: tuple[Shape, ...] = ()  # with splits: z's parts (see FlowPlan)


def flow_networks(low: Lowering, data: DataShape, facts: None) -> FlowNetworks:
    """Unroll the transforms through the shapes, building each coupling's conditioner;
    the first shape problem is reported and ends the walk."""
    model = low.family_model(FlowModel)
    flow = FlowLowering(low)
    transforms: list[TransformPlan] = []
    shape = data.shape
    with contextlib.suppress(ShapeError):  # reported with its location
        for transform, path in unrolled(model.transforms, ("model", "transforms")):
            planned = flow.transform(transform, path, shape)
            transforms.append(planned)
            shape = planned.output_shape
    networks = _with_copies((*flow.conditioners.values(), *flow.priors.values()), transforms)
    if not flow.parts:
        return FlowNetworks(tuple(transforms), shape, networks)
    if model.base.type != "normal":
        low.report(
            ("model", "base", "type"),
            "with splits z joins the factored parts, standardised by their Gaussian priors, "
            f"to the final part, so its base is N(0, I), not {model.base.type}",
            "use base: {type: normal}",
        )
    parts = (*flow.parts, shape)
    return FlowNetworks(tuple(transforms), (sum(size(p) for p in parts),), networks, parts)


def _with_copies(
    networks: tuple[NetworkPlan, ...], transforms: list[TransformPlan]
) -> tuple[NetworkPlan, ...]:
    """The networks, each with how many transforms call its builder for their own weights."""
    calls = Counter(
        value.cls
        for transform in transforms
        for key, value in transform.layer.args
        if key == "network" and isinstance(value, LayerPlan)
    )
    return tuple(replace(network, copies=calls[network.builder] or 1) for network in networks)


def plan_flow(
    low: Lowering, data: DataShape, facts: None, built: FlowNetworks
) -> ProjectPlan[FlowPlan]:
    """The flow's plan (the unrolled transforms, its parameter count) and its likelihood in
    words."""
    model = low.family_model(FlowModel)
    transforms, shape, conditioners = built.transforms, built.latent_shape, built.conditioners
    splits = [t for t in transforms if t.layer.kind == "split"]
    bins = model.dequantization.bins if model.dequantization else None
    num_params = sum(t.params for t in transforms)
    plan = FlowPlan(
        data_shape=data.shape,
        latent_shape=shape,
        base=model.base.type,
        bins=bins,
        transforms=tuple(transforms),
        conditioners=conditioners,
        uses_actnorm=any(t.layer.kind == "actnorm" for t in transforms),
        uses_regularizers=any(t.layer.regularizer for t in transforms),
        num_params=num_params,
        part_shapes=built.part_shapes,
    )
    base_words = {"normal": "N(0, I)", "logistic": "a standard logistic"}[model.base.type]
    kinds = ", ".join(f"{n} {KIND_WORDS[k][n > 1]}" for k, n in plan.counts.items())
    dims = size(data.shape)
    if bins:
        words = (
            f"negative log-likelihood of the dequantized data y = (k + u) / {bins} (levels k, "
            f"uniform noise u): -log p(y) = -(log p_base(z) + log |det df/dy|), z = f(y) "
            f"through {kinds}, p_base {base_words}, averaged over the batch "
            f"(-log p(y) + {dims} log {bins} bounds -log P(k) from above)"
        )
    else:
        words = (
            f"negative log-likelihood -log p(x) = -(log p_base(z) + log |det df/dx|), z = f(x) "
            f"through {kinds}, p_base {base_words}, averaged over the batch"
        )
    if splits:
        words += _split_words(splits)
    words += low.kernel_penalty_words()
    training = low.training_config()
    return low.project_plan(
        data, plan, conditioners, words, training=training, extra={"total_params": num_params}
    )


def _split_words(splits: list[TransformPlan]) -> str:
    """How the splits' priors enter the likelihood, in words."""
    learned = sum(1 for t in splits if dict(t.layer.args).get("network"))
    priors = {
        (True, False): "a learned Gaussian given the half kept",
        (False, True): "N(0, I)",
        (True, True): "a learned Gaussian given the half kept, or N(0, I)",
    }[(learned > 0, learned < len(splits))]
    return (
        f"; at each split half the channels leave f and p_base scores them standardised "
        f"by their prior ({priors}), whose log-scales join log |det|"
    )


FAMILY = Family(
    "flow",
    FlowModel,
    check_flow,
    flow_networks,
    plan_flow,
    Capabilities(
        mixed_precision=Refusal(
            "the log-determinants need float32", "set training.mixed_precision: false"
        ),
        # z = f(x) exactly, so a reconstruction is the example itself: not drawn.
        latent_pictures=("map", "traversal", "interpolations"),
    ),
)
