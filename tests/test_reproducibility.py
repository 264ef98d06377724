"""Recovery and reproducibility: a run killed mid-epoch resumes to the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.runs import resume, train

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vae_digits.yaml"
OVERRIDES = [
    "evaluation.importance_samples=8",
    "training.checkpoint={every_epochs: 1, keep: 3}",
    "model.losses.kl.warmup_epochs=2",  # the warm-up spans the kill
]
EPOCHS = 4

# Trains in a child process and SIGKILLs it after batch 8 of epoch 3 (0-based epoch 2).
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


def killed_run(run_dir: Path) -> Path:
    env = {**os.environ, "EPOCHS": str(EPOCHS), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", KILL_MID_EPOCH, str(SPEC), str(run_dir), *OVERRIDES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> str:
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    return train(SPEC, OVERRIDES, epochs=EPOCHS, run_dir=run_dir, quiet=True).record[
        "weights_sha256"
    ]


def test_run_killed_mid_epoch_resumes_to_identical_weights(tmp_path, uninterrupted) -> None:
    run_dir = killed_run(tmp_path / "run")
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()
    assert not (run_dir / "checkpoints" / "epoch-0003.json").exists()
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 2

    result = resume(run_dir, quiet=True)

    assert result.record["weights_sha256"] == uninterrupted
    assert result.record["epochs"] == EPOCHS  # history.csv holds all four epochs
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + EPOCHS


def test_truncated_checkpoint_is_skipped_for_the_one_before(tmp_path, uninterrupted) -> None:
    run_dir = killed_run(tmp_path / "run")
    newest = run_dir / "checkpoints" / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    with pytest.warns(UserWarning, match="skipping checkpoint of epoch 2: .*truncated"):
        result = resume(run_dir, quiet=True)

    assert result.record["weights_sha256"] == uninterrupted


def test_resume_without_a_checkpoint_says_so(tmp_path) -> None:
    from gencompile.compiler.project import build
    from gencompile.errors import RunError
    from gencompile.spec import load_spec

    build(load_spec(SPEC), tmp_path / "run")
    with pytest.raises(RunError, match="no usable checkpoint to resume from"):
        resume(tmp_path / "run", quiet=True)
