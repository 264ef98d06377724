"""A sweep's trials as rows: read from its Optuna study, written as summary.csv/.md."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencompile.comparison import markdown_cell
from gencompile.errors import GencompileError
from gencompile.files import atomic_write_text, read_json
from gencompile.markdown import markdown_text
from gencompile.report import format_value
from gencompile.runtime import history_file
from gencompile.sweep.plan import Direction, Sweep

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # complete, pruned, failed, interrupted, running
    value: float | None
    values: dict[str, Any]  # field path -> value
    run_dir: str
    note: str = ""


def metric_value(run_dir: Path, metric: str) -> float:
    """The metric of a finished run: from metrics.json, else the last value history.csv has."""
    record = read_json(run_dir / "metrics.json")
    metrics = record.get("metrics", {})
    if metric in metrics:
        return float(metrics[metric])
    history = _history_column(run_dir, metric)
    if history:
        return history[-1]
    available = sorted(metrics) + sorted(_history_names(run_dir))
    raise GencompileError(
        f"{run_dir} has no metric {metric!r} (it has: {', '.join(available)}); give "
        "--metric with one of these and run the sweep again under a new --name"
    )


def _history_names(run_dir: Path) -> list[str]:
    return history_file.names(run_dir / "history.csv")


def _history_column(run_dir: Path, name: str) -> list[float]:
    return history_file.column(run_dir / "history.csv", name)


# --------------------------------------------------------------------------- summary


def trial_rows(study: optuna.Study, sweep: Sweep) -> list[TrialRow]:
    """Every trial of the study (other machines' too, on a shared database)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
            trial.state.name, trial.state.name.lower()
        )
        value = trial.value if trial.state.name == "COMPLETE" else None
        metrics = trial.user_attrs.get("metrics", {})
        if value is None:
            value = trial.user_attrs.get("value", metrics.get(sweep.metric))
        note = trial.user_attrs.get("error", "")
        if trial.state.name == "FAIL" and trial.user_attrs.get("interrupted"):
            state = "interrupted"
        elif trial.state.name == "FAIL" and not note:  # killed: `compare` says interrupted too
            state, note = "interrupted", "its process ended without finishing it"
        if "pruned_at_epoch" in trial.user_attrs:
            note = f"pruned after epoch {trial.user_attrs['pruned_at_epoch']}"
        rows.append(
            TrialRow(
                number=trial.number,
                state=state,
                value=value,
                values=trial.user_attrs.get("values", {}),
                run_dir=trial.user_attrs.get("run_dir", ""),
                note=note,
            )
        )
    return rows


def best_row(rows: list[TrialRow], direction: Direction) -> TrialRow | None:
    complete = [row for row in rows if row.state == "complete" and row.value is not None]
    if not complete:
        return None
    pick = min if direction == "minimize" else max
    return pick(complete, key=lambda row: float(row.value or 0.0))


def summary_table(sweep: Sweep, rows: list[TrialRow]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: trial, state, the metric, each swept field, note, run folder."""
    paths = list(sweep.grid or sweep.parameters)
    header = ["trial", "state", sweep.metric, *paths, "note", "run"]
    body = [
        [
            str(row.number),
            row.state,
            "" if row.value is None else repr(float(row.value)),
            *(json.dumps(row.values[p]) if p in row.values else "" for p in paths),
            row.note,
            row.run_dir,
        ]
        for row in rows
    ]
    return header, body


def write_summary(sweep: Sweep, rows: list[TrialRow]) -> Path:
    """summary.csv and summary.md in the sweep folder; returns the markdown's path."""

    header, body = summary_table(sweep, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    atomic_write_text(sweep.folder / "summary.csv", buffer.getvalue())
    best = best_row(rows, sweep.direction)
    lines = [
        f"# Sweep {markdown_text(sweep.name)}",
        "",
        f"{sweep.kind} over {', '.join(sweep.grid or sweep.parameters)}; {sweep.direction} "
        f"{sweep.metric}. Best: "
        + (f"trial {best.number} ({format_value(best.value)})." if best else "none finished."),
        "",
        "| " + " | ".join(markdown_text(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in body]
    path = sweep.folder / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
