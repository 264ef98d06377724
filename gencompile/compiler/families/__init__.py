"""The registry of families: one module per family, one line here."""

from __future__ import annotations

from typing import Any

from gencompile.compiler.families import (
    autoregressive,
    diffusion,
    flow,
    gan,
    mixture,
    vae,
    vq_vae,
)
from gencompile.compiler.family import Family

FAMILIES: tuple[Family[Any, Any], ...] = (
    vae.FAMILY,
    mixture.FAMILY,
    autoregressive.FAMILY,
    diffusion.FAMILY,
    flow.FAMILY,
    gan.FAMILY,
    vq_vae.FAMILY,
)

REGISTRY: dict[str, Family[Any, Any]] = {family.name: family for family in FAMILIES}
