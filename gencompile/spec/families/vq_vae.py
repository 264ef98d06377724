"""The `vq_vae` family: an encoder to a grid of vectors, each replaced by its nearest code
of a learned codebook (van den Oord et al. 2017), a decoder, and a PixelCNN prior over the
grid of code indices trained after the autoencoder in the same `gencompile train` run."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from gencompile.spec.base import FieldError, PositiveFloat, PositiveInt, StrictModel
from gencompile.spec.evaluation import SAMPLE_METRICS
from gencompile.spec.families.vae import Likelihood
from gencompile.spec.networks import Network
from gencompile.spec.transfer import InitFrom


class _Codebook(StrictModel):
    codebook_size: Annotated[int, Field(ge=2, le=65536)] = Field(
        64, description="Number of codes K in the codebook."
    )
    embedding_dim: PositiveInt = Field(16, description="Size of each code vector.")
    commitment: PositiveFloat = Field(
        0.25, description="beta: weight of the commitment term ||z_e - sg(z_q)||^2."
    )


class GradientQuantizer(_Codebook):
    """Codes learned by gradient descent on the codebook term ||sg(z_e) - z_q||^2."""

    type: Literal["vq"]


class EMAQuantizer(_Codebook):
    """Codes updated as exponential moving averages of the encoder outputs assigned to them
    (van den Oord et al. 2017, appendix A.1); the loss has no codebook term."""

    type: Literal["ema"]
    decay: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.99, description="gamma: weight of the past in the moving averages."
    )
    epsilon: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1e-5, description="Laplace smoothing of the code counts (no code divides by zero)."
    )


Quantizer = Annotated[GradientQuantizer | EMAQuantizer, Field(discriminator="type")]


class PixelCNNPrior(StrictModel):
    """p(codes): a PixelCNN over the grid of code indices, fitted after the autoencoder on
    the codes of the training data (the autoencoder frozen)."""

    type: Literal["pixelcnn"]
    filters: PositiveInt = Field(64, description="Channels of the masked convolutions.")
    layers: PositiveInt = Field(4, description="Residual blocks of masked (type B) convolutions.")
    kernel_size: Annotated[int, Field(ge=3, le=15)] = Field(
        3, description="Of the first (type A) masked convolution; odd."
    )
    epochs: PositiveInt = Field(
        20, description="Epochs of the prior's own fit, after training.epochs of the VQ-VAE."
    )
    learning_rate: PositiveFloat = Field(1e-3, description="Of the prior's Adam optimizer.")
    temperature: PositiveFloat = Field(
        1.0, description="Default softmax temperature when drawing codes (--temperature)."
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> PixelCNNPrior:
        if self.kernel_size % 2 == 0:
            raise FieldError("kernel_size", f"must be odd (got {self.kernel_size})")
        return self


Prior = Annotated[PixelCNNPrior, Field(discriminator="type")]


class VQVAEModel(StrictModel):
    """Vector-quantized VAE with a PixelCNN prior over its codes."""

    family: Literal["vq_vae"]
    encoder: Network = Field(
        description="Body of the encoder, ending in an image (height, width, channels); a 1x1 "
        "convolution to embedding_dim is appended."
    )
    quantizer: Quantizer = Field(
        default_factory=lambda: GradientQuantizer(type="vq"),
        description="The codebook and how it learns.",
    )
    decoder: Network = Field(
        description="Body of p(x | z_q) from the grid of codes; the likelihood's head is appended."
    )
    likelihood: Likelihood = Field(description="Distribution of each data value given the codes.")
    prior: Prior = Field(
        default_factory=lambda: PixelCNNPrior(type="pixelcnn"),
        description="p(codes), fitted after the VQ-VAE; sampling draws codes from it.",
    )
    init_from: InitFrom | None = Field(
        None,
        description="Start from a trained run's or a weights file's weights (the prior's "
        "too: its fit goes on from them).",
    )

    metrics_available: ClassVar[tuple[str, ...]] = (
        "reconstruction_nll",
        "prior_nll",
        "nll_bound",
        "codebook_perplexity",
        *SAMPLE_METRICS,
    )
    metrics_default: ClassVar[tuple[str, ...]] = (
        "reconstruction_nll",
        "prior_nll",
        "nll_bound",
        "codebook_perplexity",
    )
    sample_metrics_by_default: ClassVar[bool] = True
    trackers: ClassVar[tuple[str, ...]] = (
        "loss",
        "reconstruction",
        "codebook",
        "commitment",
        "perplexity",
        "usage",
        "grad_norm",
    )
