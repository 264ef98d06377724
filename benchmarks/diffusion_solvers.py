"""Benchmark: fast diffusion samplers on the same trained weights.

One run of this script

1. trains `specs/diffusion_swissroll.yaml` (MLP, linear schedule) and
   `specs/diffusion_digits.yaml` (U-Net, cosine schedule) once each, with their own budgets
   (400 and 100 epochs; `--epochs` overrides both), through `gencompile.runs.train`;
2. draws from each trained model with every sampler below, on the same EMA weights and the
   same starting noise x_T (one seed per draw, shared by the samplers): DDPM through all
   1000 timesteps, DDIM, DPM-Solver++ (2M, 3M, 2M on Karras' sigmas), Euler and Heun at
   10-50 steps;
3. scores each draw against the held-out split: the energy distance in data units on the
   swiss roll, the Frechet distance in the digits classifier's features (`fd_digits`, the
   metric of `gencompile evaluate`) on the digits; the mean over the seeds, the ratio to
   DDPM's, and samples/s (median wall time of the timed draws, tracing excluded);
4. writes `benchmarks/results/diffusion_solvers.md`.

    .venv/bin/python benchmarks/diffusion_solvers.py            # the specs' budgets
    .venv/bin/python benchmarks/diffusion_solvers.py --quick    # 2 epochs, few samples
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import harness
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "diffusion_solvers.md"


@dataclass(frozen=True)
class DataSet:
    key: str  # --only
    title: str
    spec: str
    metric: str  # energy_distance | fd_digits
    samples: int  # per draw
    seeds: int  # draws per sampler, each from its own x_T
    # Where the deterministic samplers converge to: the probability-flow ODE solved finely
    # (DDIM over all 1000 timesteps, where a U-Net's cost allows it).
    converged: tuple[tuple[str, dict[str, Any]], ...] = ()


DATASETS = (
    # 30 draws: at 2000 samples one draw's energy distance moves by ~15 %, as much as the
    # samplers' differences, and 5 draws read the ratio to DDPM as 1.195 (30: 1.04).
    DataSet(
        "swissroll",
        "swiss roll",
        "diffusion_swissroll.yaml",
        "energy_distance",
        2000,
        30,
        (("DDIM, 1000 steps (the ODE, finely)", {"type": "ddim", "steps": 1000, "eta": 0.0}),),
    ),
    # A U-Net call costs ~1 ms per digit on this shared machine: DDPM's 1000 steps dominate.
    DataSet("digits", "digits", "diffusion_digits.yaml", "fd_digits", 500, 2),
)

# (label, model.sampler config); DDPM first: the others are compared with it.
SAMPLERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("DDPM, 1000 steps", {"type": "ddpm"}),
    ("DDIM, 20 steps", {"type": "ddim", "steps": 20, "eta": 0.0}),
    ("DDIM, 50 steps", {"type": "ddim", "steps": 50, "eta": 0.0}),
    ("DPM-Solver++ 2M, 10 steps", {"type": "dpm_solver", "steps": 10}),
    ("DPM-Solver++ 2M, 20 steps", {"type": "dpm_solver", "steps": 20}),
    ("DPM-Solver++ 2M, 50 steps", {"type": "dpm_solver", "steps": 50}),
    # Lu et al.'s multistep order 3 (diffusers' solver_order=3) and "DPM++ 2M Karras"
    # (diffusers' use_karras_sigmas): the standard variants of the spec's default 2M.
    ("DPM-Solver++ 3M, 10 steps", {"type": "dpm_solver", "steps": 10, "order": 3}),
    ("DPM-Solver++ 3M, 20 steps", {"type": "dpm_solver", "steps": 20, "order": 3}),
    ("DPM-Solver++ 2M Karras, 20 steps", {"type": "dpm_solver", "steps": 20, "spacing": "karras"}),
    ("Euler, 20 steps", {"type": "euler", "steps": 20, "rho": 7.0}),
    ("Euler, 50 steps", {"type": "euler", "steps": 50, "rho": 7.0}),
    ("Heun, 10 steps", {"type": "heun", "steps": 10, "rho": 7.0}),
    ("Heun, 25 steps", {"type": "heun", "steps": 25, "rho": 7.0}),
)
# The target: DPM-Solver++ with 20 steps within 5 % of DDPM's 1000 steps. The
# verdict takes the best of these rows (without the energy distance's bias where it is
# measured) and reads the spec's default, 2M, beside it.
TARGETS = tuple(
    label
    for label, config in SAMPLERS
    if config["type"] == "dpm_solver" and config.get("steps") == 20
)
DEFAULT_TARGET = "DPM-Solver++ 2M, 20 steps"
PER_SEED_COLUMN = 5  # at most this many draws are listed one by one


@dataclass
class Scores:
    """One data set's figures, by sampler label."""

    values: dict[str, list[float]] = field(default_factory=dict)  # one per seed
    # energy distance only: the unbiased estimate of its square, one per seed (U-statistics)
    unbiased: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)  # samples/s
    calls: dict[str, int] = field(default_factory=dict)  # denoiser calls per sample
    floor: list[float] = field(default_factory=list)  # training examples vs held-out
    floor_unbiased: list[float] = field(default_factory=list)
    floor_examples: int = 0
    train_minutes: float = 0.0
    epochs: int = 0
    reused: bool = False  # the run was found finished in --work (trained by an earlier call)


def train_once(
    dataset: DataSet,
    work: Path,
    epochs: int | None,
    overrides: tuple[str, ...] = (),
    name: str | None = None,
) -> tuple[Any, Any, float | None]:
    """Train the spec (no evaluation at the end: this script scores), under `--set`
    `overrides`, into work/<name> (default: the spec's stem), or reuse the finished run an
    earlier call left there if it was trained from the same spec and budget (else stop);
    load its model. Minutes: None if reused. Training is deterministic (the spec's seed),
    so a reused run has the weights."""
    import json

    from gencompile.generated import load_trained_model
    from gencompile.runs import train

    run_dir = work / (name or Path(dataset.spec).stem)
    settings = ("evaluation.metrics=[denoising_loss]", *overrides)
    budget = (f"training.epochs={epochs}",) if epochs else ()
    harness.check_reused(run_dir, ROOT / "specs" / dataset.spec, (*settings, *budget))
    status = run_dir / "status.json"
    minutes = None
    if not (status.exists() and json.loads(status.read_text())["status"] == "finished"):
        start = time.perf_counter()
        train(
            ROOT / "specs" / dataset.spec,
            list(settings),
            epochs=epochs,
            run_dir=run_dir,
            quiet=True,
        )
        minutes = (time.perf_counter() - start) / 60
    model, module = load_trained_model(run_dir)
    return model, module, minutes


class Scorer:
    """The data set's metric of samples in data units against the held-out split."""

    def __init__(self, dataset: DataSet, data: Any):
        from gencompile.runtime.metrics.samples import reference_data

        self.metric = dataset.metric
        self.real = reference_data(data)  # the held-out split, in data units
        if self.metric == "fd_digits":
            from gencompile.runtime.metrics import features

            self.classifier = features.digits_classifier()
            self.real_features = features.digits_features(self.classifier, self.real)

    def __call__(self, samples: np.ndarray) -> float:
        from gencompile.runtime.metrics import distances, features

        if self.metric == "energy_distance":
            flat = samples.reshape(len(samples), -1)
            return distances.energy_distance(flat, self.real.reshape(len(self.real), -1))
        fake = features.digits_features(self.classifier, samples)
        return distances.frechet_distance_of(self.real_features, fake)

    def unbiased_squared(self, samples: np.ndarray) -> float:
        """The energy distance's square without the V-statistic's bias: the mean distance
        within each sample over its n (n - 1) distinct pairs, not n^2 with the zero
        diagonal. The reported metric's square (V) sits ~(E|X-X'| / n + E|Y-Y'| / m) above
        the true square, the same for every sampler: a floor that pulls ratios towards 1."""
        from scipy.spatial.distance import cdist

        x = samples.reshape(len(samples), -1).astype(np.float64)
        y = self.real.reshape(len(self.real), -1).astype(np.float64)
        n, m = len(x), len(y)
        within_x = cdist(x, x).sum() / (n * (n - 1))
        within_y = cdist(y, y).sum() / (m * (m - 1))
        return float(2.0 * cdist(x, y).mean() - within_x - within_y)


def score(dataset: DataSet, work: Path, epochs: int | None, samples: int, seeds: int) -> Scores:
    from gencompile.runtime.data import load_data

    model, module, minutes = train_once(dataset, work, epochs)
    data = load_data(module.DATA, seed=module.SEED)
    scorer = Scorer(dataset, data)
    scores = Scores(
        train_minutes=minutes or 0.0,
        epochs=int(module.TRAINING["epochs"]),
        reused=minutes is None,
    )
    for label, config in (*SAMPLERS, *dataset.converged):
        sampler = model.sampler.with_config(config)
        sampler.sample(4, np.array([0, 0], np.int32))  # trace outside the timing
        scores.calls[label] = sampler.steps
        values, unbiased, seconds = [], [], []
        for seed in range(seeds):
            start = time.perf_counter()
            drawn = np.asarray(model.sample(samples, seed=seed, sampler=config))
            seconds.append(time.perf_counter() - start)
            drawn = data.preprocessor.inverse(drawn)
            values.append(scorer(drawn))
            if dataset.metric == "energy_distance":
                unbiased.append(scorer.unbiased_squared(drawn))
        scores.values[label] = values
        if unbiased:
            scores.unbiased[label] = unbiased
        scores.rates[label] = samples / statistics.median(seconds)
        print(f"{dataset.title}: {label}: {statistics.mean(values):.4f}", flush=True)
    rng = np.random.default_rng(0)
    scores.floor_examples = min(samples, len(data.x_train))
    for _ in range(seeds):  # as many training examples as samples: the metric's floor
        rows = rng.choice(len(data.x_train), scores.floor_examples, replace=False)
        examples = data.preprocessor.inverse(data.x_train[rows])
        scores.floor.append(scorer(examples))
        if dataset.metric == "energy_distance":
            scores.floor_unbiased.append(scorer.unbiased_squared(examples))
    return scores


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def paired_column(values: list[float], reference: list[float]) -> str:
    """Each draw over DDPM's with the same seed: listed for a few draws, else their
    geometric mean and its ~95 % interval."""
    if len(values) <= PER_SEED_COLUMN:
        return harness.listed(harness.ratios(values, reference), 3)
    centre, low, high = harness.paired_geometric_ratio(values, reference)
    return f"{centre:.3f} ({low:.3f}-{high:.3f})"


def best_target(scores: Scores) -> str:
    """The DPM-Solver++ 20-step row closest to the data: by the unbiased square of the
    energy distance where it is measured, else by the metric's mean."""
    if scores.unbiased:
        return min(TARGETS, key=lambda label: statistics.mean(scores.unbiased[label]))
    return min(TARGETS, key=lambda label: statistics.mean(scores.values[label]))


def config_text(label: str) -> str:
    """A row's model.sampler config as the spec writes it, every setting resolved."""
    from gencompile.sampler_configs import resolve_sampler

    config = resolve_sampler(dict(SAMPLERS)[label])
    return "{" + ", ".join(f"{key}: {value}" for key, value in config.items()) + "}"


def target_reading(label: str, scores: Scores) -> tuple[float, float | None]:
    """A row over DDPM: the metric's means, and (energy distance) the square root of the
    ratio of the unbiased squares, None where not measured."""
    ddpm = SAMPLERS[0][0]
    ratio = statistics.mean(scores.values[label]) / statistics.mean(scores.values[ddpm])
    if not scores.unbiased:
        return ratio, None
    squared = statistics.mean(scores.unbiased[label]) / statistics.mean(scores.unbiased[ddpm])
    return ratio, max(squared, 0.0) ** 0.5


def verdict_line(scores: Scores, seeds: int) -> str:
    ddpm = SAMPLERS[0][0]
    target = best_target(scores)
    ratio, bias_free = target_reading(target, scores)
    met = ratio <= 1.05 and (bias_free is None or bias_free <= 1.05)
    if bias_free is None:
        verdict = (
            "at most 5 % above DDPM's: the target is met"
            if met
            else f"{100 * (ratio - 1):.0f} % above DDPM's: the 5 % target is not met"
        )
    elif met:
        verdict = "at most 5 % above DDPM's on both readings: the target is met"
    else:
        verdict = (
            f"{100 * (max(ratio, bias_free) - 1):.0f} % above DDPM's on "
            + ("both readings" if min(ratio, bias_free) > 1.05 else "one reading")
            + ": the 5 % target is not met"
        )
    if bias_free is not None:
        verdict += f"; without the estimator's bias the energy distance is {bias_free:.3f} DDPM's"
    if seeds > PER_SEED_COLUMN:
        centre, low, high = harness.paired_geometric_ratio(
            scores.values[target], scores.values[ddpm]
        )
        verdict += f"; paired by seed {centre:.3f}, ~95 % interval {low:.3f}-{high:.3f}"
    line = (
        f"**Best DPM-Solver++ at 20 steps: {target}, `{config_text(target)}`; / DDPM (1000 "
        f"steps): {ratio:.3f}** ({verdict}; lower is better)."
    )
    if target != DEFAULT_TARGET:
        default, default_bias_free = target_reading(DEFAULT_TARGET, scores)
        line += f" The spec's default, {DEFAULT_TARGET}, reads {default:.3f}" + (
            f" ({default_bias_free:.3f} without the bias)." if default_bias_free else "."
        )
    return line


def render_dataset(dataset: DataSet, scores: Scores, samples: int, seeds: int) -> str:
    ddpm = SAMPLERS[0][0]
    baseline = statistics.mean(scores.values[ddpm])
    unbiased = bool(scores.unbiased)
    target = best_target(scores)
    rows = []
    for label, _ in (*SAMPLERS, *dataset.converged):
        values = scores.values[label]
        row = [
            f"**{label}**" if label == target else label,
            scores.calls[label],
            mean_sd(values),
            f"{statistics.mean(values) / baseline:.3f}",
            paired_column(values, scores.values[ddpm]),
        ]
        if unbiased:
            squared = statistics.mean(scores.unbiased[label])
            row += [f"{squared:.5f}", f"{squared / statistics.mean(scores.unbiased[ddpm]):.3f}"]
        rows.append([*row, f"{scores.rates[label]:.0f}"])
    floor_label = f"(floor: {scores.floor_examples} training examples)"
    floor_row = [floor_label, "", mean_sd(scores.floor), "", ""]
    if unbiased:
        floor_row += [f"{statistics.mean(scores.floor_unbiased):.5f}", ""]
    rows.append([*floor_row, ""])
    metric = (
        "energy distance (data units)"
        if dataset.metric == "energy_distance"
        else "fd_digits (digits classifier features)"
    )
    per_seed = (
        "/ DDPM per seed"
        if seeds <= PER_SEED_COLUMN
        else "/ DDPM paired by seed: geometric mean (~95 % interval)"
    )
    columns = ["sampler", "denoiser calls", metric, "/ DDPM", per_seed]
    if unbiased:
        columns += ["squared, unbiased", "/ DDPM (squared, unbiased)"]
    table = harness.render_table(rows, [*columns, "samples/s"])
    return "\n".join(
        [
            f"## {dataset.title} (`specs/{dataset.spec}`, {scores.epochs} epochs, "
            + (
                "reused from --work: trained by an earlier call)"
                if scores.reused
                else f"trained in {scores.train_minutes:.1f} min)"
            ),
            "",
            f"{seeds} draws of {samples} samples per sampler (seeds 0..{seeds - 1}, the same "
            f"x_T for every sampler), each scored against the held-out split; lower is better.",
            "",
            table,
            "",
            verdict_line(scores, seeds),
        ]
    )


def main() -> None:
    harness.forget_script_folder()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs and few samples")
    parser.add_argument("--epochs", type=int, default=None, help="override both budgets")
    parser.add_argument(
        "--work", type=Path, default=None, help="train into (or reuse finished runs in) DIR"
    )
    parser.add_argument(
        "--only",
        choices=[d.key for d in DATASETS],
        default=None,
        help="one data set, written to diffusion_solvers.<key>.md",
    )
    args = parser.parse_args()
    epochs = 2 if args.quick else args.epochs
    sections = []
    with tempfile.TemporaryDirectory(prefix="diffusion-solvers-") as folder:
        work = args.work or Path(folder)
        for dataset in DATASETS:
            if args.only is not None and dataset.key != args.only:
                continue
            samples = 200 if args.quick else dataset.samples
            seeds = 2 if args.quick else dataset.seeds
            scores = score(dataset, work, epochs, samples, seeds)
            sections.append(render_dataset(dataset, scores, samples, seeds))
    command = "python benchmarks/diffusion_solvers.py" + (" --quick" if args.quick else "")
    if args.epochs is not None:
        command += f" --epochs {args.epochs}"
    if args.work is not None:
        command += f" --work {args.work}"
    if args.only is not None:
        command += f" --only {args.only}"
    text = "\n".join(
        [
            "# diffusion_solvers: fast samplers on the same trained diffusion models",
            "",
            f"`{command}` ({harness.utc_stamp()})",
            "",
            *[s + "\n" for s in sections],
            "How it was measured:",
            "",
            "- Each spec is trained once (`gencompile.runs.train`, the spec's seed 42); every "
            "sampler draws from the same EMA weights through the model's own `sample(n, seed, "
            "sampler=config)`, the compiled loop of `gencompile.runtime.diffusion.Sampler`.",
            "- `/ DDPM`: the mean over seeds divided by DDPM's; per seed: each draw's value over "
            "DDPM's with the same seed (same x_T; DDPM adds its own noise at every step).",
            "- Denoiser calls per sample: Heun calls the denoiser twice per step but the last.",
            "- DPM-Solver++ rows: 2M unless named 3M (`order: 3`), its steps evenly spaced in "
            "log-SNR unless named Karras (`spacing: karras`, rho 7); the bold row is the "
            "20-step one closest to the data (by the unbiased square where measured).",
            "- DPM-Solver++, Euler, Heun and DDIM with eta = 0 all solve the same "
            "probability-flow ODE; DDPM samples the reverse SDE, which adds fresh noise at "
            "every step. With many steps the ODE solvers agree with each other (DDIM over all "
            "1000 timesteps on the swiss roll), so their distance to DDPM at convergence is "
            "the ODE's, not the step count's.",
            "- samples/s: the median wall time of the scored draws (after one untimed draw "
            "that traces the loop).",
            "- The floor row: as many training examples as samples, scored the same way: the "
            "value a perfect sampler would reach at this sample size.",
            "- Energy distance: the metric `gencompile evaluate` reports, sqrt of the "
            "V-statistic (`scipy.stats.energy_distance` in 1-D). Its square carries a bias "
            "~(E|X-X'| / n + E|Y-Y'| / m), the same for every sampler, which pulls ratios "
            "towards 1; `squared, unbiased` drops it (mean distances within a sample over "
            "distinct pairs): ~0 at the floor, and its ratio compares the samplers' true "
            "distances.",
            "- Paired by seed: the geometric mean of each draw's value over DDPM's with the "
            "same seed, exp(mean log ratio -+ 2 standard errors) for the interval.",
            f"- {harness.machine_line()}; load average {harness.load_average()} at the end "
            "(a shared machine: samples/s are noisy, compare within a column).",
        ]
    )
    result = RESULT if args.only is None else RESULT.with_suffix(f".{args.only}.md")
    harness.write_result(result if not args.quick else result.with_suffix(".quick.md"), text)


if __name__ == "__main__":
    sys.exit(main())
