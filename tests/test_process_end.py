"""The console entry points end the process without the interpreter's slow teardown, but
only after what an ordinary exit does: threads joined, atexit handlers run, output flushed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.process_end import exit_status

ROOT = Path(__file__).resolve().parents[1]

# `json` stands in for TensorFlow (what makes the teardown slow) so the test stays cheap.
SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from gencompile import process_end
process_end.SLOW_TO_FINALIZE = ("json",)
import json

def late_write():
    time.sleep(0.2)
    Path(sys.argv[1]).write_text("written")

class Finalized:
    def __del__(self):
        print("finalized")

kept = Finalized()
atexit.register(lambda: print("atexit ran", end=""))
threading.Thread(target=late_write).start()
# An executor's idle worker: the interpreter's exit stops it; so must ours (not wait on it).
from concurrent.futures import ThreadPoolExecutor
ThreadPoolExecutor(max_workers=1).submit(lambda: None).result()

def main():
    print("result", end="")  # no newline: still buffered when the process ends
    sys.exit(int(sys.argv[2]))

process_end.run_then_exit(main)
"""


@pytest.mark.parametrize("status", [0, 3])
def test_the_process_ends_with_the_status_after_threads_atexit_and_output(
    tmp_path: Path, status: int
) -> None:
    written = tmp_path / "thread.txt"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(written), str(status)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == status, done.stderr
    assert done.stdout == "resultatexit ran"  # flushed; no teardown ran the finalizer
    assert written.read_text() == "written"  # the non-daemon thread was joined


def test_exit_status_is_what_sys_exit_gives(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(None) == 0
    assert exit_status(2) == 2
    assert exit_status("no such run") == 1
    assert capsys.readouterr().err == "no such run\n"
