"""docs/spec.md's "Transfer learning" says what the validator does: a diffusion denoiser
and a language model's network take `freeze` (with `unfreeze_after_epochs`; frozen for
good, the model's only network is refused), as README's "Fine-tuning" says too."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = "training.fine_tune.unfreeze_after_epochs=1"


def transfer_section() -> str:
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    section = text[text.index("## Transfer learning") :]
    return " ".join(section[: section.index("\n## ", 1)].split())


@pytest.mark.parametrize(
    ("spec", "network"),
    [("diffusion_ring8", "model.denoiser"), ("charlm_arithmetic", "model.network")],
)
def test_the_only_network_freezes_on_a_schedule_as_the_docs_say(spec: str, network: str) -> None:
    path = ROOT / "specs" / f"{spec}.yaml"
    lower(load_spec(path, [f"{network}.freeze=true", SCHEDULE]))  # as `validate` checks
    with pytest.raises(SpecError) as caught:
        lower(load_spec(path, [f"{network}.freeze=true"]))
    assert "leaves nothing to train" in str(caught.value)
    section = transfer_section()
    assert "a diffusion denoiser's and a language model's too" in section
    assert "Frozen for good, the model's only network would leave nothing to train" in section
    assert "is held still with `learning_rate_multipliers" not in section
