"""Registry of model families: one pydantic module per family, one line here."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from gencompile.spec.families.autoregressive import AutoregressiveModel
from gencompile.spec.families.diffusion import DiffusionModel
from gencompile.spec.families.flow import FlowModel
from gencompile.spec.families.gan import GANModel
from gencompile.spec.families.mixture import MixtureModel
from gencompile.spec.families.vae import VAEModel
from gencompile.spec.families.vq_vae import VQVAEModel

FAMILIES: dict[str, Any] = {
    "vae": VAEModel,
    "mixture": MixtureModel,
    "autoregressive": AutoregressiveModel,
    "diffusion": DiffusionModel,
    "flow": FlowModel,
    "gan": GANModel,
    "vq_vae": VQVAEModel,
}


def model_union() -> Any:
    """The `model:` type: a union discriminated on `family` once there are several."""
    members = tuple(FAMILIES.values())
    if len(members) == 1:
        return members[0]
    return Annotated[Union[members], Field(discriminator="family")]  # noqa: UP007
