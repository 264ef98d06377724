"""Transfer learning: `model.init_from`, the weights a model starts from.

A model starts from a trained run (`{run: RUN_DIR}`) or a weights file (`{weights: FILE}`,
a `.weights.h5` or a `.keras` file). Weights are matched by network and layer name at
train time (`gencompile.runtime.init_from`); paths are checked like every other path of a
spec (inside the spec's folder tree unless given with --set), and read when training.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gencompile.spec.base import (
    FieldError,
    Identifier,
    NonNegativeFloat,
    PositiveInt,
    StrictModel,
)

WEIGHT_SUFFIXES = (".weights.h5", ".keras")


class InitFrom(StrictModel):
    """Where the model's starting weights come from: exactly one of `run:` or `weights:`."""

    run: str | None = Field(
        None,
        min_length=1,
        description="A run folder of `gencompile train`: its model.weights.h5 and its lock "
        "(the parent recorded in this run's lock).",
    )
    weights: str | None = Field(
        None, min_length=1, description="A Keras weights file: `.weights.h5` or `.keras`."
    )
    networks: list[Identifier] | None = Field(
        None,
        min_length=1,
        description="The networks to take (e.g. [encoder]); null: every network both models have.",
    )
    strict: bool = Field(
        True,
        description="true: any layer that does not match (missing, or another shape) is an "
        "error; false: such layers start fresh and the run's report lists them.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> InitFrom:
        if (self.run is None) == (self.weights is None):
            field = "weights" if self.weights is not None else "run"
            raise FieldError(field, "give exactly one of `run:` or `weights:`")
        if self.weights is not None and not self.weights.endswith(WEIGHT_SUFFIXES):
            raise FieldError(
                "weights",
                f"a weights file ends with .weights.h5 or .keras (got {self.weights!r})",
            )
        if self.networks is not None and len(set(self.networks)) != len(self.networks):
            raise FieldError("networks", "lists a network twice")
        return self

    @property
    def path(self) -> str:
        """The folder or file named."""
        return self.run if self.run is not None else str(self.weights)

    @property
    def key(self) -> str:
        """The field that names it: `run` or `weights`."""
        return "run" if self.run is not None else "weights"


class FineTune(StrictModel):
    """A fine-tuning schedule: frozen parts unfrozen after some epochs, and per-network
    learning rates."""

    unfreeze_after_epochs: PositiveInt | None = Field(
        None,
        description="Train what the spec freezes (freeze: true, trainable: false) from this "
        "epoch on; until then its learning rate is 0. null: frozen for the whole run.",
    )
    learning_rate_multipliers: dict[Identifier, NonNegativeFloat] = Field(
        default_factory=dict,
        description="Network name -> factor of the learning rate of its weights (e.g. "
        "{encoder: 0.1}); networks left out keep the optimizer's rate.",
    )
