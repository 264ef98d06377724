"""`training.distribution: {strategy: multi_worker}` and `gencompile train --workers N`.

Two worker processes on loopback ports (each one CPU device, the global batch split
between them) train every family's case to the weights one process reaches at the same
global batch, within a relative 1e-4; only the chief writes the run; a worker killed
mid-run fails the whole training with its message, and `--resume` finishes the run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.errors import RunError
from gencompile.local_cluster import free_loopback_ports, run_workers, tf_config
from gencompile.spec import load_spec
from tests.distribute.test_mirrored import assert_same_history

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
CHILD = Path(__file__).with_name("multi_worker_child.py")
TOLERANCE = 1e-4
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}

# Each of these starts several TensorFlow processes and trains in them: the slow tier
# (`make test-slow`, which CI runs too).
STARTS_WORKERS = pytest.mark.slow


def _wait_all(processes: dict[str, subprocess.Popen[str]], timeout: float) -> dict[str, str]:
    """Every process' stdout; if one fails or time runs out, stop the rest and fail."""
    deadline = time.monotonic() + timeout
    while True:
        codes = {name: process.poll() for name, process in processes.items()}
        failed = [name for name, code in codes.items() if code not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for process in processes.values():
                process.kill()
            output = {
                name: p.stdout.read()[-2000:] + p.stderr.read()[-3000:]
                for name, p in processes.items()
            }
            pytest.fail(f"failed: {failed or 'timeout'}\n{output}")
        if all(code == 0 for code in codes.values()):
            return {name: process.stdout.read() for name, process in processes.items()}
        time.sleep(0.2)


# Uneven cases (conftest.py) the workers train too: a last batch split 2 + 1 between them,
# held-out batches split 4 + 3; a last batch of 1, which the epochs leave out. The GAN and
# the guided diffusion model place several draws a step by one split of the batch.
UNEVEN = ("vae_uneven", "vae_skips_one", "gan_uneven", "diffusion_guided_uneven")


@pytest.fixture(scope="module")
def trained_cases(
    tmp_path_factory: pytest.TempPathFactory,
    family_cases: list[dict[str, Any]],
    uneven_cases: list[dict[str, Any]],
) -> tuple[Path, dict[str, Any]]:
    """Every case trained by one process (`none`) and by two workers (`multi_worker`)."""
    out = tmp_path_factory.mktemp("multi_worker")
    cases = json.dumps([*family_cases, *(c for c in uneven_cases if c["name"] in UNEVEN)])
    ports = free_loopback_ports(2)
    roles = {"reference": None, "worker-0": tf_config(ports, 0), "worker-1": tf_config(ports, 1)}
    processes = {}
    for name, config in roles.items():
        env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
        env.update(QUIET_TF, **({"TF_CONFIG": config} if config else {}))
        role = "reference" if config is None else "worker"
        processes[name] = subprocess.Popen(
            [sys.executable, str(CHILD), str(out), cases, role],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outputs = _wait_all(processes, timeout=1200)
    results = {
        name: {line["name"]: line for line in map(json.loads, text.splitlines()) if line}
        for name, text in outputs.items()
    }
    return out, results


def _arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def _relative_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    assert len(first) == len(second)
    worst = 0.0
    for a, b in zip(first, second, strict=True):
        scale = float(np.max(np.abs(a)))
        diff = float(np.max(np.abs(a - b)))
        worst = max(worst, diff / scale if scale else diff)
    return worst


@STARTS_WORKERS
def test_two_workers_train_as_one_process(trained_cases, family_case) -> None:
    out, results = trained_cases
    name = family_case
    chief, other = results["worker-0"][name], results["worker-1"][name]
    assert (chief["replicas"], chief["chief"], other["chief"]) == (2, True, False)
    assert chief["epochs"] == results["reference"][name]["epochs"]
    reference = _arrays(out / "reference" / f"{name}.npz")
    assert _relative_difference(reference, _arrays(out / "worker-0" / f"{name}.npz")) < TOLERANCE
    # Every worker ends with the chief's weights: the all-reduced sums are the same sums.
    assert _relative_difference(
        _arrays(out / "worker-0" / f"{name}.npz"), _arrays(out / "worker-1" / f"{name}.npz")
    ) == pytest.approx(0.0, abs=1e-7)


@STARTS_WORKERS
@pytest.mark.parametrize("name", UNEVEN)
def test_two_workers_split_uneven_batches_as_one_process(trained_cases, name) -> None:
    """Each worker's loss weighs its share of a batch and the logged means are over
    examples, as on 2 devices of one process (test_mirrored.py): the weights and the
    history are one process's; a last batch of 1 is left out of the workers' epochs."""
    out, results = trained_cases
    chief, reference = results["worker-0"][name], results["reference"][name]
    assert chief["replicas"] == 2
    assert chief["steps"] == reference["steps"]  # 8 for vae_skips_one: 8 x 16 + 1 skipped
    reference_weights = _arrays(out / "reference" / f"{name}.npz")
    chief_weights = _arrays(out / "worker-0" / f"{name}.npz")
    assert _relative_difference(reference_weights, chief_weights) < TOLERANCE
    history = {key: [values, chief["history"][key]] for key, values in reference["history"].items()}
    assert_same_history(history, TOLERANCE)


@STARTS_WORKERS
def test_only_the_chief_writes_the_run(trained_cases, family_cases) -> None:
    _, results = trained_cases
    built = {"README.md", "pyproject.toml", "spec.yaml", "spec.lock.json", "tests"}
    for name in (case["name"] for case in family_cases):
        package = f"{name}_multi_worker"
        assert "history.csv" in results["worker-0"][name]["files"]
        assert set(results["worker-1"][name]["files"]) == {*built, package}  # as built


def _train(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gencompile", "train", *args, "--quiet"]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=env["HOME"]
    )


@STARTS_WORKERS
def test_train_with_two_workers_writes_the_run_folder_once_and_reproduces(tmp_path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **QUIET_TF, "TMPDIR": str(scratch), "HOME": str(tmp_path)}
    done = _train(str(SPECS / "gan_ring8.yaml"), "--workers", "2", "--epochs", "2", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "gan-ring8").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    lock = json.loads((run / "spec.lock.json").read_text())
    assert lock["resolved_spec"]["training"]["distribution"] == {"strategy": "multi_worker"}
    assert lock["workers"] == 2  # what `reproduce` starts again
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]  # one row an epoch
    record = json.loads((run / "metrics.json").read_text())
    assert record["epochs"] == 2 and "energy_distance" in record["metrics"]
    for name in ("model.weights.h5", "model.keras", "samples.png", "report.md"):
        assert (run / name).is_file()
    assert not list(scratch.iterdir())  # every worker's scratch folder is gone

    # Two workers sum in one order every time: the reproduction is bit for bit.
    again = subprocess.run(
        [sys.executable, "-m", "gencompile", "reproduce", str(run), "-o", str(tmp_path / "again")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "weights sha256" in again.stdout and "differs" not in again.stdout


def _worker_pids(launcher: int) -> dict[int, int]:
    """Worker index -> pid of the workers a `gencompile train --workers` process started."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    found = {}
    for pid in map(int, children):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        config = [item for item in environ if item.startswith(b"TF_CONFIG=")]
        if config:
            found[json.loads(config[0][len("TF_CONFIG=") :])["task"]["index"]] = pid
    return found


@STARTS_WORKERS
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_killed_worker_fails_the_training_and_resume_finishes_it(tmp_path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **QUIET_TF, "TMPDIR": str(scratch), "HOME": str(tmp_path)}
    spec = [str(SPECS / "gan_ring8.yaml"), "--epochs", "12"]
    spec += ["--set", "data.source.n_samples=4000", "--set", "training.checkpoint.every_epochs=1"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "gencompile", "train", *spec, "--workers", "2", "--quiet"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = tmp_path / "runs" / "gan-ring8"
    deadline = time.monotonic() + 300
    while not (runs.exists() and list(runs.glob("*/checkpoints/epoch-*.json"))):  # one epoch
        assert launcher.poll() is None, launcher.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    workers = _worker_pids(launcher.pid)
    os.kill(workers[1], signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 1
    assert "worker 1 of 2 failed (killed by SIGKILL); every worker was stopped" in stderr
    assert "Traceback" not in stderr
    (run,) = runs.iterdir()
    resume = f"gencompile train --resume {run.relative_to(tmp_path)} --workers 2"
    assert resume in stderr.replace("\n", "")
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers.values())  # all stopped
    # the killed worker could not remove its scratch folder (checkpoints): the launcher did
    assert not list(scratch.iterdir())

    done = _train("--resume", str(run), "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    rows = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, 13))


@STARTS_WORKERS
def test_a_run_stopped_in_its_final_evaluation_is_finished_by_resume(tmp_path) -> None:
    """Its checkpoint holds the last epoch: no epoch is left to fit (a distributed
    model.fit of no epoch fails with StopIteration), so the resume goes on to evaluate."""
    from gencompile.run_status import write_status

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, **QUIET_TF, "TMPDIR": str(scratch), "HOME": str(tmp_path)}
    spec = [str(SPECS / "vae_moons.yaml"), "--epochs", "1", "--workers", "2"]
    spec += ["--set", "data.source.n_samples=1000", "--set", "evaluation.importance_samples=5"]
    spec += ["--set", "training.distribution.strategy=multi_worker"]
    done = _train(*spec, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "vae-moons").iterdir()
    trained = json.loads((run / "metrics.json").read_text())
    # What SIGTERM during the final evaluation leaves: the last epoch's checkpoint and
    # no final files yet.
    for name in ("metrics.json", "model.weights.h5"):
        (run / name).unlink()
    write_status(run, "interrupted")

    done = _train("--resume", str(run), "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    record = json.loads((run / "metrics.json").read_text())
    assert record["epochs"] == 1
    assert record["weights_sha256"] == trained["weights_sha256"]  # nothing trained again


def test_a_worker_that_cannot_start_fails_the_training_with_its_message(tmp_path) -> None:
    with pytest.raises(RunError) as caught:
        run_workers(tmp_path, "nothing_here", ["--quiet"], 2, allow_custom_code=False)
    message = str(caught.value)
    assert re.match(r"worker [01] of 2 stopped: ", message)  # whichever stopped first
    assert "spec.lock.json" in message  # the worker's own reason: not a run folder
    assert "--resume" not in message  # its own error says what to do; resuming would not


def test_a_worker_failure_advises_resuming_the_run_not_the_project_it_imports(
    tmp_path: Path,
) -> None:
    """A continuation's workers import its pending project (RUN/checkpoints/continuation),
    but what resumes it is `--resume RUN`."""
    from gencompile.compiler.project import build
    from gencompile.runs import train_in

    run = tmp_path / "run"
    project = run / "checkpoints" / "continuation"
    built = build(load_spec(SPECS / "gmm_blobs.yaml"), project)
    with pytest.raises(RunError) as caught:  # argparse's exit 2: the advice names the run
        train_in(run, built.plan.package, built.lock, True, "--no-such-flag", workers=1,
                 project=project)  # fmt: skip
    message = str(caught.value)
    assert message.startswith("worker 0 of 1 failed (exit code 2: ")
    assert "unrecognized arguments: --no-such-flag" in message
    assert message.endswith(
        f"Continue from the newest checkpoint with `gencompile train --resume {run} --workers 1`"
    )


def test_loopback_workers_get_distinct_ports_and_their_own_task() -> None:
    ports = free_loopback_ports(3)
    assert len(set(ports)) == 3
    config = json.loads(tf_config(ports, 2))
    assert config["cluster"]["worker"] == [f"127.0.0.1:{port}" for port in ports]
    assert config["task"] == {"type": "worker", "index": 2}


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_family_accepts_multi_worker(spec, example_overrides) -> None:
    overrides = [*example_overrides(spec), "training.distribution.strategy=multi_worker"]
    plan = lower(load_spec(spec, overrides))
    mixture = plan.family == "mixture"  # its steps take a replica's empty slice
    assert plan.training["distribution"] == {"strategy": "multi_worker", "empty_slices": mixture}


def test_the_generated_train_py_joins_the_cluster_before_anything_else() -> None:
    def train_py(strategy: str, name: str = "/train.py") -> str:
        overrides = [f"training.distribution.strategy={strategy}"]
        loaded = load_spec(SPECS / "vae_moons.yaml", overrides)
        files = render_project(loaded, lower(loaded))
        return next(text for path, text in files.items() if path.endswith(name))

    text = train_py("multi_worker")
    assert text.index("cluster.multi_worker_strategy()") < text.index("repro.set_seed(")
    assert "out_dir = cluster.output_dir(args.run_dir)" in text
    assert "training.write_artifacts(model, data, fitted, metrics, OUTPUT, out_dir)" in text
    assert "resume_point(model, args.run_dir)" in text  # every worker reads the chief's
    assert "cluster" not in train_py("none")
    readme = train_py("multi_worker", "README.md")  # says how to run it on a cluster
    assert "export TF_CONFIG=" in readme and "--workers N" in readme
    assert "TF_CONFIG" not in train_py("none", "README.md")


def test_a_batch_that_does_not_split_between_the_replicas_stops_before_training() -> None:
    from gencompile.runtime.replica_batches import check_batch_split

    check_batch_split(16, 2, "multi_worker")  # equal slices: nothing to say
    with pytest.raises(RunError) as caught:
        check_batch_split(15, 2, "multi_worker")
    assert str(caught.value) == (
        "data.batch_size is 15, which does not split evenly between the 2 replicas of the "
        "'multi_worker' strategy: use a multiple of 2 (e.g. --set data.batch_size=16)"
    )
