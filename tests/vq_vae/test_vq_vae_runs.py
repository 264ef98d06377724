"""A tiny `gencompile train` of specs/vq_vae_digits.yaml: both stages, their artifacts,
reconstructions, `gencompile sample`, and the same weights from the same seed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gencompile.runs import TrainResult, train
from gencompile.runtime.metrics.results import NON_BINARY_BERNOULLI

from .conftest import SPEC, TINY

EPOCHS = 2
EXPORT = "output.export=[keras, saved_model]"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    run_dir = tmp_path_factory.mktemp("vq-run") / "run"
    return train(SPEC, [*TINY, EXPORT], epochs=EPOCHS, run_dir=run_dir, quiet=True)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_both_stages_train_and_write_their_histories(tiny_run: TrainResult) -> None:
    run = tiny_run.run_dir
    stage_1 = rows(run / "history.csv")
    assert len(stage_1) == EPOCHS
    for column in ("loss", "reconstruction", "codebook", "commitment", "perplexity", "usage"):
        assert np.isfinite(float(stage_1[-1][column])), column
    assert 1.0 <= float(stage_1[-1]["perplexity"]) <= 8.0  # at most the 8 codes of TINY
    assert 0.0 < float(stage_1[-1]["usage"]) <= 1.0
    stage_2 = rows(run / "prior_history.csv")
    assert len(stage_2) == 1  # model.prior.epochs=1
    assert {"loss", "val_loss", "grad_norm"} <= set(stage_2[0])
    report = (run / "report.md").read_text()
    assert "| prior_loss |" in report and "| perplexity |" in report
    assert "![samples](samples.png)" in report


def test_metrics_are_finite_and_the_bound_adds_its_terms(tiny_run: TrainResult) -> None:
    m = tiny_run.metrics
    assert set(m) >= {
        "reconstruction_nll",
        "prior_nll",
        "nll_bound",
        "codebook_perplexity",
        "fd_digits",
    }
    assert all(np.isfinite(v) for v in m.values())
    assert m["nll_bound"] == pytest.approx(m["reconstruction_nll"] + m["prior_nll"])
    # 16 cells of 8 codes: the prior can do no worse than uniform by much after a fit
    assert 0 < m["prior_nll"] < 16 * np.log(8) * 1.5
    how = json.loads((tiny_run.run_dir / "metrics.json").read_text())["computed_with"]
    assert how["prior_nll"]["prior_epochs"] == 1
    assert 0 < how["codebook_perplexity"]["codes_used"] <= 1
    # The bernoulli likelihood of the digits' grey levels: its NLLs are cross-entropies
    # (no bits per dimension); the prior's NLL of the codes is a true one.
    for name in ("reconstruction_nll", "nll_bound"):
        assert how[name]["caveat"] == NON_BINARY_BERNOULLI, name
    assert "bits_per_dim" not in how["nll_bound"] and "caveat" not in how["prior_nll"]
    assert how["fd_digits"]["decoder_means"] is True  # samples: decoded means of prior codes


def test_reconstructions_have_the_data_shape_and_range(tiny_run: TrainResult) -> None:
    from sklearn.datasets import load_digits

    from gencompile.generated import load_trained_model

    model, _ = load_trained_model(tiny_run.run_dir)
    x = (load_digits().images[:5, :, :, None] / 16.0).astype("float32")
    reconstructions = np.asarray(model(x))
    assert reconstructions.shape == (5, 8, 8, 1)
    assert reconstructions.min() >= 0.0 and reconstructions.max() <= 1.0
    codes = np.asarray(model.encode_to_codes(x))
    assert codes.shape == (5, 4, 4) and codes.min() >= 0 and codes.max() < 8
    assert int(model.prior_epochs.numpy()) == 1


def test_gencompile_sample_draws_codes_then_decodes(tiny_run: TrainResult, run_cli) -> None:
    out = tiny_run.run_dir.parent / "drawn.npz"
    code, _, stderr = run_cli(
        "sample", str(tiny_run.run_dir), "-n", "6", "--temperature", "0.7", "--top-k", "3",
        "-o", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    samples = np.load(out)["samples"]
    assert samples.shape == (6, 8, 8, 1)
    code, _, stderr = run_cli("sample", str(tiny_run.run_dir), "-n", "2", "--truncation", "1")
    assert code != 0
    assert "a vq_vae model takes --temperature, --top-k or --top-p" in stderr


@pytest.mark.slow  # a second training
def test_same_spec_and_seed_give_identical_weights(tiny_run: TrainResult, tmp_path: Path) -> None:
    again = train(SPEC, [*TINY, EXPORT], epochs=EPOCHS, run_dir=tmp_path / "again", quiet=True)
    assert again.record["weights_sha256"] == tiny_run.record["weights_sha256"]
    assert again.metrics == tiny_run.metrics
    assert (again.run_dir / "prior_history.csv").read_text() == (
        tiny_run.run_dir / "prior_history.csv"
    ).read_text()


def test_the_saved_model_samples_the_same_digits_for_the_same_seed(tiny_run: TrainResult) -> None:
    import tensorflow as tf

    exported = tf.saved_model.load(str(tiny_run.run_dir / "saved_model"))
    assert {"serve", "sample"} <= set(exported.signatures)

    def draw(seed: int) -> np.ndarray:
        out = exported.signatures["sample"](num=tf.constant(4), seed=tf.constant(seed))
        return next(iter(out.values())).numpy()

    first = draw(3)
    assert first.shape == (4, 8, 8, 1)
    assert first.min() >= 0.0 and first.max() <= 16.0  # the digits' units
    np.testing.assert_array_equal(first, draw(3))
    assert not np.array_equal(first, draw(4))


def test_gencompile_score_writes_the_bound_of_each_held_out_digit(
    tiny_run: TrainResult, run_cli
) -> None:
    out = tiny_run.run_dir.parent / "scores.csv"
    code, stdout, stderr = run_cli(
        "score", str(tiny_run.run_dir), "--split", "heldout", "-o", str(out)
    )
    assert code == 0, stderr
    assert "nll_bound_nats" in stdout
    with out.open(newline="") as handle:
        scores = [float(row["score"]) for row in csv.DictReader(handle)]
    assert len(scores) == 180  # the held-out split
    # the mean of the per-example bounds is the run's own metric
    assert np.mean(scores) == pytest.approx(tiny_run.metrics["nll_bound"], rel=1e-4)


def test_latent_commands_are_refused_with_what_works_instead(
    tiny_run: TrainResult, run_cli
) -> None:
    code, _, stderr = run_cli("latent", str(tiny_run.run_dir), "traverse")
    assert code != 0
    assert "not available for a VQ-VAE yet" in stderr and "gencompile sample" in stderr


@pytest.mark.slow  # an uninterrupted run, a killed one and its resume
def test_a_run_killed_in_stage_1_resumes_to_the_same_weights_and_prior(
    tmp_path: Path, killed_run
) -> None:
    from gencompile.runs import resume

    # 26 batches an epoch, a checkpoint each: the kill lands in epoch 3, after batch 8.
    checkpoints = "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}"
    overrides = [*TINY, "data.batch_size=64", checkpoints]
    whole = train(SPEC, overrides, epochs=4, run_dir=tmp_path / "whole", quiet=True)
    run_dir = killed_run(SPEC, tmp_path / "killed", overrides, 4)
    assert not (run_dir / "prior_history.csv").exists()  # stage 2 never started
    resumed = resume(run_dir, quiet=True)
    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert (run_dir / "prior_history.csv").read_text() == (
        whole.run_dir / "prior_history.csv"
    ).read_text()
