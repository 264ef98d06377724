"""A project built from a spec with `extends:` bases or `--set` overrides holds the spec it
was built from: `gencompile build spec.yaml` in it builds the same project again (before,
its spec.yaml was the given file verbatim, and a rebuild silently dropped the overrides)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gencompile.compiler.project import build
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


def lock_of(folder: Path) -> dict:
    return json.loads((folder / "spec.lock.json").read_text())


@pytest.mark.parametrize(
    ("spec", "overrides", "said"),
    [
        ("gan_ring8.yaml", ["model.loss.type=hinge"], "# 1 --set override(s) applied;"),
        ("vae_digits_finetune.yaml", [], "# its extends: bases merged in;"),
        (
            "vae_digits_finetune.yaml",
            ["training.epochs=3", "seed=5"],
            "# its extends: bases merged in, 2 --set override(s) applied;",
        ),
    ],
)
def test_the_projects_spec_builds_the_project_again(
    tmp_path: Path, spec: str, overrides: list[str], said: str
) -> None:
    first = build(load_spec(SPECS / spec, overrides), tmp_path / "first").directory
    text = (first / "spec.yaml").read_text()
    assert said in text.splitlines()[1]
    again = build(load_spec(first / "spec.yaml"), tmp_path / "again").directory
    for name in ("resolved_spec_sha256", "spec_sha256"):
        assert lock_of(again)[name] == lock_of(first)[name], name
    generated = [p.relative_to(first) for p in first.rglob("*.py")]
    for relative in generated:
        assert (again / relative).read_text() == (first / relative).read_text(), relative


def test_a_spec_of_one_file_is_copied_verbatim(tmp_path: Path) -> None:
    project = build(load_spec(SPECS / "gan_ring8.yaml"), tmp_path / "p").directory
    assert (project / "spec.yaml").read_text() == (SPECS / "gan_ring8.yaml").read_text()


def test_strings_that_read_as_numbers_stay_strings(tmp_path: Path) -> None:
    overrides = ["description='1e3'", "name=gan-1e3"]
    first = build(load_spec(SPECS / "gan_ring8.yaml", overrides), tmp_path / "a").directory
    again = load_spec(first / "spec.yaml")
    assert again.spec.description == "1e3"
