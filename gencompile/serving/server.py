"""Running the API with uvicorn: in the foreground (`gencompile serve`), or in a thread on a
free loopback port (tests and the load benchmark), shut down cleanly either way."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gencompile.errors import RunError
from gencompile.serving.limits import Limits

LOOPBACK = "127.0.0.1"


def serve(
    run_dir: Path | str,
    host: str = LOOPBACK,
    port: int = 8000,
    limits: Limits | None = None,
    allow_custom_code: bool = False,
    announce: Any = print,
) -> None:
    """Load the run's model once, then answer requests until interrupted (Ctrl-C)."""
    import uvicorn

    from gencompile.generated import refuse_unfinished, verified_lock
    from gencompile.serving.api import create_app
    from gencompile.serving.engine import load_engine

    verified_lock(Path(run_dir), allow_custom_code)  # a bad run is refused before anything
    refuse_unfinished(Path(run_dir))
    listener = _bind(host, port)  # before the model loads: a busy port fails at once
    engine = load_engine(run_dir, allow_custom_code)
    app = create_app(engine, limits)
    where = f"http://{_display(host)}:{listener.getsockname()[1]}"
    announce(f"serving {engine.run_dir} ({engine.family}) at {where}  (API page: {where}/docs)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="off"))
    with listener:
        server.run(sockets=[listener])


@contextmanager
def running(app: Any, host: str = LOOPBACK, timeout: float = 30.0) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a free port of `host`: yields its base URL;
    on exit the server finishes its requests and stops."""
    import uvicorn

    listener = _bind(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            listener.close()
            raise RunError(f"the server on {host} did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield f"http://{_display(host)}:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        listener.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it a kept-alive connection waits ~40 ms
    # (Nagle against delayed ACKs) for every response uvicorn writes in two parts.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise RunError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    listener.listen(2048)
    listener.setblocking(False)
    return listener


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextmanager
def serving_process(
    run_dir: Path | str, *options: str, timeout: float = 180.0
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`gencompile serve RUN --port 0 OPTIONS` in a child process: yields its base URL (read
    from the line it prints once the model is loaded) and the process; on exit it is
    interrupted (Ctrl-C) and waited for, then killed if it does not stop. Its output is
    read all along (a full pipe would stall it) and kept for error messages."""
    command = [sys.executable, "-m", "gencompile", "serve", str(run_dir), "--port", "0"]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: deque[str] = deque(maxlen=200)
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        for line in process.stdout or ():
            lines.append(line)
            match = None if found else re.search(r"(http://[^\s/]+)", line)
            if match:
                found.append(match.group(1))
                ready.set()
        ready.set()  # the process ended

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(timeout) or not found:
            output = "".join(lines)
            raise RunError(f"gencompile serve did not start within {timeout:g} s:\n{output}")
        yield found[0], process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
