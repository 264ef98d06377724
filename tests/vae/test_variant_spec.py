"""The VAE's posterior, objective and prior choices in the spec language: validation errors
at the spec line, cross-checks when compiling, the plan and the loss in words. No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.spec import load_spec, load_spec_text
from tests.spec.test_bad_specs import BASE, FILE, Case, edit, location, problems_of

PRIOR = "  prior:\n    type: normal\n"
ENCODER = "  encoder:\n"
SPECS = Path(__file__).resolve().parents[2] / "specs"


def with_model(lines: str, text: str = BASE) -> str:
    """The base spec with `lines` (two-space indented model keys) before the encoder."""
    return edit(ENCODER, lines + ENCODER, text)


CASES = [
    Case(
        "posterior-steps-zero",
        with_model("  posterior: {type: iaf, steps: 0}\n"),
        "model.posterior.steps",
        "steps: ^0}",
        ("must be > 0", "got 0"),
    ),
    Case(
        "posterior-unknown-type",
        with_model("  posterior: {type: iaff, steps: 4}\n"),
        "model.posterior.type",
        "type: ^iaff",
        ("unknown type 'iaff'", "gaussian, iaf, planar, radial"),
        ("did you mean 'iaf'?",),
    ),
    Case(
        "posterior-planar-steps-zero",
        with_model("  posterior:\n    type: planar\n    steps: 0\n"),
        "model.posterior.steps",
        "    steps: ^0",
        ("must be > 0",),
    ),
    Case(
        "iaf-hidden-empty",
        with_model("  posterior: {type: iaf, hidden: []}\n"),
        "model.posterior.hidden",
        "hidden: ^[]",
        ("at least 1",),
    ),
    Case(
        "objective-unknown-type",
        with_model("  objective: {type: iwea, samples: 5}\n"),
        "model.objective.type",
        "type: ^iwea",
        ("unknown type 'iwea'",),
        ("did you mean 'iwae'?",),
    ),
    Case(
        "objective-iwae-samples-zero",
        with_model("  objective: {type: iwae, samples: 0}\n"),
        "model.objective.samples",
        "samples: ^0}",
        ("must be >= 1",),
    ),
    Case(
        "vamp-pseudo-inputs-zero",
        edit(PRIOR, "  prior: {type: vamp, pseudo_inputs: 0}\n"),
        "model.prior.pseudo_inputs",
        "pseudo_inputs: ^0}",
        ("must be > 0",),
    ),
    Case(
        "vamp-unknown-init",
        edit(PRIOR, "  prior: {type: vamp, init: dta}\n"),
        "model.prior.init",
        "init: ^dta}",
        ("'dta'",),
    ),
    Case(
        "vamp-with-a-flow-posterior",
        with_model("  posterior: {type: planar}\n", edit(PRIOR, "  prior: {type: vamp}\n")),
        "model.prior.type",
        "prior: {type: ^vamp}",
        ("mixes Gaussian posteriors", "planar"),
        ("posterior: {type: gaussian}",),
        lower=True,
    ),
    Case(
        "vamp-conditional",
        with_model("  conditional: {num_classes: 10}\n", edit(PRIOR, "  prior: {type: vamp}\n")),
        "model.prior.type",
        "prior: {type: ^vamp}",
        ("no class labels",),
        lower=True,
    ),
    Case(
        "free-bits-with-iaf",
        with_model(
            "  posterior: {type: iaf}\n",
            edit("warmup_epochs: 5}", "warmup_epochs: 5, free_bits: 0.5}"),
        ),
        "model.losses.kl.free_bits",
        "free_bits: ^0.5",
        ("iaf flow posterior",),
        lower=True,
    ),
    Case(
        "iwae-under-mirrored",
        with_model(
            "  objective: {type: iwae}\n",
            edit("training:\n", "training:\n  distribution: {strategy: mirrored}\n"),
        ),
        "model.objective.type",
        "objective: {type: ^iwae}",
        ("not available under the mirrored strategy",),
        lower=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_variant_is_reported_at_its_spec_line(case: Case) -> None:
    problems = problems_of(case)
    listing = "\n".join(str(p) for p in problems)
    matching = [p for p in problems if p.path == case.path]
    assert len(matching) == 1, f"expected one problem at {case.path!r}:\n{listing}"
    problem = matching[0]
    for word in case.words:
        assert word in problem.message, listing
    for word in case.hint:
        assert problem.hint is not None and word in problem.hint, listing
    line, column = location(case.text, case.at)
    assert (problem.file, problem.line, problem.column) == (FILE, line, column), listing


def test_defaults_are_gaussian_elbo_and_leave_the_plan_on_the_plain_path() -> None:
    plan = lower(load_spec_text(BASE, FILE))
    model = plan.model
    assert model.posterior == {"type": "gaussian"} and model.objective == {"type": "elbo"}
    assert not model.extended and model.analytic_kl
    assert plan.networks[0].outputs == ("z_mean", "z_log_var")


def test_iaf_encoder_gets_a_context_head_of_the_chosen_size() -> None:
    text = with_model("  posterior: {type: iaf, steps: 3, hidden: [32], context: 12}\n")
    plan = lower(load_spec_text(text, FILE))
    encoder = plan.networks[0]
    assert encoder.outputs == ("z_mean", "z_log_var", "context")
    context = next(layer for layer in encoder.layers if layer.name == "context")
    assert context.output_shape == (12,)
    assert context.params == 128 * 12 + 12  # from the body's last 128 units
    assert plan.model.posterior == {"type": "iaf", "steps": 3, "hidden": [32], "context": 12}
    assert plan.model.extended and not plan.model.analytic_kl


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (
            "  posterior: {type: iaf, steps: 4}\n",
            ("Monte Carlo KL of the flow posterior", "4 IAF steps", "log-determinants", "N(0, I)"),
        ),
        ("  posterior: {type: radial, steps: 2}\n", ("2 radial steps",)),
        (
            "  objective: {type: iwae, samples: 5}\n",
            ("negative IWAE bound", "logsumexp over 5 samples", "- log 5", "KL part ramped up"),
        ),
    ],
)
def test_loss_in_words_describes_the_posterior_and_objective(lines: str, words) -> None:
    plan = lower(load_spec_text(with_model(lines), FILE))
    for word in words:
        assert word in plan.loss_in_words, plan.loss_in_words


def test_loss_in_words_describes_the_vamp_prior() -> None:
    text = edit(PRIOR, "  prior: {type: vamp, pseudo_inputs: 50}\n")
    words = lower(load_spec_text(text, FILE)).loss_in_words
    assert "VampPrior" in words and "50 learned pseudo-inputs" in words


def test_explain_shows_the_posterior_and_its_context_head(run_cli) -> None:
    code, out, _ = run_cli("explain", str(SPECS / "vae_digits_iaf.yaml"))
    assert code == 0, out
    assert "posterior:" in out and "type: iaf" in out  # the resolved spec
    assert "context" in out  # the encoder's third head
    assert "4 IAF steps fed with the encoder's context h" in out.replace("\n", " ")


@pytest.mark.parametrize(
    ("overrides", "present", "absent"),
    [
        (
            ["model.posterior={type: iaf, steps: 2}"],
            ("posteriors.IAFStep(", "reverse=k % 2 == 1", "log_q0 - log_det", "def flow("),
            ("losses.gaussian_kl", "IWAE_SAMPLES"),
        ),
        (
            ["model.posterior={type: planar, steps: 2}"],
            ("posteriors.PlanarStep(", "z, step_log_det = step(z)"),
            ("IAFStep",),
        ),
        (
            ["model.objective={type: iwae, samples: 5}"],
            ("IWAE_SAMPLES = 5", "ops.logsumexp(log_w, axis=0) - math.log(IWAE_SAMPLES)"),
            ("posterior_flow",),
        ),
        (
            ["model.prior={type: vamp, pseudo_inputs: 7}"],
            ("vamp_prior.VampPrior(", "encode=self.encode", "def initialize(self, data)"),
            ("IWAE_SAMPLES", "posterior_flow"),
        ),
        (
            ["model.prior={type: vamp, init: noise}"],
            ("vamp_prior.VampPrior(",),
            ("def initialize(self, data)",),
        ),
    ],
)
def test_generated_model_spells_out_the_choice(overrides, present, absent) -> None:
    loaded = load_spec(SPECS / "vae_digits.yaml", overrides)
    plan = lower(loaded)
    source = render_project(loaded, plan)[f"{plan.package}/model.py"]
    for text in present:
        assert text in source
    for text in absent:
        assert text not in source
