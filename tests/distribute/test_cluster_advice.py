"""What a worker of a cluster says when it stops, and what `gencompile train` refuses there:
the run folder (never a worker's scratch folder), the command that goes on (with the
launcher's `--workers N`), one line, and the chief's warnings on the user's terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile import local_cluster
from gencompile.compiler.project import build
from gencompile.errors import RunError
from gencompile.local_cluster import Worker
from gencompile.run_status import write_status
from gencompile.runtime import checkpoint_files, cluster
from gencompile.runtime.callbacks import CheckpointKeeper
from gencompile.runtime.training import fit_epochs, resume_command
from gencompile.spec import load_spec
from gencompile.tf_messages import tf_summary

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
PAIR = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}
# The end of what TensorFlow raised on the chief when worker 1 of a hand-started cluster
# was killed (its "Detected at node" stack ran to 50 lines).
PEER_DIED = """Graph execution error:

Detected at node CollectiveReduceV2 defined at (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main

Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks \
are unhealthy (stopped sending heartbeats):
/job:worker/replica:0/task:1
The tasks have crashed. Check the task logs for an earlier error.
\t [[{{node CollectiveReduceV2}}]] [Op:__inference_multi_step_on_iterator_6904]"""


def _task(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    config = {"cluster": PAIR, "task": {"type": "worker", "index": index}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


# -- gencompile train under a TF_CONFIG cluster -------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_train_in_a_tf_config_cluster_is_refused_before_a_run_folder_is_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, index: int
) -> None:
    from gencompile.runs import train

    _task(monkeypatch, index)
    overrides = ["training.distribution.strategy=multi_worker", "data.source.n_samples=400"]
    with pytest.raises(RunError) as caught:
        train(SPECS / "vae_moons.yaml", overrides, 1, runs_root=tmp_path / "runs", quiet=True)
    assert str(caught.value) == (
        "TF_CONFIG names a cluster of 2 tasks, which `gencompile train` does not join: on "
        "this machine, unset TF_CONFIG and pass --workers N; on a cluster, build the project "
        "(gencompile build SPEC --set training.distribution.strategy=multi_worker -o DIR) and "
        "run `python -m vae_moons.train` in DIR on every machine (README, 'Scaling out')"
    )
    assert not (tmp_path / "runs").exists()  # no run folder, failed or otherwise


def _one_process_run(run: Path) -> None:
    """A multi_worker run as one process leaves it (its lock names no workers), failed."""
    overrides = ["training.distribution.strategy=multi_worker"]
    build(load_spec(SPECS / "vae_moons.yaml", overrides), run)
    write_status(run, "failed", error="RunError: stopped")


def test_resume_in_a_tf_config_cluster_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gencompile.runs import resume

    run = tmp_path / "run"
    _one_process_run(run)
    _task(monkeypatch, 1)
    with pytest.raises(RunError, match=r"^TF_CONFIG names a cluster of 2 tasks"):
        resume(run, quiet=True)


# -- a run one process trained resumes in one ---------------------------------------------


def test_a_run_one_process_trained_is_not_resumed_by_several_workers(tmp_path: Path) -> None:
    from gencompile.runs import resume

    run = tmp_path / "run"
    _one_process_run(run)
    with pytest.raises(RunError) as caught:
        resume(run, quiet=True, workers=2)
    assert str(caught.value) == (
        f"{run} was trained by 1 worker, not 2: resume it with --workers 1 (or without "
        "--workers), so that its epochs sum their gradients alike and `gencompile reproduce` "
        "can repeat it"
    )
    assert "workers" not in json.loads((run / "spec.lock.json").read_text())


# -- a worker's advice names the run folder and the launcher's --workers ------------------


@pytest.fixture
def scratch_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This process as worker 1 of 2 started by `gencompile train --workers 2`; its
    scratch folder."""
    monkeypatch.setenv("TF_CONFIG", local_cluster.tf_config([2222, 2223], 1))
    monkeypatch.setenv(local_cluster.LAUNCHER_ENV, str(os.getppid()))
    monkeypatch.setenv(cluster.SCRATCH_ENV, str(tmp_path / "worker-1"))
    cluster._scratch_dir.cache_clear()
    yield tmp_path / "worker-1"
    cluster._scratch_dir.cache_clear()


def test_the_launcher_s_workers_are_in_the_resume_command(scratch_worker: Path) -> None:
    run = Path("runs/vae/1")
    assert resume_command(run) == "`gencompile train --resume runs/vae/1 --workers 2`"
    assert cluster.run_folder(cluster.output_dir(run)) == run  # not the scratch folder
    assert cluster.run_folder(run) == run


class Fail(keras.callbacks.Callback):
    """At the end of epoch `after`'s first batch: `error` (a read, a peer's collective)."""

    def __init__(self, after: int, error: Exception) -> None:
        super().__init__()
        self.after, self.error, self.epoch = after, error, 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.epoch == self.after:
            raise self.error


def _fit_until(run: Path, writes: Path, error: Exception) -> str:
    """Fit 3 epochs writing to `writes` (the chief's checkpoint of epoch 1 in `run`), with
    `error` in epoch 2; the one line it ends with."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(writes / "checkpoints", 1, keep=3)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")

    class Data:
        steps_per_epoch, validation = 8, None

        def epochs(self, first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
            return tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8).repeat(last - first)

    if writes != run:  # the chief's checkpoint, which every worker restores from
        manifest = checkpoint_files.paths(run / "checkpoints", 1).manifest
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}")  # the worker only reads which epoch the chief keeps
    training = {"steps_per_epoch": None, "early_stopping": None}
    with pytest.raises(RunError) as caught:
        fit_epochs(model, Data(), training, [keeper, Fail(1, error)], epochs=3, initial_epoch=0)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_changed_file_on_a_worker_names_the_run_folder_and_its_workers(
    scratch_worker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.runtime import python_reads

    run = tmp_path / "runs" / "vae" / "1"
    writes = cluster.output_dir(run)
    changed = RunError("data/big.npy changed while it was being read")
    monkeypatch.setattr(python_reads, "failure_behind", lambda error: changed)
    error = tf.errors.InvalidArgumentError(None, None, "data/big.npy changed ...")
    message = _fit_until(run, writes, error)
    assert message == (
        f"data/big.npy changed while it was being read (it changed after training started); "
        f"{run} keeps its checkpoint of epoch 1: restore the file, then continue with "
        f"`gencompile train --resume {run} --workers 2`"
    )


# -- a peer that stopped in a hand-started cluster: one line ------------------------------


def test_a_stopped_peer_is_one_line_naming_the_kept_checkpoint_and_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import types

    _task(monkeypatch, 0)  # the chief of a cluster started by hand
    monkeypatch.delenv(local_cluster.LAUNCHER_ENV, raising=False)
    project_main = types.ModuleType("__main__")
    project_main.__spec__ = types.SimpleNamespace(name="vae_big.train")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", project_main)
    run = tmp_path / "handk"
    message = _fit_until(run, run, tf.errors.UnavailableError(None, None, PEER_DIED))
    assert message == (
        "worker 1 of the cluster stopped (UnavailableError: Collective ops is aborted by: "
        "Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped "
        "sending heartbeats): /job:worker/replica:0/task:1); "
        f"{run} keeps its checkpoint of epoch 1: continue with "
        f"`python -m vae_big.train --run-dir {run} --resume` on every worker"
    )


def test_under_the_launcher_a_stopped_peer_is_left_to_the_launcher(
    scratch_worker: Path, tmp_path: Path
) -> None:
    """The launcher sees every worker: it names the one that was killed."""
    run = tmp_path / "run"
    writes = cluster.output_dir(run)
    with pytest.raises(tf.errors.UnavailableError):
        _fit_until(run, writes, tf.errors.UnavailableError(None, None, PEER_DIED))


# -- the launcher reports the chief's message when workers fail together ------------------


def _ending_worker(tmp_path: Path, index: int, seconds: float, message: str) -> Worker:
    code = f"import time; time.sleep({seconds}); raise SystemExit(1)"
    process = subprocess.Popen([sys.executable, "-c", code])
    error_file = tmp_path / f"worker-{index}.error"
    error_file.write_text(json.dumps({"message": message, "own_advice": True}))
    return Worker(index, process, tmp_path / f"worker-{index}.log", error_file)


def test_the_summary_leaves_out_the_function_a_collective_ran_in() -> None:
    message = (
        "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/"
        "replica:0/task:0/device:CPU:0}} Collective ops is aborted by: recvmsg:Connection "
        "reset by peer\nAdditional GRPC error information from remote target"
    )
    assert tf_summary(message) == ("Collective ops is aborted by: recvmsg:Connection reset by peer")


def test_workers_failing_together_are_reported_by_the_chief(tmp_path: Path) -> None:
    chief = _ending_worker(tmp_path, 0, 1.5, "the chief's advice")
    other = _ending_worker(tmp_path, 1, 0.0, "worker 1's advice")
    with pytest.raises(RunError) as caught:
        local_cluster._wait([chief, other], Path("run"))
    assert str(caught.value) == "worker 0 of 2 stopped: the chief's advice"


# -- the chief's warnings reach the user's terminal ---------------------------------------

WARNS = """
import os, sys, warnings
from gencompile import local_cluster
local_cluster.show_warnings_to_user()
warnings.warn("each epoch leaves out its last batch of 1 training example(s)")
print("TensorFlow's C++ noise", file=sys.stderr)
"""


def test_the_chief_s_warnings_reach_the_launcher_s_stderr(tmp_path: Path) -> None:
    """Through the descriptor `_start` passes the chief, as `warning: ...` lines; its own
    stderr (TensorFlow's logs) stays in its log."""
    code = (
        "import os, subprocess, sys\n"
        "from gencompile import local_cluster\n"
        "fd = local_cluster._stderr_copy()\n"
        "env = {**os.environ, local_cluster.WARNINGS_FD_ENV: str(fd)}\n"
        f"with open({str(tmp_path / 'log')!r}, 'wb') as log:\n"
        f"    subprocess.run([sys.executable, '-c', {WARNS!r}], env=env, stderr=log,"
        " pass_fds=(fd,), check=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "warning: each epoch leaves out its last batch of 1 training example(s)\n"
    assert (tmp_path / "log").read_text() == "TensorFlow's C++ noise\n"


@pytest.mark.slow
def test_train_with_workers_shows_the_chief_s_warning(tmp_path: Path) -> None:
    """897 training examples in batches of 64: the last batch of 1 cannot split over 2
    replicas, and `gencompile train --workers 2` says so once, as one process does."""
    sets = [
        "data.source.n_samples=897",
        "data.validation_split=0",
        "data.batch_size=64",
        "evaluation.metrics=[energy_distance]",
        "output.samples.count=50",
    ]
    command = [sys.executable, "-m", "gencompile", "train", str(SPECS / "vae_moons.yaml")]
    command += [arg for s in sets for arg in ("--set", s)]
    command += ["--epochs", "1", "--quiet", "--workers", "2", "--runs-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "leaves out" in line]
    assert lines == [
        "warning: each epoch leaves out its last batch of 1 training example(s): it would "
        "leave one of the 2 replicas without an example (other examples each epoch, as the "
        "order is reshuffled)"
    ]
