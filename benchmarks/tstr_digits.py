"""Benchmark: train on synthetic, test on real (TSTR) with the conditional digits models.

One run of this script

1. trains the three shipped class-conditional specs on the 8x8 scikit-learn digits through
   `gencompile train`'s pipeline, asking for `evaluation.metrics=[tstr, tstr_augmentation]`
   alone: `specs/cvae_digits.yaml` and `specs/cgan_digits.yaml` with their own budgets (60
   and 100 epochs), `specs/cdiffusion_digits.yaml` with 30 of its 100 epochs, so that the
   whole fits in about 15 minutes on 2 busy cores (its U-Net step costs most);
2. reports, per model, what those metrics computed at the end of training: the held-out
   accuracy of a logistic regression trained on as many labelled samples as the real
   training split (TSTR), of the same classifier trained on the real training split (TRTR),
   and of it trained on a stratified 10 % of the real training labels, alone and with the
   samples added; writes the table to `benchmarks/results/tstr_digits.md`.

Every spec has seed 42, so the three share one split (1617 training digits, 180 held out)
and TRTR is the same number three times. Training is deterministic (the same seed, the
same weights on the same CPU) and so is the classifier, so the same command gives the same
table.

Run it from the repository root:

    .venv/bin/python benchmarks/tstr_digits.py           # the specs' budgets
    .venv/bin/python benchmarks/tstr_digits.py --quick   # 2 epochs each: a smoke check
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

METRICS = "evaluation.metrics=[tstr, tstr_augmentation]"
QUICK_EPOCHS = 2
# (label, spec, epochs): the specs' own budgets, but diffusion's (100 epochs) cut to 30.
MODELS = [
    ("conditional VAE", "cvae_digits.yaml", 60),
    ("conditional GAN", "cgan_digits.yaml", 100),
    ("conditional diffusion (guidance 2)", "cdiffusion_digits.yaml", 30),
]


def run_one(spec: str, epochs: int, work: Path) -> dict:
    """Train one spec and return its tstr metrics, what they were computed with, and the
    minutes the whole (training, sampling, classifiers) took."""
    import json

    from gencompile.runs import train

    start = time.perf_counter()
    result = train(
        ROOT / "specs" / spec, [METRICS], epochs=epochs, run_dir=work / Path(spec).stem, quiet=True
    )
    minutes = (time.perf_counter() - start) / 60
    record = json.loads((result.run_dir / "metrics.json").read_text())
    return {"metrics": result.metrics, "how": record["computed_with"], "minutes": minutes}


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs per model")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, spec, epochs in MODELS:
            epochs = QUICK_EPOCHS if args.quick else epochs
            found = run_one(spec, epochs, Path(folder))
            m = found["metrics"]
            accuracies = f"TSTR {m['tstr_accuracy']:.3f}, TRTR {m['trtr_accuracy']:.3f}"
            print(f"{label}: {found['minutes']:.1f} min, {accuracies}", flush=True)
            rows.append(
                [
                    label,
                    f"`{spec}`",
                    str(epochs),
                    percent(m["tstr_accuracy"]),
                    percent(m["trtr_accuracy"]),
                    f"{m['tstr_ratio']:.3f}",
                    percent(m["subset_accuracy"]),
                    percent(m["augmented_accuracy"]),
                    f"{found['minutes']:.1f}",
                ]
            )
    how = found["how"]["augmented_accuracy"]
    trained_on = found["how"]["trtr_accuracy"]["examples"]
    table = harness.render_table(
        rows,
        ["model", "spec", "epochs", "TSTR", "TRTR", "TSTR / TRTR", "10 % real",
         "10 % real + samples", "minutes"],
        "lllrrrrrr",
    )  # fmt: skip
    command = f"python benchmarks/tstr_digits.py{' --quick' if args.quick else ''}"
    text = "\n".join(
        [
            "# Train on synthetic, test on real: conditional models of the digits",
            "",
            f"Command: `{command}`",
            "",
            f"{harness.utc_stamp()}; {harness.machine_line()}; "
            f"load average {harness.load_average()} at the end (a shared machine: the "
            "minutes are noisy, the accuracies are not)",
            "",
            "Accuracy on the real held-out split "
            f"({how['reference']['examples']} digits) of {how['classifier']} trained on: "
            f"{how['samples']} samples of the model, balanced over the {how['classes']} "
            f"classes (TSTR); the real training split ({trained_on} "
            f"digits, TRTR); a stratified 10 % of it ({how['examples']} digits, seed "
            f"{how['subset_seed']}) alone and with the {how['samples']} samples added. "
            "Computed by the `tstr` and `tstr_augmentation` metrics at the end of training; "
            "minutes: training, sampling and the classifiers together.",
            "",
            table,
            "",
        ]
    )
    harness.write_result(ROOT / "benchmarks" / "results" / "tstr_digits.md", text)


if __name__ == "__main__":
    main()
