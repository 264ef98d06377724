"""The `vae` family: encoder q(z|x), decoder p(x|z), a prior p(z), trained on the ELBO."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from gencompile.spec.base import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictModel,
)
from gencompile.spec.evaluation import LABELLED_SAMPLE_METRICS, SAMPLE_METRICS
from gencompile.spec.networks import Network
from gencompile.spec.transfer import InitFrom


class NormalPrior(StrictModel):
    """z ~ N(0, I); its KL term is exact."""

    type: Literal["normal"]


class MixtureOfGaussiansPrior(StrictModel):
    """A trainable mixture prior; its KL term is estimated by Monte Carlo."""

    type: Literal["mixture_of_gaussians"]
    components: Annotated[int, Field(ge=2)] = Field(
        10, description="Number of Gaussian components."
    )


class VampPrior(StrictModel):
    """VampPrior (Tomczak & Welling 2018): p(z) = mean over k of q(z | u_k) at K learned
    pseudo-inputs u_k shaped like the data; its KL term is estimated by Monte Carlo."""

    type: Literal["vamp"]
    pseudo_inputs: PositiveInt = Field(
        100, description="Number K of learned pseudo-inputs (mixture components)."
    )
    init: Literal["data", "noise"] = Field(
        "data",
        description="'data': the pseudo-inputs start as K training examples (first batch "
        "onwards); 'noise': as small Gaussian noise around 0.",
    )


Prior = Annotated[NormalPrior | MixtureOfGaussiansPrior | VampPrior, Field(discriminator="type")]


class GaussianPosterior(StrictModel):
    """q(z|x) = N(z_mean, diag(exp(z_log_var))): the encoder's two heads."""

    type: Literal["gaussian"]


class IAFPosterior(StrictModel):
    """Inverse autoregressive flow (Kingma et al. 2016): K MADE steps fed with the encoder's
    context h refine a Gaussian draw, z = sigma * z + (1 - sigma) * m."""

    type: Literal["iaf"]
    steps: PositiveInt = Field(4, description="Number K of IAF steps.")
    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        description="Hidden units of each step's MADE network.",
    )
    context: PositiveInt = Field(
        32, description="Size of the context h the encoder outputs beside z_mean, z_log_var."
    )


class PlanarPosterior(StrictModel):
    """Planar flow (Rezende & Mohamed 2015): K steps z + u_hat * tanh(w . z + b) with
    learned global parameters, u_hat keeping each step invertible."""

    type: Literal["planar"]
    steps: PositiveInt = Field(4, description="Number K of planar steps.")


class RadialPosterior(StrictModel):
    """Radial flow (Rezende & Mohamed 2015): K steps z + beta h(alpha, r) (z - z0) with
    learned global parameters, beta >= -alpha keeping each step invertible."""

    type: Literal["radial"]
    steps: PositiveInt = Field(4, description="Number K of radial steps.")


Posterior = Annotated[
    GaussianPosterior | IAFPosterior | PlanarPosterior | RadialPosterior,
    Field(discriminator="type"),
]


class ELBOObjective(StrictModel):
    """The evidence lower bound with one posterior sample per example."""

    type: Literal["elbo"]


class IWAEObjective(StrictModel):
    """The importance-weighted bound (Burda et al. 2016): logsumexp over K posterior samples
    of log p(x, z_k) - log q(z_k | x), minus log K. K = 1 is the ELBO."""

    type: Literal["iwae"]
    samples: Annotated[int, Field(ge=1, le=1000)] = Field(
        5, description="Number K of importance samples per example."
    )


Objective = Annotated[ELBOObjective | IWAEObjective, Field(discriminator="type")]


class BernoulliLikelihood(StrictModel):
    type: Literal["bernoulli"]


class GaussianLikelihood(StrictModel):
    type: Literal["gaussian"]
    sigma: Literal["learned"] | PositiveFloat = Field(
        "learned",
        description="'learned' (predicted per dimension by the decoder) or a fixed value.",
    )


class CategoricalLikelihood(StrictModel):
    type: Literal["categorical"]
    bins: Annotated[int, Field(ge=2, le=4096)] = Field(
        256,
        description="Values of data in [0, 1]: the data's own levels (17 for digits, 5 for "
        "shapes2d, 256 for 8-bit images), or any bins with bins - 1 a multiple of levels - 1.",
    )


class LogisticLikelihood(StrictModel):
    type: Literal["logistic"]


Likelihood = Annotated[
    BernoulliLikelihood | GaussianLikelihood | CategoricalLikelihood | LogisticLikelihood,
    Field(discriminator="type"),
]


class ReconstructionLoss(StrictModel):
    weight: PositiveFloat = Field(1.0, description="Factor of the reconstruction term.")


class KLLoss(StrictModel):
    weight: NonNegativeFloat = Field(1.0, description="beta; != 1 is a beta-VAE.")
    warmup_epochs: NonNegativeInt = Field(0, description="Ramp the weight linearly from 0.")
    free_bits: NonNegativeFloat = Field(0.0, description="Nats per latent dimension left free.")


class TotalCorrelationLoss(StrictModel):
    """beta-TCVAE (Chen et al. 2018): the total correlation of the aggregate posterior
    q(z), estimated on each minibatch, weighted by beta in the loss."""

    weight: NonNegativeFloat = Field(
        description="beta: the total correlation's weight in the loss (the KL term already "
        "holds it once: 1 changes nothing; larger pushes towards independent latents)."
    )


class VAELosses(StrictModel):
    """The two terms of the negative ELBO, and optionally a total-correlation penalty."""

    reconstruction: ReconstructionLoss = Field(default_factory=ReconstructionLoss)
    kl: KLLoss = Field(default_factory=KLLoss)
    tc: TotalCorrelationLoss | None = Field(
        None, description="beta-TCVAE's total-correlation term; absent: a plain (beta-)VAE."
    )


class Conditional(StrictModel):
    """Class-conditional encoder and decoder: the data's labels are one of their inputs."""

    num_classes: Annotated[int, Field(ge=2)] = Field(
        description="Number of classes; every label of the data must be below it (checked "
        "when building where the labels are quick to read, always when the data is read)."
    )


class VAEModel(StrictModel):
    """Variational autoencoder."""

    family: Literal["vae"]
    latent_dim: PositiveInt = Field(16, description="Size of z.")
    prior: Prior = Field(default_factory=lambda: NormalPrior(type="normal"), description="p(z).")
    posterior: Posterior = Field(
        default_factory=lambda: GaussianPosterior(type="gaussian"),
        description="q(z|x): a diagonal Gaussian, or one refined by a normalizing flow.",
    )
    objective: Objective = Field(
        default_factory=lambda: ELBOObjective(type="elbo"),
        description="The bound training maximises: the ELBO or the IWAE bound.",
    )
    encoder: Network = Field(
        description="Body of q(z|x); the z_mean and z_log_var heads are appended."
    )
    decoder: Network = Field(description="Body of p(x|z); the likelihood's head is appended.")
    likelihood: Likelihood = Field(
        default_factory=lambda: BernoulliLikelihood(type="bernoulli"),
        description="Distribution of each data value given z.",
    )
    losses: VAELosses = Field(default_factory=VAELosses)
    conditional: Conditional | None = None
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    metrics_available: ClassVar[tuple[str, ...]] = (
        "elbo",
        "iwae_nll",
        "bits_per_dim",
        "mig",  # disentanglement: needs data with known factors (shapes2d)
        *SAMPLE_METRICS,
        *LABELLED_SAMPLE_METRICS,
    )
    metrics_default: ClassVar[tuple[str, ...]] = ("elbo", "iwae_nll")
    trackers: ClassVar[tuple[str, ...]] = ("loss", "reconstruction", "kl", "grad_norm")

    def optional_trackers(self) -> tuple[str, ...]:
        """Logs only some models of the family write: a beta-TC VAE's total correlation."""
        return ("tc",) if self.losses.tc is not None else ()
