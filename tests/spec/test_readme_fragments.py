"""Every README block that shows a `model:` of some family validates, as a child of a
shipped spec of that family: a reader copies these blocks into a spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gencompile.compiler.lower import lower
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]

# The shipped spec each family's fragments extend (its data fits the fragments shown).
BASES = {
    "vae": "vae_digits.yaml",
    "gan": "gan_ring8.yaml",
    "flow": "flow_moons.yaml",
    "diffusion": "diffusion_digits.yaml",
    "autoregressive": "charlm_arithmetic.yaml",
    "vq_vae": "vq_vae_digits.yaml",
    "mixture": "gmm_moons.yaml",
}


def _model_fragments() -> list[tuple[int, str, str]]:
    """(line, family, text) of each README yaml block with `model: {family: ...}` that is
    not a whole spec (those have `spec_version` and are checked as files)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.finditer(r"```yaml\n(.*?)```", readme, re.S):
        loaded = yaml.safe_load(block.group(1))
        model = loaded.get("model") if isinstance(loaded, dict) else None
        if isinstance(model, dict) and "family" in model and "spec_version" not in loaded:
            line = readme.count("\n", 0, block.start()) + 2  # the block's first line
            found.append((line, str(model["family"]), block.group(1)))
    return found


FRAGMENTS = _model_fragments()


def test_the_readme_shows_model_fragments_of_several_families() -> None:
    assert {family for _, family, _ in FRAGMENTS} >= {"vae", "gan", "diffusion"}


@pytest.mark.parametrize(("line", "family", "text"), FRAGMENTS, ids=[str(f[0]) for f in FRAGMENTS])
def test_a_readme_model_fragment_validates(
    tmp_path: Path, line: int, family: str, text: str
) -> None:
    base = BASES[family]
    (tmp_path / base).write_text((ROOT / "specs" / base).read_text(encoding="utf-8"))
    child = tmp_path / f"readme_line_{line}.yaml"
    child.write_text(f"extends: {base}\n{text}", encoding="utf-8")
    lower(load_spec(child))  # a SpecError names README's problem by the block's line
