"""Sweeps: train one spec many times with some fields changed, and find the best trial.

    sweeps/<name>/
      sweep.json     what the sweep is (spec, kind, parameters, metric): a re-run must match
      optuna.db      the Optuna study (SQLite), unless --storage names another database
      trial-0000/    an ordinary run folder per trial, made as `gencompile train` makes one
      summary.csv  summary.md

A grid runs every combination of the `--grid` values; a search lets Optuna's TPE sampler
draw from the spec's `sweep:` ranges. Both keep their trials in an Optuna study, loaded if
it exists, so re-running the same command continues the sweep: finished grid combinations
are skipped, a search runs until it has its number of finished trials. Each trial's spec
is the base spec with the trial's values applied as `--set` overrides, validated (and,
for a grid, lowered) before any trial runs.
"""

from __future__ import annotations

from gencompile.sweep.plan import Sweep, metric_direction, plan_sweep
from gencompile.sweep.run import SweepResult, run_sweep
from gencompile.sweep.summary import TrialRow, metric_value

__all__ = [
    "Sweep",
    "SweepResult",
    "TrialRow",
    "metric_direction",
    "metric_value",
    "plan_sweep",
    "run_sweep",
]
