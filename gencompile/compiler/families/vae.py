"""Lowering of the `vae` family: encoder and decoder networks with their heads appended."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gencompile.compiler.applications import data_scale
from gencompile.compiler.data_classes import check_data_classes
from gencompile.compiler.data_levels import check_bins
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import LATENT_PICTURES, Capabilities, Family
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.networks import NetworkBuilder
from gencompile.compiler.plan import ExtraPlan, NetworkPlan, ProjectPlan, Shape
from gencompile.compiler.shapes import ShapeError, features, fmt, known, size, vector
from gencompile.spec.families.vae import (
    CategoricalLikelihood,
    GaussianLikelihood,
    IAFPosterior,
    IWAEObjective,
    Likelihood,
    MixtureOfGaussiansPrior,
    PlanarPosterior,
    RadialPosterior,
    VAEModel,
    VampPrior,
)
from gencompile.spec.networks import Conv2D, Dense, Flatten, Network, Reshape

# Values per data value of the likelihoods whose count no field changes.
LIKELIHOOD_PARAMS = {"bernoulli": 1, "logistic": 2}


@dataclass(frozen=True)
class VAEPlan:
    latent_dim: int
    data_shape: Shape
    num_classes: int | None
    prior: dict[str, Any]
    likelihood: dict[str, Any]
    num_params: int
    reconstruction_weight: float
    kl_weight: float
    warmup_epochs: int
    free_bits: float
    analytic_kl: bool
    continuous: bool  # the likelihood is a density (NLL changes with preprocessing units)
    encoder: NetworkPlan
    decoder: NetworkPlan
    tc_weight: float | None = None  # beta of beta-TCVAE; None: no total-correlation term
    # The posterior, objective and prior beyond the defaults (gaussian, elbo, normal or
    # mixture): `extended` selects the template's path that draws through `posterior`.
    posterior: dict[str, Any] = field(default_factory=lambda: {"type": "gaussian"})
    objective: dict[str, Any] = field(default_factory=lambda: {"type": "elbo"})
    extended: bool = False


def num_params(likelihood: Likelihood) -> int:
    if isinstance(likelihood, GaussianLikelihood):
        return 2 if likelihood.sigma == "learned" else 1
    if isinstance(likelihood, CategoricalLikelihood):
        return likelihood.bins
    return LIKELIHOOD_PARAMS[likelihood.type]


def _with_class(net: NetworkBuilder, h: str, shape: Shape, num_classes: int) -> tuple[str, Shape]:
    """Add the class input y and concatenate its one-hot code to the features `h`."""
    y = net.input("y", (), "int32")
    one_hot = net.layer(
        "one_hot",
        "layers.CategoryEncoding",
        (("num_tokens", num_classes), ("output_mode", "one_hot")),
        (num_classes,),
        0,
        name="class_one_hot",
    )
    y_one_hot = net.add("y_one_hot", one_hot, (y,))
    shape = (features(shape, "the class code") + num_classes,)
    concat = net.layer("concat", "layers.Concatenate", (), shape, 0, name="with_class")
    return net.add("h", concat, (h, y_one_hot), packed=True), shape


def _encoder(low: Lowering, data_shape: Shape, num_classes: int | None) -> NetworkPlan:
    model = low.family_model(VAEModel)
    net = NetworkBuilder(
        "encoder", low.regularizer(), low.report, mixed_precision=low.spec.training.mixed_precision
    )
    net.reserve(["z_mean", "z_log_var", "context", "with_class", "features", "class_one_hot"])
    if num_classes is not None:
        net.reserve(["y"])  # its input comes after the body (_with_class)
    x = net.input("x", data_shape)
    net.image_input = (x, data_scale(low.spec))  # where a keras_application may read x
    h, shape = net.body(model.encoder, ("model", "encoder"), x, data_shape)
    if len(shape) > 1:
        flatten = net.synth(Flatten(type="flatten", name="features"), shape, kind="flatten")
        h, shape = net.add("h", flatten, (h,)), flatten.output_shape
    if num_classes is not None:
        h, shape = _with_class(net, h, shape, num_classes)
    heads = []
    for head in ("z_mean", "z_log_var"):
        layer = net.synth(Dense(type="dense", units=model.latent_dim, name=head), shape)
        heads.append(net.add(head, layer, (h,)))
    inputs = "x and its class y" if num_classes else "x"
    given = "x, y" if num_classes else "x"
    what = "the mean and log-variance of z"
    if isinstance(model.posterior, IAFPosterior):  # IAF's steps read the context h
        layer = net.synth(Dense(type="dense", units=model.posterior.context, name="context"), shape)
        heads.append(net.add("context", layer, (h,)))
        what = "the IAF's base mean, log-variance and context h"
    elif model.posterior.type != "gaussian":
        what = f"the {model.posterior.type} flow's base mean and log-variance"
    doc = f"q(z | {given}): maps {inputs} to {what}."
    return net.build(doc, tuple(heads))


def _decoder(low: Lowering, data_shape: Shape, num_classes: int | None, params: int) -> NetworkPlan:
    model = low.family_model(VAEModel)
    net = NetworkBuilder(
        "decoder", low.regularizer(), low.report, mixed_precision=low.spec.training.mixed_precision
    )
    net.reserve(["likelihood_params", "with_class", "class_one_hot", "to_data_shape"])
    z = net.input("z", (model.latent_dim,))
    h, shape = z, vector(model.latent_dim)
    if num_classes is not None:
        h, shape = _with_class(net, h, shape, num_classes)
    h, shape = net.body(model.decoder, ("model", "decoder"), h, shape)
    head = net.synth(_likelihood_head(low, shape, data_shape, params), shape)
    h = net.add("h", head, (h,))
    target = data_shape if params == 1 else (*data_shape, params)
    if head.output_shape == tuple(target):
        net.steps[-1] = replace(net.steps[-1], target="params")
    else:
        reshape = Reshape(
            type="reshape", target_shape=list(known(target, "reshape")), name="to_data_shape"
        )
        net.add("params", net.synth(reshape, head.output_shape, kind="reshape"), (h,))
    kind = low.family_model(VAEModel).likelihood.type
    given = "z, y" if num_classes else "z"
    doc = f"p(x | {given}): maps a latent code to the {kind} likelihood's parameters."
    return net.build(doc, ("params",))


def _likelihood_head(low: Lowering, shape: Shape, data_shape: Shape, params: int) -> Dense | Conv2D:
    """Dense from a flat body, a 3x3 convolution from an image of the data's height and
    width: either way `params` values per data value."""
    if len(shape) == 1:
        units = size(data_shape) * params
        return Dense(type="dense", units=units, name="likelihood_params")
    if len(shape) == 3 and len(data_shape) == 3 and shape[:2] == data_shape[:2]:
        channels = features(data_shape, "conv2d") * params
        return Conv2D(type="conv2d", filters=channels, kernel_size=3, name="likelihood_params")
    low.report(
        _last_layer_path(low.family_model(VAEModel).decoder),
        f"the decoder's body ends with shape {fmt(shape)}, which cannot be projected to "
        f"the data's shape {fmt(data_shape)}",
        "end the body with a flat vector (dense) or with an image of the data's height "
        "and width (conv2d_transpose / upsampling2d)",
    )
    raise ShapeError("decoder head")


def _last_layer_path(network: Network) -> tuple[str | int, ...]:
    if network.layers:
        return ("model", "decoder", "layers", len(network.layers) - 1)
    return ("model", "decoder", "mlp", len(network.mlp or [0]) - 1)


def check_vae(low: Lowering, data: DataShape) -> None:
    """Free bits need the analytic per-dimension KL of a normal prior; the VampPrior and
    the IWAE objective have their own requirements; a categorical likelihood's bins hold
    each of the data's levels."""
    model = low.family_model(VAEModel)
    if isinstance(model.likelihood, CategoricalLikelihood):
        check_bins(low, ("model", "likelihood", "bins"), model.likelihood.bins)
    if model.losses.kl.free_bits > 0 and model.prior.type != "normal":
        low.report(
            ("model", "losses", "kl", "free_bits"),
            "free bits apply to the analytic per-dimension KL of a normal prior",
            "use prior: {type: normal} or set free_bits: 0",
        )
    free_bits_path = ("model", "losses", "kl", "free_bits")
    if model.losses.kl.free_bits > 0 and model.posterior.type != "gaussian":
        low.report(
            free_bits_path,
            f"free bits need a per-dimension KL, which a {model.posterior.type} flow "
            "posterior does not have (its KL is estimated by Monte Carlo)",
            "use posterior: {type: gaussian} or set free_bits: 0",
        )
    if model.losses.kl.free_bits > 0 and model.objective.type == "iwae":
        low.report(
            free_bits_path,
            "free bits apply to the ELBO's KL term; the IWAE bound has none",
            "use objective: {type: elbo} or set free_bits: 0",
        )
    _check_vamp(low, model)
    strategy = low.spec.training.distribution.strategy
    if isinstance(model.objective, IWAEObjective) and strategy != "none":
        low.report(
            ("model", "objective", "type"),
            f"the IWAE objective is not available under the {strategy} strategy yet",
            "use objective: {type: elbo}, or training.distribution.strategy: none",
        )
    _check_tc(low, model)
    check_data_classes(low)


def _check_vamp(low: Lowering, model: VAEModel) -> None:
    """The VampPrior's components are the encoder's Gaussian posteriors at pseudo-inputs
    without labels: it needs an unconditional model with a Gaussian posterior."""
    if model.prior.type != "vamp":
        return
    if model.conditional is not None:
        low.report(
            ("model", "prior", "type"),
            "the VampPrior's pseudo-inputs have no class labels, so it cannot serve a "
            "conditional VAE",
            "remove model.conditional or use prior: {type: normal}",
        )
    if model.posterior.type != "gaussian":
        low.report(
            ("model", "prior", "type"),
            f"the VampPrior mixes Gaussian posteriors, not {model.posterior.type} flow posteriors",
            "use posterior: {type: gaussian} with the VampPrior",
        )


def _check_tc(low: Lowering, model: VAEModel) -> None:
    """The TC term's weight is beta in all only where the KL term holds the TC once:
    KL = MI + TC + dimension-wise KL needs a factorised prior and the whole KL."""
    if model.losses.tc is None:
        return
    if model.prior.type != "normal":
        low.report(
            ("model", "losses", "tc"),
            "the total-correlation term needs a factorised prior (the KL splits into mutual "
            f"information, TC and per-dimension KL only then), but the prior is {model.prior.type}",
            "use prior: {type: normal}, or remove losses.tc",
        )
    if model.losses.kl.free_bits > 0:
        low.report(
            ("model", "losses", "tc"),
            "the total-correlation term counts on the whole KL term, but free bits leave part "
            "of it out",
            "set losses.kl.free_bits: 0, or remove losses.tc",
        )
    if model.posterior.type != "gaussian" or model.objective.type != "elbo":
        low.report(
            ("model", "losses", "tc"),
            "the total-correlation estimate needs the Gaussian posterior's densities and the "
            f"ELBO's KL term, but the posterior is {model.posterior.type} and the objective "
            f"{model.objective.type}",
            "use posterior: {type: gaussian} and objective: {type: elbo}, or remove losses.tc",
        )


def _num_classes(model: VAEModel) -> int | None:
    return model.conditional.num_classes if model.conditional else None


def vae_networks(low: Lowering, data: DataShape, facts: None) -> tuple[NetworkPlan, ...]:
    """The encoder and the decoder with their heads; a shape problem in one is reported
    and the other is still built (its problems reported too)."""
    model = low.family_model(VAEModel)
    num_classes = _num_classes(model)
    params = num_params(model.likelihood)
    networks: list[NetworkPlan] = []
    builds: tuple[Callable[[], NetworkPlan], ...] = (
        lambda: _encoder(low, data.shape, num_classes),
        lambda: _decoder(low, data.shape, num_classes, params),
    )
    for build in builds:
        with contextlib.suppress(ShapeError):  # reported with its location
            networks.append(build())
    return tuple(networks)


def plan_vae(
    low: Lowering, data: DataShape, facts: None, networks: tuple[NetworkPlan, ...]
) -> ProjectPlan[VAEPlan]:
    """The VAE's plan (prior, likelihood, KL schedule) and its negative ELBO in words."""
    model = low.family_model(VAEModel)
    num_classes = _num_classes(model)
    encoder, decoder = networks
    kl = model.losses.kl
    plan = VAEPlan(
        latent_dim=model.latent_dim,
        data_shape=data.shape,
        num_classes=num_classes,
        prior=model.prior.model_dump(mode="json"),
        likelihood=model.likelihood.model_dump(mode="json"),
        num_params=num_params(model.likelihood),
        reconstruction_weight=model.losses.reconstruction.weight,
        kl_weight=kl.weight,
        warmup_epochs=kl.warmup_epochs,
        free_bits=kl.free_bits,
        analytic_kl=model.prior.type == "normal" and not is_extended(model),
        continuous=model.likelihood.type in ("gaussian", "logistic"),
        encoder=encoder,
        decoder=decoder,
        tc_weight=None if model.losses.tc is None else model.losses.tc.weight,
        posterior=model.posterior.model_dump(mode="json"),
        objective=model.objective.model_dump(mode="json"),
        extended=is_extended(model),
    )
    words = _loss_words(model, plan.analytic_kl) + low.kernel_penalty_words()
    # The flow's steps and a learned prior are weights of the model outside its networks.
    total = encoder.params + decoder.params + outside_params(model, data.shape)
    return low.project_plan(
        data,
        plan,
        (encoder, decoder),
        words,
        num_classes=num_classes,
        extra=ExtraPlan(total_params=total),
    )


def outside_params(model: VAEModel, data_shape: Shape) -> int:
    """Trainable weights of the posterior flow's steps and of the prior (the runtime's
    posteriors.IAFStep/PlanarStep/RadialStep, MixtureOfGaussians and VampPrior)."""
    d, posterior, prior = model.latent_dim, model.posterior, model.prior
    flow = 0
    if isinstance(posterior, IAFPosterior):  # MADE z -> hidden -> [m, s], plus h's projection
        widths = [d, *posterior.hidden, 2 * d]
        made = sum(a * b + b for a, b in itertools.pairwise(widths))
        flow = posterior.steps * (made + posterior.context * posterior.hidden[0])
    elif isinstance(posterior, PlanarPosterior):  # u, w and b
        flow = posterior.steps * (2 * d + 1)
    elif isinstance(posterior, RadialPosterior):  # z0, alpha and beta
        flow = posterior.steps * (d + 2)
    if isinstance(prior, MixtureOfGaussiansPrior):  # means, log-variances and logits
        return flow + prior.components * (2 * d + 1)
    if isinstance(prior, VampPrior):  # the pseudo-inputs, shaped like the data
        return flow + prior.pseudo_inputs * size(data_shape)
    return flow


def is_extended(model: VAEModel) -> bool:
    """Whether the model leaves the defaults (gaussian posterior, ELBO, normal or mixture
    prior): the template then draws z through its `posterior` method."""
    return (
        model.posterior.type != "gaussian"
        or model.objective.type != "elbo"
        or model.prior.type == "vamp"
    )


PRIOR_WORDS = {
    "mixture_of_gaussians": "the mixture prior",
    "vamp": "the VampPrior (the mean of the encoder's posteriors at {k} learned pseudo-inputs)",
    "normal": "N(0, I)",
}


def _posterior_words(model: VAEModel, given: str) -> str:
    """q(z|x) in words: the Gaussian, or the flow refining it with its log-determinant."""
    posterior = model.posterior
    if posterior.type == "gaussian":
        return f"q(z|{given})"
    detail = {
        "iaf": f"{posterior.type.upper()} steps fed with the encoder's context h",
        "planar": "planar steps",
        "radial": "radial steps",
    }[posterior.type]
    steps = getattr(posterior, "steps", 0)
    return (
        f"the flow posterior q(z_K|{given}) (a Gaussian refined by {steps} {detail}; "
        "log q(z_K) = log q0(z_0) - sum of the steps' log-determinants)"
    )


def _prior_words(model: VAEModel) -> str:
    return PRIOR_WORDS[model.prior.type].format(k=getattr(model.prior, "pseudo_inputs", 0))


def _iwae_words(model: VAEModel, objective: IWAEObjective) -> str:
    """The negative importance-weighted bound in words."""
    conditional = bool(_num_classes(model))
    given = "x, y" if conditional else "x"
    kl = model.losses.kl
    weighted = []
    if model.losses.reconstruction.weight != 1:
        weighted.append(f"log p(x | z_k) x {model.losses.reconstruction.weight:g}")
    if kl.weight != 1:
        weighted.append(f"its KL part x {kl.weight:g}")
    if kl.warmup_epochs:
        weighted.append(f"the KL part ramped up from 0 over {kl.warmup_epochs} epochs")
    weights = f" (in the log-weights: {', '.join(weighted)})" if weighted else ""
    k = objective.samples
    return (
        f"negative IWAE bound = -(logsumexp over {k} samples z_k ~ "
        f"{_posterior_words(model, given)} of [log p(x | {'z_k, y' if conditional else 'z_k'})"
        f" under a {model.likelihood.type} likelihood + log p(z_k) - log q(z_k|{given})]"
        f" - log {k}){weights}, with p(z) = {_prior_words(model)}, averaged over the batch"
    )


def _loss_words(model: VAEModel, analytic_kl: bool) -> str:
    """The negative ELBO (or IWAE bound) in words (without the kernel penalties)."""
    if isinstance(model.objective, IWAEObjective):
        return _iwae_words(model, model.objective)
    conditional = bool(_num_classes(model))
    kl = model.losses.kl
    given = "x, y" if conditional else "x"
    if analytic_kl:
        kl_words = f"analytic KL(q(z|{given}) || N(0, I))"
    elif is_extended(model):
        kl_words = f"Monte Carlo KL of {_posterior_words(model, given)} to {_prior_words(model)}"
    else:
        kl_words = "Monte Carlo KL to the mixture prior"
    beta = f"{kl.weight:g} x " if kl.weight != 1 else ""
    warm = f", ramped up from 0 over {kl.warmup_epochs} epochs" if kl.warmup_epochs else ""
    free = f", with {kl.free_bits:g} free nats per latent dimension" if kl.free_bits else ""
    recon = (
        f"{model.losses.reconstruction.weight:g} x "
        if model.losses.reconstruction.weight != 1
        else ""
    )
    return (
        f"negative ELBO = {recon}E_q[-log p(x | {'z, y' if conditional else 'z'})] under a "
        f"{model.likelihood.type} likelihood"
        f" + {beta}{kl_words}{warm}{free}{_tc_words(model)}, averaged over the batch"
    )


def _tc_words(model: VAEModel) -> str:
    """beta-TCVAE's extra term in words, or nothing."""
    tc = model.losses.tc
    if tc is None:
        return ""
    return (
        f" + ({tc.weight:g} - the KL weight) x the total correlation of q(z) (beta-TCVAE: "
        f"the TC's weight is {tc.weight:g} in all; q(z) estimated on the minibatch by "
        "stratified sampling)"
    )


FAMILY = Family(
    "vae",
    VAEModel,
    check_vae,
    vae_networks,
    plan_vae,
    Capabilities(latent_pictures=LATENT_PICTURES),
)
