"""Listeners that a caller in this process adds to every fit: a sweep's pruning reporter.

A sweep trains each trial in its own process through the ordinary `gencompile train` path;
to prune a trial it must see each epoch's validation logs and be able to stop the fit.
A listener is a plain function `(epoch, logs) -> stop?`, so the caller needs no Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras

EpochListener = Callable[[int, dict[str, float]], bool]  # True: stop training after this epoch
_LISTENERS: list[EpochListener] = []


@contextmanager
def listening(listener: EpochListener) -> Iterator[None]:
    """Call `listener` at the end of every epoch of the fits run inside this block."""
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


class EpochListeners(keras.callbacks.Callback):
    """Passes each epoch's logs (1-based epoch) to the listeners; any may stop the fit."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {key: float(value) for key, value in (logs or {}).items()}
        for listener in list(_LISTENERS):
            if listener(epoch + 1, values):
                self.model.stop_training = True


def callbacks() -> list[keras.callbacks.Callback]:
    """The callback to add to a fit: none when nobody listens."""
    return [EpochListeners()] if _LISTENERS else []
