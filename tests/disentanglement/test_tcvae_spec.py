"""`model.losses.tc` and `mig` in the spec language: validated, located, explained, and
absent by default."""

from __future__ import annotations

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec_text

FILE = "spec.yaml"
SPEC = """\
spec_version: 1
name: tcvae
data:
  source: {type: builtin, name: shapes2d, n_samples: 1000}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 4
  prior: {type: normal}
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  losses:
    kl: {weight: 1.0}
    tc: {weight: 6.0}
evaluation:
  metrics: [elbo, mig]
"""


def problems(text: str) -> list:
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, FILE))
    return info.value.problems


def test_the_tc_term_reaches_the_plan_and_the_loss_in_words() -> None:
    plan = lower(load_spec_text(SPEC, FILE))
    assert plan.model.tc_weight == 6.0
    assert "(6 - the KL weight) x the total correlation of q(z)" in plan.loss_in_words
    assert "stratified sampling" in plan.loss_in_words
    assert plan.evaluation["metrics"] == ["elbo", "mig"]


def test_without_tc_nothing_changes() -> None:
    plan = lower(load_spec_text(SPEC.replace("    tc: {weight: 6.0}\n", ""), FILE))
    assert plan.model.tc_weight is None
    assert "total correlation" not in plan.loss_in_words


def test_a_negative_weight_is_located() -> None:
    (problem,) = problems(SPEC.replace("tc: {weight: 6.0}", "tc: {weight: -1.0}"))
    assert problem.path == "model.losses.tc.weight"
    assert problem.line == 14 and "must be >= 0" in problem.message


def test_the_weight_is_required() -> None:
    (problem,) = problems(SPEC.replace("tc: {weight: 6.0}", "tc: {}"))
    assert problem.path == "model.losses.tc.weight" and problem.line == 14


def test_tc_needs_a_factorised_prior() -> None:
    text = SPEC.replace("prior: {type: normal}", "prior: {type: mixture_of_gaussians}")
    (problem,) = problems(text)
    assert problem.path == "model.losses.tc" and problem.line == 14
    assert "factorised prior" in problem.message and "mixture_of_gaussians" in problem.message
    assert "prior: {type: normal}" in problem.hint


def test_tc_refuses_free_bits() -> None:
    (problem,) = problems(SPEC.replace("kl: {weight: 1.0}", "kl: {weight: 1.0, free_bits: 0.5}"))
    assert problem.path == "model.losses.tc"
    assert "free_bits: 0" in problem.hint


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("  posterior: {type: iaf, steps: 2}\n", "posterior is iaf"),
        ("  objective: {type: iwae, samples: 3}\n", "objective iwae"),
    ],
)
def test_tc_needs_the_gaussian_posterior_and_the_elbo(line: str, named: str) -> None:
    (problem,) = problems(
        SPEC.replace("  prior: {type: normal}\n", "  prior: {type: normal}\n" + line)
    )
    assert problem.path == "model.losses.tc" and named in problem.message
    assert "posterior: {type: gaussian} and objective: {type: elbo}" in problem.hint


def test_mig_on_data_without_factors_is_refused_at_its_line() -> None:
    text = SPEC.replace("name: shapes2d, n_samples: 1000", "name: digits").replace(
        "    tc: {weight: 6.0}\n", ""
    )
    (problem,) = problems(text)
    assert problem.path == "evaluation.metrics[1]" and problem.line == 15
    assert "metric 'mig' is defined for the built-in shapes2d data" in problem.message
    assert "name: shapes2d" in problem.hint


def test_mig_is_a_vae_metric_only() -> None:
    text = SPEC.replace(
        """model:
  family: vae
  latent_dim: 4
  prior: {type: normal}
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  losses:
    kl: {weight: 1.0}
    tc: {weight: 6.0}
""",
        "model: {family: mixture, components: 2}\n",
    ).replace("[elbo, mig]", "[mig]")
    found = problems(text)
    assert any("'mig' is not available for family mixture" in p.message for p in found)


def test_shapes2d_has_four_classes_for_a_conditional_vae() -> None:
    text = SPEC.replace("  latent_dim: 4\n", "  latent_dim: 4\n  conditional: {num_classes: 3}\n")
    (problem,) = problems(text)
    assert problem.path == "model.conditional.num_classes"
    assert "set num_classes: 4" in problem.hint
