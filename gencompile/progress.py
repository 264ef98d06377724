"""Progress bars of the long passes: sampling, evaluation metrics, data statistics.

One way for all of them: `with progress_bar("fid: Inception features", total) as update:`
then `update(done)` (or `update(done, total)` once the total is known). On a terminal
(stderr) it is a transient rich bar with the rate and time left; bars opened while another
is showing join its display, one line each. In pipes, logs and tests it does nothing, so
results on stdout stay clean. Training's own display is `runtime.callbacks.TrainingProgress`.
Importing this module is cheap (no TensorFlow, no NumPy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

Update = Callable[..., None]  # update(done) or update(done, total)

_SHOWING: list[Progress] = []  # the display that bars opened meanwhile join
_CONSOLE: list[Console] = []


def console() -> Console:
    """The stderr console the bars draw on (made once)."""
    if not _CONSOLE:
        from rich.console import Console

        _CONSOLE.append(Console(stderr=True))
    return _CONSOLE[0]


def _ignore(done: int, total: int | None = None) -> None:
    return None


@contextmanager
def progress_bar(what: str, total: int | None = None, unit: str = "") -> Iterator[Update]:
    """A progress bar of `what` while the block runs; yields `update(done[, total])`."""
    if not console().is_terminal:
        yield _ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    owner = not _SHOWING
    if owner:
        display = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console(),
            transient=True,
        )
        display.start()
        _SHOWING.append(display)
    display = _SHOWING[0]
    task = display.add_task(what, total=total, unit=unit)

    def update(done: int, new_total: int | None = None) -> None:
        if new_total is not None:
            display.update(task, completed=done, total=new_total)
        else:
            display.update(task, completed=done)

    try:
        yield update
    finally:
        if owner:  # stopping draws the finished bar once more, then clears the display
            display.stop()
            _SHOWING.clear()
        display.remove_task(task)
