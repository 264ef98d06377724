"""The `flow` family: a normalizing flow, an invertible map from data x to a base variable z.

log p(x) = log p_base(f(x)) + log |det df/dx|, trained by maximum likelihood. `transforms`
lists the invertible steps from the data side to the base; `repeat` stacks copies.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from gencompile.levels import source_levels
from gencompile.spec.base import Activation, FieldError, PositiveFloat, PositiveInt, StrictModel
from gencompile.spec.evaluation import SAMPLE_METRICS
from gencompile.spec.networks import Network
from gencompile.spec.transfer import InitFrom


class NormalBase(StrictModel):
    """z ~ N(0, I)."""

    type: Literal["normal"]


class LogisticBase(StrictModel):
    """z_d ~ logistic(0, 1) independently: heavier tails than the normal (NICE)."""

    type: Literal["logistic"]


Base = Annotated[NormalBase | LogisticBase, Field(discriminator="type")]

Repeat = Annotated[int, Field(ge=1, le=256, description="Stack this many copies.")]
ScaleBound = Literal["tanh", "soft_clamp"]
# A coupling may also take Glow's scale, sigmoid(s + 2): in (0, 1), so it only contracts.
CouplingScale = Literal["tanh", "soft_clamp", "sigmoid"]


class AffineCoupling(StrictModel):
    """RealNVP affine coupling: half the input (the mask) sets the shift and scale of the rest.

    Copies alternate their masks, so each copy transforms what the previous one passed on.
    """

    type: Literal["affine_coupling"]
    hidden: list[PositiveInt] | Network = Field(
        default_factory=lambda: [128, 128],
        description="Hidden body of the shift/log-scale network: a list of dense widths "
        "(with `activation`) or a network (`mlp:` or `layers:`); the heads are appended.",
    )
    activation: Activation = Field(
        "relu", description="Activation of a `hidden` list (a network sets its own)."
    )
    mask: Literal["alternating", "checkerboard", "channel"] = Field(
        "alternating",
        description="alternating features (vectors); checkerboard pixels or the first/second "
        "half of the channels (images).",
    )
    scale: CouplingScale = Field(
        "tanh",
        description="How the log-scale is bounded to (-clamp, clamp): clamp * tanh(s / clamp) "
        "or the soft clamp clamp * 2/pi * atan(s / clamp); or sigmoid, Glow's scale "
        "sigmoid(s + 2) in (0, 1) (log-scale log sigmoid(s + 2), `clamp` unused).",
    )
    clamp: PositiveFloat = Field(2.0, description="Bound of the log-scale (tanh, soft_clamp).")
    head_init: Literal["auto", "glorot_uniform", "zeros"] = Field(
        "auto",
        description="Initial kernels of the shift and log-scale heads. zeros: every coupling "
        "starts as the identity (Glow); glorot_uniform: Keras's default, a random start that "
        "learns faster at a fixed budget (two moons, 20 epochs: lower NLL on 9 of 10 "
        "seeds); auto: glorot_uniform on vectors, zeros on images (deep stacks).",
    )
    repeat: Repeat = 1

    @model_validator(mode="after")
    def _sigmoid_has_no_clamp(self) -> AffineCoupling:
        # Against the default, not the fields set: a resolved spec (the lock) writes it out.
        default = type(self).model_fields["clamp"].default
        if self.scale == "sigmoid" and self.clamp != default:
            raise FieldError(
                "clamp", "bounds the tanh and soft_clamp scales; sigmoid has none (remove clamp)"
            )
        return self

    @model_validator(mode="after")
    def _activation_of_a_list(self) -> AffineCoupling:
        # Against the default, as above: a lock writes the default out beside a network.
        default = type(self).model_fields["activation"].default
        if isinstance(self.hidden, Network) and self.activation != default:
            where = "`activation` inside hidden" if self.hidden.mlp else "each layer's activation"
            raise FieldError(
                "activation",
                "applies to a `hidden` list of widths; this hidden is a network, which sets its "
                f"own activations (move it: {where})",
            )
        return self


class ActNorm(StrictModel):
    """Per-channel scale and bias, initialised from the first batch (zero mean, unit variance)."""

    type: Literal["actnorm"]
    repeat: Repeat = 1


class Permutation(StrictModel):
    """A fixed reordering of the features (the channels of images)."""

    type: Literal["permutation"]
    order: Literal["random", "reverse"] = Field(
        "random", description="random (fixed by the spec's seed) or reverse."
    )
    repeat: Repeat = 1


class InvertibleDense(StrictModel):
    """An LU-parameterised invertible linear map of the features (a 1x1 convolution on images)."""

    type: Literal["invertible_dense"]
    repeat: Repeat = 1


class MAF(StrictModel):
    """Masked autoregressive transform built on MADE (one pass to evaluate, D to sample).

    Copies alternate the autoregressive order (natural, reversed).
    """

    type: Literal["maf"]
    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [64, 64],
        min_length=1,
        description="Widths of MADE's masked dense layers.",
    )
    activation: Activation = Field("relu", description="Activation of the hidden layers.")
    scale: ScaleBound = Field(
        "tanh", description="How the log-scale is bounded (as in affine_coupling)."
    )
    clamp: PositiveFloat = Field(2.0, description="Bound of the log-scale.")
    repeat: Repeat = 1


class Squeeze(StrictModel):
    """Images: each 2x2 patch into channels, (H, W, C) -> (H/2, W/2, 4C) (multi-scale step)."""

    type: Literal["squeeze"]
    repeat: Repeat = 1


class Logit(StrictModel):
    """Values in [0, 1] to the real line: logit(alpha + (1 - 2 alpha) x) (RealNVP)."""

    type: Literal["logit"]
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        0.05, description="Margin that keeps values off 0 and 1."
    )


class LearnedPrior(StrictModel):
    """Glow's prior: N(mean(h), exp(log_scale(h))^2), from a zero-initialised 3x3 convolution
    of the half h that stays in the flow (so it starts as N(0, I))."""

    type: Literal["learned"]


class NormalPrior(StrictModel):
    """N(0, I), whatever the half kept."""

    type: Literal["normal"]


SplitPrior = Annotated[LearnedPrior | NormalPrior, Field(discriminator="type")]


class Split(StrictModel):
    """Multi-scale factor-out (RealNVP, Glow): half the channels leave the flow here.

    The second half of the channels is modelled by `prior` given the first half, and its
    log-density joins the log-likelihood; later transforms act on the first half only.
    Put it after a squeeze, on an even number of channels.
    """

    type: Literal["split"]
    prior: SplitPrior = Field(
        default_factory=lambda: LearnedPrior(type="learned"),
        description="Distribution of the factored-out half: learned (a Gaussian whose mean "
        "and log-scale a zero-initialised conv reads off the kept half, Glow) or normal.",
    )


class RepeatBlock(StrictModel):
    """A block of transforms stacked `times` times (e.g. Glow's actnorm, 1x1 conv, coupling)."""

    type: Literal["repeat"]
    times: Annotated[int, Field(ge=1, le=256)] = Field(description="Copies of the block.")
    transforms: list[Transform] = Field(min_length=1, description="The block, in order.")


Transform = Annotated[
    AffineCoupling
    | ActNorm
    | Permutation
    | InvertibleDense
    | MAF
    | Squeeze
    | Split
    | Logit
    | RepeatBlock,
    Field(discriminator="type"),
]
RepeatBlock.model_rebuild()


class UniformDequantization(StrictModel):
    """Discrete values k / (bins - 1) in [0, 1] become (k + u) / bins, u ~ U[0, 1)."""

    type: Literal["uniform"]
    bins: Annotated[int, Field(ge=2, le=65536)] = Field(
        256,
        description="Number of discrete levels (256 for 8-bit images, 17 for digits, 5 for "
        "shapes2d).",
    )


class FlowModel(StrictModel):
    """Normalizing flow."""

    family: Literal["flow"]
    base: Base = Field(
        default_factory=lambda: NormalBase(type="normal"), description="Distribution of z."
    )
    transforms: list[Transform] = Field(
        min_length=1, description="Invertible steps from the data x to the base variable z."
    )
    dequantization: UniformDequantization | None = Field(
        None, description="For discrete data (images): model a density of dequantized values."
    )
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    metrics_available: ClassVar[tuple[str, ...]] = ("nll", "bits_per_dim", *SAMPLE_METRICS)
    metrics_default: ClassVar[tuple[str, ...]] = ("nll", "bits_per_dim")
    trackers: ClassVar[tuple[str, ...]] = ("loss", "grad_norm")

    def default_metrics(self, data: Any) -> list[str]:
        """NLL and bits/dim; the NLL alone of data with known discrete levels when there is
        no dequantization (a density at the levels has no bits of information)."""
        if self.dequantization is None and source_levels(data.source.model_dump(mode="json")):
            return ["nll"]
        return list(self.metrics_default)
