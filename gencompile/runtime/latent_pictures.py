"""Pictures of the latent space (`gencompile latent`), drawn with matplotlib's Agg canvas
(never pyplot) and written atomically as PNG, each with a title saying what it shows.

- images: a grid, one row per path / dimension / example, one column per step;
- vectors (2-D or tabular data): each row a line through its points in the data's first two
  features, over the held-out data in grey;
- a map: 2-D points coloured by label or component.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gencompile.runtime.pictures import _write_figure

MAX_LEGEND_ROWS = 12


def save_image_rows(
    images: np.ndarray,
    path: Path,
    title: str,
    row_labels: list[str],
    value_range: tuple[float, float],
    column_labels: list[str] | None = None,
) -> Path:
    """Images `(R, C, H, W[, ch])` as an R x C grid with a title and a label per row."""
    images = np.asarray(images, np.float64)
    if images.ndim == 4:
        images = images[..., None]
    rows, columns, height, width, channels = images.shape
    low, high = value_range
    scaled = np.clip((images - low) / max(high - low, 1e-12), 0.0, 1.0)
    pad = 1  # a grey line between cells
    canvas = np.full((rows * (height + pad) - pad, columns * (width + pad) - pad, channels), 0.5)
    for r in range(rows):  # rows and columns of the grid, not samples: a handful each
        for c in range(columns):
            top, left = r * (height + pad), c * (width + pad)
            canvas[top : top + height, left : left + width] = scaled[r, c]
    cell = 0.6 if height <= 16 else 0.9
    figure = Figure(figsize=(1.6 + columns * cell, 0.9 + rows * cell), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = canvas[..., 0] if channels == 1 else canvas
    axes.imshow(shown, cmap="gray" if channels == 1 else None, vmin=0.0, vmax=1.0,
                interpolation="nearest")  # fmt: skip
    axes.set_yticks([r * (height + pad) + height / 2 for r in range(rows)], row_labels,
                    fontsize=7)  # fmt: skip
    if column_labels is not None:
        axes.set_xticks([c * (width + pad) + width / 2 for c in range(columns)], column_labels,
                        fontsize=6)  # fmt: skip
    else:
        axes.set_xticks([])
    axes.set_title(_wrapped(title, figure), fontsize=9)
    return _write_figure(figure, path)


def save_vector_rows(
    points: np.ndarray,
    path: Path,
    title: str,
    row_labels: list[str],
    reference: np.ndarray | None = None,
    feature_names: tuple[str, str] = ("x0", "x1"),
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
    axes.legend(fontsize=7, frameon=False, loc="best")
    axes.set_title(_wrapped(title, figure), fontsize=9)
    return _write_figure(figure, path)


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
        handles, names = scatter.legend_elements(num=list(values))
        axes.legend(handles, names, title=colour_name, fontsize=7, title_fontsize=8,
                    frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))  # fmt: skip
    if landmarks is not None:
        marks = np.asarray(landmarks, np.float64)
        axes.scatter(marks[:, 0], marks[:, 1], s=60, c="black", marker="x", linewidths=1.5)
    axes.set_xlabel(axis_names[0], fontsize=8)
    axes.set_ylabel(axis_names[1], fontsize=8)
    axes.set_title(_wrapped(title, figure), fontsize=9)
    return _write_figure(figure, path)


def _wrapped(title: str, figure: Figure) -> str:
    """The title in lines that fit the figure's width (at most 8 px per character at 9 pt)."""
    width = figure.get_figwidth() * figure.dpi
    return textwrap.fill(title, max(30, int(width / 8)))
