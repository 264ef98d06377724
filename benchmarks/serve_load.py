"""Benchmark: `gencompile serve` under a bounded load (issue #21, item 4).

One run of this script

1. trains the digits VAE (`specs/vae_digits.yaml`, `--epochs 2`) into a temporary folder,
   unless `--run RUN` names a finished run to serve;
2. starts `gencompile serve RUN --port 0` as a child process on loopback (the model loaded
   once, as a user would run it);
3. sends `--requests` requests (default 500) from `--clients` concurrent clients (default
   16; threads, each with its own kept-alive httpx connection), alternating
   `/sample {"n": 16, "seed": i}` and `/score` of 16 held-out digits;
4. records every request's latency and status, and reports p50 / p90 / p99 / max latency,
   requests per second and the number of failed requests (anything but 200), overall and
   per endpoint, in `benchmarks/results/serve_load.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/serve_load.py
    .venv/bin/python benchmarks/serve_load.py --run runs/vae-digits/<id> --requests 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vae_digits.yaml"
RESULT = ROOT / "benchmarks" / "results" / "serve_load.md"
PATHS = ("/sample", "/score")


def train_run(folder: Path) -> Path:
    command = [*harness.gencompile_train(SPEC, folder), "--epochs", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    (run,) = (folder / "vae-digits").iterdir()
    return run


def digits(count: int) -> list[list[float]]:
    """Held-out-like examples in data units (scikit-learn's 8x8 digits, 0..16)."""
    from sklearn.datasets import load_digits

    return load_digits().data[-count:].tolist()


def report(result, requests: int) -> str:  # result: serving.load.LoadResult
    rows = []
    for path in (None, *PATHS):
        shown = "all" if path is None else f"`{path}`"
        count = result.count(path)
        failed = sum(
            s != 200 for s, p in zip(result.statuses, result.paths, strict=True)
            if path is None or p == path
        )  # fmt: skip
        cells = [result.percentile(q, path) * 1000 for q in (50, 90, 99, 100)]
        rows.append([shown, count, *(f"{c:.1f}" for c in cells), failed])
    table = harness.render_table(
        rows, ["requests", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "failed"]
    )
    return (
        "# `gencompile serve` under load\n\n"
        f"`benchmarks/serve_load.py`, {harness.utc_stamp()}; {harness.machine_line()}; "
        f"load average {harness.load_average()} at the end.\n\n"
        f"`gencompile serve` of a 2-epoch run of `specs/vae_digits.yaml` in a child process on "
        f"127.0.0.1; {requests} requests from {result.clients} concurrent clients (threads, "
        "one kept-alive httpx connection each), alternating `/sample` of 16 digits "
        '(`{"n": 16, "seed": i}`) and `/score` of 16 digits (the IWAE bound '
        "with the spec's 1000 importance samples). Model calls are serialized by "
        "the server's lock, so a request's latency includes its wait for the requests "
        "ahead of it.\n\n"
        f"{table}\n\n"
        f"Wall time {result.seconds:.1f} s: {requests / result.seconds:.1f} requests/s. "
        f"Failed requests: {result.failed} of {requests}.\n"
    )


def main() -> None:
    harness.forget_script_folder()
    sys.path.insert(0, str(ROOT))
    from gencompile.serving.load import run_load
    from gencompile.serving.server import serving_process

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="A finished run to serve (default: train one).")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    examples = digits(16)

    def make(i: int) -> tuple[str, dict]:
        if i % 2 == 0:
            return "/sample", {"n": 16, "seed": i}
        return "/score", {"examples": examples}

    with tempfile.TemporaryDirectory(prefix="gencompile-serve-load-") as folder:
        run = args.run or train_run(Path(folder))
        os.environ["PYTHONPATH"] = str(ROOT)
        with serving_process(run) as (url, _):
            result = run_load(url, args.requests, args.clients, make)
    for error in result.errors[:5]:
        print(error, file=sys.stderr)
    harness.write_result(RESULT, report(result, args.requests))
    if result.failed:
        raise SystemExit(f"{result.failed} of {args.requests} requests failed")


if __name__ == "__main__":
    main()
