"""Benchmark: filling missing pixels of held-out digits with `gencompile impute`.

One run of this script

1. trains three shipped specs on the 8x8 scikit-learn digits, with one seed and one
   validation split for all (`--set seed=42 data.validation_split=0.1`), so that the
   held-out digits (180) are the same rows for every model and none trained on them:
   the VAE (`vae_digits.yaml`), the Glow-style flow (`flow_digits.yaml`, dequantized) and
   the Gaussian mixture (`gmm_digits.yaml`);
2. removes pixels of the held-out digits in two ways: 25 % of the pixels at random
   (seeded), and the top half of every image (rows 0-3);
3. fills them with the library function behind `gencompile impute` (each model's default
   method and settings) and with honest baselines fitted on the same training split:
   the column (pixel) mean, scikit-learn's `KNNImputer` (5 neighbours) and
   `IterativeImputer` (Bayesian ridge regressions, 5 rounds);
4. reports the RMSE over the removed pixels, in grey levels (0..16), and the seconds each
   imputation took; writes the table to `benchmarks/results/impute_digits.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/impute_digits.py           # the budgets below
    .venv/bin/python benchmarks/impute_digits.py --quick   # 2 epochs each: a smoke check
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

harness.forget_script_folder()

SAME_SPLIT = ["seed=42", "data.validation_split=0.1"]
# (label, spec, epochs, further settings): metrics that need no sample quality network.
MODELS = [
    ("mixture (EM), conditional means", "gmm_digits.yaml", 100, ["evaluation.metrics=[nll]"]),
    ("VAE, pseudo-Gibbs", "vae_digits.yaml", 60, ["evaluation.metrics=[elbo]"]),
    (
        "flow (Glow), MAP",
        "flow_digits.yaml",
        15,
        ["evaluation.metrics=[nll]", "evaluation.importance_samples=16"],
    ),
]


def masks(count: int):
    """The two patterns of missing pixels over `count` digits: name -> bool (count, 64)."""
    import numpy as np

    rng = np.random.default_rng(0)
    top = np.zeros((count, 64), dtype=bool)
    top[:, :32] = True
    return {"random 25 %": rng.random((count, 64)) < 0.25, "top half": top}


def write_gaps(path: Path, truth, missing) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([f"x{j}" for j in range(64)])
        for row, gone in zip(truth, missing, strict=True):
            writer.writerow(["" if g else f"{v:g}" for v, g in zip(row, gone, strict=True)])


def rmse(filled, truth, missing) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((filled[missing] - truth[missing]) ** 2)))


def splits(run: Path):
    """The run's training and held-out digits in grey levels, as (n, 64) float64."""
    from gencompile.generated import load_trained_model
    from gencompile.runtime.data import load_data

    _, module = load_trained_model(run)
    data = load_data(module.DATA, seed=module.SEED)

    def grey(x):
        return data.preprocessor.inverse(x).reshape(len(x), 64).astype("float64")

    return grey(data.x_train), grey(data.x_val)


def baselines(train, truth, patterns) -> list[tuple[str, dict[str, tuple[float, float]]]]:
    import numpy as np
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    makers = [
        ("column mean", lambda: SimpleImputer(strategy="mean")),
        ("scikit-learn KNNImputer (5)", lambda: KNNImputer(n_neighbors=5)),
        (
            "scikit-learn IterativeImputer (5 rounds)",
            lambda: IterativeImputer(max_iter=5, random_state=0),
        ),
    ]
    rows = []
    for label, make in makers:
        found = {}
        for name, missing in patterns.items():
            start = time.perf_counter()
            imputer = make().fit(train)
            filled = imputer.transform(np.where(missing, np.nan, truth))
            found[name] = (rmse(filled, truth, missing), time.perf_counter() - start)
        rows.append((label, found))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per model")
    args = parser.parse_args()
    import numpy as np

    from gencompile.imputation import impute
    from gencompile.runs import train as train_run

    results, methods = [], {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        runs = {}
        for label, spec, epochs, settings in MODELS:
            epochs = 2 if args.quick else epochs
            run_dir = work / Path(spec).stem
            start = time.perf_counter()
            runs[label] = train_run(
                ROOT / "specs" / spec, [*SAME_SPLIT, *settings], epochs=epochs,
                run_dir=run_dir, quiet=True,
            ).run_dir  # fmt: skip
            print(f"{label}: trained in {time.perf_counter() - start:.0f} s", flush=True)
        train, truth = splits(next(iter(runs.values())))
        for run in runs.values():  # the same held-out digits for every model
            np.testing.assert_array_equal(splits(run)[1], truth)
        patterns = masks(len(truth))
        results = baselines(train, truth, patterns)
        for label, run in runs.items():
            found = {}
            for name, missing in patterns.items():
                source, target = work / "gaps.csv", work / "filled.csv"
                write_gaps(source, truth, missing)
                start = time.perf_counter()
                done = impute(run, source, target)
                seconds = time.perf_counter() - start
                filled = np.loadtxt(target, delimiter=",", skiprows=1)
                found[name] = (rmse(filled, truth, missing), seconds)
                methods[label] = done.method
            results.append((label, found))
            print(label, {k: round(v[0], 3) for k, v in found.items()}, flush=True)
    names = list(patterns)
    rows = [
        [label, *(f"{found[n][0]:.2f}" for n in names), *(f"{found[n][1]:.1f}" for n in names)]
        for label, found in results
    ]
    table = harness.render_table(
        rows,
        ["method", *(f"RMSE, {n}" for n in names), *(f"s, {n}" for n in names)],
        "l" + "r" * 2 * len(names),
    )
    budgets = ", ".join(
        f"{Path(spec).stem} {2 if args.quick else epochs} epochs" for _, spec, epochs, _ in MODELS
    )
    text = "\n".join(
        [
            "# Missing pixels of held-out digits (`gencompile impute`)",
            "",
            f"{harness.utc_stamp()}; {harness.machine_line()}; load average at the end "
            f"{harness.load_average()}",
            "",
            f"The {len(truth)} held-out 8x8 digits of one split (`seed=42`, validation 0.1) "
            "shared by every model; models trained on the other digits "
            f"({budgets}); baselines fitted on the same training digits. RMSE over the "
            "removed pixels in grey levels (0..16; the pixels' spread is about 6); seconds "
            "of one imputation (for `gencompile impute`: loading the run and its data "
            "included). Methods as `impute` reports them: "
            + "; ".join(f"{k}: {v}" for k, v in methods.items())
            + ". The machine is shared: seconds are noisy, RMSEs are not.",
            "",
            table,
            "",
            f"Command: `python benchmarks/impute_digits.py{' --quick' if args.quick else ''}`",
            "",
        ]
    )
    harness.write_result(ROOT / "benchmarks" / "results" / "impute_digits.md", text)


if __name__ == "__main__":
    main()
