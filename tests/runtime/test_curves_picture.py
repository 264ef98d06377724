"""curves.png shows every logged value: a one-epoch run's single points, and validation
points however few (validation skips epochs), on whole-epoch ticks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gencompile.runtime import pictures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures `save_curves` writes, kept to be inspected."""
    figures: list[Figure] = []
    write = pictures._write_figure

    def keep(figure: Figure, path: Path) -> Path:
        figures.append(figure)
        return write(figure, path)

    monkeypatch.setattr(pictures, "_write_figure", keep)
    return figures


def visible(axes: Axes) -> dict[str, list[tuple[float, float]]]:
    """Each line's points that are drawn as something: a line needs two, a dot one."""
    found = {}
    for line in axes.get_lines():
        points = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
        if len(points) >= 2 or line.get_marker() not in (None, "None", "", " "):
            found[str(line.get_label())] = [(float(x), float(y)) for x, y in points]
    return found


def test_a_one_epoch_run_draws_its_points(tmp_path: Path, drawn: list[Figure]) -> None:
    history = {"loss": [3.0], "kl": [1.5], "val_loss": [2.5], "val_kl": [1.25]}
    pictures.save_curves(history, tmp_path / "curves.png")
    panels = {axes.get_title(): axes for axes in drawn[0].axes}
    assert visible(panels["loss"]) == {"train": [(1.0, 3.0)], "validation": [(1.0, 2.5)]}
    assert visible(panels["kl"]) == {"train": [(1.0, 1.5)], "validation": [(1.0, 1.25)]}
    assert whole_epoch_ticks(drawn[0], panels["loss"]) == ["1"]


def whole_epoch_ticks(figure: Figure, axes: Axes) -> list[str]:
    """The x tick labels drawn within the axes' range: epochs, so whole numbers only."""
    figure.canvas.draw()
    low, high = axes.get_xlim()
    ticks = [
        t for t in axes.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high
    ]
    return [t.get_text() for t in ticks]


def test_one_validated_epoch_of_six_is_a_point_on_whole_epochs(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    nan = math.nan
    history = {
        "loss": [6.0, 5.0, 4.0, 3.5, 3.2, 3.0],
        "val_loss": [nan, nan, nan, 3.6, nan, nan],  # validation_every_epochs: auto
    }
    pictures.save_curves(history, tmp_path / "curves.png")
    (axes,) = drawn[0].axes
    assert visible(axes)["validation"] == [(4.0, 3.6)]
    ticks = whole_epoch_ticks(drawn[0], axes)
    assert ticks and all(t.isdigit() for t in ticks), ticks


def test_values_between_gaps_are_dots_in_a_long_curve(tmp_path: Path, drawn: list[Figure]) -> None:
    """Lazy R1 logs nan in epochs without a penalty update: 21 values each between two gaps
    are dots (no line reaches them); a curve without such values keeps a plain line."""
    penalty = [0.5 + 0.01 * i if i % 2 == 0 else math.nan for i in range(42)]
    loss = [3.0 - 0.01 * i for i in range(42)]
    pictures.save_curves({"gradient_penalty": penalty, "loss": loss}, tmp_path / "curves.png")
    panels = {axes.get_title(): axes for axes in drawn[0].axes}
    [line] = panels["gradient_penalty"].get_lines()
    assert line.get_marker() == "o"
    assert line.get_markevery() == [i % 2 == 0 for i in range(42)]
    [plain] = panels["loss"].get_lines()
    assert plain.get_marker() in (None, "None", "", " ")
