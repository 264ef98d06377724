"""Metrics are never silently wrong, and `evaluate` never changes what `reproduce` compares.

InceptionV3 metrics without real weights stop with the advice to pass a file (exit 1, in
seconds, metrics.json untouched) instead of computing numbers with random weights. The same
weights give the same numbers at the end of training and in any later `evaluate`; metrics
that `evaluate` added later are shown by `reproduce` but not compared.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from gencompile.report import DECODER_MEANS, compare_runs, format_value

ADVICE = "--inception-weights PATH"
CROSS_ENTROPY = "Bernoulli cross-entropy on non-binary data, not a normalised likelihood"
INCEPTION_SPEC = """\
spec_version: 1
name: tiny-vae-is
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model: {family: vae, latent_dim: 2, encoder: {mlp: [16]}, decoder: {mlp: [16]}}
training: {epochs: 1}
evaluation: {metrics: [elbo, inception_score]}
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """keras' download fails as it does on a machine without network."""

    def no_network(*args: object, **kwargs: object) -> str:
        raise Exception("URL fetch failure on https://storage.googleapis.com: no network")

    monkeypatch.setattr(keras.utils, "get_file", no_network)


def metrics_bytes(run: Path) -> bytes:
    return (run / "metrics.json").read_bytes()


# fid needs 2048 held-out examples, more than the digits have: inception_score is the
# metric of InceptionV3 a digits run can be asked for (the spec's checks refuse fid).
@pytest.mark.parametrize("metric", ["inception_score"])
def test_inception_metrics_without_weights_stop_in_seconds(
    hostile, vae_copy: Path, offline, metric: str
) -> None:
    before = metrics_bytes(vae_copy)
    start = time.monotonic()
    outcome = hostile("evaluate", vae_copy, "--metrics", metric, watch=vae_copy)
    seconds = time.monotonic() - start
    outcome.assert_refused(1, "could not be downloaded", "no network", ADVICE)
    assert seconds < 30, f"refused after {seconds:.1f} s"
    assert metrics_bytes(vae_copy) == before


def test_a_missing_weights_file_is_refused(hostile, vae_copy: Path, tmp_path: Path) -> None:
    absent = tmp_path / "absent.h5"
    outcome = hostile(
        "evaluate",
        vae_copy,
        "--metrics",
        "inception_score",
        "--inception-weights",
        absent,
        watch=vae_copy,
    )
    outcome.assert_refused(1, "InceptionV3 weights file not found", str(absent), ADVICE)


def test_a_file_that_is_not_inception_weights_is_refused(
    hostile, vae_copy: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n" + b"\0" * 64)
    outcome = hostile(
        "evaluate",
        vae_copy,
        "--metrics",
        "inception_score",
        "--inception-weights",
        garbage,
        watch=vae_copy,
    )
    outcome.assert_refused(1, "cannot load InceptionV3 weights from", "garbage.h5", ADVICE)


def test_training_a_spec_with_inception_score_stops_before_building(
    hostile, tmp_path: Path, offline
) -> None:
    spec = tmp_path / "is.yaml"
    spec.write_text(INCEPTION_SPEC)
    outcome = hostile("train", spec, "--runs-dir", "runs", watch=tmp_path)
    outcome.assert_refused(1, "could not be downloaded", ADVICE)  # no run folder either
    missing = tmp_path / "missing.h5"
    spec.write_text(
        INCEPTION_SPEC.replace(
            "[elbo, inception_score]", f"[elbo, inception_score], inception_weights: {missing}"
        )
    )
    outcome = hostile("train", spec, "--runs-dir", "runs", watch=tmp_path)
    outcome.assert_refused(1, "InceptionV3 weights file not found", ADVICE)


@pytest.mark.slow
def test_offline_refusal_in_a_child_process(
    hostile_subprocess, vae_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed command, with every download sent to a closed port (offline, even on a
    machine that is online): a refusal, not minutes of computing with random weights."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    for name in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    before = metrics_bytes(vae_copy)
    outcome = hostile_subprocess(
        "evaluate", vae_copy, "--metrics", "inception_score", timeout=90, watch=vae_copy
    )
    outcome.assert_refused(1, "could not be downloaded", ADVICE)
    assert metrics_bytes(vae_copy) == before


def test_evaluating_the_spec_metrics_again_leaves_metrics_json_unchanged(
    hostile, vae_copy: Path
) -> None:
    before = metrics_bytes(vae_copy)
    outcome = hostile("evaluate", vae_copy, watch=vae_copy)
    assert outcome.code == 0, outcome.err
    assert metrics_bytes(vae_copy) == before  # every value bit for bit, and computed_with
    assert "metrics.json" not in outcome.changed
    record = json.loads(before)
    assert set(record["computed_with"]) == set(record["metrics"]) == {"elbo", "iwae_nll"}
    assert record["computed_with"]["iwae_nll"] == {
        "split": "validation",
        "examples": 180,
        "importance_samples": 4,
        "importance_seed": 0,
        "caveat": CROSS_ENTROPY,  # a bernoulli likelihood of the digits' grey levels
        "evaluation_seed": 3,
    }
    assert record["computed_with"]["elbo"]["posterior_samples"] == 1


def test_evaluate_records_what_sample_metrics_were_computed_with(hostile, vae_copy: Path) -> None:
    outcome = hostile("evaluate", vae_copy, "--metrics", "kid,fd_digits", watch=vae_copy)
    assert outcome.code == 0, outcome.err
    record = json.loads(metrics_bytes(vae_copy))
    kid = record["computed_with"]["kid"]
    assert kid["samples"] == 2000
    assert kid["decoder_means"] is True  # a VAE's samples: E[x | z], not draws of p(x | z)
    assert kid["reference"] == {"split": "validation", "examples": 180}
    assert kid["subset_size"] == 180 and kid["subsets"] == 100  # fewer than 1000: says so
    assert kid["features"]["network"].startswith("digits classifier")
    assert len(kid["features"]["weights_sha256"]) == 64
    assert record["computed_with"]["fd_digits"]["features"] == kid["features"]
    assert record["computed_with"]["kid_std"] == kid
    assert set(record["computed_with"]) == set(record["metrics"])
    report = (vae_copy / "report.md").read_text()
    brief = "2000 samples vs 180 validation; subsets of 180; digits classifier v2 ("
    assert f"| kid | {format_value(record['metrics']['kid'])} |" in report and brief in report
    assert f"| {DECODER_MEANS}; {brief}" in report
    assert f"caveat: fd_digits, kid, kid_std: {DECODER_MEANS}" in outcome.out
    assert "180 validation examples; k = 4 |" in report  # iwae_nll


def test_reproduce_after_evaluate_compares_like_with_like(
    hostile, vae_copy: Path, tmp_path: Path
) -> None:
    assert hostile("evaluate", vae_copy, watch=vae_copy).code == 0  # the spec's own metrics
    assert hostile("evaluate", vae_copy, "--metrics", "fd_digits", watch=vae_copy).code == 0
    before = metrics_bytes(vae_copy)
    outcome = hostile("reproduce", vae_copy, "-o", tmp_path / "again", watch=vae_copy)
    assert outcome.code == 0, outcome.out + outcome.err
    assert "identical" in outcome.out and "every metric computed in training" in outcome.out
    assert "fd_digits: not compared: added later by `gencompile evaluate`" in outcome.out
    assert "elbo: not compared" not in outcome.out  # the spec's metrics are compared
    assert metrics_bytes(vae_copy) == before and not outcome.changed


@pytest.mark.slow
def test_mixed_precision_runs_evaluate_as_they_trained(
    hostile_subprocess, tiny_vae_spec: Path, tmp_path: Path
) -> None:
    """A later evaluate (a fresh process) builds the model with training's dtype policy:
    float16 compute in training and float32 afterwards give other numbers from the same
    weights."""
    from gencompile.runs import train

    try:
        run = train(
            tiny_vae_spec, ["training.mixed_precision=true"], run_dir=tmp_path / "run", quiet=True
        ).run_dir
    finally:
        keras.mixed_precision.set_global_policy("float32")  # for the tests that follow
    before = metrics_bytes(run)
    outcome = hostile_subprocess("evaluate", run, timeout=120, watch=run)
    assert outcome.code == 0, outcome.err
    assert metrics_bytes(run) == before


def test_held_out_metrics_are_never_silently_missing(hostile, tmp_path: Path) -> None:
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec_text

    spec = tmp_path / "diffusion.yaml"
    source = (Path(__file__).parents[2] / "specs" / "diffusion_ring8.yaml").read_text()
    spec.write_text(source)
    asked = ["--set", "data.validation_split=0.0", "--set", "evaluation.metrics=[denoising_loss]"]
    outcome = hostile("validate", spec, *asked, watch=tmp_path)
    outcome.assert_refused(2, "held-out metrics need a validation split")
    # The family's defaults without a split: the lock and report list what is computed.
    plan = lower(load_spec_text(source.replace("validation_split: 0.1", "validation_split: 0.0")))
    assert "denoising_loss" not in plan.evaluation["metrics"]
    assert "denoising_loss" in lower(load_spec_text(source)).evaluation["metrics"]


def test_compare_marks_metrics_computed_differently(
    hostile, trained_vae: Path, tiny_vae_spec: Path, tmp_path: Path
) -> None:
    from gencompile.runs import train

    other = train(
        tiny_vae_spec, ["evaluation.importance_samples=8"], run_dir=tmp_path / "k8", quiet=True
    ).run_dir
    outcome = hostile("compare", trained_vae, other, watch=tmp_path)
    assert outcome.code == 0, outcome.err
    assert "computed differently: iwae_nll (other networks" in outcome.out
    assert not outcome.changed
    names = [name for name, _, _ in compare_runs([trained_vae, other]).rows]
    # elbo: the same split and single posterior sample in both runs, so comparable
    assert names == ["status", "elbo", "iwae_nll (computed differently)"]


def test_too_few_samples_stop_evaluation_instead_of_a_number(
    hostile, tiny_vae_spec: Path, tmp_path: Path
) -> None:
    from gencompile.runs import train

    run = train(
        tiny_vae_spec, ["evaluation.num_samples=3"], run_dir=tmp_path / "run", quiet=True
    ).run_dir
    outcome = hostile("evaluate", run, "--metrics", "precision_recall", watch=run)
    # Refused before any sample is drawn, at the option that asked for it: a usage error.
    outcome.assert_refused(
        2,
        "--metrics: evaluation.num_samples: precision_recall needs at least 4 samples",
        "gencompile evaluate RUN --num-samples",
    )


def test_a_non_finite_metric_stops_the_run_and_keeps_what_training_wrote(
    hostile, tiny_vae_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose held-out likelihood is NaN (training's loss stayed finite): one line
    naming the metric and what to do, exit 1; the checkpoints and history.csv are kept,
    and no metrics.json holds NaN."""
    from gencompile.runtime import vae

    monkeypatch.setattr(vae, "elbo_batches", lambda *args, **kwargs: iter([np.array([np.nan])]))
    outcome = hostile(
        "train", tiny_vae_spec, "--runs-dir", "runs", "--set", "evaluation.metrics=[elbo]"
    )
    outcome.assert_refused(1, "error: elbo is nan:", "diverged", "history.csv", allowed=("runs/",))
    (run,) = (tmp_path / "runs").glob("*/*")
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert (run / "history.csv").read_text().count("\n") == 2  # the header and epoch 1
    assert list((run / "checkpoints").iterdir())
    assert not (run / "metrics.json").exists()


def test_a_bernoulli_of_grey_digits_is_shown_as_a_cross_entropy(
    hostile, vae_copy: Path, tmp_path: Path
) -> None:
    """The tiny VAE's bernoulli likelihood of the digits' 17 grey levels: its elbo and
    iwae_nll keep their numbers, and metrics.json, the report, `evaluate` and `compare`
    say that they are cross-entropies, not -log p(x)."""
    record = json.loads(metrics_bytes(vae_copy))
    for name in ("elbo", "iwae_nll"):
        assert record["computed_with"][name]["caveat"] == CROSS_ENTROPY
    value = format_value(record["metrics"]["iwae_nll"])
    report = (vae_copy / "report.md").read_text()
    assert f"| iwae_nll | {value} | nats / example | lower is better | {CROSS_ENTROPY};" in report
    assert CROSS_ENTROPY in (vae_copy / "report.html").read_text()
    outcome = hostile("evaluate", vae_copy, watch=vae_copy)
    assert outcome.code == 0, outcome.err
    assert f"caveat: elbo, iwae_nll: {CROSS_ENTROPY}" in outcome.out
    compared = hostile("compare", vae_copy, vae_copy, watch=tmp_path)
    assert compared.code == 0, compared.err
    assert f"caveat: elbo, iwae_nll: {CROSS_ENTROPY}" in compared.out
    markdown = hostile("compare", vae_copy, "--format", "markdown", watch=tmp_path)
    assert f"Caveat: elbo, iwae\\_nll: {CROSS_ENTROPY}." in markdown.out  # escaped


def test_evaluate_refuses_when_the_training_data_changed(hostile, tmp_path: Path) -> None:
    """Metrics of changed data are not the run's: refused before anything is computed,
    metrics.json and the report untouched (exit 1)."""
    import numpy as np

    from gencompile.runs import train

    def write_table(path: Path, seed: int) -> Path:
        rows = np.random.default_rng(seed).normal(0, 1 + 4 * seed, (60, 2))
        path.write_text("a,b\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rows))
        return path

    table = write_table(tmp_path / "table.csv", seed=0)
    spec = INCEPTION_SPEC.replace("{type: builtin, name: digits}", f"{{type: csv, path: {table}}}")
    spec = spec.replace("[elbo, inception_score]", "[elbo]")
    (tmp_path / "vec.yaml").write_text(spec)
    run = train(tmp_path / "vec.yaml", run_dir=tmp_path / "run", quiet=True).run_dir
    write_table(table, seed=1)
    outcome = hostile("evaluate", run, watch=run)
    outcome.assert_refused(1, "changed since training", "restore the data, or retrain")
    assert outcome.changed == set()
