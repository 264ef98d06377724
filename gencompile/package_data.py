"""gencompile's own data files (`templates/`, `specs/`), found one way: as package resources.

The source tree keeps them at the top level (the designed layout) with links to them inside
the package, so `importlib.resources` finds them the same way in a source checkout, an
editable install and an installed wheel (which carries them as `gencompile/templates` and
`gencompile/specs`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gencompile.errors import GencompileError


def package_folder(name: str) -> Path:
    """The folder `name` inside the installed gencompile package, as a path on disk."""
    folder = Path(str(resources.files("gencompile").joinpath(name)))
    if not folder.is_dir():
        raise GencompileError(
            f"gencompile's {name}/ is missing from {folder.parent}; "
            "reinstall gencompile (pip install --force-reinstall gencompile)"
        )
    return folder
