"""Peak memory of training on an npy file that streams: does it grow with the data set?

One run generates float32 npy files of about 0.2 GB and 2 GB (256 features an example) in
a temporary folder, trains one epoch of a small dense VAE on each with `gencompile train`
(`data.cache: stream`), each in its own child process, and records the child's peak
resident set (ru_maxrss: file pages mapped count too). For contrast it also trains on the
0.2 GB file loaded whole (`data.cache: memory`). The files are deleted afterwards.

    .venv/bin/python benchmarks/streaming_rss.py            # ~3 minutes, 2.2 GB of disk

Target: the 2 GB run's peak at most 1.2x the 0.2 GB run's. The markdown table goes to
benchmarks/results/streaming_rss.md (--output to change).
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 256
ROWS_PER_WRITE = 1 << 16
TARGET_RATIO = 1.2

SPEC = """\
spec_version: 1
name: vae-stream
seed: 0
data:
  source: {type: npy, path: data.npy}
  validation_split: 0.01
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 1024
model:
  family: vae
  latent_dim: 8
  prior: {type: normal}
  encoder: {mlp: [128], activation: relu}
  decoder: {mlp: [128], activation: relu}
  likelihood: {type: bernoulli}
training:
  epochs: 1
  optimizer: {type: adam, learning_rate: 1.0e-3}
evaluation:
  metrics: [elbo]
output:
  samples: {count: 16, format: npz}
"""


def write_npy(path: Path, gigabytes: float) -> int:
    """A float32 array of about `gigabytes`, written in slices; returns its rows."""
    rows = int(gigabytes * 1e9) // (FEATURES * 4)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, FEATURES))
    rng = np.random.default_rng(0)
    for start in range(0, rows, ROWS_PER_WRITE):
        stop = min(start + ROWS_PER_WRITE, rows)
        array[start:stop] = rng.random((stop - start, FEATURES), dtype=np.float32)
    array.flush()
    del array
    return rows


def train_command(spec: Path, data: Path, runs: Path, cache: str) -> list[str]:
    return [
        sys.executable, "-m", "gencompile", "train", str(spec), "--runs-dir", str(runs),
        "--quiet", "--set", f"data.source={{type: npy, path: {data}}}",
        "--set", f"data.cache={cache}",
    ]  # fmt: skip


def measure(command: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of `command`, run in a fresh process of its own."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--measure", *command], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return int(done.stdout.strip().splitlines()[-1]), seconds


def run_and_report_peak(command: list[str]) -> None:
    """The --measure mode: run `command`, print the peak RSS (bytes) of that child."""
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(done.returncode)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/streaming_rss.md")
    parser.add_argument("--sizes", type=float, nargs=2, default=(0.2, 2.0), metavar="GB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="streaming_rss_"))
    try:
        rows_of = {}
        for size in args.sizes:
            rows_of[size] = write_npy(work / f"{size}.npy", size)
        spec = work / "spec.yaml"
        spec.write_text(SPEC)
        cases = [(size, "stream") for size in args.sizes] + [(args.sizes[0], "memory")]
        results = []
        for size, cache in cases:
            command = train_command(spec, work / f"{size}.npy", work / "runs", cache)
            peak, seconds = measure(command)
            results.append((size, cache, rows_of[size], peak, seconds))
            print(f"{size} GB, cache {cache}: peak RSS {peak / 2**20:.0f} MiB, {seconds:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = render(results, args.sizes)
    args.output.write_text(report)
    print(report)


def render(results: list[tuple[float, str, int, int, float]], sizes: list[float]) -> str:
    peaks = {(size, cache): peak for size, cache, _, peak, _ in results}
    ratio = peaks[(sizes[1], "stream")] / peaks[(sizes[0], "stream")]
    lines = [
        "# Peak RSS of one epoch of a dense VAE on a streamed npy file",
        "",
        "Measured with `.venv/bin/python benchmarks/streaming_rss.py` "
        f"({platform.machine()}, {platform.python_version()}, {sys.platform}).",
        "Each run is `gencompile train` (build, one epoch, ELBO on the 1% held out, 16 "
        "samples) in a fresh process; peak RSS is that process's ru_maxrss.",
        "",
        "| data | examples x 256 float32 | data.cache | peak RSS | wall time |",
        "|---|---|---|---|---|",
    ]
    for size, cache, rows, peak, seconds in results:
        lines.append(
            f"| {size:g} GB | {rows:,} | {cache} | {peak / 2**20:,.0f} MiB | {seconds:.0f} s |"
        )
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    lines += [
        "",
        f"Streamed {sizes[1]:g} GB / streamed {sizes[0]:g} GB peak: **{ratio:.2f}x** "
        f"({verdict} the target of at most {TARGET_RATIO}x).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        run_and_report_peak(sys.argv[2:])
    else:
        main()
