"""`gencompile tensorboard RUN...`: TensorBoard on the logs of one or more runs.

Each run's `tensorboard/` folder is named in TensorBoard's `--logdir_spec` by its spec name
and run id (`vae-digits/20261202-141500-ab12cd34`), so several runs of one spec, or of
several, sit side by side. TensorBoard runs as a child process (`python -m
gencompile.board ARGS`: TensorBoard's own main, with TensorFlow's start-up chatter left
out) on loopback unless another host is given.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from gencompile.errors import RunError

LOG_FOLDER = "tensorboard"  # as gencompile.runtime.tensorboard writes it
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6006


def run_name(run_dir: Path) -> str:
    """`<spec name>/<run id>`: the last two parts of the run's folder."""
    resolved = run_dir.resolve()
    return f"{resolved.parent.name}/{resolved.name}"


def logdir_spec(runs: Sequence[Path]) -> str:
    """TensorBoard's `name:folder,name:folder` of the runs' log folders, in the given order.

    A run without logs, a folder name that the format cannot hold (`,` anywhere, `:` in
    the name) and two runs of one name are refused with what to do.
    """
    entries: dict[str, Path] = {}
    for run in runs:
        logs = Path(run) / LOG_FOLDER
        if not logs.is_dir():
            raise RunError(
                f"{run} has no TensorBoard logs ({LOG_FOLDER}/): give a run folder trained "
                "with output.tensorboard on (the default)"
            )
        name = run_name(Path(run))
        if "," in str(logs.resolve()) or ":" in name:
            raise RunError(f"{run}: TensorBoard cannot name a folder with ',' or ':'; rename it")
        if name in entries:
            raise RunError(f"{run} is given twice (as {name})")
        entries[name] = logs.resolve()
    return ",".join(f"{name}:{folder}" for name, folder in entries.items())


def command(runs: Sequence[Path], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """The command line that serves the runs' logs (TensorBoard of this interpreter)."""
    return [
        sys.executable,
        "-m",
        "gencompile.board",
        "--logdir_spec",
        logdir_spec(runs),
        "--host",
        host,
        "--port",
        str(port),
    ]


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"http://{shown}:{port}/"


STOP_SECONDS = 10  # how long TensorBoard has to stop after SIGTERM before SIGKILL
STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # stop as Ctrl-C does (the README: SIGTERM is Ctrl-C)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(argv: list[str]) -> int:
    """Run TensorBoard until it exits or Ctrl-C, SIGTERM or SIGHUP stops it (0); its exit
    code. A stop ends the child too: a signal sent to this process alone (SIGTERM from a
    supervisor, a closed terminal) would otherwise leave TensorBoard serving."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # handlers: main thread only
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, _interrupt)
    try:
        with subprocess.Popen(argv) as process:
            try:
                return process.wait()
            except KeyboardInterrupt:
                _stop(process)
                return 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if TensorBoard has not stopped within STOP_SECONDS."""
    # A second signal (Ctrl-C twice) must not leave it running: it is killed at once.
    with contextlib.suppress(KeyboardInterrupt, subprocess.TimeoutExpired):
        process.terminate()
        process.wait(timeout=STOP_SECONDS)
    if process.poll() is None:
        process.kill()
        process.wait()


if __name__ == "__main__":  # the child process that `command` starts
    from gencompile.runtime import quiet

    quiet.install()  # TensorBoard imports TensorFlow when it is installed
    from tensorboard.main import run_main

    run_main()
