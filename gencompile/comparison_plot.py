"""`gencompile compare --plot FILE.png`: a picture of how the runs' differing fields relate
to a metric. Two axes (one field and the metric) make a scatter plot; more make parallel
coordinates, one line per run coloured by the metric. Matplotlib is imported here only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gencompile.comparison import RunTable, _field_text, lower_is_better
from gencompile.errors import GencompileError
from gencompile.files import atomic_open

LOG_SPAN = 10.0  # positive values spanning more than a decade get a log axis


def _axis(values: list[Any]) -> tuple[list[float], str, list[tuple[float, str]] | None]:
    """Numbers to plot, the axis' note, and tick labels for values that are not numbers."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(values):
        floats = [float(v) for v in values]
        finite = [v for v in floats if math.isfinite(v)]
        if finite and min(finite) > 0 and max(finite) / min(finite) > LOG_SPAN:
            return [math.log10(v) if v > 0 else math.nan for v in floats], "log10", None
        return floats, "", None
    labels = sorted({_field_text(v) for v in values})
    index = {label: float(i) for i, label in enumerate(labels)}
    ticks = [(i, label) for label, i in index.items()]
    return [index[_field_text(v)] for v in values], "", ticks


def plot_runs(table: RunTable, metric: str, path: Path) -> Path:
    """Write the picture of `metric` against the runs' differing fields to `path` (.png)."""
    if metric not in table.metrics:
        raise GencompileError(
            f"--plot needs a metric the runs have (got {metric}; they have: "
            f"{', '.join(table.metrics) or 'none'}); give it with --sort"
        )
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    entries = [e for e in table.entries if isinstance(e.metrics.get(metric), (int, float))]
    fields = [p for p in table.differing if p not in ("name", "description")]
    scores = [float(e.metrics[metric]) for e in entries]
    better = "lower is better" if lower_is_better(metric) else "higher is better"
    if lower_is_better(metric) is None:
        better = ""
    # What the metric's numbers are not ("computed differently") is said wherever it is.
    named = f"{metric} ({table.marks[metric]})" if metric in table.marks else metric
    points: Any  # what the colour bar reads: the scatter, or the lines' colour map
    figure, ax = plt.subplots(figsize=(max(6.0, 2.2 * (len(fields) + 1)), 4.5), dpi=100)
    if len(fields) == 1:
        xs, note, ticks = _axis([e.fields.get(fields[0]) for e in entries])
        points = ax.scatter(xs, scores, c=scores, cmap="viridis")
        ax.set_xlabel(f"{fields[0]} ({note})" if note else fields[0])
        ax.set_ylabel(f"{named} ({better})" if better else named)
        if ticks:
            ax.set_xticks([i for i, _ in ticks], [label for _, label in ticks])
    else:
        columns = [*fields, named]
        axes = [_axis([e.fields.get(p) for e in entries]) for p in fields]
        axes.append(_axis(scores))
        spans = []
        for values, _, _ in axes:
            finite = [v for v in values if math.isfinite(v)] or [0.0]
            spans.append((min(finite), max(finite)))
        cmap = plt.get_cmap("viridis")
        low, high = min(scores, default=0.0), max(scores, default=1.0)
        for row, score in enumerate(scores):
            ys = [
                0.5 if hi == lo else (axes[i][0][row] - lo) / (hi - lo)
                for i, (lo, hi) in enumerate(spans)
            ]
            shade = 0.5 if high == low else (score - low) / (high - low)
            ax.plot(range(len(columns)), ys, color=cmap(shade), alpha=0.8, marker="o")
        labels = []
        for name, (_, note, ticks), (lo, hi) in zip(columns, axes, spans, strict=True):
            ends = f"{_end(lo, note)} .. {_end(hi, note)}"
            if ticks:  # categories, in the order of the axis
                ends = ", ".join(label for _, label in ticks[:4]) + (
                    " ..." if len(ticks) > 4 else ""
                )
            labels.append(f"{name}\n{ends}")
        ax.set_xticks(range(len(columns)), labels, fontsize=8)
        ax.set_yticks([0, 1], ["min", "max"])
        points = ScalarMappable(cmap=cmap, norm=Normalize(low, high))
    figure.colorbar(points, ax=ax, label=f"{named} ({better})" if better else named)
    ax.set_title(f"{len(entries)} runs: {named} by the fields that differ", fontsize=10)
    figure.tight_layout()
    with atomic_open(path) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
    return path


def _end(value: float, note: str) -> str:
    return f"{10**value:.3g}" if note == "log10" else f"{value:.4g}"
