"""docs/spec.md: its field tables are what the spec models render, and its links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.spec import reference
from gencompile.spec.reference import BLOCKS, COMMAND, fields_blocks, fill, spec_schema

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "spec.md"


def test_reference_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert fill(text, DOC.parent) == text, f"docs/spec.md is stale: regenerate it with {COMMAND}"


def _github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings (outside code blocks), repeats numbered."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        heading = re.match(r"#{1,6} (.+)", line)
        if fenced or heading is None:
            continue
        slug = reference.github_anchor(heading.group(1))
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_every_link_resolves_inside_the_repository() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = _github_anchors(text)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) > 100
    for target in links:
        if target.startswith("#"):
            assert target[1:] in anchors, f"no heading for the link {target}"
            continue
        path = (DOC.parent / target).resolve()
        assert path.is_file() and path.is_relative_to(ROOT), f"{target} is not a repository file"


def test_variant_headings_are_unique() -> None:
    headings = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line[:2] == "##"]
    anchors = [reference.github_anchor(line.lstrip("#")) for line in headings]
    assert len(anchors) == len(set(anchors))


def test_every_model_of_the_language_is_documented() -> None:
    _, shown = fields_blocks(list(BLOCKS))
    assert set(spec_schema()["$defs"]) <= shown


def test_prose_is_kept_and_blocks_are_regenerated() -> None:
    text = DOC.read_text(encoding="utf-8")
    edited = text.replace("## Data\n", "## Data\n\nA sentence of prose.\n", 1)
    edited = edited.replace("| `data.batch_size` |", "| `data.batch_sizes` |", 1)
    assert fill(edited, DOC.parent) == text.replace(
        "## Data\n", "## Data\n\nA sentence of prose.\n", 1
    )


def test_a_section_without_its_block_is_refused() -> None:
    text = DOC.read_text(encoding="utf-8").replace("<!-- fields: model.gan -->", "", 1)
    with pytest.raises(ValueError, match=r"missing: \['model.gan'\]"):
        fill(text, DOC.parent)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "integer", "exclusiveMinimum": 0, "maximum": 2**31 - 1}, "int >= 1"),
        ({"type": "integer", "minimum": 0, "exclusiveMaximum": 2**31}, "int >= 0"),
        ({"type": "integer", "minimum": 2, "maximum": 256}, "int in [2, 256]"),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, "float in (0, 1)"),
        ({"type": "number", "minimum": 0, "exclusiveMaximum": 1}, "float in [0, 1)"),
        ({"type": "number", "exclusiveMinimum": 0}, "float > 0"),
        ({"enum": ["a", "b"], "type": "string"}, "one of: `a` | `b`"),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "list of string (at least 1)",
        ),
    ],
)
def test_types_read_as_written(node: dict, expected: str) -> None:
    renderer = reference._Renderer(spec_schema(), {})
    assert renderer._type(node) == expected


def test_check_reports_a_stale_file_with_the_command(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    stale = tmp_path / "docs" / "spec.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("| int >= 1 |", "| int |"), "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gencompile.spec.reference", "--check", str(stale)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1 and COMMAND in result.stderr
    assert reference.main([str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")


def test_the_generator_imports_no_tensorflow_and_no_compiler() -> None:
    probe = (
        "import sys, gencompile.spec.reference as r; r.fields_blocks(list(r.BLOCKS)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
        "or m.startswith('gencompile.compiler')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_readme_links_stay_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files = [t for t in re.findall(r"\]\(([^)\s]+)\)", readme) if not t.startswith(("#", "http"))]
    assert "docs/spec.md" in files
    for target in files:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"README links to {target}"


def test_the_readme_shows_the_shipped_vae_digits_spec_as_it_is() -> None:
    """The README's "This is `specs/vae_digits.yaml`" block is that file, byte for byte."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"This is `specs/vae_digits\.yaml`:\n\n```yaml\n(.*?)```\n", readme, re.S)
    assert found is not None, "the README no longer shows specs/vae_digits.yaml"
    assert found.group(1) == (ROOT / "specs" / "vae_digits.yaml").read_text(encoding="utf-8")
