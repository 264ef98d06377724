"""Pictures of samples: image grids and 2-D scatter plots, written atomically as PNG.

Image grids are drawn with pillow (nearest upscaling, so an 8x8 digit is readable rather
than a blur); scatter plots use matplotlib's Agg canvas directly through `Figure`, never
pyplot, so saving a picture neither needs a display nor changes the process-wide backend.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator
from PIL import Image

from gencompile.runtime.pixels import to_pixels
from gencompile.runtime.repro import atomic_write_bytes

MIN_CELL_PIXELS = 32
SEPARATOR_GREY = 128


def save_image_grid(
    images: np.ndarray,
    path: Path,
    columns: int | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path:
    """Save images `(N, H, W, C)` (C in {1, 3}; `(N, H, W)` is taken as C=1) as one PNG grid.

    Values are mapped from `value_range` to 0..255 and clipped; cells are separated by 1-px
    grey lines and upscaled by an integer factor until each is at least 32 px.
    """
    images = np.asarray(images, dtype="float64")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            "save_image_grid expects images of shape (N, H, W, C) with N > 0 and C in {1, 3}. "
            f"Received: shape={images.shape}"
        )
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be increasing. Received: value_range={value_range}")

    count, height, width, channels = images.shape
    columns = int(columns) if columns else math.ceil(math.sqrt(count))
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    scale = max(1, math.ceil(MIN_CELL_PIXELS / min(height, width)))
    cell_h, cell_w = height * scale, width * scale

    pixels = to_pixels(images, (low, high)).repeat(scale, axis=1).repeat(scale, axis=2)

    canvas = np.full(
        (rows * cell_h + rows - 1, columns * cell_w + columns - 1, channels),
        SEPARATOR_GREY,
        dtype=np.uint8,
    )
    for index in range(count):
        top = (index // columns) * (cell_h + 1)
        left = (index % columns) * (cell_w + 1)
        canvas[top : top + cell_h, left : left + cell_w] = pixels[index]

    picture = Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
    return _write_png(picture, path)


def _write_png(picture: Image.Image, path: Path) -> Path:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def save_scatter(
    samples: np.ndarray,
    path: Path,
    reference: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Scatter 2-D samples (in blue) over reference data (light grey), equal aspect, as PNG."""
    samples = _points(samples, "samples")
    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    fix_margins(figure, 1, 1)
    axes = figure.add_subplot()
    size = _marker_size(len(samples))
    if reference is not None:
        reference = _points(reference, "reference")
        axes.scatter(
            reference[:, 0], reference[:, 1], s=size, c="lightgrey", label="data", linewidths=0
        )
    axes.scatter(samples[:, 0], samples[:, 1], s=size, c="tab:blue", label="samples", alpha=0.7)
    axes.set_aspect("equal", adjustable="datalim")
    if reference is not None:
        axes.legend(loc="upper right", markerscale=3, frameon=False)
    if title:
        axes.set_title(title, fontsize=10)
    return _write_figure(figure, path)


# Margins around and between panels, in inches: room for tick labels, the axis label and
# a title of fontsize 10 at dpi 100.
MARGINS = {"left": 0.55, "right": 0.15, "bottom": 0.45, "top": 0.35}
GAPS = {"wspace": 0.6, "hspace": 0.7}


def fix_margins(figure: Figure, rows: int, columns: int) -> None:
    """Lay panels out with fixed margins. (`tight_layout` measures every tick label by
    drawing the figure once more: half the time a picture of curves took.)"""
    width, height = figure.get_size_inches()
    panel_width = (width - MARGINS["left"] - MARGINS["right"]) / columns
    panel_height = (height - MARGINS["bottom"] - MARGINS["top"]) / rows
    figure.subplots_adjust(
        left=MARGINS["left"] / width,
        right=1 - MARGINS["right"] / width,
        bottom=MARGINS["bottom"] / height,
        top=1 - MARGINS["top"] / height,
        # subplots_adjust counts gaps in panels' widths and heights, not inches.
        wspace=GAPS["wspace"] / (panel_width - GAPS["wspace"]),
        hspace=GAPS["hspace"] / (panel_height - GAPS["hspace"]),
    )


def _write_figure(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _points(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"{what} must have shape (N, 2). Received: shape={values.shape}")
    return values[:, :2]


def _marker_size(count: int) -> float:
    """Smaller markers for more points, so thousands of samples still show structure."""
    return float(np.clip(2000.0 / max(count, 1), 1.0, 20.0))


def save_samples(
    samples: np.ndarray,
    path: Path,
    kind: str,
    reference: np.ndarray | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path:
    """Save samples as the picture that suits their kind.

    "image" -> grid; anything else is flattened to (N, D) features: D == 2 -> scatter,
    D > 2 -> scatter of the first two dimensions, D == 1 -> points along the x axis, with a
    note in the title whenever the plot does not show every dimension.
    """
    if kind == "image":
        return save_image_grid(samples, path, value_range=value_range)
    flat = _features(samples)
    dims = flat.shape[1]
    ref = _features(reference) if reference is not None else None
    if dims == 2:
        return save_scatter(flat, path, reference=ref)
    if dims == 1:
        flat = np.concatenate([flat, np.zeros_like(flat)], axis=1)
        if ref is not None:
            ref = np.concatenate([ref[:, :1], np.zeros_like(ref[:, :1])], axis=1)
        return save_scatter(flat, path, reference=ref, title="1 dimension, on the x axis")
    title = f"first 2 of {dims} dimensions"
    return save_scatter(flat[:, :2], path, reference=ref, title=title)


def _features(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"samples must be a non-empty batch. Received: shape={values.shape}")
    return values.reshape(values.shape[0], -1)


def save_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Training curves: one panel per logged quantity, training and validation together."""
    names = sorted(k for k in history if not k.startswith("val_") and history[k])
    if not names:
        raise ValueError("history has no logged values to plot")
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4 * columns, 3 * rows), dpi=100)
    FigureCanvasAgg(figure)
    fix_margins(figure, rows, columns)
    for i, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, i + 1)
        epochs = np.arange(1, len(history[name]) + 1)
        train = np.asarray(history[name], dtype=float)
        axes.plot(epochs, train, label="train", color="tab:blue", **_marked(train))
        # Validated epochs only (validation may run every N epochs: NaN between), each a
        # point: a line through few of them would hide that the epochs between have none.
        validation = np.asarray(history.get(f"val_{name}") or [], dtype=float)
        shown = np.isfinite(validation)
        if shown.any():
            where = np.arange(1, len(validation) + 1)[shown]
            axes.plot(where, validation[shown], label="validation", color="tab:orange", marker="o")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs
        if name.endswith("grad_norm") and min(history[name]) > 0:
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(PlainLogFormatter())
            axes.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("epoch", fontsize=8)
        if shown.any():
            axes.legend(fontsize=8, frameon=False)
    return _write_figure(figure, path)


# A curve with fewer points than this draws each as a dot: a single one (a one-epoch run)
# is otherwise invisible, as a line needs two.
MARKED_BELOW = 20


def _marked(values: np.ndarray) -> dict[str, object]:
    """Matplotlib's line style for `values`: dots too when they are few, else a dot at each
    value no line reaches, between two gaps (nan: an epoch that did not compute it, as a
    lazy penalty's), which would otherwise not show at all."""
    finite = np.isfinite(values)
    if finite.sum() < MARKED_BELOW:
        return {"marker": "o", "markersize": 4}
    joined = np.zeros_like(finite)
    joined[1:] |= finite[:-1]
    joined[:-1] |= finite[1:]
    isolated = finite & ~joined
    return (
        {"marker": "o", "markersize": 3, "markevery": isolated.tolist()} if isolated.any() else {}
    )


_MATHTEXT_LABEL = re.compile(r"^\$\\mathdefault\{(?P<body>.*)\}\$$")
_EXPONENT = re.compile(r"\^\{(?P<power>-?\d+)\}")
_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


class PlainLogFormatter(LogFormatterSciNotation):
    """matplotlib's log-axis labels (10^-2, 2x10^-1), written as plain text with Unicode
    superscripts. Its own labels are mathtext, whose parser is built on first use: 0.2-0.3 s
    of CPU, most of a picture of curves, for labels the font draws as well."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return plain_label(super().__call__(x, pos))


def plain_label(label: str) -> str:
    """A mathtext label of `LogFormatterSciNotation` as plain text: `$\\mathdefault{10^{-1}}$`
    -> "10" with a superscript minus one, `\\times` -> a multiplication sign; any other label
    as it is."""
    found = _MATHTEXT_LABEL.match(label)
    if found is None or "\\" in found["body"].replace("\\times", ""):
        return label
    body = found["body"].replace("\\times", "\u00d7")
    body = _EXPONENT.sub(lambda power: power["power"].translate(_SUPERSCRIPT), body)
    return body.replace("-", "\u2212")  # mathtext draws a minus sign, not a hyphen
