"""The `gan` family: a generator G(z) and a discriminator D(x) trained against each other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from gencompile.catalog.gan import LOSS_NAMES, LOSSES
from gencompile.spec.base import FieldError, PositiveFloat, PositiveInt, StrictModel
from gencompile.spec.evaluation import LABELLED_SAMPLE_METRICS, SAMPLE_METRICS
from gencompile.spec.networks import Network
from gencompile.spec.transfer import InitFrom


class NormalPrior(StrictModel):
    """z ~ N(0, stddev^2 I)."""

    type: Literal["normal"]
    stddev: PositiveFloat = Field(1.0, description="Standard deviation of z.")


class UniformPrior(StrictModel):
    """z ~ U(low, high) in each dimension."""

    type: Literal["uniform"]
    low: float = Field(-1.0, description="Lower bound of z.")
    high: float = Field(1.0, description="Upper bound of z.")

    @model_validator(mode="after")
    def _ordered(self) -> UniformPrior:
        if not self.low < self.high:
            raise FieldError("high", f"must be greater than low ({self.low}) (got {self.high})")
        return self


Prior = Annotated[NormalPrior | UniformPrior, Field(discriminator="type")]

if TYPE_CHECKING:  # a name of gencompile.catalog.gan's records, checked when validated
    LossType = str
else:
    LossType = Literal[LOSS_NAMES]  # one record each in gencompile.catalog.gan


class GANLoss(StrictModel):
    """The adversarial loss pair (discriminator loss, generator loss)."""

    type: LossType = Field(
        "non_saturating",
        description="non_saturating (Goodfellow 2014, -log D(G(z)) for G), minimax "
        "(log(1 - D(G(z))) for G), hinge, least_squares (LSGAN) or wasserstein (WGAN critic).",
    )


class WGANGradientPenalty(StrictModel):
    """weight * E[(||grad D(x_hat)|| - 1)^2] at x_hat = real + u (fake - real), u ~ U(0, 1)."""

    type: Literal["wgan_gp"]
    weight: PositiveFloat = Field(10.0, description="Factor of the penalty.")


class R1GradientPenalty(StrictModel):
    """(weight / 2) * E[||grad D(x)||^2] on real data (Mescheder et al. 2018)."""

    type: Literal["r1"]
    weight: PositiveFloat = Field(10.0, description="Factor of the penalty.")
    interval: Annotated[int, Field(ge=1, le=1000)] = Field(
        1,
        description="Lazy regularization (StyleGAN2): the penalty is computed on every "
        "interval-th discriminator update only, multiplied by interval. 1 = every update.",
    )


GradientPenalty = Annotated[WGANGradientPenalty | R1GradientPenalty, Field(discriminator="type")]


AugmentName = Literal["color", "translation", "cutout"]
ALL_AUGMENTS: list[AugmentName] = ["color", "translation", "cutout"]


class _AugmentPolicy(StrictModel):
    policy: list[AugmentName] = Field(
        default_factory=lambda: list(ALL_AUGMENTS),
        min_length=1,
        description="The transformations, applied in this order: color (brightness, "
        "saturation, contrast), translation (by up to 1/8 of the image, zero padded), "
        "cutout (a square of half the image's side set to zero).",
    )

    @model_validator(mode="after")
    def _each_once(self) -> _AugmentPolicy:
        if len(set(self.policy)) != len(self.policy):
            twice = next(name for name in self.policy if self.policy.count(name) > 1)
            raise FieldError("policy", f"names {twice!r} twice")
        return self


class DiffAugment(_AugmentPolicy):
    """Differentiable augmentation (Zhao et al. 2020): the discriminator sees T(x) and
    T(G(z)) in both updates, T drawn anew for every example."""

    type: Literal["diffaugment"]


class AdaptiveAugment(_AugmentPolicy):
    """Adaptive augmentation (Karras et al. 2020): each transformation of the policy is
    applied to an example with probability p, raised while the discriminator overfits
    (r_t = E[sign(D(x) - b)] above target, b the loss's boundary between real and generated:
    0 for a logit or a hinge, 0.5 for least squares) and lowered otherwise. A wasserstein
    critic has no such boundary: ada is refused with it."""

    type: Literal["ada"]
    target: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.6, description="The value of r_t = E[sign(D(x_real) - b)] that p is steered to."
    )
    interval: Annotated[int, Field(ge=1, le=1000)] = Field(
        4, description="Discriminator updates between two adjustments of p."
    )
    ramp_images: Annotated[int, Field(ge=1, le=10**9)] = Field(
        500_000,
        description="Real examples seen for p to move from 0 to 1 at the fastest "
        "(the paper's 500k suits long runs; small runs need fewer).",
    )
    initial_p: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="p at the start of training."
    )


Augmentation = Annotated[DiffAugment | AdaptiveAugment, Field(discriminator="type")]


class GANConditional(StrictModel):
    """Class-conditional G(z, y) and D(x, y): the class is one-hot coded or embedded."""

    num_classes: Annotated[int, Field(ge=2)] = Field(
        description="Number of classes; every label of the data must be below it (checked "
        "when building where the labels are quick to read, always when the data is read)."
    )
    encoding: Literal["one_hot", "embedding"] = Field(
        "one_hot", description="How y is joined to z and x: one-hot code or learned embedding."
    )
    embedding_dim: PositiveInt | None = Field(
        None, description="Size of the learned class embedding (encoding: embedding; default 16)."
    )

    @model_validator(mode="after")
    def _embedding_dim_needs_embedding(self) -> GANConditional:
        if self.embedding_dim is not None and self.encoding != "embedding":
            raise FieldError("embedding_dim", "applies only to encoding: embedding")
        return self


class GANModel(StrictModel):
    """Generative adversarial network."""

    family: Literal["gan"]
    latent_dim: PositiveInt = Field(64, description="Size of z.")
    prior: Prior = Field(
        default_factory=lambda: NormalPrior(type="normal"), description="Distribution of z."
    )
    generator: Network = Field(
        description="Body of G; the output layer to the data's shape is appended."
    )
    discriminator: Network = Field(description="Body of D; the one-score output layer is appended.")
    loss: GANLoss = Field(default_factory=GANLoss)
    gradient_penalty: GradientPenalty | None = Field(
        None, description="A penalty on D's gradients; default: none."
    )
    augmentation: Augmentation | None = Field(
        None,
        description="Augment what the discriminator sees, real and generated alike, in "
        "both updates (images only); default: none.",
    )
    critic_steps: Annotated[int, Field(ge=1, le=100)] = Field(
        1, description="Discriminator updates per generator update (each on the same batch)."
    )
    label_smoothing: Annotated[float, Field(ge=0, le=0.5)] = Field(
        0.0, description="One-sided: the discriminator's target for real data is 1 - s."
    )
    ema: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0,
        description="Decay of an exponential moving average of the generator's weights; "
        "samples come from the averaged generator. 0 = off.",
    )
    spectral_norm: bool = Field(
        False,
        description="Wrap every dense and convolutional layer of the discriminator, its "
        "output layer included, in spectral normalisation.",
    )
    output_activation: Literal["auto", "linear", "tanh", "sigmoid"] = Field(
        "auto",
        description="Activation of the generator's output layer; auto: tanh for data scaled "
        "to [-1, 1], sigmoid for [0, 1], linear otherwise.",
    )
    conditional: GANConditional | None = None
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    metrics_available: ClassVar[tuple[str, ...]] = (
        *SAMPLE_METRICS,
        *LABELLED_SAMPLE_METRICS,
    )
    metrics_default: ClassVar[tuple[str, ...]] = ()
    # No likelihood to report: by default the data set's sample-quality metrics.
    sample_metrics_by_default: ClassVar[bool] = True
    trackers: ClassVar[tuple[str, ...]] = (
        "d_loss",
        "g_loss",
        "d_real_accuracy",
        "d_fake_accuracy",
        "d_grad_norm",
        "g_grad_norm",
    )
    # One optimizer per role: `training.optimizers.<role>`; the first is Keras' model.optimizer.
    optimizer_roles: ClassVar[tuple[str, ...]] = ("generator", "discriminator")

    # Logged each epoch by a callback (gan.TrainingHealth), beside the trackers: never validated.
    callback_logs: ClassVar[tuple[str, ...]] = ("diversity",)
    # Optional trackers of the training step only: validation reports the first four.
    training_only_trackers: ClassVar[tuple[str, ...]] = ("gradient_penalty", "augment_p")

    @model_validator(mode="after")
    def _ada_needs_a_boundary(self) -> GANModel:
        # ADA steers p by the share of real examples D scores above the loss's boundary
        # between real and generated; a loss without a fixed one gives r_t no meaning.
        if not isinstance(self.augmentation, AdaptiveAugment):
            return self
        if LOSSES[self.loss.type].accuracy_threshold is None:
            bounded = [name for name, loss in LOSSES.items() if loss.accuracy_threshold is not None]
            raise FieldError(
                "augmentation",
                "ada steers p by how many real examples D scores as real, but the "
                f"{self.loss.type} critic's scores have no fixed boundary between real and "
                "generated; use augmentation: {type: diffaugment}, or the "
                f"{', '.join(bounded[:-1])} or {bounded[-1]} loss",
            )
        return self

    def optional_trackers(self) -> tuple[str, ...]:
        """Trackers only some models of the family have: a gradient penalty's, adaptive
        augmentation's probability."""
        penalty = ("gradient_penalty",) if self.gradient_penalty is not None else ()
        adaptive = self.augmentation is not None and self.augmentation.type == "ada"
        return (*penalty, *(("augment_p",) if adaptive else ()))
