"""`TF_CONFIG` is checked before the multi_worker strategy joins a cluster: a task its
cluster does not name would train alone and, not being the chief, write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.local_cluster import free_loopback_ports, tf_config
from gencompile.runtime import cluster

PAIR = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


def with_config(monkeypatch: pytest.MonkeyPatch, config: object) -> None:
    text = config if isinstance(config, str) else json.dumps(config)
    monkeypatch.setenv("TF_CONFIG", text)


@pytest.mark.parametrize(
    ("config", "chief"),
    [
        ({"cluster": PAIR, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": PAIR, "task": {"type": "worker", "index": 1}}, False),
        (
            {"cluster": {**PAIR, "chief": ["[::1]:2224"]}, "task": {"type": "chief", "index": 0}},
            True,
        ),
        (
            {"cluster": {**PAIR, "chief": ["host:2224"]}, "task": {"type": "worker", "index": 0}},
            False,
        ),
        (  # TensorFlow leaves a side-car evaluator out of the training
            {"cluster": {**PAIR, "evaluator": ["h:3"]}, "task": {"type": "worker", "index": 0}},
            True,
        ),
        ({}, True),  # no cluster: one worker, this process
        ("", True),
    ],
)
def test_a_well_formed_tf_config_names_the_chief(
    monkeypatch: pytest.MonkeyPatch, config: object, chief: bool
) -> None:
    with_config(monkeypatch, config)
    assert cluster.is_chief() is chief
    assert (cluster.output_dir(Path("run")) == Path("run")) is chief


def test_the_launcher_s_tf_config_is_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", tf_config([2222, 2223, 2224], 2))
    assert cluster.cluster_spec()["task"] == {"type": "worker", "index": 2}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{cluster: x}", "TF_CONFIG is not JSON"),
        ("[1, 2]", 'TF_CONFIG must be {"cluster": {...}, "task": {"type": ..., "index": ...}}'),
        ({"task": {"type": "worker", "index": 1}}, "TF_CONFIG's cluster is null: name every task"),
        ({"cluster": PAIR}, "TF_CONFIG's task is null: say which task of the cluster"),
        (
            {"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}},
            'TF_CONFIG\'s cluster.worker is "h:1": it must be a list of "host:port" addresses',
        ),
        (
            {"cluster": {"worker": ["h"]}, "task": {"type": "worker", "index": 0}},
            'TF_CONFIG\'s cluster.worker[0] is "h": give a "host:port" address',
        ),
        (
            {"cluster": {"worker": ["h:1", "h:1"]}, "task": {"type": "worker", "index": 0}},
            "TF_CONFIG's cluster.worker[1] is h:1, as cluster.worker[0] is",
        ),
        (
            {"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}},
            "TF_CONFIG's cluster.chief names 2 tasks: a cluster has at most one chief",
        ),
        (  # a parameter server never joins: every worker would wait for it for ever
            {"cluster": {**PAIR, "ps": ["h:3"]}, "task": {"type": "worker", "index": 0}},
            "TF_CONFIG's cluster.ps: a multi_worker training has chief and worker tasks only "
            "(its workers would wait for ever for a ps task to join); name only those in "
            "cluster",
        ),
        (
            {"cluster": PAIR, "task": {"type": "ps", "index": 0}},
            'TF_CONFIG\'s task.type is "ps": a multi_worker training has chief and worker tasks',
        ),
        (
            {"cluster": PAIR, "task": {"type": "chief", "index": 0}},
            "TF_CONFIG's task.type is chief, but its cluster names no chief tasks (worker only)",
        ),
        (
            {"cluster": PAIR, "task": {"type": "worker", "index": 2}},
            "TF_CONFIG's task.index is 2, but cluster.worker names 2 tasks: give this process "
            "its index in that list, an integer from 0 to 1",
        ),
        ({"cluster": PAIR, "task": {"type": "worker", "index": "1"}}, 'task.index is "1"'),
        ({"cluster": PAIR, "task": {"type": "worker"}}, "task.index is null"),
    ],
)
def test_a_malformed_tf_config_is_one_message(
    monkeypatch: pytest.MonkeyPatch, config: object, message: str
) -> None:
    with_config(monkeypatch, config)
    with pytest.raises(RunError) as caught:
        cluster.cluster_spec()
    assert message in str(caught.value)
    assert str(caught.value).endswith("see the README's 'Scaling out'")
    with pytest.raises(RunError):  # what decides where the run is written
        cluster.is_chief()


def test_the_launcher_and_the_workers_name_the_scratch_folder_alike(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_config(monkeypatch, {"cluster": PAIR, "task": {"type": "worker", "index": 1}})
    monkeypatch.setenv(cluster.SCRATCH_ENV, str(tmp_path / "worker-1"))
    cluster._scratch_dir.cache_clear()
    try:
        assert cluster.output_dir(Path("run")) == tmp_path / "worker-1"
    finally:
        cluster._scratch_dir.cache_clear()


CHILD = """
from gencompile.runtime.cluster import multi_worker_strategy
from tensorflow.python.eager import context

strategy = multi_worker_strategy()
service = context.context().coordination_service
print(strategy.num_replicas_in_sync, service.service_leader, service.heartbeat_timeout_in_ms)
"""


@pytest.mark.slow  # starts TensorFlow in a cluster of one
@pytest.mark.parametrize("job", ["worker", "chief"])
def test_the_cluster_tolerates_a_busy_machine_s_late_heartbeats(job: str) -> None:
    (port,) = free_loopback_ports(1)
    config = {"cluster": {job: [f"127.0.0.1:{port}"]}, "task": {"type": job, "index": 0}}
    env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    milliseconds = cluster.HEARTBEAT_TIMEOUT_SECONDS * 1000
    assert done.stdout.split() == ["1", f"/job:{job}/replica:0/task:0", str(milliseconds)]
    assert cluster.HEARTBEAT_TIMEOUT_SECONDS >= 60  # TensorFlow's own 10 s lost a CI run
