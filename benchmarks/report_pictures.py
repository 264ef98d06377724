"""Benchmark: the wall time the report's latent pictures add to `gencompile train`.

The pictures (`output.report.latent_pictures`, on by default) are the one step a run with
the option on does and a run with it off does not, so their cost is the wall time of that
step. Each round trains every spec in a fresh process (`--worker`, the ordinary
`gencompile.runs.train` path, a short budget: the step's cost does not depend on the
epochs) with a clock around `report_pictures.write_latent_pictures`: its first call is
what a run pays (any first import included, e.g. scikit-learn for the PCA); then the same
step is repeated on the trained model for a warm median. The total wall time of the
training call is shown beside it for scale.

    .venv/bin/python benchmarks/report_pictures.py                 # 3 rounds, 4 specs
    .venv/bin/python benchmarks/report_pictures.py --rounds 1 --specs vae_digits
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# spec -> epochs (a short budget; the pictures are drawn once, after the last epoch)
SPECS = {"vae_digits": 2, "flow_moons": 2, "gan_ring8": 1, "gmm_blobs": None}
# The metrics whole_process.py benchmarks them with (its runs are the ones this step slows).
OVERRIDES = {
    "vae_digits": ["evaluation.metrics=[elbo,iwae_nll]"],
    "flow_moons": ["evaluation.metrics=[nll]"],
}
REPEATS = 5  # warm calls of the step on the trained model


def worker(spec: str, epochs: int | None, runs: Path) -> dict[str, object]:
    """Train `spec` in this process, timing the pictures step; return the timings."""
    from gencompile.runs import train
    from gencompile.runtime import report_pictures

    first: list[float] = []
    calls: list[tuple] = []
    loaded: list[bool] = []
    draw = report_pictures.write_latent_pictures

    def timed(*args: object, **kwargs: object) -> dict[str, Path]:
        loaded.append("sklearn.decomposition" in sys.modules)  # else the PCA imports it
        start = time.perf_counter()
        written = draw(*args, **kwargs)
        first.append(time.perf_counter() - start)
        calls.append((args, kwargs))
        return written

    report_pictures.write_latent_pictures = timed  # the generated train.py looks it up here
    overrides = OVERRIDES.get(spec, [])
    start = time.perf_counter()
    result = train(REPO / "specs" / f"{spec}.yaml", overrides, epochs=epochs, runs_root=runs,
                   quiet=True)  # fmt: skip
    total = time.perf_counter() - start
    warm = []
    for _ in range(REPEATS if calls else 0):
        args, kwargs = calls[0]
        start = time.perf_counter()
        draw(*args, **kwargs)
        warm.append(time.perf_counter() - start)
    drawn = json.loads((result.run_dir / "latent" / "pictures.json").read_text())
    return {
        "first": first[0] if first else None,
        "warm": warm,
        "total": total,
        "pictures": [entry["name"] for entry in drawn["pictures"]],
        "pca_imported_before": loaded[0] if loaded else None,
    }


def main() -> None:
    harness.forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--specs", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec, runs = args.worker
        print(json.dumps(worker(spec, SPECS[spec], Path(runs))))
        return
    command = f"python benchmarks/report_pictures.py --rounds {args.rounds} --specs " + " ".join(
        args.specs
    )
    before = harness.load_average()
    found: dict[str, list[dict]] = {spec: [] for spec in args.specs}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = args.specs if round_ % 2 == 0 else args.specs[::-1]
            for spec in order:
                line = [sys.executable, __file__, "--worker", spec, folder]
                done = subprocess.run(line, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{shlex.join(line)} failed:\n{done.stderr[-3000:]}")
                found[spec].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(spec, found[spec][-1], flush=True)
    rows = []
    for spec, runs in found.items():
        first = [r["first"] for r in runs]
        warm = [w for r in runs for w in r["warm"]]
        total = [r["total"] for r in runs]
        rows.append([
            f"{spec} ({SPECS[spec] or 'spec'} epochs)",
            ", ".join(runs[0]["pictures"]),
            f"**{harness.median(first):.3f}**",
            harness.listed(first),
            f"{harness.median(warm):.3f}",
            f"{harness.median(total):.1f}",
            f"{harness.median(first) / harness.median(total):.1%}",
        ])  # fmt: skip
    table = harness.render_table(
        rows,
        ["spec", "pictures", "added s (median)", "added s per round", "warm s", "train() s",
         "share"],
    )  # fmt: skip
    text = "\n".join(
        [
            "# The report's latent pictures: wall time added to `gencompile train`",
            "",
            f"Generated {harness.utc_stamp()} by `{command}` ({args.rounds} round(s), fresh "
            f"process per run, order flipped each round; {REPEATS} warm repeats per run).",
            "",
            f"Machine: {harness.machine_line()}; load average before {before}, after "
            f"{harness.load_average()} (the machine is shared: a load above 2 on 2 CPUs "
            "slows every number here).",
            "",
            "`added s` is the first call of `report_pictures.write_latent_pictures` in a run "
            "(what `output: {report: {latent_pictures: false}}` saves); `warm s` the same "
            "step repeated on the trained model; `train() s` the whole training call with "
            "short budgets, for scale.",
            "",
            table,
            "",
        ]
    )
    harness.write_result(RESULTS / "report_pictures.md", text)


if __name__ == "__main__":
    main()
