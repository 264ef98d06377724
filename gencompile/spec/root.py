"""The whole spec document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from gencompile.spec.base import ProjectName, Seed, StrictModel
from gencompile.spec.data import DataSpec
from gencompile.spec.evaluation import EvaluationSpec, OutputSpec
from gencompile.spec.families import FAMILIES, model_union
from gencompile.spec.sweep import SweepSpec
from gencompile.spec.training import TrainingSpec

SPEC_VERSION = 1
if TYPE_CHECKING:  # what `model:` holds; at run time the registry's discriminated union
    from gencompile.spec.families.autoregressive import AutoregressiveModel
    from gencompile.spec.families.diffusion import DiffusionModel
    from gencompile.spec.families.flow import FlowModel
    from gencompile.spec.families.gan import GANModel
    from gencompile.spec.families.mixture import MixtureModel
    from gencompile.spec.families.vae import VAEModel
    from gencompile.spec.families.vq_vae import VQVAEModel

    ModelSpec = (
        VAEModel
        | MixtureModel
        | AutoregressiveModel
        | DiffusionModel
        | FlowModel
        | GANModel
        | VQVAEModel
    )
else:
    ModelSpec = model_union()


class Spec(StrictModel):
    """A gencompile spec (spec_version 1)."""

    spec_version: int = Field(description="Version of the spec language; this release reads 1.")
    name: ProjectName = Field(
        description="Names the run and the generated package (vae-digits -> vae_digits)."
    )
    description: str = Field(
        "", max_length=2000, description="Free text shown in the generated README and reports."
    )
    seed: Seed = Field(
        42, description="Seeds every random generator: Python, NumPy, TensorFlow, Keras."
    )
    data: DataSpec
    model: ModelSpec = Field(
        description=f"The generative model; `family:` picks one of the {len(FAMILIES)} families."
    )
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    sweep: SweepSpec | None = Field(
        None, exclude=True, description="Ranges `gencompile sweep` searches (not part of a run)."
    )

    @field_validator("spec_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SPEC_VERSION:
            raise ValueError(
                f"unsupported spec_version {value}; "
                f"this gencompile reads spec_version {SPEC_VERSION}"
            )
        return value
