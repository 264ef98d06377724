"""How `gencompile train --workers N` says a worker's failure, and what it refuses before
starting any worker: each in one line, naming the worker at fault (no TensorFlow here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile import local_cluster
from gencompile.compiler.project import build, write_lock
from gencompile.errors import RunError
from gencompile.local_cluster import Worker
from gencompile.run_status import write_status
from gencompile.spec import load_spec
from gencompile.tf_messages import tf_summary

SPECS = Path(__file__).resolve().parents[2] / "specs"

# What TensorFlow raised on the healthy chief when worker 1 froze (SIGSTOP), shortened:
# its "Detected at node" stack ran to 38 lines.
HUNG_PEER = """Graph execution error:

Detected at node CollectiveReduceV2 defined at (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main

  File "/work/main/gencompile/runtime/cluster.py", line 48, in one

Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks \
are unhealthy (stopped sending heartbeats):
/job:worker/replica:0/task:1
The tasks have crashed. Check the task logs for an earlier error, or scheduler events \
(e.g. preemption, eviction) to debug further.
The error could be from a previous operation. Restart your program to reset.
\t [[{{node CollectiveReduceV2}}]] [Op:__inference_multi_step_on_iterator_6904]"""


def _failed_worker(tmp_path: Path, index: int, message: str) -> Worker:
    """A worker that exited 1 after writing `message` as worker_main reports an error."""
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    process.wait()
    error_file = tmp_path / f"worker-{index}.error"
    summary = f"UnavailableError: {tf_summary(message)}"
    error_file.write_text(json.dumps({"message": summary, "own_advice": False}))
    return Worker(index, process, tmp_path / f"worker-{index}.log", error_file)


def test_a_hung_worker_is_named_in_one_line_not_the_chief_that_reported_it(
    tmp_path: Path,
) -> None:
    chief = _failed_worker(tmp_path, 0, HUNG_PEER)
    message = local_cluster._failure_message(chief, 2, Path("runs/vae/1"))
    assert message == (
        "worker 1 of 2 stopped sending heartbeats for 120 s (hung or frozen); every worker "
        "was stopped. Continue from the newest checkpoint with "
        "`gencompile train --resume runs/vae/1 --workers 2`"
    )


def test_a_tensorflow_error_is_reported_by_its_first_meaningful_line(tmp_path: Path) -> None:
    summary = tf_summary(HUNG_PEER)
    assert "\n" not in summary and "File" not in summary and "Detected at" not in summary
    assert summary.startswith("Collective ops is aborted by: Error reported from")
    assert summary.endswith("(stopped sending heartbeats): /job:worker/replica:0/task:1")
    other = 'Graph execution error:\n\nDetected at node X defined at:\n  File "a"\n\nbad op'
    worker = _failed_worker(tmp_path, 1, other)
    message = local_cluster._failure_message(worker, 2, Path("run"))
    assert message.startswith("worker 1 of 2 failed (UnavailableError: bad op); every worker")


def test_the_launcher_and_the_workers_agree_on_the_heartbeat_timeout() -> None:
    from gencompile.runtime import cluster

    assert local_cluster.HEARTBEAT_TIMEOUT_SECONDS == cluster.HEARTBEAT_TIMEOUT_SECONDS


def test_a_batch_the_workers_cannot_split_is_refused_before_a_run_folder_is_made(
    tmp_path: Path,
) -> None:
    from gencompile.runs import train

    overrides = ["data.batch_size=15", "data.source.n_samples=400"]
    with pytest.raises(RunError) as caught:
        train(SPECS / "vae_moons.yaml", overrides, 1, runs_root=tmp_path / "runs", workers=2)
    assert str(caught.value) == (
        "data.batch_size is 15, which does not split evenly between the 2 replicas of the "
        "'multi_worker' strategy: use a multiple of 2 (e.g. --set data.batch_size=16)"
    )
    assert not (tmp_path / "runs").exists()  # nothing built, nothing left to compare


def _failed_two_worker_run(run: Path) -> None:
    """A run folder as `train --workers 2` leaves it when a worker died in epoch 2."""
    overrides = ["training.distribution.strategy=multi_worker"]
    built = build(load_spec(SPECS / "vae_moons.yaml", overrides), run)
    write_lock(run, dict(built.lock, workers=2))
    write_status(run, "failed", error="RunError: worker 1 of 2 failed (killed by SIGKILL)")


@pytest.mark.parametrize("asked", [1, 3])
def test_a_resume_with_another_number_of_workers_is_refused(tmp_path: Path, asked: int) -> None:
    from gencompile.runs import resume

    run = tmp_path / "run"
    _failed_two_worker_run(run)
    with pytest.raises(RunError) as caught:
        resume(run, quiet=True, workers=asked)
    assert str(caught.value) == (
        f"{run} was trained by 2 workers, not {asked}: resume it with --workers 2 (or "
        "without --workers), so that its epochs sum their gradients alike and "
        "`gencompile reproduce` can repeat it"
    )


def test_a_resume_without_workers_trains_with_as_many_as_the_run_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import runs

    run = tmp_path / "run"
    _failed_two_worker_run(run)
    started: list[int] = []

    def no_training(run_dir: Path, package: str, argv: list[str], workers: int, **_: object):
        started.append(workers)
        raise RunError("stopped here")

    monkeypatch.setattr(runs, "run_workers", no_training)
    monkeypatch.setattr(runs, "refuse_drift", lambda *args: None)  # no checkpoint to read
    with pytest.raises(RunError, match="stopped here"):
        runs.resume(run, quiet=True)
    assert started == [2]


def test_the_workers_are_recorded_when_training_starts_not_only_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import runs

    def worker_dies(run_dir: Path, *args: object, **kwargs: object) -> None:
        raise RunError("worker 1 of 2 failed (killed by SIGKILL)")

    monkeypatch.setattr(runs, "run_workers", worker_dies)
    with pytest.raises(RunError, match="killed by SIGKILL"):
        runs.train(SPECS / "vae_moons.yaml", ["data.source.n_samples=400"], 1,
                   runs_root=tmp_path / "runs", quiet=True, workers=2)  # fmt: skip
    (run,) = (tmp_path / "runs" / "vae-moons").iterdir()
    assert json.loads((run / "spec.lock.json").read_text())["workers"] == 2
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
