"""An EM run killed mid-epoch resumes to the same parameters as an uninterrupted run.

The M-step runs at the start of the next epoch, so the checkpoint written at an epoch's end
holds the epoch's statistics with the parameters they were computed under.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

KILL_MID_EPOCH = """
import os, signal, sys
import keras
from gencompile.runs import train

class KillMidEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 7:
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit

def fit_and_die(self, *args, callbacks=(), **kwargs):
    return fit(self, *args, callbacks=[*callbacks, KillMidEpoch()], **kwargs)

keras.Model.fit = fit_and_die
train(sys.argv[1], sys.argv[3:], epochs=int(os.environ["EPOCHS"]), run_dir=sys.argv[2], quiet=True)
"""


def test_em_killed_mid_epoch_resumes_to_identical_parameters(tmp_path: Path) -> None:
    whole = train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=tmp_path / "whole", quiet=True)
    run_dir = tmp_path / "killed"
    env = {**os.environ, "EPOCHS": str(EPOCHS), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", KILL_MID_EPOCH, str(SPEC), str(run_dir), *OVERRIDES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()

    resumed = resume(run_dir, quiet=True)

    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert resumed.metrics == whole.metrics
