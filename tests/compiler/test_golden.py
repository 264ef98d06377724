"""Golden tests: the exact source gencompile emits for small specs, reviewed as a diff.

Each `fixtures/<family>/<case>.yaml` sits beside the code it must compile to:
`<case>.model.py` and `<case>.train.py` (the generated `<package>/model.py` and
`<package>/train.py`). The test renders the spec and compares the text exactly, so any
change to a template, a filter or lowering shows up as a readable diff in review.

To accept a deliberate change, regenerate the expected files and read the diff:

    GENCOMPILE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/compiler/test_golden.py
    git diff tests/compiler/fixtures

The expected files embed the gencompile version and the sha256 prefix of their spec, so
bumping the version or editing a fixture's YAML (even a comment) also needs an update.
The fixtures' `.py` files are generated code and are excluded from linting by
`fixtures/ruff.toml`.
"""

from __future__ import annotations

import ast
import difflib
import os
from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*.yaml"))
GENERATED = ("model", "train")  # <package>/<module>.py files kept as golden files
UPDATE = os.environ.get("GENCOMPILE_UPDATE_GOLDEN") == "1"


def expected_path(spec_file: Path, module: str) -> Path:
    return spec_file.with_name(f"{spec_file.stem}.{module}.py")


def render(spec_file: Path) -> dict[str, str]:
    loaded = load_spec(spec_file)
    plan = lower(loaded)
    files = render_project(loaded, plan)
    return {module: files[f"{plan.package}/{module}.py"] for module in GENERATED}


def test_there_are_golden_cases_for_the_vae_family():
    assert {p.stem for p in CASES if p.parent.name == "vae"} >= {
        "dense",
        "conv",
        "conditional",
        "mixture_prior",
    }


@pytest.mark.parametrize("spec_file", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
@pytest.mark.parametrize("module", GENERATED)
def test_generated_source_equals_golden_file(spec_file, module):
    actual = render(spec_file)[module]
    path = expected_path(spec_file, module)
    if UPDATE:
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), (
        f"{path.name} is missing; create it with GENCOMPILE_UPDATE_GOLDEN=1 (see module docstring)"
    )
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path.name} (expected)",
                tofile=f"{path.name} (generated now)",
            )
        )
        pytest.fail(
            f"generated {module}.py differs from {path.relative_to(FIXTURES.parent)}; if the "
            f"change is intended, rerun with GENCOMPILE_UPDATE_GOLDEN=1\n{diff}",
            pytrace=False,
        )


def test_every_golden_file_has_its_spec_and_parses():
    golden = sorted(FIXTURES.glob("*/*.py"))
    assert golden, "no golden files: run with GENCOMPILE_UPDATE_GOLDEN=1"
    for path in golden:
        stem, module = path.name.removesuffix(".py").rsplit(".", 1)
        assert module in GENERATED, f"{path.name}: unexpected golden file"
        assert path.with_name(f"{stem}.yaml").exists(), f"{path.name} has no spec beside it"
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_rendering_is_deterministic():
    for spec_file in CASES:
        assert render(spec_file) == render(spec_file)
