"""What the README and the schema say about the front door holds: the validate command's
row names the shipped specs that need a file of the user's, the model's description counts
the registered families, and `extends` is among the top-level keys a typo is matched to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import Spec, load_spec
from gencompile.spec.families import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def validate_row() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in readme.splitlines() if line.startswith("| `gencompile validate")]
    return row


def test_the_shipped_specs_validate_but_those_the_readme_says_need_a_file(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    row = validate_row()
    command = re.match(r"\| `gencompile validate ([^`]*)`", row)
    assert command is not None and "*" not in command.group(1), "an example that fails as shown"
    needing = set(re.findall(r"`(specs/\w+\.yaml)`", row))
    specs = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "specs").glob("*.yaml"))
    code, out, _ = run_cli("validate", *[spec for spec in specs if spec not in needing])
    assert code == 0, out
    assert needing and all(run_cli("validate", spec)[0] == 2 for spec in needing)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 50)
    path_set = f"data.source.path={corpus}"
    assert "--set data.source.path=FILE" in row
    assert run_cli("validate", *sorted(needing), "--set", path_set)[0] == 0


def test_the_model_description_counts_the_registered_families() -> None:
    description = Spec.model_fields["model"].description or ""
    assert f"one of the {len(FAMILIES)} families" in description


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("extend: base.yaml", "did you mean 'extends'?"),
        ("1: 2", "expected one of: extends, spec_version, name, description, seed, data,"),
    ],
)
def test_extends_is_a_top_level_key_hints_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, hint: str
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = ROOT / "specs" / "vae_digits.yaml"
    (tmp_path / "typo.yaml").write_text(spec.read_text(encoding="utf-8") + line + "\n")
    with pytest.raises(SpecError) as info:
        load_spec("typo.yaml")
    [problem] = info.value.problems
    assert problem.message.startswith("unknown key")
    assert problem.hint.startswith(hint)
