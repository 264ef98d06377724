"""Benchmark: how long each `gencompile` command takes from start to exit, against
`python -c "import tensorflow"` timed in the same rounds (issue #16, item 2).

One run of this script

1. trains a tiny digits VAE (`specs/vae_digits.yaml`, `--epochs 2`) into a temporary folder
   so that `sample` and `evaluate` have a run to read;
2. times, as whole child processes, `import tensorflow`, `gencompile --help`, `validate`,
   `explain`, `schema`, `build` (the same builtin spec), `sample RUN -n 16` and
   `evaluate RUN`, interleaved: each round runs every command once, in order, so machine
   load hits them alike; `--rounds` rounds (default 5);
3. reports each command's median wall time and its ratio to the median TensorFlow import,
   with the issue's thresholds marked pass / fail (validate <= 0.15x, sample <= 1.5x);
4. prints a markdown table and writes it to `benchmarks/results/startup.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/startup.py             # 5 rounds
    .venv/bin/python benchmarks/startup.py --rounds 3  # quicker, noisier
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = "specs/vae_digits.yaml"
RESULT = ROOT / "benchmarks" / "results" / "startup.md"
BASELINE = "import tensorflow"
# The bounds: the command's median over the median TensorFlow import.
THRESHOLDS = {"validate": 0.15, "sample -n 16": 1.5}


def gencompile(*args: str) -> list[str]:
    return [sys.executable, "-m", "gencompile", *args]


def commands(run: Path, scratch: Path) -> dict[str, list[str]]:
    """Name -> argv, in the order each round runs them."""
    return {
        BASELINE: [sys.executable, "-c", "import tensorflow"],
        "--help": gencompile("--help"),
        "validate": gencompile("validate", SPEC),
        "explain": gencompile("explain", SPEC),
        "schema": gencompile("schema", "-o", str(scratch / "schema.json")),
        "build": gencompile("build", SPEC, "-o", str(scratch / "build"), "--force"),
        "sample -n 16": gencompile("sample", str(run), "-n", "16", "-o", str(scratch / "s.png")),
        "evaluate": gencompile("evaluate", str(run)),
    }


def environment() -> dict[str, str]:
    """This checkout's gencompile first; TensorFlow's start-up chatter off."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def train_tiny_run(folder: Path) -> Path:
    argv = gencompile("train", SPEC, "--epochs", "2", "--runs-dir", str(folder), "--quiet")
    subprocess.run(argv, cwd=ROOT, env=environment(), check=True, capture_output=True)
    (run,) = (folder / "vae-digits").iterdir()
    return run


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def measure(argvs: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    """Every command once per round, in order: load on the machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for index in range(rounds):
        for name, argv in argvs.items():
            times[name].append(timed(argv))
        print(f"round {index + 1}/{rounds} done", file=sys.stderr)
    return times


def table(times: dict[str, list[float]]) -> str:
    base = statistics.median(times[BASELINE])
    lines = [
        "| command | median s | all runs, s | x `import tensorflow` | issue's bound |",
        "|---|---:|---|---:|---|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        bound = THRESHOLDS.get(name)
        verdict = ""
        if bound is not None:
            verdict = f"<= {bound}x: {'pass' if median / base <= bound else 'FAIL'}"
        shown = f'`python -c "{name}"`' if name == BASELINE else f"`gencompile {name}`"
        lines.append(f"| {shown} | {median:.2f} | {runs} | {median / base:.3f} | {verdict} |")
    return "\n".join(lines)


def report(times: dict[str, list[float]], rounds: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        "# Start-up time of each command\n\n"
        f"`benchmarks/startup.py`, {stamp}; {platform.platform()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, 1-minute load {load:.1f} at "
        f"the end. Wall time of whole child processes, median of {rounds} interleaved rounds "
        f"(each round runs every command once). `{SPEC}` throughout; `sample` and "
        "`evaluate` read a 2-epoch run of it.\n\n" + table(times) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gencompile-startup-") as folder:
        scratch = Path(folder)
        run = train_tiny_run(scratch / "runs")
        times = measure(commands(run, scratch), args.rounds)
    text = report(times, args.rounds)
    RESULT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
