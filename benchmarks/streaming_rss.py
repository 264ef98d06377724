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
import shutil
import tempfile
from pathlib import Path

import numpy as np
from harness import gencompile_train, peak_rss, platform_line, write_result

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
            source = f"data.source={{type: npy, path: {work / f'{size}.npy'}}}"
            command = gencompile_train(spec, work / "runs", source, f"data.cache={cache}")
            peak, seconds = peak_rss(command)
            results.append((size, cache, rows_of[size], peak, seconds))
            print(f"{size} GB, cache {cache}: peak RSS {peak / 2**20:.0f} MiB, {seconds:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(args.output, render(results, args.sizes))


def render(results: list[tuple[float, str, int, int, float]], sizes: list[float]) -> str:
    peaks = {(size, cache): peak for size, cache, _, peak, _ in results}
    ratio = peaks[(sizes[1], "stream")] / peaks[(sizes[0], "stream")]
    lines = [
        "# Peak RSS of one epoch of a dense VAE on a streamed npy file",
        "",
        f"Measured with `.venv/bin/python benchmarks/streaming_rss.py` ({platform_line()}).",
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
    main()
