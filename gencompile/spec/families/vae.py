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


Prior = Annotated[NormalPrior | MixtureOfGaussiansPrior, Field(discriminator="type")]


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
    bins: Annotated[int, Field(ge=2, le=4096)] = 256


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

    num_classes: Annotated[int, Field(ge=2)] = Field(description="Number of classes.")


class VAEModel(StrictModel):
    """Variational autoencoder."""

    family: Literal["vae"]
    latent_dim: PositiveInt = Field(16, description="Size of z.")
    prior: Prior = Field(default_factory=lambda: NormalPrior(type="normal"), description="p(z).")
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
