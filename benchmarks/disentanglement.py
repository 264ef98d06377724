"""Benchmark: disentanglement (MIG) of a VAE, a beta-VAE and a beta-TCVAE on shapes2d.

One run of this script trains three variants of `specs/tcvae_shapes2d.yaml` through
`gencompile train`'s pipeline, with one budget (epochs) and the same seeds for all three:

- VAE: `losses.tc` removed, `kl.weight` 1;
- beta-VAE: `losses.tc` removed, `kl.weight` 4;
- beta-TCVAE: the spec as shipped, `kl.weight` 1 and `tc.weight` 6 (the total correlation
  weighs 6 in the loss, estimated on each minibatch of 256 by stratified sampling).

Each is scored at the end of training by the `mig` metric (the mutual information gap of
the held-out codes z_mean, 20 bins per latent, against the four known factors: shape,
scale, x and y) and by the held-out reconstruction NLL, KL and total correlation of the
last epoch's validation (one posterior sample per example).
The seed sets the drawn data (shapes2d's factors), the split and the weights, so a seed is
one independent repetition; the table gives each seed and the mean.

Run it from the repository root:

    .venv/bin/python benchmarks/disentanglement.py             # 30 epochs, seeds 0 to 3
    .venv/bin/python benchmarks/disentanglement.py --seeds 0   # one repetition (~4 min)
    .venv/bin/python benchmarks/disentanglement.py --quick     # 2 epochs, seed 0: a smoke check
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

harness.forget_script_folder()

SPEC = ROOT / "specs" / "tcvae_shapes2d.yaml"
EPOCHS = 30
SEEDS = (0, 1, 2, 3)
# (label, overrides of the shipped beta-TCVAE spec)
MODELS = [
    ("VAE (beta 1)", ["model.losses.tc=null", "model.losses.kl.weight=1.0"]),
    ("beta-VAE (beta 4)", ["model.losses.tc=null", "model.losses.kl.weight=4.0"]),
    ("beta-TCVAE (beta 6 on tc)", ["model.losses.kl.weight=1.0", "model.losses.tc.weight=6.0"]),
]


def run_one(overrides: list[str], seed: int, epochs: int, work: Path) -> dict:
    """Train one variant and return its metrics, its last validated epoch and minutes."""
    from gencompile.runs import train

    settings = [
        *overrides,
        f"seed={seed}",
        # validate the last epoch alone: its reconstruction, KL and TC on the held-out split
        f"training.validation_every_epochs={epochs}",
        "output.report.latent_pictures=false",
        "output.tensorboard=false",
        "evaluation.metrics=[mig]",  # the NLLs below come from the validation pass
    ]
    start = time.perf_counter()
    result = train(SPEC, settings, epochs=epochs, run_dir=work, quiet=True)
    minutes = (time.perf_counter() - start) / 60
    with (result.run_dir / "history.csv").open() as file:
        last = list(csv.DictReader(file))[-1]
    record = json.loads((result.run_dir / "metrics.json").read_text())
    return {
        "metrics": result.metrics,
        "last": last,
        "gaps": record["computed_with"]["mig"]["gap_per_factor"],
        "examples": record["computed_with"]["mig"]["examples"],
        "minutes": minutes,
    }


def mean(values: list[float]) -> float:
    return statistics.mean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per training")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help="2 epochs, seed 0")
    args = parser.parse_args()
    epochs, seeds = (2, [0]) if args.quick else (args.epochs, args.seeds)
    found: dict[str, list[dict]] = {label: [] for label, _ in MODELS}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:  # seed by seed, so that load from elsewhere hits all three alike
            for label, overrides in MODELS:
                run = run_one(overrides, seed, epochs, Path(folder) / f"{seed}-{len(found)}")
                run["work"] = Path(folder)
                found[label].append(run)
                print(
                    f"seed {seed} {label}: MIG {run['metrics']['mig']:.3f}, reconstruction "
                    f"{float(run['last']['val_reconstruction']):.2f} nats, "
                    f"{run['minutes']:.1f} min",
                    flush=True,
                )
    rows, seed_rows = [], []
    for label, _ in MODELS:
        runs = found[label]
        migs = [r["metrics"]["mig"] for r in runs]
        recon = [float(r["last"]["val_reconstruction"]) for r in runs]
        kl = [float(r["last"]["val_kl"]) for r in runs]
        tc = [float(r["last"]["val_tc"]) for r in runs if "val_tc" in r["last"]]
        gaps = {k: mean([r["gaps"][k] for r in runs]) for k in runs[0]["gaps"]}
        rows.append(
            [
                label,
                harness.spread(migs),
                " / ".join(f"{v:.2f}" for v in gaps.values()),
                f"{mean(recon):.2f}",
                f"{mean(kl):.2f}",
                f"{mean(tc):.2f}" if tc else "-",
                f"{sum(r['minutes'] for r in runs):.1f}",
            ]
        )
        seed_rows += [
            [label, str(seed), f"{m:.3f}", f"{r:.2f}"]
            for seed, m, r in zip(seeds, migs, recon, strict=True)
        ]
    factors = " / ".join(found[MODELS[0][0]][0]["gaps"])
    table = harness.render_table(
        rows,
        ["model", "MIG (mean ± sd over seeds)", f"gap per factor ({factors})",
         "reconstruction NLL", "KL", "TC (minibatch est.)", "minutes"],
    )  # fmt: skip
    per_seed = harness.render_table(seed_rows, ["model", "seed", "MIG", "reconstruction NLL"])
    command = "python benchmarks/disentanglement.py" + (
        " --quick"
        if args.quick
        else (f" --epochs {epochs}" if epochs != EPOCHS else "")
        + (f" --seeds {' '.join(map(str, seeds))}" if seeds != list(SEEDS) else "")
    )
    examples = found[MODELS[0][0]][0]["examples"]
    text = "\n".join(
        [
            "# Disentanglement on shapes2d: VAE, beta-VAE and beta-TCVAE",
            "",
            f"Command: `{command}`",
            "",
            f"{harness.utc_stamp()}; {harness.machine_line()}; load average "
            f"{harness.load_average()} at the end (a shared machine: the minutes are noisy, "
            "the scores are not: each training is deterministic for its seed)",
            "",
            f"Budget: {epochs} epochs for each model (batch 256, 8000 training images of "
            f"10000, Adam 1e-3), the network of `specs/tcvae_shapes2d.yaml` (MLP 256-128, "
            f"8 latents, Bernoulli likelihood); seeds {', '.join(map(str, seeds))} for all "
            f"three. MIG: the `mig` metric on the {examples} held-out images (z_mean, 20 "
            "bins per latent, higher is better, 0 to 1). Reconstruction NLL, KL and TC: nats "
            "per held-out image from the last epoch's validation (one posterior sample; "
            "reconstruction + KL is the negative ELBO). Means over the seeds.",
            "",
            table,
            "",
            "Per seed:",
            "",
            per_seed,
            "",
        ]
    )
    name = "disentanglement.quick.md" if args.quick else "disentanglement.md"
    harness.write_result(ROOT / "benchmarks" / "results" / name, text)


if __name__ == "__main__":
    main()
