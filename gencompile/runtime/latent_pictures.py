"""Pictures of the latent space (`gencompile latent`), drawn with matplotlib's Agg canvas
(never pyplot) and written atomically as PNG, each with a title saying what it shows.

- images: a grid, one row per path / dimension / example, one column per step;
- vectors (2-D or tabular data): each row a line through its points in the data's first two
  features, over the held-out data in grey;
- a map: 2-D points coloured by label or component.

`plain=True` draws a picture without its title (a report prints it as the caption) at a
fraction of the cost, since the report draws them at the end of every training: an image
grid is written as its pixels, enlarged; a plot has no axes, ticks or row legend (a map
keeps its colour legend) and fixed margins instead of a layout pass.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from gencompile.runtime.pictures import _write_figure
from gencompile.runtime.repro import atomic_write_bytes

MAX_LEGEND_ROWS = 12
PLAIN_WIDTH = 480  # pixels a plain image grid is enlarged to, at least (whole multiples)
PAD = 1  # a grey line between the cells of an image grid


def save_image_rows(
    images: np.ndarray,
    path: Path,
    title: str,
    row_labels: list[str],
    value_range: tuple[float, float],
    column_labels: list[str] | None = None,
    plain: bool = False,
) -> Path:
    """Images `(R, C, H, W[, ch])` as an R x C grid with a title and a label per row
    (`plain`: the grid alone, each pixel enlarged to a square of whole pixels)."""
    canvas = image_grid(images, value_range)
    if plain:
        return _save_pixels(canvas, path)
    rows, columns, height, width = np.asarray(images).shape[:4]
    channels = canvas.shape[-1]
    cell = 0.6 if height <= 16 else 0.9
    figure = Figure(figsize=(1.6 + columns * cell, 0.9 + rows * cell), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = canvas[..., 0] if channels == 1 else canvas
    axes.imshow(shown, cmap="gray" if channels == 1 else None, vmin=0.0, vmax=1.0,
                interpolation="nearest")  # fmt: skip
    axes.set_yticks([r * (height + PAD) + height / 2 for r in range(rows)], row_labels,
                    fontsize=7)  # fmt: skip
    if column_labels is not None:
        axes.set_xticks([c * (width + PAD) + width / 2 for c in range(columns)], column_labels,
                        fontsize=6)  # fmt: skip
    else:
        axes.set_xticks([])
    axes.set_title(_wrapped(title, figure), fontsize=9)
    return _write_figure(figure, path)


def image_grid(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Images `(R, C, H, W[, ch])` in `value_range` -> one (R x C grid) image in [0, 1]
    `(R (H + 1) - 1, C (W + 1) - 1, ch)`, cells parted by grey lines."""
    images = np.asarray(images, np.float64)
    if images.ndim == 4:
        images = images[..., None]
    rows, columns, height, width, channels = images.shape
    low, high = value_range
    scaled = np.clip((images - low) / max(high - low, 1e-12), 0.0, 1.0)
    canvas = np.full((rows * (height + PAD) - PAD, columns * (width + PAD) - PAD, channels), 0.5)
    for r in range(rows):  # rows and columns of the grid, not samples: a handful each
        for c in range(columns):
            top, left = r * (height + PAD), c * (width + PAD)
            canvas[top : top + height, left : left + width] = scaled[r, c]
    return canvas


def plain_scale(canvas_width: int) -> int:
    """How many pixels a plain grid gives each of its pixels across and down."""
    return max(1, math.ceil(PLAIN_WIDTH / max(canvas_width, 1)))


def _save_pixels(canvas: np.ndarray, path: Path) -> Path:
    """A [0, 1] image `(H, W, ch)` as a PNG, enlarged by `plain_scale` (nearest pixel)."""
    scale = plain_scale(canvas.shape[1])
    pixels = np.round(canvas * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def _save_plot(figure: Figure, path: Path, title: str, axes: object, plain: bool) -> Path:
    """A plot with its title and a layout pass, or (`plain`) untitled with fixed margins."""
    if plain:  # no ticks to lay out: the caption names the axes
        axes.set_axis_off()  # type: ignore[attr-defined]
        right = 0.8 if axes.get_legend() is not None else 0.98  # type: ignore[attr-defined]
        figure.subplots_adjust(left=0.02, right=right, bottom=0.02, top=0.98)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        atomic_write_bytes(Path(path), buffer.getvalue())
        return Path(path)
    axes.set_title(_wrapped(title, figure), fontsize=9)  # type: ignore[attr-defined]
    figure.tight_layout()  # room for the title, the labels and a legend right of the axes
    return _write_figure(figure, path)


def save_vector_rows(
    points: np.ndarray,
    path: Path,
    title: str,
    row_labels: list[str],
    reference: np.ndarray | None = None,
    feature_names: tuple[str, str] = ("x0", "x1"),
    plain: bool = False,
) -> Path:
    """Vectors `(R, C, D)`: row r as a line through its C points (first two features; a
    1-D vector along the x axis), start marked o and end x, over `reference` in grey."""
    points = _two_features(np.asarray(points, np.float64))
    figure = Figure(figsize=(5.5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if reference is not None:
        ref = _two_features(np.asarray(reference, np.float64)[None])[0]
        axes.scatter(ref[:, 0], ref[:, 1], s=4, c="lightgrey", linewidths=0, label="held-out data")
    for r, label in enumerate(row_labels):
        line = axes.plot(points[r, :, 0], points[r, :, 1], "-", lw=1.2, marker=".", ms=4,
                         label=label if r < MAX_LEGEND_ROWS else None)[0]  # fmt: skip
        axes.plot(points[r, 0, 0], points[r, 0, 1], "o", color=line.get_color(), ms=6)
        axes.plot(points[r, -1, 0], points[r, -1, 1], "x", color=line.get_color(), ms=7)
    axes.set_xlabel(feature_names[0], fontsize=8)
    axes.set_ylabel(feature_names[1], fontsize=8)
    if not plain:  # a plain picture's rows are told apart by colour alone
        axes.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save_plot(figure, path, title, axes, plain)


def _two_features(points: np.ndarray) -> np.ndarray:
    """(R, C, D) -> (R, C, 2): the first two features, or one feature against zero."""
    flat = points.reshape(*points.shape[:2], -1)
    if flat.shape[-1] == 1:
        return np.concatenate([flat, np.zeros_like(flat)], axis=-1)
    return flat[..., :2]


def save_map(
    points: np.ndarray,
    path: Path,
    title: str,
    colours: np.ndarray | None,
    colour_name: str,
    axis_names: tuple[str, str],
    landmarks: np.ndarray | None = None,
    plain: bool = False,
) -> Path:
    """Points `(N, 2)` coloured by an integer per point (a label, a component), with a legend
    of the values present; one colour when there is nothing to colour by. `landmarks`
    (a mixture's component means, `(K, 2)`) are marked with black crosses."""
    points = np.asarray(points, np.float64)
    figure = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    size = float(np.clip(3000.0 / max(len(points), 1), 2.0, 25.0))
    if colours is None:
        axes.scatter(points[:, 0], points[:, 1], s=size, c="tab:blue", linewidths=0)
    else:
        colours = np.asarray(colours).astype(int)
        values = np.unique(colours)
        palette = "tab10" if len(values) <= 10 else "tab20"
        scatter = axes.scatter(points[:, 0], points[:, 1], s=size, c=colours, cmap=palette,
                               vmin=values.min(), vmax=max(values.max(), values.min() + 1),
                               linewidths=0)  # fmt: skip
        # One marker per value in its colour (legend_elements measures every point: slow).
        handles = [axes.scatter([], [], s=12, color=scatter.to_rgba(v)) for v in values]
        axes.legend(handles, [str(v) for v in values], title=colour_name, fontsize=7,
                    title_fontsize=8, frameon=False, loc="center left",
                    bbox_to_anchor=(1.0, 0.5))  # fmt: skip
    if landmarks is not None:
        marks = np.asarray(landmarks, np.float64)
        axes.scatter(marks[:, 0], marks[:, 1], s=60, c="black", marker="x", linewidths=1.5)
    axes.set_xlabel(axis_names[0], fontsize=8)
    axes.set_ylabel(axis_names[1], fontsize=8)
    return _save_plot(figure, path, title, axes, plain)


def _wrapped(title: str, figure: Figure) -> str:
    """The title in lines that fit the figure's width (at most 8 px per character at 9 pt)."""
    width = figure.get_figwidth() * figure.dpi
    return textwrap.fill(title, max(30, int(width / 8)))
