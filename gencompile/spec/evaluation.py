"""The `evaluation:` and `output:` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gencompile.spec.base import NonNegativeInt, PositiveInt, StrictModel


class EvaluationSpec(StrictModel):
    metrics: list[str] | None = Field(
        None, description="Metric names; default: the family's standard metrics."
    )
    num_samples: PositiveInt = 2000
    importance_samples: PositiveInt = Field(1000, description="k of the IWAE bound (iwae_nll).")


class SamplesSpec(StrictModel):
    count: PositiveInt = 64
    format: Literal["png", "npz", "txt"] = Field(
        "png", description="png picture or npz arrays; txt for text (its default there)."
    )
    every_epochs: NonNegativeInt = Field(
        0, description="Sample pictures during training (0 = off)."
    )


class OutputSpec(StrictModel):
    samples: SamplesSpec = Field(default_factory=SamplesSpec)
    export: list[Literal["keras", "saved_model"]] = Field(default_factory=lambda: ["keras"])
