"""SIGTERM (kill, timeout, a scheduler) stops a command as Ctrl-C does: `interrupted`, exit
130, and the file it was writing removed, not left under its hidden temporary name."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A command that writes its output as `sample` does (atomic_file), slowly, until stopped.
SCRIPT = """
import sys, time
from pathlib import Path
from gencompile import cli
from gencompile.outputs import atomic_file

@cli.app.command(name="slow-write")
def slow_write(out: Path) -> None:
    with atomic_file(out) as handle:
        handle.write(b"x" * 1000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)

sys.argv = ["gencompile", "slow-write", sys.argv[1]]
cli.main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_removes_the_temporary_and_says_interrupted(
    tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "big.csv"
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n", child.communicate(timeout=30)
        (temporary,) = tmp_path.iterdir()  # being written
        assert temporary.name.startswith(".big.csv.")
        started = time.monotonic()
        child.send_signal(signum)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert time.monotonic() - started < 20  # stopped at once, not after the sleep
    assert child.returncode == 130, err
    assert err.strip() == "interrupted", err
    assert list(tmp_path.iterdir()) == []  # neither big.csv nor .big.csv.PID.HEX.tmp
