"""Benchmark: VAE posteriors, objectives and priors on the digits, held-out IWAE NLL.

One run of this script trains `specs/vae_digits.yaml` (the plain VAE) and its variants
through the library's own `gencompile train` path (`gencompile.runs.train`), each with the
same budget (epochs, batches, optimizer, KL warm-up) and the same seeds, and scores each on
the same held-out split with the same IWAE estimator (k importance samples, one fixed
importance seed):

- plain: the spec as it is (Gaussian posterior, ELBO, N(0, I) prior);
- iaf: `model.posterior={type: iaf, steps: 4}` (specs/vae_digits_iaf.yaml's posterior);
- iwae: `model.objective={type: iwae, samples: 5}`;
- vamp: `model.prior={type: vamp, pseudo_inputs: 100}`.

It writes a markdown table (mean ± sd over seeds, and the paired difference to the plain
VAE seed by seed) to `benchmarks/results/vae_variants.md`. Run it from the repository root:

    .venv/bin/python benchmarks/vae_variants.py                # 60 epochs x 3 seeds
    .venv/bin/python benchmarks/vae_variants.py --quick        # 3 epochs x 1 seed, k=50

Lower NLL is better. The ELBO is a one-sample estimate, reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from harness import (
    forget_script_folder,
    load_average,
    machine_line,
    render_table,
    spread,
    utc_stamp,
    write_result,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vae_digits.yaml"
IAF_SPEC = ROOT / "specs" / "vae_digits_iaf.yaml"


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    settings: tuple[str, ...]


def iaf_posterior() -> str:
    """The example spec's posterior, so the benchmark measures what the example runs."""
    import yaml

    posterior = yaml.safe_load(IAF_SPEC.read_text())["model"]["posterior"]
    return "model.posterior=" + json.dumps(posterior)


def variants() -> list[Variant]:
    return [
        Variant("plain", "Gaussian posterior, ELBO, N(0, I) prior (the spec)", ()),
        Variant("iaf", "IAF posterior, 4 steps (vae_digits_iaf.yaml)", (iaf_posterior(),)),
        Variant("iwae", "IWAE objective, k = 5", ("model.objective={type: iwae, samples: 5}",)),
        Variant(
            "vamp",
            "VampPrior, 100 pseudo-inputs",
            ("model.prior={type: vamp, pseudo_inputs: 100}",),
        ),
    ]


def train_one(variant: Variant, seed: int, epochs: int, k: int, runs: Path) -> dict[str, float]:
    """Train and score one variant with one seed; the run's metrics and its wall time."""
    from gencompile.runs import train

    settings = [
        *variant.settings,
        f"seed={seed}",
        f"training.epochs={epochs}",
        "evaluation.metrics=[elbo, iwae_nll]",
        f"evaluation.importance_samples={k}",
        "output.samples.count=16",
    ]
    run_dir = runs / f"{variant.name}-{seed}"
    start = time.perf_counter()
    train(SPEC, settings, run_dir=run_dir, quiet=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scores = metrics["metrics"]
    return {"iwae_nll": scores["iwae_nll"], "elbo": scores["elbo"], "seconds": seconds}


def report(
    results: dict[str, list[dict[str, float]]],
    chosen: list[Variant],
    seeds: list[int],
    epochs: int,
    k: int,
    command: str,
) -> str:
    plain = results["plain"]
    rows = []
    for variant in chosen:
        runs = results[variant.name]
        nll = [r["iwae_nll"] for r in runs]
        diffs = [r["iwae_nll"] - p["iwae_nll"] for r, p in zip(runs, plain, strict=True)]
        rows.append(
            [
                variant.name,
                variant.what,
                spread(nll, 2),
                spread([r["elbo"] for r in runs], 2),
                "—" if variant.name == "plain" else spread(diffs, 2),
                ", ".join(f"{d:+.2f}" for d in diffs) if variant.name != "plain" else "—",
                f"{statistics.mean(r['seconds'] for r in runs):.0f}",
            ]
        )
    table = render_table(
        rows,
        [
            "variant",
            "what",
            # the spec's Bernoulli likelihood on grey levels: a cross-entropy, not -log p(x)
            "held-out IWAE Bernoulli cross-entropy (nats)",
            "ELBO (nats)",
            "minus plain (paired)",
            "per seed",
            "s per run",
        ],
        align="llrrrrr",
    )
    per_seed = render_table(
        [
            [v.name, s, f"{r['iwae_nll']:.3f}", f"{r['elbo']:.3f}", f"{r['seconds']:.0f}"]
            for v in chosen
            for s, r in zip(seeds, results[v.name], strict=True)
        ],
        ["variant", "seed", "IWAE NLL", "ELBO", "seconds"],
    )
    return "\n".join(
        [
            "# vae_variants: VAE posteriors, objectives and priors on the digits",
            "",
            f"`{command}` ({utc_stamp()})",
            "",
            table,
            "",
            "How it was measured:",
            "",
            f"- Every variant is `specs/vae_digits.yaml` with one setting changed, trained by "
            f"`gencompile.runs.train` for {epochs} epochs (batch 64, Adam 1e-3, KL warm-up over "
            f"5 epochs, L2 1e-5: the spec's), once per seed {', '.join(map(str, seeds))}; "
            "the same seeds for every variant.",
            f"- NLL: the IWAE bound with k={k} importance samples (importance seed 0) on the "
            "180 held-out examples (validation split 0.1), nats per example; for the IAF the "
            "importance weights use the flow posterior's density log q0(z0) - sum log sigma. "
            "ELBO: one posterior sample. mean ± sd over seeds; 'NLL - plain' is the paired "
            "difference seed by seed (negative: better than the plain VAE).",
            f"- Budget: the same epochs for every variant, so the IAF and the IWAE objective "
            f"spend more compute per step (seconds per run in the table). {machine_line()}; "
            f"load average {load_average()} at the end (the machine is shared: seconds are "
            "noisy, NLLs are not affected by load).",
            "",
            "## Per seed",
            "",
            per_seed,
            "",
        ]
    )


def main() -> None:
    forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 42, 43, ...")
    parser.add_argument("--importance-samples", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="variants to run besides plain")
    parser.add_argument("--quick", action="store_true", help="3 epochs, 1 seed, k=50")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.seeds, args.importance_samples = 3, 1, 50
    default_name = "vae_variants.quick.md" if args.quick else "vae_variants.md"
    output = args.output or Path(__file__).resolve().parent / "results" / default_name
    chosen = [v for v in variants() if v.name == "plain" or not args.only or v.name in args.only]
    seeds = [42 + i for i in range(args.seeds)]
    results: dict[str, list[dict[str, float]]] = {v.name: [] for v in chosen}
    with tempfile.TemporaryDirectory(prefix="vae_variants-") as tmp:
        for seed in seeds:  # seed by seed, so load from elsewhere hits the variants alike
            for variant in chosen:
                found = train_one(variant, seed, args.epochs, args.importance_samples, Path(tmp))
                results[variant.name].append(found)
                print(f"{variant.name} seed {seed}: {found}", flush=True)
    command = "python " + " ".join(["benchmarks/vae_variants.py", *sys.argv[1:]])
    text = report(results, chosen, seeds, args.epochs, args.importance_samples, command)
    write_result(output, text)


if __name__ == "__main__":
    main()
