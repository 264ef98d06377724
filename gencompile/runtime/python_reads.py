"""Python reads inside tf.data (`tf.numpy_function`): their errors, and abandoning them safely.

A `RunError` raised by a read reaches the caller as TensorFlow's `UnknownError` around a
Python traceback; `numpy_read` keeps the error, and `failure_behind` finds it again, so
it can be said in one line.

An iterator abandoned after a failed read (the other batches in flight still reading)
must not be freed while a read is pending: its destructor, which runs holding the GIL,
waits for the read, and the read waits for the GIL, so the process hangs (at exit, or
whenever the iterator is collected). `failure_behind` therefore first lets the pending
reads finish (`settle`): with nobody consuming, tf.data's buffers fill and no read starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from gencompile.errors import RunError

# A read is pending for microseconds between tf.data taking an element and its Python
# function starting: no read for this long means none is pending.
QUIET_SECONDS = 0.2
SETTLE_LIMIT_SECONDS = 10.0

_lock = threading.Lock()
_running = 0  # reads in progress
_last_end = 0.0  # time.monotonic() when the last one ended
_failures: list[RunError] = []  # the newest errors of reads, for `failure_behind`


def numpy_read(read: Callable[..., np.ndarray], inputs: list[Any], dtype: Any) -> tf.Tensor:
    """`tf.numpy_function(read, inputs, dtype)`, counted while it runs, its RunError kept."""
    return tf.numpy_function(_counted(read), inputs, dtype, stateful=False)


def _counted(read: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def call(*args: Any) -> np.ndarray:
        global _running, _last_end
        with _lock:
            _running += 1
        try:
            return read(*args)
        except RunError as error:
            with _lock:
                _failures[:] = [*_failures[-7:], error]
            raise
        finally:
            with _lock:
                _running -= 1
                _last_end = time.monotonic()

    return call


def settle(quiet: float = QUIET_SECONDS, limit: float = SETTLE_LIMIT_SECONDS) -> None:
    """Wait (the GIL released) until no read has run for `quiet` seconds, at most `limit`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with _lock:
            idle = _running == 0 and time.monotonic() - _last_end >= quiet
        if idle:
            return
        time.sleep(quiet / 4)


def failure_behind(error: tf.errors.OpError) -> RunError | None:
    """The RunError of a read that `error` (from a tf.data iterator) wraps, if any, once the
    iterator's other reads have settled (it is safe to free then)."""
    settle()
    with _lock:
        found = [f for f in _failures if str(f) in (error.message or "")]
    return found[-1] if found else None
