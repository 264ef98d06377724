"""A sweep whose grid or search changes what the training loop's numbers measure (the
preprocessing, the loss) refuses a training-loop metric (loss, val_*) before any trial,
naming the held-out metrics (in the data's units) to give instead. Spec work only."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.sweep import plan_sweep
from tests.test_units_training_loop import SPEC  # the same tiny standardized VAE


def test_a_sweep_that_varies_the_preprocessing_refuses_a_training_loop_metric(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    grid = ["data.preprocessing.standardize=true,false"]
    for metric in ("val_loss", "loss"):
        with pytest.raises(SpecError) as info:
            plan_sweep(spec, grid, metric=metric, sweeps_dir=tmp_path)
        [problem] = info.value.problems
        assert problem.file == "--metric" and problem.path == metric
        assert problem.message.startswith(
            "is the training loop's, in the model's units and loss, which "
            "data.preprocessing.standardize changes"
        )
        assert str(problem).startswith(f"--metric: {metric}: is the training loop's")
        assert problem.hint == (
            "give --metric a held-out metric, in the data's units: elbo, iwae_nll"
        )
    assert plan_sweep(spec, grid, metric="iwae_nll", sweeps_dir=tmp_path).metric == "iwae_nll"
    # a grid that leaves the units alone keeps val_loss
    assert plan_sweep(spec, ["model.latent_dim=2,3"], metric="val_loss", sweeps_dir=tmp_path)
    assert not (tmp_path / "tiny-moons").exists()  # nothing trained or written


def test_a_spec_sweep_block_over_a_loss_weight_refuses_its_val_metric_at_its_line(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        SPEC + "sweep:\n  metric: val_loss\n  parameters:\n"
        "    model.losses.kl.weight: {type: uniform, low: 0.5, high: 2.0}\n"
    )
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, search="optuna", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.path == "sweep.metric"
    assert "which model.losses.kl.weight changes" in problem.message


def test_a_grid_over_the_likelihood_type_advises_no_metric_it_computes_differently(
    tmp_path: Path,
) -> None:
    """Across a bernoulli and a gaussian likelihood, elbo and iwae_nll are a cross-entropy
    and a density (compare marks them "computed differently"): not advised; a sample
    metric is. A grid over the sigma of one gaussian likelihood keeps them comparable."""
    spec = tmp_path / "tiny.yaml"
    scaled = SPEC.replace("{standardize: true}", "{scale: [0, 1]}")
    spec.write_text(scaled.replace("[elbo, iwae_nll]", "[elbo, iwae_nll, energy_distance]"))
    grid = ["model.likelihood.type=bernoulli,gaussian"]
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, grid, metric="val_loss", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.hint == (
        "give --metric a held-out metric, in the data's units: energy_distance; not elbo, "
        "iwae_nll: trials with another likelihood compute them differently (a Bernoulli "
        "cross-entropy vs a density), as compare marks them"
    )
    spec.write_text(scaled)  # no metric left to advise: says which to add
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, grid, metric="val_loss", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.hint is not None
    assert problem.hint.startswith(
        "add a held-out metric (in the data's units) that every trial computes alike"
    )
    assert "give --metric a held-out metric" not in problem.hint
    with pytest.raises(SpecError) as info:
        plan_sweep(spec, ["model.likelihood.sigma=0.1,0.5"], metric="val_loss", sweeps_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.hint == "give --metric a held-out metric, in the data's units: elbo, iwae_nll"


def test_a_sanity_number_is_not_advised_as_a_ranking_metric(tmp_path: Path) -> None:
    """fd_digits_classifier_accuracy checks the feature network: it ranks no models."""
    spec = Path(__file__).parents[1] / "specs" / "vae_digits.yaml"
    with pytest.raises(SpecError) as info:
        plan_sweep(
            spec,
            ["model.losses.kl.weight=1.0,2.0"],
            metric="val_loss",
            sweeps_dir=tmp_path,
            overrides=["evaluation.metrics=[elbo, fd_digits]"],
        )
    [problem] = info.value.problems
    assert problem.hint == "give --metric a held-out metric, in the data's units: elbo, fd_digits"
