"""A read that fails during training (a streamed file changed): the last finished epoch is
written, the error is one line saying how to go on, and the process exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gencompile.errors import RunError
from gencompile.runtime import checkpoints
from gencompile.runtime.callbacks import CheckpointKeeper
from gencompile.runtime.pipeline import epoch_stream
from gencompile.runtime.python_reads import numpy_read
from gencompile.runtime.training import fit_epochs

ROOT = Path(__file__).resolve().parents[2]
ROWS, BATCH = 400, 8  # 50 batches an epoch: more than tf.data reads ahead


class Spoil(keras.callbacks.Callback):
    """From the end of epoch `after` on, every read fails as a changed file's does."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.spoiled = after, False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.spoiled = self.spoiled or epoch + 1 == self.after


def _data(spoil: Spoil) -> SimpleNamespace:
    x = np.random.default_rng(0).normal(size=(ROWS, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")

    def read(found: np.ndarray) -> np.ndarray:
        if spoil.spoiled:
            raise RunError("cannot read image img/0007.png: cannot identify image file")
        return x[found]

    def batches(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rows = tf.ensure_shape(numpy_read(read, [indices], tf.float32), [None, 3])
        return rows, tf.gather(tf.constant(y), indices)

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        return epoch_stream(batches, ROWS, BATCH, seed=1, first=first, last=last)

    return SimpleNamespace(epochs=epochs, validation=None, steps_per_epoch=ROWS // BATCH)


def test_a_failed_read_keeps_the_last_epoch_and_says_it_in_one_line(tmp_path: Path) -> None:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    # Checkpoints at most once an hour: epoch 2 is only held in memory when epoch 3 fails.
    keeper = CheckpointKeeper(tmp_path / "checkpoints", 1, keep=3, every_seconds=3600)
    spoil = Spoil(after=2)
    training = {"steps_per_epoch": None, "early_stopping": None}

    with pytest.raises(RunError) as raised:
        fit_epochs(model, _data(spoil), training, [keeper, spoil], epochs=5, initial_epoch=0)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("cannot read image img/0007.png: cannot identify image file")
    assert "it changed after training started" in message
    assert "keeps its checkpoint of epoch 2" in message
    assert f"`gencompile train --resume {tmp_path}`" in message
    assert [c.epoch for c in checkpoints.listed(tmp_path / "checkpoints")] == [2]


def test_a_failure_before_any_checkpoint_says_train_again(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path / "checkpoints", 1, keep=3)
    spoil = Spoil(after=0)
    spoil.spoiled = True
    training = {"steps_per_epoch": None, "early_stopping": None}
    with pytest.raises(RunError, match="before its first checkpoint\\); restore it and train"):
        fit_epochs(model, _data(spoil), training, [keeper, spoil], epochs=2, initial_epoch=0)


def test_the_advice_names_the_projects_own_command_when_its_train_py_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated project run by hand (`python -m PKG.train`) is continued by that
    command: the user may not run gencompile at all."""
    import types

    from gencompile.runtime.training import resume_command

    assert resume_command(tmp_path) == f"`gencompile train --resume {tmp_path}`"
    project_main = types.ModuleType("__main__")
    project_main.__spec__ = types.SimpleNamespace(name="vae_digits.train")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "__main__", project_main)
    assert resume_command(tmp_path) == f"`python -m vae_digits.train --run-dir {tmp_path} --resume`"
    project_main.__spec__ = types.SimpleNamespace(name="gencompile.local_cluster")  # type: ignore[assignment]
    assert resume_command(tmp_path) == f"`gencompile train --resume {tmp_path}`"


SPOILER = """
import sys
from pathlib import Path

from gencompile.cli import main
from gencompile.process_end import run_then_exit
from gencompile.runtime import epoch_listeners

folder, spec, runs = sys.argv[1:]


def spoil(epoch, logs):  # one image changes after epoch 1, as an export script rewrites it
    if epoch == 1:
        (Path(folder) / "7.png").write_bytes(b"garbage")
    return False


sys.argv = ["gencompile", "train", spec, "--quiet", "--runs-dir", runs]
with epoch_listeners.listening(spoil):
    run_then_exit(main)
"""

SPEC = """
spec_version: 1
name: vae-img
seed: 1
data:
  source: {{type: images, dir: {folder}, size: [8, 8]}}
  validation_split: 0.1
  preprocessing: {{scale: [0.0, 1.0]}}
  batch_size: 64
  cache: stream
model:
  family: vae
  latent_dim: 2
  prior: {{type: normal}}
  encoder: {{mlp: [8], activation: relu}}
  decoder: {{mlp: [8], activation: relu}}
  likelihood: {{type: bernoulli}}
training:
  epochs: 5
  checkpoint: {{every_epochs: 1, keep: 2}}
evaluation:
  metrics: [elbo]
"""


# About 8 s: a short training in a child process, the hang it guards against being the test.
def test_a_streamed_image_that_changes_mid_training_ends_the_process(tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1200):  # 17 batches an epoch, other reads in flight when one fails
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    spec = tmp_path / "img.yaml"
    spec.write_text(SPEC.format(folder=folder))
    script = tmp_path / "spoiler.py"
    script.write_text(textwrap.dedent(SPOILER))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Before the fix the process printed a traceback, then hung at exit (the abandoned
    # tf.data iterator): the time limit is the test.
    done = subprocess.run(
        [sys.executable, str(script), str(folder), str(spec), str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "cannot read image" in errors[0] and "it changed after training started" in errors[0]
    run = next((tmp_path / "runs" / "vae-img").iterdir())
    assert f"gencompile train --resume {run}" in errors[0]
    kept = [c.epoch for c in checkpoints.listed(run / "checkpoints")]
    assert kept and max(kept) < 5 and f"checkpoint of epoch {max(kept)}" in errors[0]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed"
