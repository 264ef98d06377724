"""Benchmark: anomaly detection on held-out digits with `gencompile score`.

One run of this script

1. trains four shipped specs (VAE, Glow-style flow, Gaussian mixture, PixelCNN) on the 8x8
   scikit-learn digits of classes 0-8 alone (`--set data.source.classes=[0,...,8]`), with
   small budgets (`--set training.epochs=...`) so that all four train in a few minutes;
2. scores, with the library function behind `gencompile score`, the run's held-out split
   (about 160 digits 0-8 the model never trained on) and every 9 of the data set (180
   digits of a class it never saw), in the digits' own units;
3. reports, per model, the ROC AUC of "is a 9" against the rest (scikit-learn's
   `roc_auc_score`, the score as the decision value), the mean score of each group, and
   the share of each group flagged at the default threshold (the 0.99 quantile of the
   held-out scores); writes the table to `benchmarks/results/anomaly_digits.md`.

Run it from the repository root:

    .venv/bin/python benchmarks/anomaly_digits.py           # the budgets below
    .venv/bin/python benchmarks/anomaly_digits.py --quick   # 2 epochs each: a smoke check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

harness.forget_script_folder()

CLASSES = "data.source.classes=[0,1,2,3,4,5,6,7,8]"
# (label, spec, epochs, further settings): metrics that need no sample quality network.
MODELS = [
    ("VAE (IWAE bound)", "vae_digits.yaml", 60, ["evaluation.metrics=[iwae_nll]"]),
    (
        "flow (Glow)",
        "flow_digits.yaml",
        15,
        ["evaluation.metrics=[nll]", "evaluation.importance_samples=16"],
    ),
    ("mixture (EM)", "gmm_digits.yaml", 100, ["evaluation.metrics=[nll]"]),
    ("PixelCNN", "pixelcnn_digits.yaml", 15, ["evaluation.metrics=[nll]"]),
]


def run_one(spec: str, epochs: int, settings: list[str], work: Path, nines: Path) -> dict:
    """Train one spec on digits 0-8, score held-out digits and the 9s, compute the AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from gencompile.runs import train
    from gencompile.scoring import score

    name = Path(spec).stem
    start = time.perf_counter()
    run = train(
        ROOT / "specs" / spec, [CLASSES, *settings], epochs=epochs, run_dir=work / name, quiet=True
    ).run_dir
    trained = time.perf_counter() - start
    held = score(run, work / f"{name}-heldout.csv", split="heldout")
    odd = score(run, work / f"{name}-nines.csv", input_file=nines)
    held_scores, nine_scores = read(work / f"{name}-heldout.csv"), read(work / f"{name}-nines.csv")
    truth = np.r_[np.zeros(len(held_scores)), np.ones(len(nine_scores))]
    auc = roc_auc_score(truth, np.r_[held_scores, nine_scores])
    return {
        "kind": held.kind,
        "auc": float(auc),
        "held_mean": float(held_scores.mean()),
        "nine_mean": float(nine_scores.mean()),
        "held_flagged": held.flagged / held.count,
        "nine_flagged": odd.flagged / odd.count,
        "counts": (held.count, odd.count),
        "seconds": trained,
    }


def read(path: Path):
    import numpy as np

    return np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")["score"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per model")
    args = parser.parse_args()
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        nines = work / "nines.npy"
        np.save(nines, digits.images[digits.target == 9])  # the digits' units: 0..16
        for label, spec, epochs, settings in MODELS:
            found = run_one(spec, 2 if args.quick else epochs, settings, work, nines)
            print(f"{label}: AUC {found['auc']:.3f}", flush=True)
            rows.append(
                [
                    label,
                    str(2 if args.quick else epochs),
                    f"`{found['kind']}`",
                    f"{found['auc']:.3f}",
                    f"{found['held_mean']:.1f}",
                    f"{found['nine_mean']:.1f}",
                    f"{100 * found['held_flagged']:.1f}%",
                    f"{100 * found['nine_flagged']:.1f}%",
                    f"{found['seconds']:.0f}",
                ]
            )
    counts = found["counts"]
    table = harness.render_table(
        rows,
        ["model", "epochs", "score", "ROC AUC (9 vs 0-8)", "mean score 0-8", "mean score 9",
         "0-8 flagged", "9 flagged", "train s"],
        "lllrrrrrr",
    )  # fmt: skip
    text = "\n".join(
        [
            "# Anomaly scores on held-out digits (`gencompile score`)",
            "",
            f"{harness.utc_stamp()}; {harness.machine_line()}",
            "",
            "Trained on the 8x8 digits of classes 0-8 (`data.source.classes`); scored: the "
            f"run's held-out split ({counts[0]} digits 0-8) and every 9 ({counts[1]}). ROC "
            "AUC of 'is a 9' with the score as decision value (scikit-learn's "
            "`roc_auc_score`); flagged: above the 0.99 quantile of the held-out scores. "
            "Scores are nats per example (higher = less likely).",
            "",
            table,
            "",
            f"Command: `python benchmarks/anomaly_digits.py{' --quick' if args.quick else ''}`",
            "",
        ]
    )
    harness.write_result(ROOT / "benchmarks" / "results" / "anomaly_digits.md", text)


if __name__ == "__main__":
    main()
