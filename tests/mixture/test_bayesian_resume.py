"""A variational run killed mid-epoch resumes to the same posterior and stops at the same
epoch: the previous lower bound is model state, kept in checkpoints, as EM's likelihood."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.runs import resume, train

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "bgmm_blobs.yaml"
# bgmm_blobs's lower bound rises by 156, 76 and 50 nats in epochs 2, 3 and 4 (9 batches of
# 1024 each): tol 100 stops at the end of epoch 3, the epoch the killed run dies in.
OVERRIDES = [
    "model.algorithm.tol=100.0",
    "output.samples.count=50",
    "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}",  # SIGKILL: no last save
]
EPOCHS = 5
CONVERGED_AT = 3


@pytest.mark.slow
def test_variational_run_killed_mid_epoch_resumes_to_identical_posterior(tmp_path, killed_run):
    whole = train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=tmp_path / "whole", quiet=True)
    assert whole.record["epochs"] == CONVERGED_AT
    run_dir = killed_run(SPEC, tmp_path / "killed", OVERRIDES, EPOCHS)
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()
    assert not (run_dir / "checkpoints" / "epoch-0003.json").exists()

    resumed = resume(run_dir, quiet=True)

    assert resumed.record["epochs"] == CONVERGED_AT
    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert resumed.metrics == whole.metrics
