"""Peak memory of one epoch over a CSV file, streamed (`data.cache: stream`) and loaded whole.

Writes a CSV of about 0.3 GB (32 float columns and an integer label column) in a temporary
folder, then, each in a fresh child process, runs `load_data` and reads one training epoch
and the held-out batches to their end, and records that child's peak resident set
(ru_maxrss). The streamed run is measured twice: the first converts the CSV into its .npy
cache (in the temporary folder, via $GENCOMPILE_CACHE), the second reuses it.

    .venv/bin/python benchmarks/csv_streaming_rss.py [--gigabytes 0.3]   # ~2 minutes

The markdown table goes to benchmarks/results/csv_streaming_rss.md (--output to change).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import write_result

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 32
ROWS_PER_WRITE = 1 << 15

EPOCH = """
import sys, resource
from gencompile.runtime.data import load_data
config = {
    "source": {"type": "csv", "path": sys.argv[1], "columns": None, "label_column": "label"},
    "validation_split": 0.01, "preprocessing": {"scale": None, "standardize": True},
    "augmentation": [], "batch_size": 1024, "shuffle_buffer": 100, "with_labels": True,
    "drop_remainder": False, "cache": sys.argv[2],
}
data = load_data(config, seed=0)
batches = sum(1 for _ in data.epochs(0, 1)) + sum(1 for _ in data.validation)
print(batches, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_csv(path: Path, gigabytes: float) -> int:
    """A CSV of about `gigabytes`: FEATURES columns of 5-decimal floats and a label."""
    rng = np.random.default_rng(0)
    header = ",".join([f"f{i}" for i in range(FEATURES)] + ["label"])
    rows = 0
    with open(path, "w") as handle:
        handle.write(header + "\n")
        while handle.tell() < gigabytes * 1e9:
            values = rng.normal(size=(ROWS_PER_WRITE, FEATURES + 1))
            values[:, -1] = rng.integers(0, 10, ROWS_PER_WRITE)
            np.savetxt(handle, values, fmt=["%.5f"] * FEATURES + ["%d"], delimiter=",")
            rows += ROWS_PER_WRITE
    return rows


def measure(path: Path, cache: str, env: dict[str, str]) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of one epoch in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", EPOCH, str(path), cache],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"failed ({cache}):\n{done.stderr[-4000:]}")
    return int(done.stdout.split()[-1]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=0.3)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/csv_streaming_rss.md"
    )
    args = parser.parse_args()
    lines = []
    work = Path(tempfile.mkdtemp(prefix="csv_streaming_rss_"))
    env = {**os.environ, "GENCOMPILE_CACHE": str(work / "cache")}
    try:
        path = work / "data.csv"
        rows = write_csv(path, args.gigabytes)
        size = path.stat().st_size
        lines += [
            "# Peak RSS of one epoch over a CSV file, streamed and loaded whole",
            "",
            f"Measured with `.venv/bin/python benchmarks/csv_streaming_rss.py` "
            f"({platform.machine()}, Python {platform.python_version()}, {sys.platform}): "
            f"a {size / 2**20:,.0f} MiB CSV of {rows:,} rows x {FEATURES} floats and a label; "
            "each run is `load_data` and one epoch (batch 1024, 1% held out) in a fresh "
            "process, its peak RSS that process's ru_maxrss (TensorFlow's import included).",
            "",
            "| data.cache | peak RSS | wall time |",
            "|---|---|---|",
        ]
        for label, cache in [
            ("stream (converts)", "stream"),
            ("stream (cached)", "stream"),
            ("memory", "memory"),
        ]:
            peak, seconds = measure(path, cache, env)
            lines.append(f"| {label} | {peak / 2**20:,.0f} MiB | {seconds:.0f} s |")
            print(lines[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(args.output, "\n".join(lines) + "\n", echo=False)


if __name__ == "__main__":
    main()
