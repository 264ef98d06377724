"""What a person sees while training and evaluating: steps, examples/s and time left inside
the epoch on a terminal, one plain line per epoch elsewhere, bars over the long passes."""

from __future__ import annotations

import io
import re
import time

import keras
import numpy as np
import pytest
from rich.console import Console

from gencompile.progress import progress_bar
from gencompile.runtime.callbacks import TrainingProgress
from gencompile.runtime.metrics.samples import draw_samples


def _fit(console: Console, epochs: int = 2, steps: int = 4) -> TrainingProgress:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((steps * 8, 2), "float32")
    shown = TrainingProgress(epochs, steps, batch_size=8, console=console)
    shown.REFRESH_SECONDS = 0.0  # draw every step
    model.fit(x, x[:, :1], batch_size=8, epochs=epochs, callbacks=[shown], verbose=0)
    return shown


def test_piped_output_gets_one_plain_line_per_epoch() -> None:
    buffer = io.StringIO()
    _fit(Console(file=buffer, force_terminal=False, width=200))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    for number, line in enumerate(lines, 1):
        assert re.fullmatch(rf"epoch {number}/2  loss \S+  \d+\.\d s  [\d,]+ examples/s", line)
    assert "\x1b" not in buffer.getvalue()  # no terminal codes in a log


def test_a_terminal_shows_the_steps_of_the_epoch_and_examples_per_second() -> None:
    buffer = io.StringIO()
    _fit(Console(file=buffer, force_terminal=True, width=160))
    drawn = buffer.getvalue()
    assert "step 4/4" in drawn
    assert re.search(r"[\d,]+ examples/s", drawn)
    assert "epoch 2/2" in drawn


def test_progress_bar_draws_on_a_terminal_and_joins_an_open_display(terminal_progress) -> None:
    with progress_bar("evaluating fid", None) as outer:
        with progress_bar("fid: Inception features", 3, "images") as inner:
            for done in range(1, 4):
                inner(done)
            time.sleep(0.3)  # a few of the display's ticks (10 a second) while both show
        outer(1, 1)
    drawn = terminal_progress.getvalue()
    assert "fid: Inception features" in drawn
    assert "evaluating fid" in drawn


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture,
) -> None:
    with progress_bar("sampling", 2) as update:
        update(1)
        update(2, 2)
    assert capsys.readouterr() == ("", "")


class _Sampler:
    def sample(self, n: int) -> np.ndarray:
        return np.ones((n, 2), "float32")


class _Data:
    class preprocessor:  # stands in for the data's Preprocessor
        @staticmethod
        def inverse(x: np.ndarray) -> np.ndarray:
            return x * 2


def test_drawing_evaluation_samples_shows_a_bar(terminal_progress) -> None:
    samples = draw_samples(_Sampler(), 1200, _Data())
    assert samples.shape == (1200, 2) and float(samples.max()) == 2.0
    assert "drawing samples" in terminal_progress.getvalue()
    assert "1200/1200" in terminal_progress.getvalue()
