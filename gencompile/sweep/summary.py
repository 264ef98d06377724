"""A sweep's trials as rows: read from its Optuna study, written as summary.csv/.md."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
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


CONTINUES = "continues"  # a trial's user attr: the interrupted trial whose run it continues
RETRIES = "retries"  # a trial's user attr: the trial stopped before a checkpoint it trains again
RUN_DIR = "run_dir"  # a trial's user attr: its run folder's name (`trial_folder`)


def trial_folder(folder: Path, trial: optuna.trial.BaseTrial) -> Path | None:
    """The run folder of a sweep's trial, None before it was given one. Trial folders
    always lie directly in the sweep folder: found there whatever the current directory
    (a study written before recorded a path relative to the one its sweep ran from)."""
    recorded = trial.user_attrs.get(RUN_DIR)
    return folder / Path(recorded).name if recorded else None


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # complete, pruned, failed, interrupted, running
    value: float | None
    values: dict[str, Any]  # field path -> value
    run_dir: str
    note: str = ""


def metric_value(run_dir: Path, metric: str) -> float:
    """The metric of a finished run, for the weights it keeps: from metrics.json, else the
    history.csv value of the epoch whose weights those are (`_kept_epoch`)."""
    record = read_json(run_dir / "metrics.json")
    metrics = record.get("metrics", {})
    if metric in metrics:
        return float(metrics[metric])
    if metric in _history_names(run_dir):
        return _kept_epoch_value(run_dir, record, metric)
    available = sorted(metrics) + sorted(_history_names(run_dir))
    raise GencompileError(
        f"{run_dir} has no metric {metric!r} (it has: {', '.join(available)}); give "
        "--metric with one of these and run the sweep again under a new --name"
    )


def _kept_epoch(run_dir: Path, record: dict[str, Any]) -> int | None:
    """The epoch whose weights the run keeps: the one early stopping restored, else its last."""
    epoch = record.get("restored_epoch") or record.get("epochs")
    if isinstance(epoch, int):
        return epoch
    return max(history_file.read_epochs(run_dir / "history.csv"), default=None)


def _kept_epoch_value(run_dir: Path, record: dict[str, Any], metric: str) -> float:
    """history.csv's `metric` at the kept epoch: never an earlier epoch's value, which
    would score weights the run does not keep."""
    epoch = _kept_epoch(run_dir, record)
    value = history_file.read_numbers(run_dir / "history.csv").get(epoch or 0, {}).get(metric)
    if value is None:
        raise GencompileError(
            f"{run_dir}: its epoch {epoch}, whose weights it keeps, has no {metric} (that "
            "epoch was not validated); validate every epoch (training.validation_every_epochs "
            "1), or choose a metric of metrics.json"
        )
    if not math.isfinite(value):
        raise GencompileError(
            f"{run_dir}: {metric} is {value} at epoch {epoch}, whose weights it keeps: the "
            "model diverged on held-out data (a lower learning rate may help)"
        )
    return value


def _history_names(run_dir: Path) -> list[str]:
    return history_file.names(run_dir / "history.csv")


# --------------------------------------------------------------------------- summary


def trial_rows(study: optuna.Study, sweep: Sweep) -> list[TrialRow]:
    """Every trial of the study (other machines' too, on a shared database); of the trials
    of one run folder (one interrupted, then continued by another), the latest."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    retried_by = {t.user_attrs[RETRIES]: t.number for t in trials if RETRIES in t.user_attrs}
    for trial in _latest_per_run(sweep.folder, trials):
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
        continued = trial.user_attrs.get(CONTINUES)
        if continued:
            since = f"continues trial {continued['trial']} from epoch {continued['epoch']}"
            note = f"{since}; {note}" if note else since
        note = _retry_note(trial, note, retried_by)
        run_dir = trial_folder(sweep.folder, trial)
        row = TrialRow(
            number=trial.number,
            state=state,
            value=value,
            values=trial.user_attrs.get("values", {}),
            run_dir=str(run_dir) if run_dir else "",
            note=note,
        )
        rows.append(_as_its_run_says(row, sweep.metric))
    return rows


def _retry_note(trial: optuna.trial.FrozenTrial, note: str, retried_by: dict[int, int]) -> str:
    """`note` with what says which trial trains a trial's values again (one stopped before
    its first checkpoint), on both trials' rows."""
    parts = [note] if note else []
    if RETRIES in trial.user_attrs:
        parts.insert(0, f"the values of trial {trial.user_attrs[RETRIES]} again, from epoch 1")
    if trial.number in retried_by:
        parts.append(f"trained again by trial {retried_by[trial.number]}")
    return "; ".join(parts)


def _latest_per_run(
    folder: Path, trials: list[optuna.trial.FrozenTrial]
) -> list[optuna.trial.FrozenTrial]:
    """The latest trial of each run folder, by number (a trial not yet given one: its own)."""
    latest = {trial_folder(folder, trial) or trial.number: trial for trial in trials}
    return sorted(latest.values(), key=lambda trial: trial.number)


def _as_its_run_says(row: TrialRow, metric: str) -> TrialRow:
    """A finished trial as its run folder tells it now: `train --resume` may have trained
    a pruned trial to its end, or a trial on (the study keeps what the sweep saw), and
    `compare` reads the folder. A run not finished keeps the study's row; one gone or
    unreadable too, saying so."""
    from gencompile.run_status import pruned_epoch, read_status

    if row.state not in ("complete", "pruned") or not row.run_dir:
        return row
    run_dir = Path(row.run_dir)
    if not run_dir.is_dir():  # deleted, or on another machine sharing the database
        return _with_note(row, "its run folder is not found here: the value the sweep saw")
    try:
        if read_status(run_dir) != "finished":
            return row
        value = metric_value(run_dir, metric)
        restored = read_json(run_dir / "metrics.json").get("restored_epoch")
    except GencompileError:
        return _with_note(row, "its run folder cannot be read: the value the sweep saw")
    state, notes = row.state, [row.note] if row.note else []
    if row.state == "pruned" and pruned_epoch(run_dir) is None:
        state = "complete"
        notes.append("then trained to its end by train --resume")
    elif value != row.value and row.value is not None:
        notes.append(f"trained on after the sweep (then {format_value(row.value)})")
    if restored:
        notes.append(f"early stopping restored epoch {restored}")
    return TrialRow(row.number, state, value, row.values, row.run_dir, "; ".join(notes))


def _with_note(row: TrialRow, note: str) -> TrialRow:
    notes = "; ".join(part for part in (row.note, note) if part)
    return TrialRow(row.number, row.state, row.value, row.values, row.run_dir, notes)


def best_row(rows: list[TrialRow], direction: Direction) -> TrialRow | None:
    complete = [row for row in rows if row.state == "complete" and row.value is not None]
    if not complete:
        return None
    pick = min if direction == "minimize" else max
    return pick(complete, key=lambda row: float(row.value or 0.0))


def no_finished_trial(sweep: Sweep, rows: list[TrialRow], summary: Path) -> str:
    """Why a sweep has no best trial and what to do, in one line: its trials by state and
    the first failure's note (the trials' errors went by between the epoch lines)."""
    counts = Counter(row.state for row in rows)
    ended = ", ".join(f"{count} {state}" for state, count in counts.items()) or "none ran"
    failed = next((row for row in rows if row.state == "failed" and row.note), None)
    if failed is not None:
        ended += f"; trial {failed.number}: {failed.note.splitlines()[0]}"
        advice = (
            f"the trials' notes are in {summary}: fix what they say (in the spec, or with "
            "other values under a new --name) and run the sweep again"
        )
    elif counts["running"]:
        advice = f"trials running in other processes may finish it: see {summary} later"
    elif sweep.kind == "optuna":  # its pruned trials count towards --trials
        advice = f"see {summary}; run the same command with a larger --trials for more"
    else:
        advice = f"see {summary}; run the same command again to continue it"
    return f"no trial of {sweep.folder} finished ({ended}); {advice}"


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
