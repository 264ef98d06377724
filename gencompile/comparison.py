"""`gencompile compare`: runs side by side, one row per run, sorted, as a table, CSV or
Markdown, with the spec fields that differ between them.

A run's fields are its lock's resolved spec flattened to `--set` paths
(`training.optimizer.learning_rate`); a field shows when the runs do not all agree on it,
which for a sweep's trials is what the sweep changed. A sweep folder given as a run stands
for its trials. Reading runs needs no TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gencompile.errors import GencompileError, RunError, quoted
from gencompile.files import read_json
from gencompile.markdown import markdown_text
from gencompile.report import (
    METRIC_UNITS,
    _settings,
    caveats,
    format_value,
    preprocessing_words,
)
from gencompile.runtime import history_file

SWEEP_FILE = "sweep.json"  # as gencompile.sweep writes it (not imported: it imports optuna's types)


@dataclass(frozen=True)
class RunEntry:
    label: str
    status: str
    metrics: dict[str, float]
    fields: dict[str, Any]  # flattened resolved spec: path -> value
    computed_with: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the spec's name, which the label starts with


@dataclass(frozen=True)
class RunTable:
    """Runs as rows: label, status, the differing fields, then every metric."""

    entries: list[RunEntry]
    differing: list[str]
    metrics: list[str]
    not_alike: list[str]  # metrics the runs computed with other settings
    sort: str | None = None
    descending: bool = False
    # "elbo, iwae_nll: <what the numbers are not>" (computed_with's caveats), one per caveat
    caveats: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # why each `unreadable` row is one
    # metric -> what its column's numbers are not ("computed differently"), in its header
    marks: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # about the order (`--sort`)

    @property
    def columns(self) -> list[str]:
        return ["run", "status", *self.differing, *self.metrics]

    @property
    def header(self) -> list[str]:
        """The columns, a marked metric's as `fd_digits (computed differently)`."""
        return [f"{c} ({self.marks[c]})" if c in self.marks else c for c in self.columns]

    def cells(self, entry: RunEntry, exact: bool = False) -> list[str]:
        """A row as text: values as the table shows them, or `exact` (CSV: full floats)."""
        fields = [
            _field_text(entry.fields[p], exact) if p in entry.fields else "" for p in self.differing
        ]
        shown = [
            ("" if name not in entry.metrics else _metric_text(entry.metrics[name], exact))
            for name in self.metrics
        ]
        return [entry.label, entry.status, *fields, *shown]


def _field_text(value: Any, exact: bool = True) -> str:
    """A field's value as JSON (strings bare); a float to 4 significant digits unless exact."""
    if isinstance(value, float) and not exact and math.isfinite(value):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _metric_text(value: Any, exact: bool) -> str:
    return repr(float(value)) if exact and isinstance(value, (int, float)) else format_value(value)


def run_folders(paths: list[Path]) -> list[Path]:
    """The runs named: a sweep folder (it holds sweep.json) stands for its trial runs."""
    found: list[Path] = []
    for path in paths:
        if (path / SWEEP_FILE).is_file() and not (path / "spec.lock.json").exists():
            found += sorted(p for p in path.iterdir() if (p / "spec.lock.json").is_file())
        else:
            found.append(path)
    return found


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"model": {"latent_dim": 8}}` -> `{"model.latent_dim": 8}`; a list of plain values
    stays one value (`model.encoder.mlp: [256, 128]`), a list of mappings is indexed."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        flat = {}
        for i, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{i}]"))
        return flat
    return {prefix: value}


def read_entry(run_dir: Path) -> RunEntry:
    from gencompile.lockfile import read_lock
    from gencompile.run_status import pruned_epoch, read_status

    lock = read_lock(run_dir)  # a damaged lock is one clear line, not a traceback
    record = read_json(run_dir / "metrics.json")
    status = read_status(run_dir) or ("finished" if "metrics" in record else "unknown")
    if status == "finished" and pruned_epoch(run_dir) is not None:
        status = "pruned"  # trained fewer epochs than its lock asks: as its sweep says
    return RunEntry(
        label=f"{lock['name']}/{Path(os.path.abspath(run_dir)).name}",
        status=status,
        metrics=dict(record.get("metrics", {})),
        fields=flatten(lock.get("resolved_spec", {})),
        computed_with=record.get("computed_with", {}),
        name=str(lock["name"]),
    )


UNREADABLE = "unreadable"


def read_entries(folders: list[Path]) -> tuple[list[RunEntry], list[str]]:
    """Every run's entry; a damaged run (or a half-built folder) is a row whose status is
    `unreadable`, with the reason, rather than the end of the whole comparison."""
    entries, problems = [], []
    for folder in folders:
        try:
            entries.append(read_entry(folder))
        except RunError as problem:
            if not folder.is_dir():  # a mistyped path is the user's to fix, not a row
                raise
            if any((inner / "spec.lock.json").is_file() for inner in folder.iterdir()):
                raise RunError(  # runs/NAME for runs/NAME/*: the user's to fix, not a row
                    f"{folder} is not a gencompile run or project but holds runs: give them, "
                    f"e.g. `gencompile compare {quoted(folder)}/*`"
                ) from None
            name = Path(os.path.abspath(folder)).parent.name  # runs/<spec name>/<run>
            entries.append(RunEntry(f"{name}/{folder.name}", UNREADABLE, {}, {}, name=name))
            problems.append(str(problem))
    if problems and len(problems) == len(entries):  # nothing to compare: the reason is all
        raise RunError(problems[0] if len(problems) == 1 else "; ".join(problems))
    return entries, problems


def distinct_labels(entries: list[RunEntry], folders: list[Path]) -> list[RunEntry]:
    """The entries labelled `name/folder`, with as many of the folder's parents as it takes
    for no two runs to share a label (two sweeps of one spec both hold trial-0001:
    `name/sweep_a/trial-0001`). Only the same folder named twice keeps one label."""
    parts = [Path(os.path.abspath(folder)).parts for folder in folders]
    depth = [1] * len(entries)

    def label(i: int) -> str:
        return entries[i].name + "/" + "/".join(parts[i][-depth[i] :])

    while True:
        groups: dict[str, list[int]] = {}
        for i in range(len(entries)):
            groups.setdefault(label(i), []).append(i)
        deeper = [i for same in groups.values() if len(same) > 1 for i in same]
        deeper = [i for i in deeper if depth[i] < len(parts[i])]
        if not deeper:
            return [replace(entry, label=label(i)) for i, entry in enumerate(entries)]
        for i in deeper:
            depth[i] += 1


def metric_caveats(entries: list[RunEntry], metrics: list[str]) -> list[str]:
    """One line per caveat the runs' computed_with give their metrics: the metrics it
    concerns, the caveat, and which runs when not every run with those metrics has it."""
    found: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (caveat, runs) -> metrics
    for name in metrics:
        having = [e for e in entries if name in e.metrics]
        by_caveat: dict[str, list[str]] = {}
        for entry in having:
            for caveat in caveats(entry.computed_with.get(name, {})):
                by_caveat.setdefault(caveat, []).append(entry.label)
        for caveat, labels in by_caveat.items():
            runs = () if len(labels) == len(having) else tuple(labels)
            found.setdefault((caveat, runs), []).append(name)
    return [
        f"{', '.join(names)}: {caveat}" + (f" (in {', '.join(runs)})" if runs else "")
        for (caveat, runs), names in found.items()
    ]


def differing_fields(entries: list[RunEntry]) -> list[str]:
    """Field paths whose values are not the same in every run (absent counts as a value)."""
    paths = sorted({path for entry in entries for path in entry.fields})
    missing = object()
    return [
        path
        for path in paths
        if len({json.dumps(e.fields.get(path, missing), default=str) for e in entries}) > 1
    ]


def _with_history(entry: RunEntry, run_dir: Path, name: str) -> tuple[RunEntry, str | None]:
    """The entry with the value of history.csv's column `name` at the last epoch that has
    one (validation skips epochs), and, when that is not the run's last epoch, which it is
    (`tiny-vae/a (epoch 4 of 6)`). A run whose early stopping restored an earlier epoch's
    weights (metrics.json's `restored_epoch`) is read at that epoch: the saved model's."""
    rows = history_file.read_numbers(run_dir / "history.csv")
    having = [e for e in sorted(rows) if math.isfinite(rows[e].get(name, math.nan))]
    restored = _restored_epoch(run_dir)
    if restored is not None:
        having = [e for e in having if e == restored]
    if not having:
        return entry, None
    epoch, last = having[-1], max(rows)
    found = replace(entry, metrics={**entry.metrics, name: rows[epoch][name]})
    if epoch == last:
        return found, None
    why = ", restored by early stopping" if epoch == restored else ""
    return found, f"{entry.label} (epoch {epoch} of {last}{why})"


def _restored_epoch(run_dir: Path) -> int | None:
    """The epoch whose weights early stopping restored, if metrics.json names one."""
    try:
        restored = read_json(run_dir / "metrics.json").get("restored_epoch")
    except RunError:  # an unreadable record names none (the table says it is unreadable)
        return None
    return restored if isinstance(restored, int) else None


NOT_ALIKE = "computed differently"  # the mark of a metric the runs computed differently
EARLIER = "last validated epoch"  # the mark of a val_* column whose values may be earlier


def _not_alike_warning(entries: list[RunEntry], name: str) -> str:
    """Why ordering the runs by `name` means little: the settings it was computed with that
    differ between them (`sample_count 300 vs 2000`)."""
    settings = [
        json.loads(_settings(e.computed_with[name])) for e in entries if name in e.computed_with
    ]
    keys = sorted({key for how in settings for key in how})
    differ = []
    for key in keys:
        values = sorted({json.dumps(how.get(key), sort_keys=True) for how in settings})
        if len(values) > 1:
            differ.append(f"{key} {' vs '.join(values)}")
    return (
        f"--sort {name}: the runs computed {name} differently ({'; '.join(differ)}), so "
        "this order compares the settings as much as the models; evaluate them alike "
        f"(gencompile evaluate RUN --metrics {name} with the same options) to rank them"
    )


# Spec fields that set the units or the definition of the training loop's values (loss,
# val_*: history.csv): the preprocessing the model sees its data through, the likelihood,
# the loss's terms and weights, a diffusion's noise levels and target. Runs that differ in
# one have val_* numbers that do not rank the models; held-out metrics (data units) do.
MODEL_UNIT_FIELDS = (
    "data.preprocessing",
    "model.likelihood",
    "model.losses",
    "model.loss",
    "model.gradient_penalty",
    "model.schedule",
    "model.prediction",
    "model.timesteps",
)
MODEL_UNITS = "model units differ"  # the mark of a val_* column whose units differ


def _within(path: str, block: str) -> bool:
    return path == block or path.startswith((f"{block}.", f"{block}["))


def sets_model_units(path: str) -> bool:
    """Whether a spec field (`data.preprocessing.standardize`), or a block holding one
    (`data.preprocessing`), changes what the training loop's loss and val_* measure."""
    return any(_within(path, f) or _within(f, path) for f in MODEL_UNIT_FIELDS)


NOT_SET = "(not set)"  # a field a run's resolved spec does not have (a bernoulli's sigma)


def model_units_differ(entries: list[RunEntry], differing: list[str]) -> list[str]:
    """The differing fields that change the training loop's units or loss, with their
    values: `data.preprocessing.standardize false vs true`, `model.likelihood.sigma
    "learned" vs (not set)`."""
    found = []
    for path in (p for p in differing if sets_model_units(p)):
        values = {json.dumps(e.fields[path]) if path in e.fields else NOT_SET for e in entries}
        found.append(f"{path} {' vs '.join(sorted(values))}")
    return found


# Fields whose change changes what a likelihood metric's computed_with records (its caveat:
# a Bernoulli cross-entropy, a density at discrete levels, a dequantized flow's bound), so
# that `compare` marks the metric "computed differently" across runs that differ in one.
LIKELIHOOD_DEFINING = ("model.likelihood.type", "model.dequantization")
LIKELIHOOD_METRICS = ("elbo", "iwae_nll", "nll", "bits_per_dim", "reconstruction_nll", "nll_bound")


def comparable_metrics(metrics: list[str], not_alike: list[str]) -> list[str]:
    """The metrics that rank runs (METRIC_UNITS gives a direction) and that the runs do not
    compute differently (`not_alike`): those to advise ranking them by."""
    return [m for m in metrics if lower_is_better(m) is not None and m not in not_alike]


def computed_differently_across(metrics: list[str], changed: list[str]) -> list[str]:
    """The metrics trials would compute differently (compare's "computed differently",
    foreseen before they run) when they differ in the fields `changed`: the likelihood
    metrics when the likelihood's type or a flow's dequantization changes."""
    defining = any(_within(p, f) or _within(f, p) for p in changed for f in LIKELIHOOD_DEFINING)
    return [m for m in metrics if defining and m in LIKELIHOOD_METRICS]


def _model_units_warning(name: str, differ: list[str], held_out: list[str]) -> str:
    """Why ordering the runs by a training-loop value means little when `differ`, and the
    held-out metrics (metrics.json's, in the data's units, computed alike in every run) to
    order them by instead."""
    instead = (
        f"sort by a held-out metric ({', '.join(held_out)}), in the data's units, to rank them"
        if held_out
        else "no held-out metric here is computed alike in every run: evaluate every run "
        "with one metric and the same options (gencompile evaluate RUN --metrics ...; a "
        "sample metric where the likelihoods differ) and sort by it to rank them"
    )
    return (
        f"--sort {name}: {name} is the training loop's, in each run's model units and loss, "
        f"and these differ ({'; '.join(differ)}), so this order compares the preprocessing "
        f"and loss as much as the models; {instead}"
    )


def _model_units_caveat(name: str, entries: list[RunEntry]) -> str | None:
    """A val_* column's units when some run preprocesses its data (else they are the
    data's): the model's, not those of the held-out metrics beside it."""
    if not any(preprocessing_words(_preprocessing(e)) for e in entries):
        return None
    return (
        f"{name}: the training loop's, in each run's model units (its data as preprocessed), "
        "not the data's units of the held-out metrics"
    )


def _preprocessing(entry: RunEntry) -> dict[str, Any]:
    prefix = "data.preprocessing."
    return {k.removeprefix(prefix): v for k, v in entry.fields.items() if k.startswith(prefix)}


def lower_is_better(metric: str) -> bool | None:
    """From METRIC_UNITS (a per-epoch val_X as X; losses lower); None when unknown."""
    name = metric.removeprefix("val_")
    how = METRIC_UNITS.get(name, ("", ""))[1]
    if how == "lower is better" or name.endswith("loss"):
        return True
    if how == "higher is better":
        return False
    return None


def ordered(entries: list[RunEntry], column: str, descending: bool) -> list[RunEntry]:
    """Entries sorted by a metric, a field, `run` or `status`; runs without it go last."""

    def value(entry: RunEntry) -> Any:
        if column == "run":
            return entry.label
        if column == "status":
            return entry.status
        found = entry.metrics.get(column, entry.fields.get(column))
        if isinstance(found, float) and math.isnan(found):
            return None
        return found

    def key(entry: RunEntry) -> tuple[int, Any]:
        found = value(entry)
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return (0, found)
        return (1, _field_text(found))

    present = [entry for entry in entries if value(entry) is not None]
    absent = [entry for entry in entries if value(entry) is None]
    return sorted(present, key=key, reverse=descending) + absent


class UnknownColumn(GencompileError):
    exit_code = 2  # a usage error, as a bad option is


def compare(
    paths: list[Path | str], sort: str | None = None, descending: bool | None = None
) -> RunTable:
    """Read the runs (a sweep folder: its trials) into one table, sorted by `sort`: a
    metric (best first where METRIC_UNITS says which way is better), a field or `run`."""
    folders = run_folders([Path(p) for p in paths])
    read, unreadable = read_entries(folders)
    entries = distinct_labels(read, folders)
    metrics = sorted({name for entry in entries for name in entry.metrics})
    not_alike = [
        name
        for name in metrics
        if len({_settings(e.computed_with[name]) for e in entries if name in e.computed_with}) > 1
    ]
    noted = metric_caveats(entries, metrics)
    readable = [entry for entry in entries if entry.status != UNREADABLE]
    table = RunTable(
        entries,
        differing_fields(readable),
        metrics,
        not_alike,
        caveats=noted,
        unreadable=unreadable,
        marks=dict.fromkeys(not_alike, NOT_ALIKE),
    )
    if sort is None:
        return table
    marks = dict.fromkeys(not_alike, NOT_ALIKE)
    warnings = [_not_alike_warning(entries, sort)] if sort in not_alike else []
    if sort.startswith("val_") and sort not in metrics:  # a per-epoch log: its last value
        found = [_with_history(e, folder, sort) for e, folder in zip(entries, folders, strict=True)]
        entries = [entry for entry, _ in found]
        if earlier := [said for _, said in found if said]:
            marks[sort] = EARLIER
            noted = [
                *noted,
                f"{sort}: each run's last validated epoch (or the one early stopping "
                f"restored), before its last epoch in {', '.join(earlier)}",
            ]
        if units := _model_units_caveat(sort, readable):
            noted = [*noted, units]
        if differ := model_units_differ(readable, table.differing):
            marks[sort] = f"{marks[sort]}; {MODEL_UNITS}" if sort in marks else MODEL_UNITS
            ranked = comparable_metrics(metrics, not_alike)
            warnings.append(_model_units_warning(sort, differ, ranked))
        metrics = sorted({name for entry in entries for name in entry.metrics})
        table = RunTable(
            entries, table.differing, metrics, not_alike, caveats=noted, unreadable=unreadable
        )
    known = ["run", "status", *table.differing, *metrics]
    known += sorted({path for entry in entries for path in entry.fields})
    if sort not in known:
        from gencompile.spec.diagnostics import did_you_mean

        hint = did_you_mean(sort, known) or f"metrics here: {', '.join(metrics) or 'none'}"
        raise UnknownColumn(f"--sort {sort}: no run has it ({hint})")
    if descending is None:
        descending = lower_is_better(sort) is False
    differing = table.differing
    if sort not in differing and sort not in metrics and sort not in ("run", "status"):
        differing = [*differing, sort]
    return RunTable(
        ordered(entries, sort, descending),
        differing,
        metrics,
        not_alike,
        sort,
        descending,
        caveats=noted,
        unreadable=unreadable,
        marks=marks,
        warnings=warnings,
    )


def to_csv(table: RunTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.cells(entry, exact=True) for entry in table.entries)
    return buffer.getvalue()


def markdown_cell(text: str) -> str:
    """Numbers as written; anything else escaped (a spec's values are text, not markup)."""
    return text if re.fullmatch(r"[-+0-9.eE]*", text) else markdown_text(text)


def to_markdown(table: RunTable) -> str:
    """A Markdown table (the runs' text escaped), then the units of the metrics."""
    lines = [
        "| " + " | ".join(markdown_text(h) for h in table.header) + " |",
        "|---|---|" + "---|" * len(table.differing) + "---:|" * len(table.metrics),
    ]
    lines += [
        "| " + " | ".join(markdown_cell(c) for c in table.cells(entry)) + " |"
        for entry in table.entries
    ]
    units = [f"{name}: {METRIC_UNITS[name][0]}" for name in table.metrics if name in METRIC_UNITS]
    if units:
        lines += ["", markdown_text("Units: " + "; ".join(units) + ".")]
    if table.caveats:
        lines += ["", *(markdown_text(f"Caveat: {caveat}.") for caveat in table.caveats)]
    if table.not_alike:
        note = not_alike_note(table)
        lines += ["", markdown_text(note[0].upper() + note[1:] + ".")]
    return "\n".join(lines) + "\n"


def not_alike_note(table: RunTable) -> str:
    """The line under a table that has metrics the runs computed differently."""
    return (
        f"{NOT_ALIKE}: {', '.join(table.not_alike)} (other networks, sample counts or "
        "splits; see computed_with in each run's metrics.json)"
    )
