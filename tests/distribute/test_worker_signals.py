"""Workers and signals: SIGTERM stops a multi_worker training as Ctrl-C does (the owed
checkpoint written, the run resumable), workers die with their launcher, and a peer that
never joins stops the cluster with a message. Each starts TensorFlow processes: slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gencompile.local_cluster import free_loopback_ports
from gencompile.run_status import read_status
from gencompile.runtime import cluster
from tests.distribute.test_multi_worker import QUIET_TF, SPECS, _worker_pids

ROOT = Path(__file__).resolve().parents[2]
LINUX = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
# Checkpoints every 10 epochs: stopped in epoch 3, only the owed one keeps epoch 2.
OWED = [
    str(SPECS / "vae_moons.yaml"),
    *("--set", "training.epochs=6", "--set", "data.source.n_samples=3000"),
    *("--set", "data.batch_size=16", "--set", "training.checkpoint={every_epochs: 10}"),
]


def _launch(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **QUIET_TF, "TMPDIR": str(scratch), "HOME": str(tmp_path)}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "gencompile", "train", *args, "--workers", "2", "--quiet"]
    launcher = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return launcher, tmp_path / "runs" / "vae-moons"


def _wait_for(launcher: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 300
    while not ready():
        assert launcher.poll() is None, launcher.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {what} within 300 s"
        time.sleep(0.2)


def _history_rows(runs: Path) -> int:
    found = list(runs.glob("*/history.csv")) if runs.exists() else []
    return len(found[0].read_text().splitlines()) - 1 if found else 0


@pytest.mark.slow
@LINUX
def test_sigterm_to_the_launcher_keeps_the_owed_checkpoint(tmp_path: Path) -> None:
    launcher, runs = _launch(tmp_path, *OWED)
    _wait_for(launcher, lambda: _history_rows(runs) >= 2, "second epoch")
    workers = _worker_pids(launcher.pid)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=120)
    (run,) = runs.iterdir()
    assert launcher.returncode == 130, stderr[-3000:]
    trained = _history_rows(runs)  # epoch 2, or 3 when it ended before the signal came
    assert f"keeps its checkpoint of epoch {trained}; continue with" in stderr
    assert f"--resume {run.relative_to(tmp_path)} --workers 2" in stderr
    assert "Traceback" not in stderr
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoints" / f"epoch-{trained:04d}.weights.h5").is_file()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers.values())


@pytest.mark.slow
@LINUX
def test_workers_die_with_their_launcher(tmp_path: Path) -> None:
    launcher, runs = _launch(tmp_path, *OWED)
    _wait_for(launcher, lambda: _history_rows(runs) >= 1, "first epoch")
    workers = _worker_pids(launcher.pid)
    assert len(workers) == 2
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers.values())  # nothing writes the run now
    (run,) = runs.iterdir()
    rows = _history_rows(runs)
    time.sleep(3)
    assert _history_rows(runs) == rows
    assert read_status(run) == "interrupted"  # its trainer is gone: resumable


def _alive(pid: int) -> bool:
    """Running, not a zombie that its new parent has yet to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


SIGTERM_CHILD = """
import os, signal, time
from gencompile.runtime.cluster import multi_worker_strategy

multi_worker_strategy()  # joins the cluster: TensorFlow's coordination service starts
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    print("SIGTERM ignored")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


@pytest.mark.slow  # starts TensorFlow in a cluster of one
def test_sigterm_stops_a_hand_started_worker_as_ctrl_c_does() -> None:
    (port,) = free_loopback_ports(1)
    config = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, **QUIET_TF, "TF_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["KeyboardInterrupt"], done.stderr[-3000:]


ABSENT_CHILD = """
from gencompile.errors import RunError
from gencompile.run_status import read_status
from gencompile.runtime import cluster

cluster.REGISTER_TIMEOUT_SECONDS = 3
try:
    cluster.multi_worker_strategy()
except RunError as error:
    print(error)
"""


@pytest.mark.slow  # starts TensorFlow, then waits for the peer
def test_a_peer_that_never_joins_stops_the_cluster_with_its_name() -> None:
    ports = free_loopback_ports(2)
    workers = [f"127.0.0.1:{port}" for port in ports]
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, **QUIET_TF, "TF_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", ABSENT_CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == (
        f"worker 1 at {workers[1]} did not join the cluster within 3 s: start it with its own "
        f"TF_CONFIG, or correct its address in every worker's TF_CONFIG; {cluster.SEE}"
    ), done.stderr[-3000:]
