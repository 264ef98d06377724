"""Registry of family lowerings: one module per family, one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gencompile.compiler.families.autoregressive import lower_autoregressive
from gencompile.compiler.families.diffusion import lower_diffusion
from gencompile.compiler.families.flow import lower_flow
from gencompile.compiler.families.gan import lower_gan
from gencompile.compiler.families.mixture import lower_mixture
from gencompile.compiler.families.vae import lower_vae

LOWERINGS: dict[str, Callable[[Any], Any]] = {
    "vae": lower_vae,
    "mixture": lower_mixture,
    "autoregressive": lower_autoregressive,
    "diffusion": lower_diffusion,
    "flow": lower_flow,
    "gan": lower_gan,
}
