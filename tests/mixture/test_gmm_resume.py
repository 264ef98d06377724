"""An EM run killed mid-epoch resumes to the same parameters as an uninterrupted run.

The M-step runs at the start of the next epoch, so the checkpoint written at an epoch's end
holds the epoch's statistics with the parameters they were computed under.
"""

from __future__ import annotations

from pathlib import Path

from gencompile.runs import resume, train

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "gmm_moons.yaml"
OVERRIDES = [
    "data.batch_size=256",
    "model.algorithm.tol=0.0",  # no early convergence: every run does all epochs
    "training.checkpoint={every_epochs: 1, keep: 3}",
]
EPOCHS = 4


def test_em_killed_mid_epoch_resumes_to_identical_parameters(tmp_path: Path, killed_run):
    whole = train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=tmp_path / "whole", quiet=True)
    run_dir = killed_run(SPEC, tmp_path / "killed", OVERRIDES, EPOCHS)
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()

    resumed = resume(run_dir, quiet=True)

    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert resumed.metrics == whole.metrics
