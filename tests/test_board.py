"""`gencompile tensorboard RUN...`: the TensorBoard command it starts, what it refuses, and
(slow) a real TensorBoard on loopback that lists the runs and is stopped afterwards."""

from __future__ import annotations

import json
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
