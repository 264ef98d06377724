"""Peak memory of training on an image folder that streams: does it grow with the folder?

One run writes folders of 20,000 and 200,000 small PNGs (28x28 grayscale, ten class
folders) in a temporary folder, trains one epoch of a small dense VAE on each with
`gencompile train` (`data.cache: stream`), each in its own child process, and records the
child's peak resident set (ru_maxrss), as `streaming_rss.py` does for npy files. For
contrast it also trains on the smaller folder loaded whole (`data.cache: memory`). The
folders are deleted afterwards.

    .venv/bin/python benchmarks/images_rss.py            # ~10 minutes, 0.3 GB of disk

Target: the 200,000-image run's peak at most 1.2x the 20,000-image run's. The markdown
table goes to benchmarks/results/images_rss.md (--output to change).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from harness import gencompile_train, peak_rss, platform_line, write_result
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIDE = 28
CLASSES = 10
TARGET_RATIO = 1.2

SPEC = """\
spec_version: 1
name: vae-images
seed: 0
data:
  source: {type: images, dir: images, size: [28, 28]}
  validation_split: 0.01
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
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


def write_folder(folder: Path, count: int) -> int:
    """`count` PNGs of a blurred blob at a random place, spread over CLASSES folders;
    returns the bytes written."""
    rng = np.random.default_rng(count)
    grid = np.stack(np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij"), axis=-1)
    written = 0
    for label in range(CLASSES):
        (folder / f"class{label}").mkdir(parents=True)
    for i in range(count):
        center = rng.uniform(6, SIDE - 6, size=2)
        blob = np.exp(-((grid - center) ** 2).sum(-1) / 18.0)
        noise = rng.uniform(0, 0.2, size=(SIDE, SIDE))
        pixels = (np.clip(blob + noise, 0, 1) * 255).astype(np.uint8)
        path = folder / f"class{i % CLASSES}" / f"{i:06d}.png"
        Image.fromarray(pixels, "L").save(path)
        written += path.stat().st_size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/images_rss.md")
    parser.add_argument("--counts", type=int, nargs=2, default=(20_000, 200_000), metavar="N")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="images_rss_"))
    try:
        disk = {count: write_folder(work / str(count), count) for count in args.counts}
        spec = work / "spec.yaml"
        spec.write_text(SPEC)
        cases = [(count, "stream") for count in args.counts] + [(args.counts[0], "memory")]
        results = []
        for count, cache in cases:
            source = f"data.source={{type: images, dir: {work / str(count)}, size: [28, 28]}}"
            command = gencompile_train(spec, work / "runs", source, f"data.cache={cache}")
            peak, seconds = peak_rss(command)
            results.append((count, cache, disk[count], peak, seconds))
            mib = peak / 2**20
            print(f"{count} images, cache {cache}: peak RSS {mib:.0f} MiB, {seconds:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(args.output, render(results, args.counts))


def render(results: list[tuple[int, str, int, int, float]], counts: list[int]) -> str:
    peaks = {(count, cache): peak for count, cache, _, peak, _ in results}
    ratio = peaks[(counts[1], "stream")] / peaks[(counts[0], "stream")]
    lines = [
        "# Peak RSS of one epoch of a dense VAE on a streamed image folder",
        "",
        "Measured with `PYTHONPATH=$PWD nice .venv/bin/python benchmarks/images_rss.py` "
        f"({platform_line()}).",
        "Each run is `gencompile train` (build, the statistics pass decoding every image, one "
        "epoch, ELBO on the 1% held out, 16 samples) in a fresh process; peak RSS is that "
        "process's ru_maxrss. Images: 28x28 grayscale PNGs in ten class folders.",
        "",
        "| images | PNG bytes | decoded float32 | data.cache | peak RSS | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for count, cache, disk, peak, seconds in results:
        decoded = count * SIDE * SIDE * 4
        lines.append(
            f"| {count:,} | {disk / 2**20:,.0f} MiB | {decoded / 2**20:,.0f} MiB | {cache} | "
            f"{peak / 2**20:,.0f} MiB | {seconds:.0f} s |"
        )
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    lines += [
        "",
        f"Streamed {counts[1]:,} / streamed {counts[0]:,} images peak: **{ratio:.2f}x** "
        f"({verdict} the target of at most {TARGET_RATIO}x).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
