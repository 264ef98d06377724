"""`gencompile tensorboard RUN...`: the TensorBoard command it starts, what it refuses, and
(slow) a real TensorBoard on loopback that lists the runs and is stopped afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gencompile import board
from gencompile.errors import RunError


def fake_run(root: Path, spec: str, run_id: str) -> Path:
    run = root / spec / run_id
    (run / "tensorboard" / "train").mkdir(parents=True)
    return run


def test_logdir_spec_names_each_run_by_spec_and_id(tmp_path: Path) -> None:
    first = fake_run(tmp_path, "vae-digits", "20261202-101010-aaaa1111")
    second = fake_run(tmp_path, "gan-ring8", "20261202-111111-bbbb2222")
    assert board.logdir_spec([first, second]) == (
        f"vae-digits/20261202-101010-aaaa1111:{first.resolve() / 'tensorboard'},"
        f"gan-ring8/20261202-111111-bbbb2222:{second.resolve() / 'tensorboard'}"
    )


def test_a_run_without_logs_or_given_twice_is_refused(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "vae-digits", "r1")
    bare = tmp_path / "vae-digits" / "r2"
    bare.mkdir()
    with pytest.raises(RunError, match=r"r2 has no TensorBoard logs \(tensorboard/\)"):
        board.logdir_spec([run, bare])
    with pytest.raises(RunError, match="given twice"):
        board.logdir_spec([run, run])


def test_the_command_serves_on_loopback_and_prints_the_url(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = fake_run(tmp_path, "flow-moons", "r1")
    started: list[list[str]] = []
    monkeypatch.setattr(board, "serve", lambda argv: started.append(argv) or 0)
    code, out, _ = run_cli("tensorboard", str(run))
    assert code == 0
    assert "TensorBoard: http://127.0.0.1:6006/" in out
    spec = f"flow-moons/r1:{run.resolve() / 'tensorboard'}"
    child = [sys.executable, "-m", "gencompile.board", "--logdir_spec", spec]
    assert started == [[*child, "--host", "127.0.0.1", "--port", "6006"]]
    code, out, _ = run_cli("tensorboard", str(run), "--port", "7007", "--host", "0.0.0.0")
    assert (code, started[-1][-4:]) == (0, ["--host", "0.0.0.0", "--port", "7007"])
    assert "http://0.0.0.0:7007/" in out


def test_the_command_says_which_run_has_no_logs(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("tensorboard", str(tmp_path))
    assert code == 1
    assert f"{tmp_path} has no TensorBoard logs" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_really_serves_the_runs(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "vae-moons", "r1")
    port = free_port()
    process = subprocess.Popen(
        board.command([run], "127.0.0.1", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{board.url('127.0.0.1', port)}data/environment") as r:
                    assert r.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "TensorBoard did not answer in 60 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"{board.url('127.0.0.1', port)}data/environment") as r:
            environment = json.load(r)
        assert environment["data_location"].startswith("vae-moons/r1:")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "cuInit" not in process.stderr.read()


# A stand-in for TensorBoard: serves on a loopback port and writes its pid, until killed.
FAKE_BOARD = """
import os, socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
open(sys.argv[2], "w").write(str(os.getpid()))
while True:
    time.sleep(1)
"""


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def gone(pid: int) -> bool:
    """The process ended (a zombie of a dead parent counts: init reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_to_the_parent_stops_tensorboard_too(tmp_path: Path, signal_name) -> None:
    """Before: SIGTERM ended `gencompile tensorboard` and left TensorBoard serving."""
    import signal

    port, pid_file = free_port(), tmp_path / "child.pid"
    child = [sys.executable, "-c", FAKE_BOARD, str(port), str(pid_file)]
    parent = subprocess.Popen(
        [sys.executable, "-c", f"from gencompile import board; print(board.serve({child!r}))"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 20, "the child never started")
        child_pid = int(pid_file.read_text())
        assert port_open(port)
        parent.send_signal(getattr(signal, signal_name))
        out, _ = parent.communicate(timeout=20)
        assert (parent.returncode, out.strip()) == (0, "0")  # as Ctrl-C stops it
        wait_for(lambda: gone(child_pid), 5, "TensorBoard outlived its parent")
        assert not port_open(port)
    finally:
        parent.kill()
        if pid_file.exists() and pid_file.read_text() and not gone(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_to_gencompile_tensorboard_closes_the_port(tmp_path: Path) -> None:
    """The real command and a real TensorBoard: after SIGTERM the port is closed."""
    import signal

    run = fake_run(tmp_path, "vae-moons", "r1")
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "gencompile", "tensorboard", str(run), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port), 60, "TensorBoard did not listen in 60 s")
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        wait_for(lambda: not port_open(port), 5, "TensorBoard still serves after SIGTERM")
        assert all(gone(pid) for pid in serving(run)), "a TensorBoard process remains"
    finally:
        parent.kill()
        for pid in serving(run):  # never leave one behind, even when the test fails
            os.kill(pid, signal.SIGKILL)


def serving(run: Path) -> list[int]:
    """Processes whose command line names this run (the TensorBoard child)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(run).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
