"""An EM run killed mid-epoch resumes to the same parameters, and stops at the same epoch.

The M-step runs at the start of the next epoch, so the checkpoint written at an epoch's end
holds the epoch's statistics with the parameters they were computed under. The convergence
check compares the epoch's mean log-likelihood with the previous epoch's, which the model
keeps as state: a resumed run must not forget it and stop one iteration late.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.runs import resume, train

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "gmm_moons.yaml"
# With batches of 256 the mean log-likelihood of gmm_moons rises by 0.020, 0.005, 0.002 in
# epochs 2, 3, 4: tol 0.01 stops EM at the end of epoch 3, the first epoch after the
# checkpoint the killed run resumes from (it is killed during epoch 3).
OVERRIDES = [
    "data.batch_size=256",
    "model.algorithm.tol=0.01",
    "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}",  # SIGKILL: no last save
]
EPOCHS = 5
CONVERGED_AT = 3


@pytest.mark.slow
def test_em_killed_mid_epoch_resumes_to_identical_parameters(tmp_path: Path, killed_run):
    whole = train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=tmp_path / "whole", quiet=True)
    assert whole.record["epochs"] == CONVERGED_AT
    run_dir = killed_run(SPEC, tmp_path / "killed", OVERRIDES, EPOCHS)
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()
    assert not (run_dir / "checkpoints" / "epoch-0003.json").exists()

    resumed = resume(run_dir, quiet=True)

    assert resumed.record["epochs"] == CONVERGED_AT
    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert resumed.metrics == whole.metrics
