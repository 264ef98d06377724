"""Ending a `gencompile` process quickly once its work is done.

After TensorFlow has been imported, the interpreter's own shutdown (finalizing thousands of
modules, running TensorFlow's C++ destructors) takes 1-2 s on two CPU cores: time a user
waits for after the run's files are written and its results printed. The console entry
points therefore end the process with `os._exit`, after doing what an ordinary exit does
that matters: joining threads, running `atexit` handlers (logging's flush among them) and
flushing standard output and error. Every file gencompile writes is complete (written to a
temporary name, flushed and renamed) before the command returns.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

# What makes the interpreter's teardown slow; without it an ordinary exit is as quick.
SLOW_TO_FINALIZE = ("tensorflow",)


def run_then_exit(main: Callable[[], object]) -> NoReturn:
    """Call the entry point `main`, then end the process with its exit status."""
    try:
        main()
        code = 0
    except SystemExit as done:
        code = exit_status(done.code)
    end_process(code)


def exit_status(code: object) -> int:
    """The status `sys.exit(code)` gives: None is 0, a message is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end_process(code: int) -> NoReturn:
    if not any(name in sys.modules for name in SLOW_TO_FINALIZE):
        sys.exit(code)
    # What the interpreter's own exit does first, in its order: threading's shutdown (its
    # exit hooks, which stop idle executor threads, then a join of every non-daemon
    # thread), then the atexit handlers.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be said.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def console() -> NoReturn:
    """The `gencompile` console script: the command line, then a quick end."""
    from gencompile.cli import main

    run_then_exit(main)
