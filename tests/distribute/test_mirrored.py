"""`training.distribution: {strategy: mirrored}` is the same training as one device.

Each family trains a few steps of a tiny model with strategy `none` and with `mirrored`
over 2 logical CPU devices (the global batch is split in two), in one child process, and
must end with the same weights, optimizer state, moving averages (a VQ-VAE's EMA codebook
among them) and EM statistics to a relative 1e-5. A run under the strategy resumes from its
checkpoint to the weights of an uninterrupted one; whole runs of a VAE and of a VQ-VAE (both
stages) write their artifacts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gencompile.compiler.lower import lower
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
CHILD = Path(__file__).with_name("mirrored_child.py")
TOLERANCE = 1e-5
RESUMED = {
    "name": "gan_resumed",  # two optimizers and the moving average, from a checkpoint
    "spec": "gan_ring8.yaml",
    "overrides": [
        "data.source.n_samples=200",
        "data.batch_size=16",
        "model.generator={mlp: [16]}",
        "model.discriminator={mlp: [16]}",
        "training.steps_per_epoch=3",
        "training.checkpoint={every_epochs: 1, keep: 3}",
    ],
    "check": "resume",
}
ACTNORM = {"name": "actnorm", "spec": "", "overrides": [], "check": "actnorm"}
DRAW = {"name": "draw", "spec": "", "overrides": [], "check": "draw"}
PERPLEXITY = {"name": "perplexity", "spec": "", "overrides": [], "check": "perplexity"}
WHOLE_RUN = {
    "name": "vae_run",  # fit, evaluate, samples, and both exports under the strategy
    "spec": "vae_moons.yaml",
    "overrides": [
        "data.source.n_samples=400",
        "data.batch_size=16",
        "evaluation.importance_samples=8",
        "output.samples.count=64",
        "output.export=[keras, saved_model]",
        "training.epochs=1",
        "training.steps_per_epoch=3",
    ],
    "check": "run",
}

VQ_VAE_RUN = {
    "name": "vq_vae_run",  # both stages, evaluation, samples and exports under the strategy
    "spec": "vq_vae_digits.yaml",
    "overrides": [
        "data.source.fraction=0.1",
        "data.batch_size=16",
        "model.quantizer={type: ema, codebook_size: 8, embedding_dim: 4, decay: 0.9}",
        "model.prior={type: pixelcnn, filters: 8, layers: 1, epochs: 1}",
        # 18 held-out digits: kid (fd_digits needs 64), on samples drawn under the strategy
        "evaluation.metrics=[reconstruction_nll, prior_nll, nll_bound, codebook_perplexity, kid]",
        "evaluation.num_samples=64",
        "output.samples.count=16",
        "output.export=[keras, saved_model]",
        "training.epochs=1",
        "training.steps_per_epoch=3",
    ],
    "check": "run",
}


def _run_child(cases: list[dict[str, Any]], out: Path) -> dict[str, dict[str, Any]]:
    """Every case's check, run by one child process with 2 logical CPU devices."""
    done = subprocess.run(
        [sys.executable, str(CHILD), str(out), json.dumps(cases)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for line in lines:
        line["stderr"] = done.stderr[-3000:]  # shown when a check failed
    return {line["name"]: line for line in lines}


# The tests that read the child process' results: it trains every family twice (about two
# minutes on 2 cores), so they run in the slow tier (`make test-slow`, which CI runs too).
TRAINS_EVERY_FAMILY = pytest.mark.slow


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, family_cases: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Every check, run by one child process with 2 logical CPU devices."""
    cases = [{**case, "check": "equivalence"} for case in family_cases]
    runs = (RESUMED, WHOLE_RUN, VQ_VAE_RUN)
    cases += [{**check, "spec": str(SPECS / check["spec"])} for check in runs]
    cases += [ACTNORM, DRAW, PERPLEXITY]
    return _run_child(cases, tmp_path_factory.mktemp("mirrored"))


@pytest.fixture(scope="module")
def uneven_results(
    tmp_path_factory: pytest.TempPathFactory, uneven_cases: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The uneven cases, each a whole epoch on one device and under the strategy."""
    cases = [{**case, "check": "uneven"} for case in uneven_cases]
    return _run_child(cases, tmp_path_factory.mktemp("uneven"))


@TRAINS_EVERY_FAMILY
def test_mirrored_training_equals_one_device(results, family_case) -> None:
    result = results[family_case]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert result["epochs"] == (3 if family_case == "mixture_em" else 1)
    assert result["relative_difference"] < TOLERANCE, result


@TRAINS_EVERY_FAMILY
def test_mirrored_run_resumes_to_the_uninterrupted_weights(results) -> None:
    result = results[RESUMED["name"]]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert result["relative_difference"] < TOLERANCE, result


@TRAINS_EVERY_FAMILY
def test_a_whole_mirrored_run_writes_its_artifacts(results) -> None:
    result = results[WHOLE_RUN["name"]]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert all(math.isfinite(value) for value in result["metrics"].values())
    for name in ("metrics.json", "model.keras", "saved_model", "samples.png", "checkpoints"):
        assert name in result["files"]


@TRAINS_EVERY_FAMILY
def test_a_whole_mirrored_vq_vae_run_fits_its_prior_and_samples_from_it(results) -> None:
    result = results[VQ_VAE_RUN["name"]]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    metrics = result["metrics"]
    for name in ("reconstruction_nll", "prior_nll", "nll_bound", "codebook_perplexity"):
        assert math.isfinite(metrics[name]), metrics
    assert 1.0 <= metrics["codebook_perplexity"] <= 8.0  # at most the 8 codes
    for name in ("prior_history.csv", "model.keras", "saved_model", "samples.png"):
        assert name in result["files"]


@TRAINS_EVERY_FAMILY
def test_replicas_keep_their_rows_of_one_draw_for_the_global_batch(results) -> None:
    result = results["draw"]
    assert "error" not in result, result["stderr"]
    assert result["rows"] == [4, 3]  # an uneven split: the last batch of an epoch
    assert result["relative_difference"] == 0.0


@TRAINS_EVERY_FAMILY
def test_actnorm_started_inside_replicas_uses_the_global_batch(results) -> None:
    result = results["actnorm"]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert result["relative_difference"] < TOLERANCE, result


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_family_accepts_mirrored(spec, example_overrides) -> None:
    overrides = [*example_overrides(spec), "training.distribution.strategy=mirrored"]
    plan = lower(load_spec(spec, overrides))
    mixture = plan.family == "mixture"  # its steps take a replica's empty slice
    assert plan.training["distribution"] == {"strategy": "mirrored", "empty_slices": mixture}


@TRAINS_EVERY_FAMILY
def test_codebook_perplexity_inside_replicas_is_the_global_batchs(results) -> None:
    result = results["perplexity"]
    assert "error" not in result, result["stderr"]
    assert result["expected"] == pytest.approx([4.0, 0.5], rel=1e-6)  # 4 of 8 codes, evenly
    # Each replica's half uses 2 codes, but both report the global batch's 4.
    assert result["per_replica"] == [pytest.approx([4.0, 0.5], rel=1e-6)] * 2


@TRAINS_EVERY_FAMILY
def test_batches_split_unevenly_train_and_validate_as_on_one_device(
    uneven_results, uneven_cases, uneven_case
) -> None:
    """A last batch split unevenly: each replica's loss weighs its share of the global
    batch, and every logged value is a mean over examples, so the weights and the history
    are one device's. A last batch that would leave a replica without an example is left
    out of the epoch (with a warning): the weights are one device's without that step."""
    case = next(case for case in uneven_cases if case["name"] == uneven_case)
    result = uneven_results[uneven_case]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert [size % 16 for size in result["split_sizes"]] == case["remainders"]
    assert result["relative_difference"] < TOLERANCE, result["relative_difference"]
    assert_same_history(result["history"])
    if "held_out_nll" in result:  # computed apart, example by example
        val_loss = result["history"]["val_loss"][1][-1]
        assert val_loss == pytest.approx(result["held_out_nll"], rel=1e-5)
    skipped = [w for w in result["warnings"] if "leaves out its last batch" in w]
    if case["single_device_steps"]:
        assert skipped == [
            "each epoch leaves out its last batch of 1 training example(s): it would leave "
            "one of the 2 replicas without an example (other examples each epoch, as the "
            "order is reshuffled)"
        ]
        assert result["steps"] == case["single_device_steps"]
    else:
        assert skipped == []


@pytest.fixture(scope="module")
def keeps_one_results(
    tmp_path_factory: pytest.TempPathFactory, keeps_one_cases: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The mixtures' cases, each a whole epoch on one device and under the strategy."""
    cases = [{**case, "check": "uneven"} for case in keeps_one_cases]
    return _run_child(cases, tmp_path_factory.mktemp("keeps_one"))


@TRAINS_EVERY_FAMILY
def test_a_mixture_keeps_a_last_batch_that_leaves_a_replica_empty(
    keeps_one_results, keeps_one_case
) -> None:
    """EM, variational EM and gradient descent sum (or mask) over a replica's examples and
    have no convolution: a last batch of 1 trains and validates on one replica, nothing is
    left out or refused, and the fit (weights, EM statistics, history) is one device's."""
    result = keeps_one_results[keeps_one_case]
    assert "error" not in result, result["stderr"]
    assert result["replicas"] == 2
    assert [size % 16 for size in result["split_sizes"]] == [1, 1]
    assert result["warnings"] == []  # no batch left out
    assert result["relative_difference"] < TOLERANCE, result["relative_difference"]
    assert_same_history(result["history"])  # val_loss among them: every held-out example


def assert_same_history(history: dict[str, list[list[float]]], tolerance: float = TOLERANCE):
    """Each logged value, one device's and the strategy's: finite and equal (the gradient
    norms aside: under a strategy, the norm of a replica's share of the gradient)."""
    assert any(key.startswith("val_") for key in history), sorted(history)
    for key, (single, distributed) in history.items():
        assert all(math.isfinite(value) for value in distributed), (key, distributed)
        if not key.endswith("grad_norm"):
            assert distributed == pytest.approx(single, rel=tolerance, abs=1e-6), key
