"""Benchmark: a VQ-VAE with a PixelCNN prior beside the VAEs on the 8x8 digits.

One run of this script

1. trains, through `gencompile train`'s pipeline and each with its spec's own budget,
   `specs/vq_vae_digits.yaml` (60 epochs of the VQ-VAE, then 40 of the PixelCNN prior over
   its 4x4 codes), `specs/vae_digits.yaml` (the dense VAE, 60 epochs) and
   `specs/vae_digits_conv.yaml` (a convolutional VAE of about the VQ-VAE's encoder and
   decoder, 60 epochs);
2. reports what their metrics computed at the end of training: the Frechet distance in the
   digits classifier's features (`fd_digits`, 2000 samples against the held-out split), the
   held-out reconstruction cross-entropy, and each model's bound (the VAEs' IWAE bound
   with k = 1000; the VQ-VAE's reconstruction term + prior NLL of its codes). All three
   specs score the grey-level digits with a Bernoulli likelihood, so these are
   cross-entropies, not -log p(x) (gencompile's own caveat, NON_BINARY_BERNOULLI);
3. draws the pictures: held-out digits above each model's reconstructions, and the run's
   64 samples, into `benchmarks/results/vq_vae_digits/`; writes the table to
   `benchmarks/results/vq_vae_digits.md`.

Every spec has seed 42, so the three share one split (1617 training digits, 180 held out).
Training is deterministic on one CPU, so the same command gives the same numbers; the
minutes depend on the machine's load.

Run it from the repository root:

    .venv/bin/python benchmarks/vq_vae_digits.py           # the specs' budgets
    .venv/bin/python benchmarks/vq_vae_digits.py --quick   # 2 epochs each: a smoke check
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from gencompile.runtime.metrics.results import NON_BINARY_BERNOULLI  # noqa: E402

harness.forget_script_folder()

RESULTS = ROOT / "benchmarks" / "results"
PICTURES = RESULTS / "vq_vae_digits"
QUICK = ["training.epochs=2", "model.prior.epochs=2"]
RECONSTRUCTED = 16  # held-out digits shown above their reconstructions
# (label, spec, the metrics asked for): each spec with its own budget.
MODELS = [
    (
        "VQ-VAE + PixelCNN prior",
        "vq_vae_digits.yaml",
        "[reconstruction_nll, prior_nll, nll_bound, codebook_perplexity, fd_digits]",
    ),
    ("VAE (dense)", "vae_digits.yaml", "[elbo, iwae_nll, fd_digits]"),
    ("VAE (convolutional)", "vae_digits_conv.yaml", "[elbo, iwae_nll, fd_digits]"),
]


def run_one(spec: str, metrics: str, quick: bool, work: Path) -> dict[str, Any]:
    """Train one spec; its metrics, budget, minutes and pictures."""
    import json

    from gencompile.runs import train

    settings = [f"evaluation.metrics={metrics}"]
    if quick:
        settings += QUICK if spec.startswith("vq") else QUICK[:1]
    start = time.perf_counter()
    result = train(ROOT / "specs" / spec, settings, run_dir=work / Path(spec).stem, quiet=True)
    minutes = (time.perf_counter() - start) / 60
    lock = json.loads((result.run_dir / "spec.lock.json").read_text())
    model = lock["resolved_spec"]["model"]
    epochs = str(lock["resolved_spec"]["training"]["epochs"])
    if model["family"] == "vq_vae":
        epochs += f" + {model['prior']['epochs']} (prior)"
    stem = Path(spec).stem
    PICTURES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.run_dir / "samples.png", PICTURES / f"{stem}_samples.png")
    reconstructions(result.run_dir, PICTURES / f"{stem}_reconstructions.png")
    return {"metrics": result.metrics, "minutes": minutes, "epochs": epochs, "stem": stem}


def reconstructions(run_dir: Path, path: Path) -> None:
    """Held-out digits (top rows) above the model's reconstructions of them (bottom rows),
    both in [0, 1]: the VQ-VAE through its codes, a VAE through its posterior mean."""
    from gencompile.generated import load_trained_model
    from gencompile.runtime.data import load_data
    from gencompile.runtime.pictures import save_image_grid

    model, train_module = load_trained_model(run_dir)
    data = load_data(train_module.DATA, seed=train_module.SEED)
    x = np.asarray(data.x_val[:RECONSTRUCTED])
    rebuilt = np.asarray(model(x))
    both = data.preprocessor.inverse(np.concatenate([x, rebuilt]))
    save_image_grid(both, path, columns=8, value_range=(0.0, 16.0))


def number(metrics: dict[str, float], name: str, digits: int = 2) -> str:
    return f"{metrics[name]:.{digits}f}" if name in metrics else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per stage")
    args = parser.parse_args()
    rows, found = [], []
    with tempfile.TemporaryDirectory() as folder:
        for label, spec, metrics in MODELS:
            one = run_one(spec, metrics, args.quick, Path(folder))
            m = one["metrics"]
            print(f"{label}: {one['minutes']:.1f} min, fd_digits {m['fd_digits']:.2f}", flush=True)
            found.append(one)
            bound = m.get("iwae_nll", m.get("nll_bound"))
            recon = m.get("reconstruction_nll")
            rows.append(
                [
                    label,
                    f"`{spec}`",
                    one["epochs"],
                    f"**{m['fd_digits']:.2f}**",
                    "-" if recon is None else f"{recon:.2f}",
                    f"{bound:.2f}",
                    number(m, "codebook_perplexity", 1),
                    f"{one['minutes']:.1f}",
                ]
            )
    table = harness.render_table(
        rows,
        ["model", "spec", "epochs", "fd_digits", "reconstruction cross-entropy",
         "bound (Bernoulli cross-entropy)",
         "codes in use (perplexity)", "minutes"],
        "lllrrrrr",
    )  # fmt: skip
    pictures = []
    for (label, _, _), one in zip(MODELS, found, strict=True):
        stem = one["stem"]
        pictures += [
            f"| {label} | ![reconstructions](vq_vae_digits/{stem}_reconstructions.png) "
            f"| ![samples](vq_vae_digits/{stem}_samples.png) |"
        ]
    command = f"python benchmarks/vq_vae_digits.py{' --quick' if args.quick else ''}"
    text = "\n".join(
        [
            "# VQ-VAE + PixelCNN prior beside the VAEs on the digits",
            "",
            f"Command: `{command}`",
            "",
            f"{harness.utc_stamp()}; {harness.machine_line()}; "
            f"load average {harness.load_average()} at the end (a shared machine: the "
            "minutes are noisy, the metrics are not: training is deterministic)",
            "",
            "Each spec trained with its own budget (epochs), seed 42, batch 64, Adam 1e-3; "
            "the 180 held-out digits of the shared split. fd_digits: Frechet distance between "
            "2000 samples and the held-out digits in the features of the digits classifier "
            "(lower is better). Reconstruction cross-entropy: the Bernoulli -log p(x | codes) "
            "of the held-out digits, nats per image. Bound, nats per image: the VAEs' "
            "IWAE bound (k = 1000); the VQ-VAE's reconstruction term + the prior's NLL of the "
            "codes (the ELBO of a posterior on one code grid: looser than an IWAE bound). "
            f"Caveat (gencompile's own, for every spec here): {NON_BINARY_BERNOULLI}: the "
            "numbers compare these three models only, not likelihoods elsewhere. "
            "Minutes: training (both stages), metrics and artifacts.",
            "",
            table,
            "",
            "Top two rows of each reconstruction picture: 16 held-out digits; bottom two: "
            "their reconstructions. Samples: the run's samples.png (64 draws, the "
            "likelihood's mean).",
            "",
            "| model | reconstructions | samples |",
            "|---|---|---|",
            *pictures,
            "",
        ]
    )
    harness.write_result(RESULTS / "vq_vae_digits.md", text)


if __name__ == "__main__":
    main()
