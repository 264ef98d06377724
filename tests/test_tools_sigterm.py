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


# A model whose first draw loses a Ctrl-C, as numpy's np.char.mod (a CSV's cells) can: the
# handler's KeyboardInterrupt is raised inside a call that swallows it.
LOST = """
import os, signal, sys, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np
from gencompile.interrupts import kept_interrupts
from gencompile.runtime.preprocessing import Preprocessor
from gencompile.sample_files import write_csv_stream
from gencompile.sampling import _sample_chunks

class Losing:
    calls = 0
    def sample(self, n, **_):
        Losing.calls += 1
        if Losing.calls == 1:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the handler raises in here ...
            except KeyboardInterrupt:
                pass  # ... and the exception is lost
        return np.zeros((n, 2), np.float32)

pre = Preprocessor.fit(np.random.default_rng(0).normal(size=(50, 2)), "vector", standardize=True)
data = SimpleNamespace(element_shape=(2,), preprocessor=pre)
out = Path(sys.argv[1])
try:
    with kept_interrupts() as check:
        chunks = _sample_chunks(Losing(), data, 10 * 4096, None, {}, None, check)
        write_csv_stream(out, ["a", "b"], chunks)
except KeyboardInterrupt:
    print(f"interrupted after {Losing.calls} draws")
else:
    print(f"finished after {Losing.calls} draws")
"""


def test_a_ctrl_c_a_library_lost_still_stops_the_drawing(tmp_path: Path) -> None:
    """Before: Ctrl-C during `sample` was sometimes lost in numpy's np.char.mod, and the
    command wrote on (gigabytes) until it was killed."""
    out = tmp_path / "big.csv"
    done = subprocess.run(
        [sys.executable, "-c", LOST, str(out)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "interrupted after 1 draws", done.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too
