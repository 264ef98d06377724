"""Interrupts a command keeps even when a library loses them.

Ctrl-C (and SIGTERM, which the command line makes Ctrl-C) raises KeyboardInterrupt in
the main thread; a library running at that moment can swallow the exception. A loop that
must stop calls `check` once a round.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

# The signals that stop a command (Ctrl-C; SIGTERM, which the command line makes Ctrl-C).
STOPPING = frozenset({int(signal.SIGINT), int(signal.SIGTERM)})


@contextlib.contextmanager
def kept_interrupts() -> Iterator[Callable[[], None]]:
    """Yield `check`, which raises KeyboardInterrupt when Ctrl-C or SIGTERM arrived during
    the block, for a loop to call once a round. Its handler raises the interrupt at once,
    but a library can lose that exception: numpy's `np.char.mod` (a CSV's cells) clears
    one raised inside its loop, and the command then wrote on until it was killed. The
    signal is still written to Python's wakeup fd (`signal.set_wakeup_fd`), whatever its
    handler; `check` reads it. Outside the main thread (no signals there) it never raises."""
    if threading.current_thread() is not threading.main_thread():
        yield _nothing
        return
    reader, writer = os.pipe()
    for end in (reader, writer):
        os.set_blocking(end, False)
    previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)

    def check() -> None:
        with contextlib.suppress(BlockingIOError):
            if STOPPING & set(os.read(reader, 4096)):
                raise KeyboardInterrupt

    try:
        yield check
    finally:
        signal.set_wakeup_fd(previous)
        os.close(reader)
        os.close(writer)


def _nothing() -> None:
    pass
