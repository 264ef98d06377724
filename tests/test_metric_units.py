"""Every metric a run can report has a unit and a direction in the report, `compare` and
sweeps (gencompile.report.METRIC_UNITS): a metric missing there shows a blank unit and
cannot be a sweep objective without --direction."""

from __future__ import annotations

import re
from pathlib import Path

from gencompile.report import METRIC_UNITS
from gencompile.sweep.plan import metric_direction

RUNTIME = Path(__file__).resolve().parents[1] / "gencompile" / "runtime"
ADDED = re.compile(r'\.add\(\s*"([a-z0-9_]+)"')  # Metrics.add("name", value, how)


def test_every_metric_the_runtime_adds_has_a_unit() -> None:
    added = {name for path in RUNTIME.rglob("*.py") for name in ADDED.findall(path.read_text())}
    assert {"tstr_accuracy", "augmented_accuracy", "nll"} <= added  # the scan finds them
    assert sorted(added - set(METRIC_UNITS)) == []


def test_synthetic_data_accuracies_are_maximised_by_a_sweep() -> None:
    assert metric_direction("tstr_accuracy", None) == "maximize"
    assert metric_direction("augmented_accuracy", None) == "maximize"
    assert METRIC_UNITS["tstr_ratio"][0] == "tstr / trtr accuracy"
