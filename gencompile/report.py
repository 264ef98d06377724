"""report.md of a run: metrics with units, pictures, training summary and the lock's hashes.

Reads only the run directory's files, so it needs no TensorFlow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from gencompile.files import atomic_write_text

METRIC_UNITS = {
    "elbo": ("nats / example", "higher is better"),
    "iwae_nll": ("nats / example", "lower is better"),
    "nll": ("nats / example", "lower is better"),
    "bits_per_dim": ("bits / dimension", "lower is better"),
    "bic": ("nats, training split", "lower is better"),
    "aic": ("nats, training split", "lower is better"),
}


def _history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _format(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _optimizer_lines(training: dict[str, Any]) -> list[str]:
    """One line for the optimizer, or one per network for families with several (a GAN)."""
    roles = training.get("optimizers") or {"": training["optimizer"]}
    return [
        f"- optimizer{f' ({role})' if role else ''}: {config['type']}, "
        f"learning rate {config['learning_rate']}"
        for role, config in roles.items()
    ]


def render_report(run_dir: Path) -> str:
    lock = json.loads((run_dir / "spec.lock.json").read_text())
    record_path = run_dir / "metrics.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    resolved = lock["resolved_spec"]
    lines = [
        f"# {lock['name']}",
        "",
        resolved.get("description") or f"A {lock['family']} model.",
        "",
        f"Family `{lock['family']}`, seed {lock['seed']}, "
        f"{record.get('epochs', '?')} epochs in {record.get('train_seconds', '?')} s.",
        "",
        "## Metrics",
        "",
        "On the held-out split, except the information criteria (BIC, AIC), which are",
        "computed on the training split as scikit-learn does.",
        "",
        "| metric | value | unit | |",
        "|---|---:|---|---|",
    ]
    for name, value in sorted(record.get("metrics", {}).items()):
        unit, direction = METRIC_UNITS.get(name, ("", ""))
        lines.append(f"| {name} | {_format(value)} | {unit} | {direction} |")
    history = _history(run_dir)
    if history:
        last = history[-1]
        lines += ["", "## Last epoch", "", "| quantity | value |", "|---|---:|"]
        lines += [f"| {k} | {float(v):.4f} |" for k, v in last.items() if k != "epoch" and v]
    for title, name in (("Samples", "samples.png"), ("Training curves", "curves.png")):
        if (run_dir / name).exists():
            lines += ["", f"## {title}", "", f"![{title.lower()}]({name})"]
    data = resolved["data"]
    source = data["source"]
    lines += [
        "",
        "## Spec",
        "",
        f"- data: {source['type']} {source.get('name', source.get('path', ''))}, "
        f"batch size {data['batch_size']}, validation split {data['validation_split']}",
        *_optimizer_lines(resolved["training"]),
        "- full resolved spec: `spec.lock.json`; source: `spec.yaml`",
        "",
        "## Reproducibility",
        "",
        "| | sha256 |",
        "|---|---|",
        f"| spec.yaml | `{lock['spec_sha256']}` |",
        f"| resolved spec | `{lock['resolved_spec_sha256']}` |",
        f"| data | `{lock.get('data_fingerprint')}` |",
        f"| weights | `{record.get('weights_sha256')}` |",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(lock["versions"].items()) if v)
        + f"; {lock['platform']}.",
        "",
    ]
    return "\n".join(lines)


def write_report(run_dir: Path | str) -> Path:
    run_dir = Path(run_dir)
    path = run_dir / "report.md"
    atomic_write_text(path, render_report(run_dir))
    return path
