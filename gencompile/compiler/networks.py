"""Lowering spec networks to straight-line `Step`s with inferred shapes.

`NetworkBuilder` accumulates the steps of one network: a family's lowering adds its inputs,
the spec's hidden body (`body`), and the heads the family needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gencompile.compiler.applications import (
    application_arguments,
    image_size,
    pixel_rescaling,
)
from gencompile.compiler.layers import LAYER_TYPES, infer, state
from gencompile.compiler.plan import (
    FLOAT32_SPECTRAL_NORM,
    InputPlan,
    LayerPlan,
    NetworkPlan,
    PathKey,
    Shape,
    Step,
)
from gencompile.compiler.shapes import ShapeError, fmt
from gencompile.spec.applications import download_hint
from gencompile.spec.networks import Dense, Dropout, Flatten, SpectralNorm


class NetworkBuilder:
    """Accumulates one network's steps, naming layers uniquely and inferring shapes."""

    def __init__(
        self,
        name: str,
        regularizer: tuple[float, float] | None,
        report: Callable[[PathKey, str, str | None], None],
        spectral_norm: bool = False,
        mixed_precision: bool = False,
    ):
        self.name = name
        self.spectral_norm = spectral_norm  # wrap every dense/conv layer of the body
        # Spectral normalization then runs in float32 (`FLOAT32_SPECTRAL_NORM`).
        self.mixed_precision = mixed_precision
        self.regularizer = regularizer
        self.report = report
        self.inputs: list[InputPlan] = []
        self.steps: list[Step] = []
        self.used_names: set[str] = set()
        self.compiler_names: set[str] = set()
        self.counters: dict[str, int] = {}
        self.custom_imports: list[tuple[str, str, str]] = []
        self.frozen = False  # the spec network's `freeze: true`
        # (input variable, the data's preprocessing scale or None) of a network reading the
        # data's images, set by the family: where a keras_application may stand.
        self.image_input: tuple[str, tuple[float, float] | None] | None = None
        # A conditional discriminator's first layer reads x joined with the class code, so
        # none of its layers reads the images alone (set by the gan family).
        self.conditioned = False
        self.has_application = False
        self.application_weights: dict[str, str] = {}  # layer name -> weights file

    # -- naming -----------------------------------------------------------------------------
    def reserve(self, names: list[str]) -> None:
        """Names of layers the compiler adds (inputs, heads); a spec layer may not take them."""
        self.compiler_names.update(names)
        self.used_names.update(names)

    def unique(self, kind: str) -> str:
        while True:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            name = f"{kind}_{self.counters[kind]}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    # -- building ---------------------------------------------------------------------------
    def input(self, var: str, shape: Shape, dtype: str = "float32") -> str:
        # keras.Input(name=var) is a layer of the network too: reserved like a head.
        self.reserve([var])
        self.inputs.append(InputPlan(var, shape, dtype))
        return var

    def add(
        self,
        target: str,
        layer: LayerPlan | None,
        inputs: tuple[str, ...],
        packed: bool = False,
        call_args: tuple[tuple[str, Any], ...] = (),
    ) -> str:
        self.steps.append(Step(target, inputs, layer, packed, call_args))
        return target

    def layer(
        self,
        kind: str,
        cls: str,
        args: tuple[tuple[str, Any], ...],
        output_shape: Shape,
        params: int | None,
        name: str | None = None,
        positional: int = 0,
        regularize: bool = False,
    ) -> LayerPlan:
        """A compiler-made layer (flatten, heads, ...), not written in the spec."""
        if name is None:
            name = self.unique(kind)
        else:
            self.used_names.add(name)
        regularizer = self.regularizer if regularize else None
        return LayerPlan(kind, cls, args, name, output_shape, params, positional, regularizer)

    def from_spec(self, layer: Any, shape: Shape, path: PathKey, frozen: bool = False) -> LayerPlan:
        """The LayerPlan of one spec layer; raises ShapeError if it cannot take `shape`.
        `frozen`: the layer, or a residual block around it, says `trainable: false`."""
        if layer.type == "custom":
            plan = self._custom(layer, shape, path)
        else:
            plan = self._plan(layer, shape, layer.type, path)
        if frozen or not layer.trainable:
            return replace(plan, args=(*plan.args, ("trainable", False)), trainable=False)
        return plan

    def synth(
        self,
        layer: Any,
        shape: Shape,
        kind: str = "head",
        extra: tuple[tuple[str, Any], ...] = (),
    ) -> LayerPlan:
        """A layer the compiler adds (a head), written as a spec layer so that it goes
        through the same record and inference as the spec's own layers; `extra` are
        Keras arguments the spec does not offer (an initializer), written last."""
        plan = self._plan(layer, shape, kind, None)
        return replace(plan, args=plan.args + extra) if extra else plan

    def _plan(self, layer: Any, shape: Shape, kind: str, path: PathKey | None) -> LayerPlan:
        output_shape, params = infer(layer, shape)
        record = LAYER_TYPES[layer.type]
        args = record.arguments(layer)
        cls = record.cls or ""
        default_name = layer.type
        if layer.type == "spectral_norm":
            inner = layer.layer
            args[0] = ("layer", self._plan(inner, shape, inner.type, _inner(path)))
            if self.mixed_precision:
                args.append(FLOAT32_SPECTRAL_NORM)
        elif layer.type == "keras_application":
            args = application_arguments(layer, shape)
            cls, default_name = f"keras.applications.{layer.application}", layer.application.lower()
        if layer.name is None and layer.type == "keras_application":
            name = (
                default_name if default_name not in self.used_names else self.unique(default_name)
            )
            self.used_names.add(name)
        elif layer.name is None:
            name = self.unique(default_name)
        else:
            name = layer.name
            self.used_names.add(name)
        regularizer = self.regularizer if record.regularized else None
        return LayerPlan(
            kind,
            cls,
            tuple(args),
            name,
            output_shape,
            params,
            record.positional,
            regularizer,
            path,
            state=state(layer, shape),
        )

    def _custom(self, layer: Any, shape: Shape, path: PathKey) -> LayerPlan:
        output_shape, params = infer(layer, shape)
        module, cls_name = layer.ref.split(":")
        # Qualified by its module: two classes of one name (in any networks of the model)
        # must not rebind one alias, which would silently build both from the second.
        alias = f"custom_{module.replace('.', '_')}_{cls_name}"
        self.custom_imports.append((module, cls_name, alias))
        args = tuple(sorted(layer.args.items()))
        name = layer.name or self.unique(cls_name.lower())
        return LayerPlan("custom", alias, args, name, output_shape, params, 0, None, path)

    def body(self, network: Any, path: PathKey, var: str, shape: Shape) -> tuple[str, Shape]:
        """Append the spec's hidden body; returns the final variable and shape."""
        self.frozen = bool(getattr(network, "freeze", False))
        layers, layer_paths = expand(network, path)
        for layer_path, layer in walk(layers, layer_paths):
            if layer.name in self.compiler_names:
                self.report(
                    (*layer_path, "name"),
                    f"'{layer.name}' names a layer the compiler adds to the {self.name}",
                    "choose another name",
                )
            elif layer.name:
                self.used_names.add(layer.name)
        if layers and layers[0].type == "dense" and len(shape) > 1:
            # A dense-first network sees its input flattened, as a Keras user would expect.
            flatten = self.synth(Flatten(type="flatten"), shape, kind="flatten")
            var, shape = self.add("h", flatten, (var,)), flatten.output_shape
        return self._sequence(layers, layer_paths, var, shape)

    def _sequence(
        self, layers: list[Any], paths: list[PathKey], var: str, shape: Shape, frozen: bool = False
    ) -> tuple[str, Shape]:
        for layer, layer_path in zip(layers, paths, strict=True):
            if layer.type == "residual":
                var, shape = self._residual(layer, layer_path, var, shape, frozen)
                continue
            if layer.type == "keras_application":
                var, shape = self._application(layer, layer_path, var, shape, frozen)
                continue
            if self.spectral_norm and layer.type in SPECTRAL_NORM_WRAPS:
                layer = spectrally_normalized(layer)
            try:
                plan = self.from_spec(layer, shape, layer_path, frozen)
            except ShapeError as err:
                self.report(layer_path, str(err), None)
                raise
            if layer.type in ("multi_head_attention",):
                call_args = (("use_causal_mask", True),) if layer.causal else ()
                var = self.add("h", plan, (var, var), call_args=call_args)
            else:
                var = self.add("h", plan, (var,))
            shape = plan.output_shape
        return var, shape

    def _residual(
        self, layer: Any, path: PathKey, var: str, shape: Shape, frozen: bool
    ) -> tuple[str, Shape]:
        name = layer.name or self.unique("residual")
        skip = self.add(self.unique("skip"), None, (var,))
        inner_paths = [(*path, "layers", i) for i in range(len(layer.layers))]
        frozen = frozen or not layer.trainable  # a frozen block freezes its body
        out, out_shape = self._sequence(layer.layers, inner_paths, var, shape, frozen)
        if out_shape != shape:
            message = (
                f"a residual block must keep its input's shape {fmt(shape)}, "
                f"but its body ends with {fmt(out_shape)}"
            )
            self.report(path, message, None)
            raise ShapeError(message)
        add = LayerPlan("residual", "layers.Add", (), name, shape, 0, 0, None, path)
        return self.add("h", add, (skip, out), packed=True), shape

    def _application(
        self, layer: Any, path: PathKey, var: str, shape: Shape, frozen: bool
    ) -> tuple[str, Shape]:
        """A keras_application with the steps before it (gencompile.compiler.applications):
        resize, grey to RGB, data to pixels in [0, 255]; returns its output and shape."""
        if self.image_input is None:
            raise self._refuse(
                path,
                f"a keras_application reads the data's images, which the {self.name} is not "
                "given: it may stand first in an encoder (vae, vq_vae) or in an unconditional "
                "discriminator (gan)",
                f"describe the {self.name} with other layers",
            )
        if self.conditioned:
            raise self._refuse(
                path,
                "a keras_application reads the data's images alone, which no layer of a "
                "conditional discriminator (model.conditional) gets: its first layer reads "
                "them joined with the class code of y",
                "remove model.conditional (an unconditional gan), or describe the "
                "discriminator with other layers",
            )
        if var != self.image_input[0]:
            raise self._refuse(
                path,
                "a keras_application reads the data's images: it must be the first layer of "
                f"the {self.name}",
                "move it first, or describe this network with other layers",
            )
        scale = self.image_input[1]
        if scale is None:
            raise self._refuse(
                path,
                f"{layer.application} reads pixels in [0, 255], which the data's "
                "preprocessing does not map to: it gives no range",
                "set data.preprocessing: {scale: [0.0, 1.0]} (or [-1.0, 1.0])",
            )
        if self.has_application:  # the builder's code names it `base_model`
            raise self._refuse(
                path, "one keras_application per network", "use one application per network"
            )
        self.has_application = True
        try:
            height, width, channels = image_size(layer, shape)
        except ShapeError as err:
            self.report(path, str(err), None)
            raise
        if layer.resize is not None:
            args = (("height", height), ("width", width))
            size = (height, width, channels)
            resize = self.layer(
                "resizing", "layers.Resizing", args, size, 0, self._fresh("resizing"), 2
            )
            var = self.add("h", resize, (var,))
        rgb = (height, width, 3)
        if channels == 1:  # written out: the application's first kernels read R, G and B
            grey = self.layer(
                "grey_to_rgb", "layers.Concatenate", (), rgb, 0, self._fresh("grey_to_rgb")
            )
            var = self.add("h", grey, (var, var, var), packed=True)
        factor, offset = pixel_rescaling(scale)
        args = (("scale", factor), *((("offset", offset),) if offset else ()))
        rescale = self.layer(
            "to_pixels", "layers.Rescaling", args, rgb, 0, self._fresh("to_pixels"), 1
        )
        var = self.add("h", rescale, (var,))
        pretrained = layer.weights is not None
        plan = replace(self.from_spec(layer, rgb, path, frozen), pretrained=pretrained)
        # A frozen or pretrained body keeps its batch-norm layers in inference mode, as
        # Keras advises (even once unfrozen for fine-tuning): it is called with training=False.
        keep_statistics = pretrained or frozen or self.frozen or not layer.trainable
        call_args = (("training", False),) if keep_statistics else ()
        var = self.add("h", plan, (var,), call_args=call_args)
        if pretrained:
            if not Path(layer.weights).expanduser().is_file():  # as the runtime reads it
                self.report(
                    (*path, "weights"),
                    f"no weights file {layer.weights} (paths are relative to the working "
                    "directory)",
                    f"{download_hint(layer.application)}, or set weights: none",
                )
            self.application_weights[plan.name] = layer.weights
        return var, plan.output_shape

    def _fresh(self, name: str) -> str:
        """`name` itself while the network has no layer of that name (one application each)."""
        return name if name not in self.used_names else self.unique(name)

    def _refuse(self, path: PathKey, message: str, hint: str) -> ShapeError:
        self.report(path, message, hint)
        return ShapeError(message)

    def build(self, doc: str, outputs: tuple[str, ...]) -> NetworkPlan:
        return NetworkPlan(
            self.name,
            doc,
            tuple(self.inputs),
            tuple(self.steps),
            outputs,
            tuple(dict.fromkeys(self.custom_imports)),
            self.frozen,
            application_weights=tuple(self.application_weights.items()),
        )


def freeze_preset(net: NetworkBuilder, spec_net: Any, path: PathKey, low: Any) -> None:
    """`freeze: true` on a family's only network (a denoiser, a language model): frozen
    until training.fine_tune unfreezes it; frozen for good nothing would train."""
    net.frozen = bool(spec_net.freeze)
    fine_tune = low.spec.training.fine_tune
    if net.frozen and (fine_tune is None or fine_tune.unfreeze_after_epochs is None):
        net.report(
            (*path, "freeze"),
            f"freezing the {net.name}, the model's only network, leaves nothing to train",
            "unfreeze it on a schedule (training.fine_tune: {unfreeze_after_epochs: N}) or "
            "remove freeze",
        )


SPECTRAL_NORM_WRAPS = ("dense", "conv1d", "conv2d", "conv2d_transpose")


def spectrally_normalized(layer: Any) -> Any:
    """`{type: spectral_norm, layer: ...}` around a dense or conv layer; the name moves out."""
    inner = layer.model_copy(update={"name": None})
    return SpectralNorm(
        type="spectral_norm", layer=inner, name=layer.name, trainable=layer.trainable
    )


def _inner(path: PathKey | None) -> PathKey | None:
    return None if path is None else (*path, "layer")


def expand(network: Any, path: PathKey) -> tuple[list[Any], list[PathKey]]:
    """The network's layers, with the `mlp:` shorthand expanded to dense (+dropout) layers."""
    if network.layers is not None:
        return list(network.layers), [(*path, "layers", i) for i in range(len(network.layers))]
    layers: list[Any] = []
    paths: list[PathKey] = []
    for i, units in enumerate(network.mlp):
        layers.append(Dense(type="dense", units=units, activation=network.activation))
        paths.append((*path, "mlp", i))
        if network.dropout > 0:
            layers.append(Dropout(type="dropout", rate=network.dropout))
            paths.append((*path, "dropout"))
    return layers, paths


def walk(layers: list[Any], paths: list[PathKey]) -> list[tuple[PathKey, Any]]:
    """Every layer with its path, the bodies of residual blocks included."""
    found: list[tuple[PathKey, Any]] = []
    for layer, path in zip(layers, paths, strict=True):
        found.append((path, layer))
        if layer.type == "residual":
            inner = [(*path, "layers", i) for i in range(len(layer.layers))]
            found.extend(walk(layer.layers, inner))
    return found
