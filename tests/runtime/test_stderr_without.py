"""TensorFlow's known false alarms are dropped from descriptor 2 during training; every
other line passes on, in order, as it comes."""

from __future__ import annotations

import os

from gencompile.runtime.quiet import HARMLESS_ERRORS, stderr_without

REMAPPER = (
    "E0000 00:00:1764900000.1 123 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'StatefulPartitionedCall/gradient_tape/discriminator_5/"
    "conv2d_2_1/LeakyRelu/LeakyReluGrad' exist for missing node "
    "'StatefulPartitionedCall/discriminator_5/conv2d_2_1/BiasAdd'.\n"
)


def test_the_remapper_false_alarm_is_dropped_and_the_rest_kept(capfd) -> None:
    with stderr_without(HARMLESS_ERRORS):
        os.write(2, b"E0000 a real TensorFlow error\n")
        os.write(2, REMAPPER.encode())
        os.write(2, b"warning: from Python\n")
        os.write(2, b"no newline at the end")
    assert capfd.readouterr().err == (
        "E0000 a real TensorFlow error\nwarning: from Python\nno newline at the end"
    )


def test_descriptor_2_is_itself_again_afterwards(capfd) -> None:
    before = os.fstat(2).st_ino
    with stderr_without(HARMLESS_ERRORS):
        assert os.fstat(2).st_ino != before  # the pipe
    assert os.fstat(2).st_ino == before
    os.write(2, REMAPPER.encode())  # outside training: shown as TensorFlow wrote it
    assert "LeakyReluGrad" in capfd.readouterr().err


ABORTING = """
import os
from gencompile.runtime.quiet import HARMLESS_ERRORS, stderr_without

with stderr_without(HARMLESS_ERRORS):
    os.write(2, b"F0000 the fatal error's explanation\\n")
    os.abort()  # as a failed TensorFlow CHECK ends the process
"""


def test_what_is_written_just_before_an_abort_still_arrives() -> None:
    """The filter is a process of its own: it reads the pipe to its end after this one
    died (a thread would die with it, and the explanation with them)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", ABORTING], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert done.stderr == "F0000 the fatal error's explanation\n"
