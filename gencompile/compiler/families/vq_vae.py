"""Lowering of the `vq_vae` family: encoder to a grid of code vectors, decoder, and a
PixelCNN prior over the grid of code indices.

The encoder's body must end in an image (height, width, channels); a 1x1 convolution maps
it to `embedding_dim` channels, one vector z_e per cell of the code grid. The quantizer
(a runtime layer holding the codebook) replaces each by its nearest code. The decoder
reads the grid of codes and ends in the likelihood's head, as the VAE's does. The prior
embeds each code index, then runs the PixelCNN of the autoregressive family (a type-A
masked convolution, residual blocks of type-B ones) to logits over the codebook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gencompile.compiler.applications import data_scale
from gencompile.compiler.data_levels import check_bins
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.families.vae import num_params
from gencompile.compiler.family import Capabilities, Family, Refusal
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.networks import NetworkBuilder
from gencompile.compiler.pixelcnn_body import PixelCNNLayers, pixelcnn_body
from gencompile.compiler.plan import ExtraPlan, NetworkPlan, ProjectPlan, Shape
from gencompile.compiler.shapes import ShapeError, features, fmt, known
from gencompile.spec.families.vae import CategoricalLikelihood
from gencompile.spec.families.vq_vae import EMAQuantizer, VQVAEModel
from gencompile.spec.networks import Conv2D, Network, Reshape


@dataclass(frozen=True)
class VQVAEPlan:
    data_shape: Shape
    grid_shape: tuple[int, int]  # (height, width) of the code grid
    quantizer: dict[str, Any]
    ema: bool  # codebook by moving averages (else by its gradient term)
    likelihood: dict[str, Any]
    num_params: int
    prior: dict[str, Any]
    encoder: NetworkPlan
    decoder: NetworkPlan
    prior_network: NetworkPlan


def _encoder(low: Lowering, data_shape: Shape) -> NetworkPlan:
    model = low.family_model(VQVAEModel)
    net = NetworkBuilder("encoder", low.regularizer(), low.report)
    net.reserve(["pre_quantization"])
    x = net.input("x", data_shape)
    net.image_input = (x, data_scale(low.spec))
    h, shape = net.body(model.encoder, ("model", "encoder"), x, data_shape)
    if len(shape) != 3:
        low.report(
            _last_layer_path(model.encoder, "encoder"),
            f"the encoder's body ends with shape {fmt(shape)}, but a VQ-VAE quantizes a grid "
            "of vectors: it must end in an image (height, width, channels)",
            "end the encoder with convolutions (conv2d with strides: 2 halves the grid), "
            "without flatten or dense",
        )
        raise ShapeError("encoder grid")
    dim = model.quantizer.embedding_dim
    head = Conv2D(type="conv2d", filters=dim, kernel_size=1, name="pre_quantization")
    net.add("z_e", net.synth(head, shape), (h,))
    doc = f"x -> z_e: one {dim}-vector per cell of the {shape[0]}x{shape[1]} code grid."
    return net.build(doc, ("z_e",))


def _decoder(low: Lowering, data_shape: Shape, grid: Shape, params: int) -> NetworkPlan:
    model = low.family_model(VQVAEModel)
    net = NetworkBuilder("decoder", low.regularizer(), low.report)
    net.reserve(["likelihood_params", "to_data_shape"])
    z_q = net.input("z_q", (*grid, model.quantizer.embedding_dim))
    h, shape = net.body(model.decoder, ("model", "decoder"), z_q, net.inputs[0].shape)
    if not (len(shape) == 3 and len(data_shape) == 3 and shape[:2] == data_shape[:2]):
        low.report(
            _last_layer_path(model.decoder, "decoder"),
            f"the decoder's body ends with shape {fmt(shape)}, which cannot be projected to "
            f"the data's shape {fmt(data_shape)}",
            "end the body with an image of the data's height and width (conv2d_transpose "
            "with strides: 2 doubles the grid)",
        )
        raise ShapeError("decoder head")
    channels = features(data_shape, "conv2d") * params
    head = Conv2D(type="conv2d", filters=channels, kernel_size=3, name="likelihood_params")
    plan = net.synth(head, shape)
    h = net.add("h", plan, (h,))
    target = data_shape if params == 1 else (*data_shape, params)
    if plan.output_shape == tuple(target):
        net.steps[-1] = replace(net.steps[-1], target="params")
    else:
        reshape = Reshape(
            type="reshape", target_shape=list(known(target, "reshape")), name="to_data_shape"
        )
        net.add("params", net.synth(reshape, plan.output_shape, kind="reshape"), (h,))
    kind = model.likelihood.type
    doc = f"p(x | z_q): maps the grid of codes to the {kind} likelihood's parameters."
    return net.build(doc, ("params",))


def _prior_network(low: Lowering, grid: tuple[int, int]) -> NetworkPlan:
    """The PixelCNN of the autoregressive family over code indices instead of grey levels."""
    model = low.family_model(VQVAEModel)
    spec, codes = model.prior, model.quantizer.codebook_size
    net = NetworkBuilder("prior_network", low.regularizer(), low.report)
    height, width = grid
    f = spec.filters
    inputs = net.input("codes", grid, "int32")
    cells = PixelCNNLayers(net, height, width)
    embedding = net.layer(
        "embedding",
        "layers.Embedding",
        (("input_dim", codes), ("output_dim", f)),
        (height, width, f),
        codes * f,
        name="code_embedding",
        positional=2,
    )
    h = net.add("h", embedding, (inputs,))
    h = pixelcnn_body(cells, h, f, f, spec.kernel_size, spec.layers)
    net.add("logits", cells.pointwise(codes, f, "logits", activation=None), (h,))
    doc = (
        f"Grid of code indices -> each cell's logits over the {codes} codes, given the "
        "cells before it (raster order)."
    )
    return net.build(doc, ("logits",))


def _last_layer_path(network: Network, name: str) -> tuple[str | int, ...]:
    if network.layers:
        return ("model", name, "layers", len(network.layers) - 1)
    return ("model", name, "mlp", len(network.mlp or [0]) - 1)


def check_vq_vae(low: Lowering, data: DataShape) -> None:
    """Images only; progress pictures would sample from a prior not trained yet; a
    categorical likelihood's bins hold each of the data's levels."""
    model = low.family_model(VQVAEModel)
    if isinstance(model.likelihood, CategoricalLikelihood):
        check_bins(low, ("model", "likelihood", "bins"), model.likelihood.bins)
    if data.kind != "image" or len(data.shape) != 3:
        low.report(
            ("model", "family"),
            f"a vq_vae quantizes a grid of vectors computed from images, but the data is "
            f"{data.kind} data of shape {fmt(data.shape)}",
            "use image data (a builtin image set or an image folder), or family: vae",
        )
    if low.spec.output.samples.every_epochs:
        low.report(
            ("output", "samples", "every_epochs"),
            "a vq_vae draws samples from its prior over the codes, which is fitted after "
            "the VQ-VAE's epochs: there is nothing to draw from during them",
            "remove output.samples.every_epochs (the run's samples.png shows the end)",
        )


def vq_vae_networks(low: Lowering, data: DataShape, facts: None) -> tuple[NetworkPlan, ...]:
    """Encoder, then decoder and prior over the encoder's code grid."""
    model = low.family_model(VQVAEModel)
    try:
        encoder = _encoder(low, data.shape)
    except ShapeError:  # reported with its location; the rest depends on its grid
        return ()
    grid = encoder.layers[-1].output_shape[:2]
    networks: list[NetworkPlan] = [encoder]
    builds: tuple[Callable[[], NetworkPlan], ...] = (
        lambda: _decoder(low, data.shape, grid, num_params(model.likelihood)),
        lambda: _prior_network(low, known(grid, "code grid")),  # type: ignore[arg-type]
    )
    for build in builds:
        with contextlib.suppress(ShapeError):
            networks.append(build())
    return tuple(networks)


def plan_vq_vae(
    low: Lowering, data: DataShape, facts: None, networks: tuple[NetworkPlan, ...]
) -> ProjectPlan[VQVAEPlan]:
    """The VQ-VAE's plan and its two losses in words."""
    model = low.family_model(VQVAEModel)
    encoder, decoder, prior_network = networks
    height, width = known(encoder.layers[-1].output_shape[:2], "code grid")
    plan = VQVAEPlan(
        data_shape=data.shape,
        grid_shape=(height, width),
        quantizer=model.quantizer.model_dump(mode="json"),
        ema=isinstance(model.quantizer, EMAQuantizer),
        likelihood=model.likelihood.model_dump(mode="json"),
        num_params=num_params(model.likelihood),
        prior=model.prior.model_dump(mode="json"),
        encoder=encoder,
        decoder=decoder,
        prior_network=prior_network,
    )
    words = loss_words(model, (height, width), low.spec.training.epochs)
    words += low.kernel_penalty_words()
    q = model.quantizer
    total = sum(network.params for network in networks) + q.codebook_size * q.embedding_dim
    return low.project_plan(data, plan, networks, words, extra=ExtraPlan(total_params=total))


def loss_words(model: VQVAEModel, grid: tuple[int, int], epochs: int) -> str:
    """Both stages' losses in words (without the kernel penalties)."""
    q = model.quantizer
    codebook = (
        f"codes updated as moving averages (decay {q.decay:g}) of the encoder outputs "
        "assigned to them"
        if isinstance(q, EMAQuantizer)
        else "||sg(z_e) - z_q||^2 (moves the codes)"
    )
    return (
        f"stage 1 ({epochs} epochs): -log p(x | z_q) under a {model.likelihood.type} "
        f"likelihood, z_q the nearest of {q.codebook_size} codes to each of the "
        f"{grid[0]}x{grid[1]} encoder vectors z_e, with the straight-through gradient "
        f"z_e + sg(z_q - z_e), + {codebook}"
        f" + {q.commitment:g} x ||z_e - sg(z_q)||^2 (commitment), squared distances summed "
        "over the grid, averaged over the batch; stage 2 "
        f"({model.prior.epochs} epochs, the VQ-VAE frozen): -log p(codes) of the training "
        "images' codes under a PixelCNN, each code given those before it in raster order "
        "(nats per image)"
    )


FAMILY = Family(
    "vq_vae",
    VQVAEModel,
    check_vq_vae,
    vq_vae_networks,
    plan_vq_vae,
    Capabilities(mixed_precision=Refusal("not supported yet", "remove training.mixed_precision")),
)
