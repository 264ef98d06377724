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
from gencompile.spec.transfer import FineTune


class Clipping(StrictModel):
    learning_rate: PositiveFloat = Field(1e-3, description="The (initial) learning rate.")
    clipnorm: PositiveFloat | None = Field(None, description="Clip each gradient to this norm.")
    clipvalue: PositiveFloat | None = Field(None, description="Clip each gradient value to this.")
    global_clipnorm: PositiveFloat | None = Field(
        None, description="Clip all gradients together to this norm."
    )

    @model_validator(mode="after")
    def _one_clip(self) -> Clipping:
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k)]
        if len(given) > 1:
            raise FieldError(
                given[1], f"Keras accepts one of clipnorm, clipvalue, global_clipnorm (got {given})"
            )
        return self


class Adam(Clipping):
    """keras.optimizers.Adam."""

    type: Literal["adam"]
    beta_1: Probability = 0.9
    beta_2: Probability = 0.999
    epsilon: PositiveFloat = 1e-7


class AdamW(Clipping):
    """keras.optimizers.AdamW."""

    type: Literal["adamw"]
    beta_1: Probability = 0.9
    beta_2: Probability = 0.999
    epsilon: PositiveFloat = 1e-7
    weight_decay: NonNegativeFloat = 0.004


class RMSprop(Clipping):
    """keras.optimizers.RMSprop."""

    type: Literal["rmsprop"]
    rho: Probability = 0.9
    momentum: Probability = 0.0
    epsilon: PositiveFloat = 1e-7


class SGD(Clipping):
    """keras.optimizers.SGD."""

    type: Literal["sgd"]
    learning_rate: PositiveFloat = Field(1e-2, description="The (initial) learning rate.")
    momentum: Probability = 0.0
    nesterov: bool = False


Optimizer = Annotated[Adam | AdamW | RMSprop | SGD, Field(discriminator="type")]


class Optimizers(StrictModel):
    """One optimizer per network, for families that train two (a GAN's generator and
    discriminator). A role left out uses `training.optimizer`."""

    generator: Optimizer | None = Field(None, description="The generator's optimizer.")
    discriminator: Optimizer | None = Field(None, description="The discriminator's optimizer.")


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
    """L1 and L2 penalties on the kernels of every layer."""

    l1: NonNegativeFloat = Field(0.0, description="Factor of the L1 penalty.")
    l2: NonNegativeFloat = Field(0.0, description="Factor of the L2 penalty.")


class EarlyStopping(StrictModel):
    """keras.callbacks.EarlyStopping: stop when `monitor` stops improving."""

    monitor: str = Field("val_loss", description="The logged value watched.")
    patience: PositiveInt = Field(10, description="Epochs without improvement before stopping.")
    min_delta: NonNegativeFloat = Field(
        0.0, description="Smallest change that counts as improvement."
    )
    restore_best_weights: bool = Field(True, description="End with the best epoch's weights.")
    mode: Literal["auto", "min", "max"] = Field(
        "auto",
        description="min: stop when the value stops falling; max: when it stops rising; "
        "auto: as the log goes (losses, kl, tc and gradient_penalty fall; lower_bound, "
        "log_likelihood, accuracies and diversity rise), refused for a log of neither kind.",
    )


class Checkpoint(StrictModel):
    """Checkpoints of the run, which `gencompile train --resume` continues from."""

    every_epochs: PositiveInt = Field(
        1, description="Write a checkpoint at the end of every this many epochs."
    )
    every_seconds: NonNegativeFloat = Field(
        60.0,
        description="And at most one this often (0: at every `every_epochs`); the last "
        "finished epoch is always written when training ends, stops or is interrupted.",
    )
    keep: PositiveInt = Field(3, description="Newest checkpoints kept.")


class Distribution(StrictModel):
    """The tf.distribute strategy."""

    strategy: Literal["none", "mirrored", "multi_worker"] = Field(
        "none",
        description="mirrored: every device of this machine; multi_worker: the processes of "
        "TF_CONFIG (or --workers).",
    )


class TrainingSpec(StrictModel):
    """How the model is trained."""

    epochs: PositiveInt = Field(50, description="Passes over the training data.")
    steps_per_epoch: PositiveInt | None = Field(
        None, description="Batches per epoch; default: the whole training split."
    )
    steps_per_execution: Literal["auto"] | PositiveInt = Field(
        "auto",
        description="Training steps per call into the compiled function (Keras' "
        "steps_per_execution); auto: the largest divisor of the steps per epoch up to 32, "
        "so that epochs keep their exact steps (1 under a distribution strategy, and for "
        "trainings under 500 steps, where the longer trace costs more than it saves). "
        "A number must divide the steps per epoch (validate checks it where they are known: "
        "training.steps_per_epoch, or a built-in data set's training split in batches). "
        "Under a distribution strategy only 1 or auto: Keras' multi-step loop fails there.",
    )
    validation_every_epochs: Literal["auto"] | PositiveInt = Field(
        "auto",
        description="Validate every this many epochs; auto: every "
        "epoch when early stopping watches a val_ metric, else as rarely as keeps "
        "validation under a tenth of the training's work.",
    )
    optimizer: Optimizer = Field(
        default_factory=lambda: Adam(type="adam"),
        description="The optimizer (of every network `optimizers` leaves out).",
    )
    optimizers: Optimizers | None = Field(
        None, description="Per-network optimizers (gan: generator, discriminator)."
    )
    schedule: Schedule | None = Field(
        None, description="Learning-rate schedule; default: constant."
    )
    regularization: Regularization = Field(default_factory=Regularization)
    early_stopping: EarlyStopping | None = None
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    mixed_precision: bool = Field(
        False, description="Compute in float16, keep variables in float32."
    )
    distribution: Distribution = Field(default_factory=Distribution)
    deterministic: bool = Field(True, description="Enable TensorFlow op determinism.")
    fine_tune: FineTune | None = Field(
        None, description="Unfreeze after some epochs; per-network learning rates."
    )

    @model_validator(mode="after")
    def _validated_for_early_stopping(self) -> TrainingSpec:
        stopping, every = self.early_stopping, self.validation_every_epochs
        if stopping and stopping.monitor.startswith("val_") and every not in ("auto", 1):
            raise FieldError(
                "validation_every_epochs",
                f"early_stopping watches {stopping.monitor}, which needs validation every "
                f"epoch (got {every}); use 1 or auto",
            )
        return self

    @model_validator(mode="after")
    def _one_step_per_call_under_a_strategy(self) -> TrainingSpec:
        strategy, per_call = self.distribution.strategy, self.steps_per_execution
        if strategy != "none" and per_call not in ("auto", 1):
            raise FieldError(
                "steps_per_execution",
                f"Keras' multi-step loop fails under a distribution strategy (got "
                f"{per_call} with distribution.strategy {strategy!r}, which `gencompile "
                "train --workers` also sets); use 1 or auto, which is 1 there",
            )
        return self

    def is_set(self, key: str) -> bool:
        """Whether `<key>` differs from its default. Not `model_fields_set`: the lock's
        resolved spec writes every default out, and it must validate again."""
        default = TrainingSpec.model_fields[key].get_default(call_default_factory=True)
        return bool(getattr(self, key) != default)
