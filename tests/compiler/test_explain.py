"""`gencompile explain` prints the plan's own texts as written: brackets in a loss formula
or a network's description are text, not Rich markup."""

from __future__ import annotations

from pathlib import Path

from gencompile.compiler.lower import lower
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "specs" / "vae_digits.yaml")
RING = str(ROOT / "specs" / "diffusion_ring8.yaml")
MOONS_FLOW = str(ROOT / "specs" / "flow_moons.yaml")
IWAE = ["model.objective={type: iwae, samples: 5}"]


def words(text: str) -> str:
    """The text with Rich's line wrapping undone."""
    return " ".join(text.split())


def test_explain_prints_the_iwae_bound_with_its_bracketed_term(run_cli) -> None:
    plan = lower(load_spec(DIGITS, IWAE))
    assert "[log p(x | z_k)" in plan.loss_in_words  # the term Rich took for a tag
    code, out, _ = run_cli("explain", DIGITS, "--set", IWAE[0])
    assert code == 0
    assert f"Loss: {words(plan.loss_in_words)}." in words(out)


def test_explain_prints_a_denoisers_input_list(run_cli) -> None:
    plan = lower(load_spec(RING, []))
    (denoiser,) = [n for n in plan.networks if n.name == "denoiser"]
    assert "[x_t, sinusoidal features of t]" in denoiser.doc
    code, out, _ = run_cli("explain", RING)
    assert code == 0
    assert words(f"denoiser: {denoiser.doc}") in words(out.replace("│", " "))
    assert f"Sampling: {words(plan.extra['sampling'])}." in words(out)


def test_explain_says_how_many_copies_use_a_network_and_the_models_total(run_cli) -> None:
    plan = lower(load_spec(MOONS_FLOW, []))
    (conditioner,) = plan.networks
    assert conditioner.copies == 6  # affine_coupling ... repeat: 6
    every = 6 * conditioner.params
    code, out, _ = run_cli("explain", MOONS_FLOW)
    assert code == 0
    assert f"conditioner_1 (6 copies): {words(conditioner.doc)}" in words(out)
    assert f"│ all 6 copies │ │ │ {every:,} │" in words(out)
    assert f"Parameters: {every:,} in the model." in words(out)
