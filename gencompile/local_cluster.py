"""`gencompile train --workers N`: N local worker processes of one multi-worker training.

Each worker is a fresh Python process (TensorFlow joins a cluster when it starts) that
imports the run's verified generated package and runs its `train.main`, with a `TF_CONFIG`
naming every worker on a loopback port. Worker 0 is the chief: it writes the run folder
and its standard output (the progress bar) goes to this process' terminal; the others
write to scratch folders that this process makes and removes (a worker killed after a
peer died cannot remove its own, and it holds whole checkpoints). Everything else the
workers print (TensorFlow's logs, a traceback) goes to log files, of which the failing
worker's message is shown.
When a worker fails or dies, the others are stopped and the whole training fails with
that worker's message, so the run can be resumed from its newest checkpoint.

This module does not import TensorFlow: the launching process only watches.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencompile.errors import GencompileError, RunError

__all__ = ["free_loopback_ports", "run_workers", "tf_config"]

POLL_SECONDS = 0.1
STOP_SECONDS = 10.0  # how long a stopped worker gets to end before it is killed
ERROR_FILE_ENV = "GENCOMPILE_WORKER_ERROR_FILE"
SCRATCH_ENV = "GENCOMPILE_WORKER_SCRATCH"  # runtime.cluster.SCRATCH_ENV (no TensorFlow here)


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    log: Path  # its standard error (and output, but for the chief's)
    error_file: Path


def free_loopback_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    with ExitStack() as stack:
        for sock in sockets:
            stack.enter_context(closing(sock))
            sock.bind(("127.0.0.1", 0))  # held open together: the ports are distinct
        return [sock.getsockname()[1] for sock in sockets]


def tf_config(ports: list[int], index: int) -> str:
    """The TF_CONFIG of worker `index` in a cluster of loopback workers."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def run_workers(
    run_dir: Path,
    package: str,
    argv: list[str],
    workers: int,
    allow_custom_code: bool,
    project: Path | None = None,
) -> None:
    """Train `run_dir` with `workers` local processes; return when all finished.

    `project`: where the generated code is imported from, when not the run itself (a
    continuation's pending project). Raises RunError naming the failing worker and its
    message when one fails; Ctrl-C or SIGTERM stops every worker (then KeyboardInterrupt,
    as for one process). The workers' scratch folders go when they have stopped, however.
    """
    ports = free_loopback_ports(workers)
    code = run_dir if project is None else project
    with tempfile.TemporaryDirectory(prefix="gencompile-workers-") as scratch:
        started: list[Worker] = []
        try:
            for index in range(workers):
                started.append(
                    _start(index, ports, Path(scratch), code, package, argv, allow_custom_code)
                )
            _wait(started, run_dir)
        finally:
            _stop(started)


def _start(
    index: int,
    ports: list[int],
    scratch: Path,
    project: Path,
    package: str,
    argv: list[str],
    allow_custom_code: bool,
) -> Worker:
    error_file = scratch / f"worker-{index}.error"
    output = scratch / f"worker-{index}"  # where a worker other than the chief writes
    output.mkdir()
    env = {**os.environ, "TF_CONFIG": tf_config(ports, index), ERROR_FILE_ENV: str(error_file)}
    env[SCRATCH_ENV] = str(output)
    command = [sys.executable, "-m", "gencompile.local_cluster", str(project), package]
    command += ["--allow-custom-code"] if allow_custom_code else []
    command += ["--", *argv]
    log = scratch / f"worker-{index}.log"
    with log.open("wb") as output:  # the child holds its own copy
        stdout = None if index == 0 else output  # the chief's progress, on this terminal
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=output)
    return Worker(index, process, log, error_file)


def _wait(workers: list[Worker], run_dir: Path) -> None:
    """Until every worker ended well; the first to fail fails the training."""
    while True:
        codes = [worker.process.poll() for worker in workers]
        failed = [w for w, code in zip(workers, codes, strict=True) if code not in (None, 0)]
        if failed:
            # A worker that died takes the others' collective operations down with it, and
            # they fail too: report the cause (killed, or failed with a message of its own).
            cause = min(failed, key=_failure_rank)
            raise RunError(_failure_message(cause, len(workers), run_dir))
        if all(code == 0 for code in codes):
            return
        time.sleep(POLL_SECONDS)


def _failure_rank(worker: Worker) -> tuple[bool, bool, int]:
    """Killed by a signal first, then failed with a message of its own, then by index."""
    return (worker.process.returncode >= 0, not worker.error_file.exists(), worker.index)


def _failure_message(worker: Worker, count: int, run_dir: Path) -> str:
    """The worker's reason, and how to resume unless the reason says what to do itself."""
    code = worker.process.returncode
    report = _read_report(worker.error_file)
    if report.get("own_advice"):  # gencompile's own error: it says what to do
        return f"worker {worker.index} of {count} stopped: {report['message']}"
    if report:
        reason = report["message"]
    elif code < 0:
        reason = f"killed by {signal.Signals(-code).name}"
    else:
        reason = f"exit code {code}{_last_line(worker.log)}"
    return (
        f"worker {worker.index} of {count} failed ({reason}); every worker was stopped. "
        f"Continue from the newest checkpoint with "
        f"`gencompile train --resume {run_dir} --workers {count}`"
    )


def _read_report(path: Path) -> dict[str, Any]:
    """What a worker wrote about its failure ({} when it wrote nothing)."""
    try:
        return json.loads(path.read_text(errors="replace"))
    except (OSError, json.JSONDecodeError):
        return {}


def _last_line(log: Path) -> str:
    if not log.exists():
        return ""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1].strip()[:500]}" if lines else ""


def _stop(workers: list[Worker]) -> None:
    """Stop every worker still running: SIGTERM, then SIGKILL after STOP_SECONDS."""
    running = [w.process for w in workers if w.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_main(args: list[str]) -> int:
    """One worker: `python -m gencompile.local_cluster PROJECT PACKAGE [--allow-custom-code]
    -- TRAIN_ARGS` (PROJECT: the generated project to import; TRAIN_ARGS name the run).
    An error is written to $GENCOMPILE_WORKER_ERROR_FILE for the launcher."""
    split = args.index("--")
    (project, package, *flags), train_args = args[:split], args[split + 1 :]
    try:
        from gencompile.generated import import_generated

        allow = "--allow-custom-code" in flags
        module = import_generated(Path(project), package, allow_custom_code=allow)
        module.main(train_args)
    except KeyboardInterrupt:
        return 130
    except GencompileError as error:
        return _report(str(error), own_advice=True)
    except Exception as error:
        import traceback

        traceback.print_exc()
        return _report(f"{type(error).__name__}: {error}", own_advice=False)
    return 0


def _report(message: str, own_advice: bool) -> int:
    print(message, file=sys.stderr, flush=True)
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        report = {"message": message.strip()[:2000], "own_advice": own_advice}
        Path(path).write_text(json.dumps(report))
    return 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C stops
    sys.exit(worker_main(sys.argv[1:]))
