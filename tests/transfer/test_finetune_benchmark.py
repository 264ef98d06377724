"""benchmarks/finetune.py --quick: the fine-tuning benchmark runs end to end and writes its
report (the VAE comparison alone: the cheapest; the others share the code path)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # three tiny trainings in a fresh process
def test_quick_vae_comparison_writes_its_report(tmp_path: Path) -> None:
    output = tmp_path / "finetune.md"
    command = ["benchmarks/finetune.py", "--quick", "--only", "vae", "--output", str(output)]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text(encoding="utf-8")
    assert f"Command: `python {' '.join(command)}`" in report
    assert "| VAE, digits 0-4 -> 5-9 | `iwae_nll` | 2 | 3 |" in report
    # One row per evaluated epoch, with scratch, fine-tuned and the fine-tune spec alone.
    rows = re.findall(r"^\| (\d) \| (\d+\.\d{3}) \| (\d+\.\d{3}) \| (\d+\.\d{3}) \|$", report, re.M)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert all(0 < float(value) < 200 for row in rows for value in row[1:])
    assert "taken from the parent: 7 layers, 0 left fresh" in report
