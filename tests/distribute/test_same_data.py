"""The workers of a cluster compare their data fingerprints before the first step: one that
read other data than the chief (a relative data path, another machine's copy of the file)
stops every worker with one line, instead of mixing both data sets' gradients silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.project import build
from gencompile.local_cluster import free_loopback_ports, tf_config
from gencompile.runtime import cluster
from gencompile.spec import load_spec
from tests.distribute.test_multi_worker import QUIET_TF

ROOT = Path(__file__).resolve().parents[2]
CHIEF, OTHER = "57682dad6ad576a06727c6eed741af40", "3f319424cf9bec689e1b3c66633bc7dc"
NPY = {"type": "npy", "path": "data/moons.npy"}
ADVICE = (
    "give data.source.path (data/moons.npy) as an absolute path on a shared file system, "
    "or the same file on every machine"
)


def test_workers_with_the_chiefs_data_pass() -> None:
    same = {"worker 0": CHIEF, "worker 1": CHIEF, "worker 2": CHIEF}
    assert cluster.other_data_message(same, NPY) == ""


def test_a_worker_with_other_data_is_named_with_both_fingerprints() -> None:
    message = cluster.other_data_message({"worker 0": CHIEF, "worker 1": OTHER}, NPY)
    assert message == (
        f"worker 1 reads other data than the chief (fingerprint {OTHER} vs {CHIEF}): {ADVICE}"
    )


def test_the_chief_task_is_the_reference_and_every_other_worker_is_named() -> None:
    found = {"chief": CHIEF, "worker 0": OTHER, "worker 1": CHIEF, "worker 2": "ab" * 16}
    message = cluster.other_data_message(found, {"type": "image_folder", "dir": "/d/imgs"})
    assert message == (
        f"worker 0 and worker 2 read other data than the chief (fingerprints {OTHER}, "
        f"{'ab' * 16} vs {CHIEF}): give data.source.dir (/d/imgs) as an absolute path on a "
        "shared file system, or the same folder on every machine"
    )


def test_a_built_in_data_set_that_differs_asks_for_the_same_versions() -> None:
    message = cluster.other_data_message({"worker 0": CHIEF, "worker 1": OTHER}, {"type": "moons"})
    assert message.endswith(
        ": train with the same data.source and the same gencompile and library versions on "
        "every machine"
    )


def test_the_gathered_rows_name_their_tasks_once_each() -> None:
    chief, other = list(bytes.fromhex(CHIEF)), list(bytes.fromhex(OTHER))
    rows = [[0, 0, *chief], [1, 0, *other], [1, 0, *other]]  # worker 0 has 2 replicas
    assert cluster._fingerprints_by_task(rows) == {"chief": CHIEF, "worker 0": OTHER}


def test_without_a_cluster_nothing_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)

    def no_collective(*args: object) -> list[list[int]]:
        raise AssertionError("a collective without a cluster")

    monkeypatch.setattr(cluster, "_all_gathered", no_collective)
    cluster.check_same_data(tf.distribute.get_strategy(), CHIEF, NPY)  # one process
    one = '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}'
    monkeypatch.setenv("TF_CONFIG", one)
    strategy = tf.distribute.MultiWorkerMirroredStrategy.__new__(
        tf.distribute.MultiWorkerMirroredStrategy
    )  # never joins: a cluster of one task compares with nobody
    cluster.check_same_data(strategy, CHIEF, NPY)


SPEC = """\
spec_version: 1
name: vae-npy
seed: 7
data:
  source: {type: npy, path: data/moons.npy}
  validation_split: 0.1
  preprocessing: {standardize: true}
  batch_size: 64
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16], activation: silu}
  decoder: {mlp: [16], activation: silu}
  likelihood: {type: gaussian, sigma: learned}
training:
  epochs: 1
  steps_per_epoch: 2
  distribution: {strategy: multi_worker}
  optimizer: {type: adam, learning_rate: 2.0e-3}
evaluation:
  metrics: [elbo]
output:
  samples: {count: 16, format: png}
"""


def _save(folder: Path, rows: np.ndarray) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    np.save(folder / "data" / "moons.npy", rows.astype(np.float32))


ROWS = np.random.default_rng(1).normal(size=(300, 2))


def _two_workers(
    tmp_path: Path, other_rows: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int, str]]:
    """Train the project with 2 hand-started workers, worker 1 from another folder, whose
    data/moons.npy holds `other_rows` (the chief's: `ROWS`); (exit code, stderr) of each."""
    _save(tmp_path, ROWS)
    (tmp_path / "spec.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)  # the spec's data path is relative to it, as the chief's
    build(load_spec(tmp_path / "spec.yaml"), tmp_path / "project")
    folders = [tmp_path, tmp_path / "other"]
    _save(folders[1], other_rows)
    ports = free_loopback_ports(2)
    env = {**os.environ, **QUIET_TF, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path / 'project'}"}
    command = [sys.executable, "-m", "vae_npy.train", "--run-dir", str(tmp_path / "run")]
    workers = [
        subprocess.Popen(
            [*command, "--quiet"],
            env={**env, "TF_CONFIG": tf_config(ports, index), "TMPDIR": str(tmp_path)},
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, folder in enumerate(folders)
    ]
    done = []
    for worker in workers:
        try:
            _, err = worker.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for each in workers:
                each.kill()
            raise
        done.append((worker.returncode, err))
    return done


@pytest.mark.slow  # starts 2 TensorFlow workers
def test_a_worker_that_reads_another_file_stops_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = np.random.default_rng(5).normal(size=(300, 2)) * 10 + 50  # same shape, other data
    done = _two_workers(tmp_path, other, monkeypatch)
    assert [code for code, _ in done] == [1, 1], [err[-3000:] for _, err in done]
    for _, err in done:
        assert err.strip().count("\n") == 0, err[-3000:]  # one line, no traceback
        assert err.startswith("error: worker 1 reads other data than the chief (fingerprint ")
        assert err.strip().endswith(ADVICE)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained or recorded


@pytest.mark.slow  # starts 2 TensorFlow workers
def test_workers_that_read_copies_of_the_same_file_train_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _two_workers(tmp_path, ROWS.copy(), monkeypatch)
    assert [code for code, _ in done] == [0, 0], [err[-3000:] for _, err in done]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["data_fingerprint"]) == 64
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 2
