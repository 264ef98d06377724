"""Training on several workers: TensorFlow's `MultiWorkerMirroredStrategy` over the cluster
that the standard `TF_CONFIG` environment variable names.

Every worker runs the same program on the same data (`check_same_data` compares their
data fingerprints before the first step): Keras splits each global batch between the
workers' replicas (data sharding by element, after the seeded order), sums the gradients
with collective all-reduces, and every worker ends with the same weights. The
chief (task `chief`, or worker 0 when the cluster has no chief) writes the run folder;
every other worker writes to a scratch folder of its own, so the collective operations
that saving and evaluation run stay the same on every worker. `gencompile train --workers`
makes and removes those folders (`local_cluster`); a worker started by hand removes its own
when it exits.

Without `TF_CONFIG` the strategy is one worker: this process, with its local devices.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import tensorflow as tf

from gencompile.data_paths import DATA_FILE_FIELDS
from gencompile.errors import RunError
from gencompile.worker_env import LAUNCHER_ENV, SCRATCH_ENV

__all__ = [
    "check_same_data",
    "cluster_spec",
    "is_chief",
    "launched_workers",
    "multi_worker_strategy",
    "other_data_message",
    "output_dir",
    "run_folder",
    "shard_by_example",
    "task_count",
]


class _MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's strategy, with the `reduce` that Keras 3's `fit` expects of it.

    Across workers TensorFlow's `reduce` takes one tensor, not a structure (Keras reduces a
    batch `(x, y)` to build a model), and Keras averages a step's scalar logs with
    `axis=0`, which a scalar has not (tensorflow/tensorflow#72388). Here a structure is
    reduced value by value, in its own dtype (as on one worker: labels stay integers), and
    the mean of a scalar over the replicas is taken as such.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:
        def one(tensor: Any) -> Any:
            rank = tensor.shape.rank if hasattr(tensor, "shape") else None
            reduced = super(_MultiWorkerStrategy, self).reduce(
                reduce_op, tensor, axis=None if rank == 0 else axis
            )
            return tf.cast(reduced, tensor.dtype) if hasattr(tensor, "dtype") else reduced

        return tf.nest.map_structure(one, value)


SEE = "see the README's 'Scaling out'"
TASK_TYPES = ("chief", "worker")  # the tasks of a MultiWorkerMirroredStrategy
# TensorFlow declares a worker dead when its heartbeats stop for 10 s, which a busy machine
# can cause without anything being wrong (a CI run lost a healthy chief so). A worker that
# exits is noticed at once anyway: its connections close, and `--workers` watches it.
HEARTBEAT_TIMEOUT_SECONDS = 120
# How long the cluster waits for every task to join (TensorFlow's default: for ever): a peer
# whose address has a typo, or that was never started, stops the others with a message.
REGISTER_TIMEOUT_SECONDS = 300
IGNORED_JOBS = ("evaluator",)  # TensorFlow leaves a side-car evaluator out of the training
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}")  # host:port, [v6]:port


def cluster_spec() -> dict[str, Any]:
    """The `TF_CONFIG` of this process ({} when it names no cluster), checked: a task that
    its cluster does not name would train alone and, not being the chief, write nothing."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"TF_CONFIG is not JSON ({err}); {SEE}") from None
    if not isinstance(config, dict):
        raise RunError(
            f'TF_CONFIG must be {{"cluster": {{...}}, "task": {{"type": ..., "index": ...}}}}, '
            f"got {type(config).__name__} JSON; {SEE}"
        )
    if not config.get("cluster") and not config.get("task"):
        return {}  # `{}`: no cluster, as without TF_CONFIG
    _check_cluster(config.get("cluster"))
    _check_task(config.get("task"), config["cluster"])
    return config


def _check_cluster(cluster: Any) -> None:
    """`cluster`: job name -> a list of distinct host:port addresses."""
    if not isinstance(cluster, dict) or not cluster:
        raise RunError(
            f"TF_CONFIG's cluster is {json.dumps(cluster)}: name every task of the "
            'training, e.g. "cluster": {"worker": ["host0:2222", "host1:2222"]}, in the '
            f"TF_CONFIG of every worker; {SEE}"
        )
    seen: dict[str, str] = {}
    for job, tasks in cluster.items():
        if job not in (*TASK_TYPES, *IGNORED_JOBS):  # a `ps` would never join: a hang
            raise RunError(
                f"TF_CONFIG's cluster.{job}: a multi_worker training has "
                f"{' and '.join(TASK_TYPES)} tasks only (its workers would wait for ever for "
                f"a {job} task to join); name only those in cluster; {SEE}"
            )
        if not isinstance(tasks, list) or not tasks:
            raise RunError(
                f"TF_CONFIG's cluster.{job} is {json.dumps(tasks)}: it must be a list of "
                f'"host:port" addresses, one a task, e.g. ["host0:2222", "host1:2222"]; {SEE}'
            )
        for index, address in enumerate(tasks):
            where = f"cluster.{job}[{index}]"
            if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
                raise RunError(
                    f'TF_CONFIG\'s {where} is {json.dumps(address)}: give a "host:port" '
                    f'address such as "host0:2222"; {SEE}'
                )
            if address in seen:
                raise RunError(
                    f"TF_CONFIG's {where} is {address}, as {seen[address]} is: give each "
                    f"task an address of its own; {SEE}"
                )
            seen[address] = where
    if len(cluster.get("chief", [])) > 1:
        raise RunError(
            f"TF_CONFIG's cluster.chief names {len(cluster['chief'])} tasks: a cluster has "
            f"at most one chief (the task that writes the run); {SEE}"
        )


def _check_task(task: Any, cluster: dict[str, list[str]]) -> None:
    """`task`: this process' type (chief or worker, named in the cluster) and its index."""
    if not isinstance(task, dict) or not task:
        raise RunError(
            f"TF_CONFIG's task is {json.dumps(task)}: say which task of the cluster this "
            'process is, e.g. "task": {"type": "worker", "index": 0}; ' + SEE
        )
    kind, index = task.get("type"), task.get("index")
    if kind not in TASK_TYPES:
        raise RunError(
            f"TF_CONFIG's task.type is {json.dumps(kind)}: a multi_worker training has "
            f"{' and '.join(TASK_TYPES)} tasks only; {SEE}"
        )
    if kind not in cluster:
        raise RunError(
            f"TF_CONFIG's task.type is {kind}, but its cluster names no {kind} tasks "
            f"({', '.join(cluster)} only): list every {kind} in cluster.{kind}; {SEE}"
        )
    count = len(cluster[kind])
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise RunError(
            f"TF_CONFIG's task.index is {json.dumps(index)}, but cluster.{kind} names "
            f"{count} task{'s' if count > 1 else ''}: give this process its index in that "
            f"list, an integer from 0 to {count - 1}; {SEE}"
        )


@functools.cache
def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """One per process, created before TensorFlow runs any operation (TensorFlow configures
    its collective operations when it starts)."""
    config = cluster_spec()  # a bad TF_CONFIG: a message, not TensorFlow's traceback
    if config:
        _configure_coordination(config["cluster"])
    try:
        strategy = _MultiWorkerStrategy()
    except tf.errors.DeadlineExceededError as err:
        missing = _not_joined(str(err), config.get("cluster", {}))
        if not missing:
            raise
        raise RunError(
            f"{missing} did not join the cluster within {REGISTER_TIMEOUT_SECONDS} s: start "
            f"it with its own TF_CONFIG, or correct its address in every worker's TF_CONFIG; "
            f"{SEE}"
        ) from None
    except RuntimeError as err:
        if "program startup" not in str(err):
            raise
        raise RunError(
            "the multi_worker strategy joins its cluster when TensorFlow starts, and this "
            "process has already run TensorFlow: train in a fresh process "
            "(gencompile train --workers N, or python -m <package>.train on each worker)"
        ) from None
    _take_sigterm_back()
    return strategy


def _take_sigterm_back() -> None:
    """SIGTERM stops this worker as Ctrl-C does (KeyboardInterrupt: the owed checkpoint is
    written). The coordination service that joining the cluster starts installs its own
    SIGTERM handler in C++ (a preemption notifier this runtime does not use), unseen by
    Python's `signal.getsignal`: without this a worker trains on until it is killed."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread sets handlers; this one is rare and keeps TF's
    handler = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, handler if callable(handler) else signal.default_int_handler)


def _not_joined(message: str, cluster: dict[str, list[str]]) -> str:
    """The tasks TensorFlow's registration barrier says never came, with their addresses
    ("" when the message is not that barrier's)."""
    if "Wait_for_all_tasks_to_register" not in message:
        return ""
    found = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", message.split("timed out task")[-1])
    named = []
    for job, index in dict.fromkeys(found):  # in order, once each
        tasks = cluster.get(job, [])
        where = f" at {tasks[int(index)]}" if int(index) < len(tasks) else ""
        named.append(f"{job} {index}{where}")
    return " and ".join(named) or "a task of the cluster"


def _configure_coordination(cluster: dict[str, list[str]]) -> None:
    """TensorFlow's coordination service as the strategy would start it, with a heartbeat
    timeout that tolerates a loaded machine (TensorFlow keeps a service set before it)."""
    # The strategy module's own names: where the protobuf lives moved between versions.
    from tensorflow.python.distribute import collective_all_reduce_strategy as tf_strategy

    context, multi_worker_util = tf_strategy.context, tf_strategy.multi_worker_util
    jobs = [
        tf_strategy.coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
        for job in TASK_TYPES
        if job in cluster
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_SECONDS * 1000,
        cluster_register_timeout_in_ms=REGISTER_TIMEOUT_SECONDS * 1000,
    )
    # Without the barrier the timeout does not apply: every task waits until all joined.
    context.context().coordination_service.cluster_register_with_barrier = True


def is_chief() -> bool:
    """Whether this process writes the run: the `chief` task, or worker 0 without one."""
    config = cluster_spec()
    if not config:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["index"] == 0 and "chief" not in config["cluster"]


def output_dir(run_dir: Path) -> Path:
    """Where this worker writes: the run folder on the chief, a scratch folder elsewhere."""
    if is_chief():
        return run_dir
    scratch = _scratch_dir()
    _RUN_FOLDERS[scratch] = Path(run_dir)
    return scratch


_RUN_FOLDERS: dict[Path, Path] = {}  # a worker's scratch folder -> the run folder it trains


def run_folder(directory: Path) -> Path:
    """The run folder that `directory` (where this worker writes) trains: the chief's, which
    keeps the run's checkpoints, rather than a scratch folder that goes when workers end."""
    return _RUN_FOLDERS.get(Path(directory), Path(directory))


def task_count(config: dict[str, Any]) -> int:
    """The tasks that train in the cluster of a checked `TF_CONFIG` (1 without one)."""
    jobs = config.get("cluster", {})
    return sum(len(jobs.get(job, [])) for job in TASK_TYPES) or 1


def launched_workers() -> int | None:
    """The N of the `gencompile train --workers N` that started this worker (None: this
    process was started otherwise), for advice that names the command to go on with."""
    if not os.environ.get(LAUNCHER_ENV):
        return None
    return task_count(cluster_spec())


@functools.cache
def _scratch_dir() -> Path:
    given = os.environ.get(SCRATCH_ENV)
    if given:  # `--workers N`: the launcher removes it, even when this worker is killed
        return Path(given)
    # a worker started by hand: removed at its exit (a killed worker leaves it behind)
    folder = Path(tempfile.mkdtemp(prefix="gencompile-worker-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def shard_by_example(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker takes its rows of every global batch, whatever the source: the batches
    stay those of one worker in the seeded order (file sharding would change the order)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


FINGERPRINT_BYTES = 16  # of a data fingerprint's sha256, compared between the workers
_CHIEF, _WORKER = 0, 1  # a task's type as the gathered rows code it
_SAME = {"path": "the same file", "dir": "the same folder", "files": "the same files"}


def check_same_data(
    strategy: tf.distribute.Strategy, fingerprint: str | None, source: dict[str, Any]
) -> None:
    """Stop every worker of a cluster, before its first step, when one read other data than
    the chief (e.g. a relative data path, another file on its machine): the summed gradients
    would mix both data sets silently. One all-gather of a few bytes; nothing without a
    cluster of several tasks or without a `fingerprint`."""
    if not fingerprint or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    config = cluster_spec()
    if task_count(config) < 2:
        return
    task = config["task"]
    kind = _CHIEF if task["type"] == "chief" else _WORKER
    prefix = list(bytes.fromhex(fingerprint)[:FINGERPRINT_BYTES])
    rows = _all_gathered(strategy, [kind, task["index"], *prefix])
    message = other_data_message(_fingerprints_by_task(rows), source)
    if message:
        raise RunError(message)


def _all_gathered(strategy: tf.distribute.Strategy, row: list[int]) -> list[list[int]]:
    """Every replica's copy of its worker's `row`, from every worker (one collective)."""
    local = tf.constant([row], tf.int32)
    values = strategy.experimental_distribute_values_from_function(lambda _: local)
    gathered: list[list[int]] = strategy.gather(values, axis=0).numpy().tolist()
    return gathered


def _fingerprints_by_task(rows: list[list[int]]) -> dict[str, str]:
    """Task name ("chief", "worker K") -> its fingerprint's first bytes, in hex."""
    found = {}
    for kind, index, *prefix in rows:  # one row per replica: a worker's rows are alike
        name = "chief" if kind == _CHIEF else f"worker {index}"
        found[name] = bytes(prefix).hex()
    return found


def other_data_message(fingerprints: dict[str, str], source: dict[str, Any]) -> str:
    """What stops a cluster whose workers' data fingerprints differ from the chief's (the
    `chief` task, else worker 0), naming them and the data setting to fix; "" if none."""
    chief = fingerprints.get("chief", fingerprints.get("worker 0", ""))
    others = {name: value for name, value in fingerprints.items() if value != chief}
    if not others:
        return ""
    names = " and ".join(others)
    if len(others) == 1:
        what = f"{names} reads other data than the chief (fingerprint {_chief_vs(others, chief)})"
    else:
        what = f"{names} read other data than the chief (fingerprints {_chief_vs(others, chief)})"
    field = next((key for key in DATA_FILE_FIELDS if source.get(key)), None)
    if field is None:  # a built-in data set: made or downloaded alike on every machine
        return (
            f"{what}: train with the same data.source and the same gencompile and library "
            "versions on every machine"
        )
    return (
        f"{what}: give data.source.{field} ({source[field]}) as an absolute path on a shared "
        f"file system, or {_SAME[field]} on every machine"
    )


def _chief_vs(others: dict[str, str], chief: str) -> str:
    """'X vs C' or 'X, Y vs C': the other fingerprints, then the chief's."""
    return f"{', '.join(others.values())} vs {chief}"
