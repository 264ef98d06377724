"""gencompile's templates and example specs are found one way: as resources of the package."""

from __future__ import annotations

from pathlib import Path

import pytest

import gencompile
from gencompile.compiler.emit import templates_dir
from gencompile.errors import GencompileError
from gencompile.package_data import package_folder
from gencompile.runs import default_spec_path

PACKAGE = Path(gencompile.__file__).resolve().parent


def test_templates_and_specs_are_folders_of_the_package():
    assert templates_dir() == PACKAGE / "templates"
    assert (templates_dir() / "project" / "train.py.j2").is_file()
    assert default_spec_path() == PACKAGE / "specs" / "vae_digits.yaml"
    assert default_spec_path().is_file()


def test_a_missing_folder_says_to_reinstall():
    with pytest.raises(GencompileError, match=r"no_such_folder/ is missing .* reinstall"):
        package_folder("no_such_folder")
