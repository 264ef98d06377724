"""Benchmark: a GAN on 10 % of the digits, without augmentation, with DiffAugment, with ADA.

One run of this script trains `specs/dcgan_digits_small.yaml` (the digits DCGAN on a fixed,
stratified 10 % of the digits: 180 images, 162 of them training) three times through the
real pipeline (`gencompile.runs.train`: compiler, generated project, checkpoints, health
callback), with the same seed, networks, optimizers, batches and number of steps:

    none          model.augmentation: null
    diffaugment   {type: diffaugment, policy: [color, translation, cutout]} (the spec's)
    ada           {type: ada, target: 0.6, ramp_images: 50000} (the same policy)

Each trained run draws `--samples` samples from its averaged generator, in data units, and
is scored by the Frechet distance in the digits classifier's features (`fd_digits`) against
the 1617 digits outside the 10 % subset: images no run has seen, so the figure measures
generalisation rather than memorisation. The 162 training images' own distance to the same
images is the floor a generator that copies its training set would reach.

    .venv/bin/python benchmarks/gan_diffaugment.py              # 100 epochs x 30 steps each
    .venv/bin/python benchmarks/gan_diffaugment.py --quick      # smoke check: 2 epochs
    .venv/bin/python benchmarks/gan_diffaugment.py --ablation   # no spectral norm; translation

It prints a markdown report and writes it to `benchmarks/results/gan_diffaugment.md`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import numpy as np
from harness import (
    forget_script_folder,
    load_average,
    machine_line,
    render_table,
    utc_stamp,
    write_result,
)

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "dcgan_digits_small.yaml"
RESULT = REPO / "benchmarks" / "results" / "gan_diffaugment.md"
FRACTION = 0.1
SAMPLE_SEED = 0  # the same z for every contender

NONE = "model.augmentation=null"
DIFFAUGMENT = "model.augmentation={type: diffaugment, policy: [color, translation, cutout]}"
ADA = "model.augmentation={type: ada, target: 0.6, ramp_images: 50000}"
NO_SPECTRAL_NORM = "model.spectral_norm=false"
CONTENDERS = {"none": [NONE], "diffaugment": [DIFFAUGMENT], "ada": [ADA]}
# --ablation: a discriminator free to overfit (no spectral norm), and translation alone.
ABLATION = {
    "none, no spectral norm": [NONE, NO_SPECTRAL_NORM],
    "diffaugment, no spectral norm": [DIFFAUGMENT, NO_SPECTRAL_NORM],
    "ada, no spectral norm": [ADA, NO_SPECTRAL_NORM],
    "diffaugment [translation]": ["model.augmentation={type: diffaugment, policy: [translation]}"],
}


@dataclass
class Outcome:
    name: str
    fd_heldout: float
    fd_train: float
    minutes: float
    last: dict[str, str]  # the last epoch's row of history.csv


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """(the 10 % subset, the digits outside it), in data units (0..16): the spec's
    `fraction` draw, which does not depend on the seed."""
    from sklearn.datasets import load_digits

    from gencompile.runtime.sources import fraction_indices

    digits = load_digits()
    images = digits.images[..., None].astype(np.float32)
    kept = fraction_indices(len(images), digits.target, FRACTION)
    outside = np.setdiff1d(np.arange(len(images)), kept)
    return images[kept], images[outside]


def training_images() -> np.ndarray:
    """The runs' 162 training images in data units, split as their data loader splits them
    (the spec's seed and validation split; the generated train.py's DATA)."""
    from gencompile.runtime.data import load_data
    from gencompile.spec import load_spec

    spec = load_spec(SPEC).spec
    config = {
        "source": {"type": "builtin", "name": "digits", "fraction": FRACTION},
        "validation_split": spec.data.validation_split,
        "preprocessing": {"scale": [-1.0, 1.0], "standardize": False},
        "augmentation": [],
        "batch_size": 64,
        "shuffle_buffer": 10000,
        "cache": "auto",
        "with_labels": False,
        "drop_remainder": False,
    }
    data = load_data(config, seed=spec.seed)
    return data.preprocessor.inverse(np.asarray(data.x_train))


def last_row(run_dir: Path) -> dict[str, str]:
    with (run_dir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1]


def fd(classifier: object, real: np.ndarray, fake: np.ndarray) -> float:
    from gencompile.runtime.metrics import distances, features

    return distances.frechet_distance_of(
        features.digits_features(classifier, real), features.digits_features(classifier, fake)
    )


def run(name: str, settings: list[str], epochs: int, samples: int, folder: Path) -> Outcome:
    from gencompile.runs import train
    from gencompile.runtime.metrics import features
    from gencompile.sampling import sample

    start = time.perf_counter()
    stem = name.replace(" ", "_").replace(",", "").replace("[", "").replace("]", "")
    result = train(SPEC, settings, epochs=epochs, run_dir=folder / stem, quiet=True)
    minutes = (time.perf_counter() - start) / 60
    path = sample(result.run_dir, samples, folder / f"{stem}.npz", seed=SAMPLE_SEED)
    with np.load(path) as arrays:
        fake = arrays["samples"]
    _, outside = digits_split()
    classifier = features.digits_classifier()
    train_images = training_images()
    return Outcome(
        name,
        fd(classifier, outside, fake),
        fd(classifier, train_images, fake),
        minutes,
        last_row(result.run_dir),
    )


def report(outcomes: list[Outcome], floor: float, args: argparse.Namespace, load: str) -> str:
    steps = args.epochs * 30
    rows = [
        [
            o.name,
            f"{o.fd_heldout:.1f}",
            f"{o.fd_train:.1f}",
            f"{float(o.last['d_real_accuracy']):.2f}",
            f"{float(o.last['d_fake_accuracy']):.2f}",
            f"{float(o.last['augment_p']):.3f}" if "augment_p" in o.last else "-",
            f"{o.minutes:.1f}",
        ]
        for o in outcomes
    ]
    table = render_table(
        rows,
        [
            "augmentation",
            "FD vs 1617 unseen digits",
            "FD vs the 162 training images",
            "D real acc.",
            "D fake acc.",
            "final p",
            "minutes",
        ],
    )
    best = min(outcomes, key=lambda o: o.fd_heldout)
    base = next(o for o in outcomes if o.name.startswith("none"))
    settings = CONTENDERS | ABLATION
    described = [
        f"- {name}: `{'`, `'.join(settings[name])}`" for name in (o.name for o in outcomes)
    ]
    lines = [
        "# DiffAugment and ADA on 10 % of the digits",
        "",
        f"Command: `{' '.join(['python benchmarks/gan_diffaugment.py', *sys.argv[1:]])}`",
        "",
        f"{utc_stamp()}; {machine_line()}; load average before {load}, after {load_average()}.",
        "",
        f"`specs/dcgan_digits_small.yaml` (162 training images of a fixed stratified 10 % "
        f"subset), trained {args.epochs} epochs x 30 steps = {steps} generator updates per "
        f"contender, seed 42 for all; {args.samples} samples each from the averaged "
        f"generator (the same z). Frechet distance in the digits classifier's features "
        f"(`fd_digits`; lower is better) against the 1617 digits outside the subset, and "
        f"against the training images themselves.",
        "",
        table,
        "",
        "Each contender's `--set` overrides of the spec:",
        "",
        *described,
        "",
        f"Floor: the 162 training images' own FD to the 1617 unseen digits is {floor:.1f} "
        "(a generator that copied its training set exactly would score about this).",
        "",
        f"Best on unseen digits: **{best.name}** ({best.fd_heldout:.1f}; {base.name}: "
        f"{base.fd_heldout:.1f}). One seed per contender at this budget: GAN figures vary "
        "from seed to seed, so a difference of a few units is within noise. The machine is "
        "shared with other jobs: the minutes are noisy, the FDs are not affected.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of 30 steps each")
    parser.add_argument("--samples", type=int, default=2000, help="samples per contender")
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 epochs")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="a discriminator without spectral norm (with and without augmentation) and "
        "DiffAugment with translation alone, into gan_diffaugment_ablation.md",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    contenders = ABLATION if args.ablation else CONTENDERS
    if args.out is None:
        args.out = RESULT.with_name("gan_diffaugment_ablation.md") if args.ablation else RESULT
    if args.quick:
        args.epochs, args.samples = 2, 500
    load = load_average()
    from gencompile.runtime.metrics import features

    _, outside = digits_split()
    floor = fd(features.digits_classifier(), outside, training_images())
    with tempfile.TemporaryDirectory(prefix="gan_diffaugment-") as tmp:
        outcomes = []
        for name, settings in contenders.items():
            outcome = run(name, settings, args.epochs, args.samples, Path(tmp))
            print(f"{name}: FD {outcome.fd_heldout:.1f} in {outcome.minutes:.1f} min", flush=True)
            outcomes.append(outcome)
    write_result(args.out, report(outcomes, floor, args, load))


if __name__ == "__main__":
    main()
