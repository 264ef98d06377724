"""The `training:` section: optimizer, schedule, regularisation and the fit loop's options."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gencompile.spec.base import (
    FieldError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)


class Clipping(StrictModel):
    learning_rate: PositiveFloat = 1e-3
    clipnorm: PositiveFloat | None = None
    clipvalue: PositiveFloat | None = None
    global_clipnorm: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_clip(self) -> Clipping:
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k)]
        if len(given) > 1:
            raise FieldError(
                given[1], f"Keras accepts one of clipnorm, clipvalue, global_clipnorm (got {given})"
            )
        return self


class Adam(Clipping):
    type: Literal["adam"]
    beta_1: Probability = 0.9
    beta_2: Probability = 0.999
    epsilon: PositiveFloat = 1e-7


class AdamW(Clipping):
    type: Literal["adamw"]
    beta_1: Probability = 0.9
    beta_2: Probability = 0.999
    epsilon: PositiveFloat = 1e-7
    weight_decay: NonNegativeFloat = 0.004


class RMSprop(Clipping):
    type: Literal["rmsprop"]
    rho: Probability = 0.9
    momentum: Probability = 0.0
    epsilon: PositiveFloat = 1e-7


class SGD(Clipping):
    type: Literal["sgd"]
    learning_rate: PositiveFloat = 1e-2
    momentum: Probability = 0.0
    nesterov: bool = False


Optimizer = Annotated[Adam | AdamW | RMSprop | SGD, Field(discriminator="type")]


class Optimizers(StrictModel):
    """One optimizer per network, for families that train two (a GAN's generator and
    discriminator). A role left out uses `training.optimizer`."""

    generator: Optimizer | None = None
    discriminator: Optimizer | None = None


class ConstantSchedule(StrictModel):
    type: Literal["constant"]


class CosineDecay(StrictModel):
    type: Literal["cosine_decay"]
    warmup_steps: NonNegativeInt = 0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0


class ExponentialDecay(StrictModel):
    type: Literal["exponential_decay"]
    decay_steps: PositiveInt
    decay_rate: Annotated[float, Field(gt=0, le=1)]
    warmup_steps: NonNegativeInt = 0


class PiecewiseConstant(StrictModel):
    type: Literal["piecewise_constant"]
    boundaries: list[PositiveInt] = Field(min_length=1)
    values: list[PositiveFloat] = Field(min_length=2)

    @model_validator(mode="after")
    def _lengths(self) -> PiecewiseConstant:
        if len(self.values) != len(self.boundaries) + 1:
            raise FieldError(
                "values",
                f"needs one more value than boundaries (got {len(self.boundaries)} boundaries "
                f"and {len(self.values)} values)",
            )
        if self.boundaries != sorted(set(self.boundaries)):
            raise FieldError("boundaries", "must be strictly increasing")
        return self


Schedule = Annotated[
    ConstantSchedule | CosineDecay | ExponentialDecay | PiecewiseConstant,
    Field(discriminator="type"),
]


class Regularization(StrictModel):
    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0


class EarlyStopping(StrictModel):
    monitor: str = "val_loss"
    patience: PositiveInt = 10
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


class Checkpoint(StrictModel):
    every_epochs: PositiveInt = 1
    keep: PositiveInt = 3


class Distribution(StrictModel):
    strategy: Literal["none", "mirrored", "multi_worker"] = "none"


class TrainingSpec(StrictModel):
    epochs: PositiveInt = 50
    steps_per_epoch: PositiveInt | None = None
    optimizer: Optimizer = Field(default_factory=lambda: Adam(type="adam"))
    optimizers: Optimizers | None = Field(
        None, description="Per-network optimizers (gan: generator, discriminator)."
    )
    schedule: Schedule | None = None
    regularization: Regularization = Field(default_factory=Regularization)
    early_stopping: EarlyStopping | None = None
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    mixed_precision: bool = False
    distribution: Distribution = Field(default_factory=Distribution)
    deterministic: bool = Field(True, description="Enable TensorFlow op determinism.")
