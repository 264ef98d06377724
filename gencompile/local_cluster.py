"""`gencompile train --workers N`: N local worker processes of one multi-worker training.

Each worker is a fresh Python process (TensorFlow joins a cluster when it starts) that
imports the run's verified generated package and runs its `train.main`, with a `TF_CONFIG`
naming every worker on a loopback port. Worker 0 is the chief: it writes the run folder
and its standard output (the progress bar) goes to this process' terminal; the others
write to scratch folders that this process makes and removes (a worker killed after a
peer died cannot remove its own, and it holds whole checkpoints). The chief's Python
warnings reach this process' stderr as `warning: ...` lines; everything else the workers
print (TensorFlow's logs, a traceback) goes to log files, of which the failing worker's
message is shown (the chief's, when workers fail together).
When a worker fails or dies, the others are stopped and the whole training fails with
that worker's message, so the run can be resumed from its newest checkpoint.

The workers run in a process group of their own, so a signal meant for the command (Ctrl-C,
SIGTERM) reaches each of them once, from this process, which stops them as Ctrl-C does:
the chief writes its owed checkpoint. A worker dies with this process (Linux), so nothing
writes the run once the command that holds its lock is gone.

This module does not import TensorFlow: the launching process only watches.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencompile.errors import GencompileError, RunError, quoted
from gencompile.tf_messages import tf_summary, unhealthy
from gencompile.worker_env import ERROR_FILE_ENV, LAUNCHER_ENV, SCRATCH_ENV, WARNINGS_FD_ENV

__all__ = ["free_loopback_ports", "run_workers", "tf_config", "tf_summary", "unhealthy"]

POLL_SECONDS = 0.1
SETTLE_SECONDS = 5.0  # how long the others get to end too once a worker failed
STOP_SECONDS = 10.0  # how long a worker gets to end after a peer failed, before it is killed
INTERRUPT_SECONDS = 60.0  # ... after Ctrl-C or SIGTERM: the chief writes its owed checkpoint
HEARTBEAT_TIMEOUT_SECONDS = 120  # runtime.cluster's (no TensorFlow here)


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
        grace = STOP_SECONDS
        try:
            for index in range(workers):
                started.append(
                    _start(index, ports, Path(scratch), code, package, argv, allow_custom_code)
                )
            _wait(started, run_dir)
        except KeyboardInterrupt:
            grace = INTERRUPT_SECONDS
            raise
        finally:
            _stop(started, grace)


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
    env[LAUNCHER_ENV] = str(os.getpid())
    # Its temporary files too (autograph's converted functions, ...): a worker killed
    # before it removes them leaves them in the launcher's folder, which goes at the end.
    temporary = scratch / f"worker-{index}.tmp"
    temporary.mkdir()
    env["TMPDIR"] = str(temporary)
    command = [sys.executable, "-m", "gencompile.local_cluster", str(project), package]
    command += ["--allow-custom-code"] if allow_custom_code else []
    command += ["--", *argv]
    log = scratch / f"worker-{index}.log"
    # The chief's warnings reach this terminal as `warning: ...` lines, as one process says
    # them, through a copy of this stderr; its log keeps TensorFlow's C++ noise.
    warnings_fd = _stderr_copy() if index == 0 else None
    passed = () if warnings_fd is None else (warnings_fd,)
    if warnings_fd is not None:
        env[WARNINGS_FD_ENV] = str(warnings_fd)
    try:
        with log.open("wb") as output:  # the child holds its own copy
            stdout = None if index == 0 else output  # the chief's progress, on this terminal
            # A session of its own: a terminal's Ctrl-C, or a SIGTERM to this command's
            # process group, reaches a worker once, from `_stop` (twice, it would stop
            # writing the owed checkpoint, as a second Ctrl-C does).
            process = subprocess.Popen(
                command,
                env=env,
                stdout=stdout,
                stderr=output,
                start_new_session=True,
                pass_fds=passed,
            )
    finally:
        if warnings_fd is not None:
            os.close(warnings_fd)  # the child holds its own copy
    return Worker(index, process, log, error_file)


def _stderr_copy() -> int | None:
    """A new descriptor of this process' stderr (None: it has none to copy)."""
    try:
        return os.dup(2)
    except OSError:
        return None


def _wait(workers: list[Worker], run_dir: Path) -> None:
    """Until every worker ended well; the first to fail fails the training."""
    while True:
        codes = [worker.process.poll() for worker in workers]
        failed = [w for w, code in zip(workers, codes, strict=True) if code not in (None, 0)]
        if failed:
            # A worker that died takes the others' collective operations down with it, and
            # they fail too: report the cause (killed, or failed with a message of its own).
            _settle(workers)  # those failing together: the chief's message, not the fastest's
            failed = [w for w in workers if w.process.poll() not in (None, 0)]
            cause = min(failed, key=_failure_rank)
            raise RunError(_failure_message(cause, len(workers), run_dir))
        if all(code == 0 for code in codes):
            return
        time.sleep(POLL_SECONDS)


def _settle(workers: list[Worker]) -> None:
    """Let the workers that are ending too end (for at most SETTLE_SECONDS): a streamed
    file that changed fails every worker at once, and a worker's scratch folder is no
    run to name."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while any(w.process.poll() is None for w in workers) and time.monotonic() < deadline:
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
    hung = unhealthy(report.get("message", ""))
    if hung and hung != [worker.index]:  # it failed because a peer stopped answering
        names = " and ".join(f"worker {index}" for index in hung)
        what = (
            f"{names} of {count} stopped sending heartbeats for {HEARTBEAT_TIMEOUT_SECONDS} s "
            "(hung or frozen)"
        )
    elif report:
        what = f"worker {worker.index} of {count} failed ({report['message']})"
    elif code < 0:
        what = f"worker {worker.index} of {count} failed (killed by {signal.Signals(-code).name})"
    else:
        what = f"worker {worker.index} of {count} failed (exit code {code}{_last_line(worker.log)})"
    return (
        f"{what}; every worker was stopped. Continue from the newest checkpoint with "
        f"`gencompile train --resume {quoted(run_dir)} --workers {count}`"
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


def _stop(workers: list[Worker], grace: float) -> None:
    """Stop every worker still running: SIGTERM (in a worker, Ctrl-C's KeyboardInterrupt),
    then SIGKILL after `grace` seconds, or at once when this process is stopped again."""
    running = [w.process for w in workers if w.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + grace
    try:
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
    finally:  # past the grace, or a second Ctrl-C: now
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()


def worker_main(args: list[str]) -> int:
    """One worker: `python -m gencompile.local_cluster PROJECT PACKAGE [--allow-custom-code]
    -- TRAIN_ARGS` (PROJECT: the generated project to import; TRAIN_ARGS name the run).
    An error is written to $GENCOMPILE_WORKER_ERROR_FILE for the launcher."""
    split = args.index("--")
    (project, package, *flags), train_args = args[:split], args[split + 1 :]
    show_warnings_to_user()
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

        traceback.print_exc()  # into the worker's log; the launcher says one line
        return _report(f"{type(error).__name__}: {tf_summary(str(error))}", own_advice=False)
    return 0


def show_warnings_to_user() -> None:
    """The chief: Python warnings as `warning: ...` lines on the launcher's stderr (the
    descriptor it passed), as `gencompile train` says them in one process."""
    given = os.environ.get(WARNINGS_FD_ENV)
    if not given:
        return
    try:
        stream = os.fdopen(int(given), "w", buffering=1, errors="replace")
    except (OSError, ValueError):
        return  # none passed after all: the warnings stay in the worker's log

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        stream.write(f"warning: {message}\n")

    warnings.showwarning = show


def _report(message: str, own_advice: bool) -> int:
    print(message, file=sys.stderr, flush=True)
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        report = {"message": message.strip()[:2000], "own_advice": own_advice}
        Path(path).write_text(json.dumps(report))
    return 1


def die_with_launcher() -> None:
    """Linux: the kernel SIGKILLs this worker when the launcher that started it dies.

    SIGKILL, not SIGTERM: the launcher held the run folder's lock and kept its status.json;
    once it is gone a `--resume` may start at any moment, so no worker may write the run
    any more (an owed checkpoint written then could race the resume). The run keeps its
    newest checkpoint and reads as interrupted, as a killed single process leaves it.
    Elsewhere nothing ties a worker to its launcher (said in the README)."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not allowed here (a sandbox): the launcher's `_stop` is all there is
    if os.getppid() != int(launcher):  # it died before the line above took effect
        sys.exit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C stops
    die_with_launcher()
    sys.exit(worker_main(sys.argv[1:]))
