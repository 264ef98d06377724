"""Benchmark: does fine-tuning pay? Epochs a fine-tuned model needs to reach what training
from scratch reaches, for a VAE, a GAN and a character LSTM (issue #17).

One run of this script, for each comparison:

1. trains the parent: a shipped spec on the old data (`gencompile train`'s own pipeline,
   `gencompile.runs.train`), e.g. specs/vae_digits.yaml on the digits 0-4;
2. trains the child spec on the new data twice, from scratch and from the parent
   (`--set model.init_from.run=PARENT`), e.g. specs/vae_digits_finetune.yaml on 5-9, both
   writing a checkpoint every `every` epochs;
3. evaluates every checkpoint of both with the spec's own held-out metric (the run's
   validation split; the same evaluation noise at every checkpoint): the IWAE NLL for the
   VAE, the Frechet distance in the digits classifier's features (`fd_digits`) for the
   GAN, bits per character for the LSTM;
4. reports the first epoch at which the fine-tuned run reaches (is at or below) the value
   the scratch run has at its last epoch, against the issue's target of at most a third of
   the scratch epochs; writes benchmarks/results/finetune.md.

Each side is one training; the curve comes from its checkpoints, not from one training per
epoch count. Run it from the repository root:

    .venv/bin/python benchmarks/finetune.py           # about 15 minutes on 2 loaded cores
    .venv/bin/python benchmarks/finetune.py --quick   # tiny budgets: a smoke check
    .venv/bin/python benchmarks/finetune.py --only vae,gan

The character LSTM needs a text: `--corpus` (default ../shared/data/tinyshakespeare.txt
from the repository root). Two comparisons use it: the arithmetic-language LSTM fine-tuned
on the corpus's first part, and (does a closer parent transfer more?) an LSTM pretrained
on the corpus's second part fine-tuned on its first part.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

SPECS = ROOT / "specs"
CONTROL = "fine-tune spec, no parent"
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


@dataclass(frozen=True)
class Budget:
    """Epochs and sizes of one comparison (full or --quick)."""

    parent_epochs: int
    scratch_epochs: int
    finetune_epochs: int
    every: int  # a checkpoint (and an evaluation) every this many epochs
    settings: tuple[str, ...] = ()  # for every training of the comparison
    parent_settings: tuple[str, ...] = ()  # for the parent's alone


@dataclass(frozen=True)
class Comparison:
    """A parent spec on the old data; a child spec on the new data, scratch vs fine-tuned."""

    key: str
    title: str
    metric: str
    unit: str
    parent_spec: str
    child_spec: str
    full: Budget
    quick: Budget
    parent_settings: tuple[str, ...] = ()
    child_settings: tuple[str, ...] = ()
    # The scratch side's recipe when it is not the child spec's (a fine-tune spec may set
    # what suits a pretrained start, such as no KL warm-up or a slower encoder).
    scratch_spec: str | None = None
    scratch_settings: tuple[str, ...] = ()
    # Files a comparison writes first (texts); returns (parent, child) settings naming them.
    texts: Callable[[Path, Path, bool], tuple[list[str], list[str]]] | None = None


@dataclass
class Outcome:
    comparison: Comparison
    budget: Budget
    scratch: dict[int, float]
    finetuned: dict[int, float]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The fine-tune spec trained from scratch, when the scratch side has another recipe:
    # what the fine-tune's settings (learning rate, warm-up) give without the parent.
    control: dict[int, float] | None = None

    @property
    def target(self) -> float:
        """The scratch run's value at its last epoch."""
        return self.scratch[max(self.scratch)]

    def first_reaching(self, curve: dict[int, float]) -> int | None:
        """The first evaluated epoch at or below the target (lower is better for all)."""
        return next((e for e in sorted(curve) if curve[e] <= self.target), None)

    @property
    def reached(self) -> int | None:
        return self.first_reaching(self.finetuned)

    @property
    def holds(self) -> bool:
        return self.reached is not None and 3 * self.reached <= self.budget.scratch_epochs


# ====================================================================== the texts


def text_parts(corpus: Path, work: Path, quick: bool) -> tuple[Path, Path]:
    """The corpus's first and second part (`new.txt`, `old.txt`), each its own file:
    200,000 characters each (20,000 with --quick)."""
    if not corpus.is_file():
        raise SystemExit(f"no corpus at {corpus}: give a text file with --corpus")
    text = corpus.read_text(encoding="utf-8")
    size = 20_000 if quick else 200_000
    if len(text) < 2 * size:
        raise SystemExit(f"{corpus} has {len(text)} characters; the benchmark needs {2 * size}")
    new, old = work / "new.txt", work / "old.txt"
    new.write_text(text[:size], encoding="utf-8")
    old.write_text(text[size : 2 * size], encoding="utf-8")
    return new, old


def arithmetic_to_text(corpus: Path, work: Path, quick: bool) -> tuple[list[str], list[str]]:
    new, _ = text_parts(corpus, work, quick)
    return [], [f"data.source.path={new}"]


def text_to_text(corpus: Path, work: Path, quick: bool) -> tuple[list[str], list[str]]:
    new, old = text_parts(corpus, work, quick)
    return [f"data.source.path={old}"], [f"data.source.path={new}"]


# ====================================================================== the comparisons

# The shipped LSTM (256 units) on windows of 64 characters rather than 128, 25 batches an
# epoch: what fits the benchmark's budget on 2 shared cores.
LSTM_FULL = ("model.context_length=64", "training.steps_per_epoch=25")
LSTM_QUICK = ("model.network.units=32", "model.network.embedding_dim=8")
COMPARISONS = [
    Comparison(
        key="vae",
        title="VAE, digits 0-4 -> 5-9",
        metric="iwae_nll",
        unit="nats",
        parent_spec="vae_digits.yaml",
        child_spec="vae_digits_finetune.yaml",
        parent_settings=("data.source.classes=[0,1,2,3,4]",),
        # From scratch: vae_digits.yaml's own recipe (KL warm-up, one learning rate) on 5-9.
        scratch_spec="vae_digits.yaml",
        scratch_settings=("data.source.classes=[5,6,7,8,9]",),
        full=Budget(60, 60, 30, 1, ("evaluation.importance_samples=1000",)),
        quick=Budget(2, 3, 3, 1, ("evaluation.importance_samples=16",)),
    ),
    Comparison(
        key="gan",
        title="DCGAN, digits 0-4 -> 5-9",
        metric="fd_digits",
        unit="",
        parent_spec="dcgan_digits.yaml",
        child_spec="gan_digits_finetune.yaml",
        parent_settings=("data.source.classes=[0,1,2,3,4]",),
        # A larger held-out split (both sides alike): the Frechet distance's reference
        # statistics from about 270 digits rather than 90.
        full=Budget(60, 60, 30, 5, ("data.validation_split=0.3", "evaluation.num_samples=2000")),
        quick=Budget(1, 2, 2, 1, ("training.steps_per_epoch=3", "evaluation.num_samples=200")),
    ),
    Comparison(
        key="charlm",
        title="char-LSTM, arithmetic -> text",
        metric="bits_per_char",
        unit="bits",
        parent_spec="charlm_arithmetic.yaml",
        child_spec="charlm_finetune.yaml",
        parent_settings=("data.source.n_samples=20000",),
        texts=arithmetic_to_text,
        full=Budget(4, 8, 8, 1, LSTM_FULL),
        quick=Budget(
            1,
            2,
            2,
            1,
            ("training.steps_per_epoch=2", *LSTM_QUICK),
            ("data.source.n_samples=500",),
        ),
    ),
    Comparison(
        key="charlm-text",
        title="char-LSTM, text part 2 -> part 1",
        metric="bits_per_char",
        unit="bits",
        parent_spec="charlm_finetune.yaml",
        child_spec="charlm_finetune.yaml",
        texts=text_to_text,
        full=Budget(8, 8, 8, 1, LSTM_FULL),
        quick=Budget(1, 2, 2, 1, ("training.steps_per_epoch=2", *LSTM_QUICK)),
    ),
]


# ====================================================================== training and evaluating


def trained(spec: str, settings: list[str], epochs: int, run_dir: Path) -> float:
    """Train `spec` into `run_dir` with `gencompile train`'s pipeline; the seconds it took."""
    from gencompile.runs import train

    start = time.perf_counter()
    train(SPECS / spec, settings, epochs=epochs, run_dir=run_dir, quiet=True)
    return time.perf_counter() - start


def curve(run_dir: Path, metric: str) -> dict[int, float]:
    """`metric` of every checkpoint of a run, on its held-out split, by epoch.

    Each checkpoint is evaluated as `gencompile evaluate` evaluates a run: the generated
    module's own `evaluate`, the seed set before it, so every checkpoint sees the same
    evaluation noise (importance samples, generated samples).
    """
    from gencompile.generated import import_generated
    from gencompile.runtime import checkpoints, repro
    from gencompile.runtime.data import load_data

    lock = json.loads((run_dir / "spec.lock.json").read_text())
    module = import_generated(run_dir, lock["name"].replace("-", "_"))
    harness.fresh_start(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    model = module.build_model()
    config = {**module.EVALUATION, "metrics": [metric]}
    values: dict[int, float] = {}
    for checkpoint in checkpoints.listed(run_dir / "checkpoints"):
        problem = checkpoints.verify(checkpoint)
        if problem is not None:
            raise SystemExit(f"{checkpoint.weights}: {problem}")
        model.load_weights(checkpoint.weights)
        repro.set_seed(module.SEED, deterministic=module.TRAINING["deterministic"])
        values[checkpoint.epoch] = float(module.evaluate(model, data, config)[metric])
    return values


def compare(comparison: Comparison, quick: bool, corpus: Path, work: Path) -> Outcome:
    """Parent, then scratch and fine-tuned child; the two curves."""
    budget = comparison.quick if quick else comparison.full
    folder = work / comparison.key
    folder.mkdir(parents=True)
    parent_extra, child_extra = (
        comparison.texts(corpus, folder, quick) if comparison.texts else ([], [])
    )
    common = list(budget.settings)
    parent = folder / "parent"
    seconds = {
        "parent": trained(
            comparison.parent_spec,
            [
                *comparison.parent_settings,
                *budget.parent_settings,
                *common,
                *parent_extra,
                f"evaluation.metrics=[{comparison.metric}]",
            ],
            budget.parent_epochs,
            parent,
        )
    }
    child = [
        *comparison.child_settings,
        *common,
        *child_extra,
        f"evaluation.metrics=[{comparison.metric}]",
        f"training.checkpoint.every_epochs={budget.every}",
        "training.checkpoint.every_seconds=0",
        "training.checkpoint.keep=1000",  # every checkpoint is a point of the curve
    ]
    sides = {
        "scratch": (
            comparison.scratch_spec or comparison.child_spec,
            list(comparison.scratch_settings),
            budget.scratch_epochs,
        ),
        "fine-tuned": (
            comparison.child_spec,
            [f"model.init_from.run={parent}"],
            budget.finetune_epochs,
        ),
    }
    if comparison.scratch_spec is not None:
        sides[CONTROL] = (comparison.child_spec, [], budget.scratch_epochs)
    curves: dict[str, dict[int, float]] = {}
    for side, (spec, extra, epochs) in sides.items():
        run_dir = folder / side
        seconds[side] = trained(spec, [*child, *extra], epochs, run_dir)
        start = time.perf_counter()
        curves[side] = curve(run_dir, comparison.metric)
        seconds[f"{side} evaluation"] = time.perf_counter() - start
    outcome = Outcome(
        comparison,
        budget,
        curves["scratch"],
        curves["fine-tuned"],
        seconds,
        [],
        curves.get(CONTROL),
    )
    if outcome.control is not None:
        reached = outcome.first_reaching(outcome.control)
        outcome.notes.append(
            f"the fine-tune spec trained from scratch ({CONTROL}) reaches the scratch value at "
            + (f"epoch {reached}" if reached else f"no epoch up to {budget.scratch_epochs}")
        )
    report = folder / "fine-tuned" / "init_from.json"
    if report.is_file():
        taken = json.loads(report.read_text())
        vocabulary = taken.get("vocabulary")
        outcome.notes.append(
            f"taken from the parent: {len(taken['taken'])} layers, "
            f"{len(taken['fresh'])} left fresh"
            + (
                f"; vocabulary: {vocabulary['known']} tokens known, {len(vocabulary['new'])} new"
                if vocabulary
                else ""
            )
        )
    return outcome


# ====================================================================== the report


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        c, b = o.comparison, o.budget
        reached = o.reached
        rows.append(
            [
                c.title,
                f"`{c.metric}`",
                str(b.parent_epochs),
                str(b.scratch_epochs),
                fmt(o.target),
                fmt(o.finetuned[min(o.finetuned)]) + f" (epoch {min(o.finetuned)})",
                fmt(o.scratch[min(o.scratch)]) + f" (epoch {min(o.scratch)})",
                f"> {b.finetune_epochs}" if reached is None else str(reached),
                str(o.first_reaching(o.scratch)),
                f"<= {b.scratch_epochs // 3}: " + ("**yes**" if o.holds else "**no**"),
                fmt(o.finetuned[max(o.finetuned)]),
            ]
        )
    columns = [
        "comparison", "metric", "parent epochs", "scratch epochs", "scratch at its end",
        "fine-tuned first", "scratch first", "fine-tuned reaches it at epoch",
        "scratch reaches it at epoch", "target", "fine-tuned at its end",
    ]  # fmt: skip
    return harness.render_table(rows, columns, "llrrrrrrrlr")


def curves_table(o: Outcome) -> str:
    sides = {"scratch": o.scratch, "fine-tuned": o.finetuned}
    if o.control is not None:
        sides[CONTROL] = o.control
    epochs = sorted(set().union(*sides.values()))
    rows = [[str(e), *(fmt(values.get(e)) for values in sides.values())] for e in epochs]
    return harness.render_table(rows, ["epoch", *sides], "r" * (1 + len(sides)))


def details(o: Outcome) -> list[str]:
    c = o.comparison
    times = ", ".join(f"{side} {s:.0f} s" for side, s in o.seconds.items())
    lines = [
        f"## {c.title}: `{c.metric}`" + (f" ({c.unit})" if c.unit else ""),
        "",
        f"Parent: `specs/{c.parent_spec}`"
        + (f" with `{'`, `'.join(c.parent_settings)}`" if c.parent_settings else "")
        + f"; fine-tuned: `specs/{c.child_spec}`"
        + (
            f"; scratch: `specs/{c.scratch_spec or c.child_spec}`"
            + (f" with `{'`, `'.join(c.scratch_settings)}`" if c.scratch_settings else "")
        )
        + (f"; every training: `{'`, `'.join(o.budget.settings)}`" if o.budget.settings else "")
        + f". Times: {times}.",
        "",
    ]
    lines += [f"- {note}" for note in o.notes]
    return [*lines, "", curves_table(o), ""]


def render(outcomes: list[Outcome], command: str, minutes: float) -> str:
    parts = [
        "# Fine-tuning against training from scratch",
        "",
        f"Command: `{command}`",
        "",
        f"{harness.utc_stamp()}; {harness.machine_line()}; load average at the end "
        f"{harness.load_average()}; {minutes:.1f} minutes in all.",
        "",
        "Each comparison trains a parent on the old data, then the child spec on the new data "
        "once from scratch and once from the parent (`model.init_from.run`), checkpointing as "
        "it goes. Every checkpoint is evaluated on the run's held-out split with the same "
        "evaluation noise; lower is better for every metric. 'Reaches it' is the first "
        "evaluated epoch at or below the scratch run's value at its last epoch; the target "
        "(issue #17) is at most a third of the scratch epochs. Training times are wall "
        "seconds on a machine shared with other jobs, so they are noisy; the curves are not "
        "(same seeds, deterministic ops).",
        "",
        summary(outcomes),
        "",
    ]
    for outcome in outcomes:
        parts += details(outcome)
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke check")
    keys = [c.key for c in COMPARISONS]
    parser.add_argument(
        "--only", default=",".join(keys), help=f"comma-separated subset of {','.join(keys)}"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="the text of the character-LSTM comparisons (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, help="the report (default results/finetune.md)")
    parser.add_argument("--keep", type=Path, help="train into this folder and keep the runs")
    args = parser.parse_args()
    harness.forget_script_folder()
    chosen = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = sorted(set(chosen) - set(keys))
    if unknown:
        raise SystemExit(f"--only: unknown comparison(s) {unknown}; choose from {keys}")
    name = "finetune.quick.md" if args.quick else "finetune.md"
    output = args.output or ROOT / "benchmarks" / "results" / name
    command = shlex.join(["python", "benchmarks/finetune.py", *sys.argv[1:]])
    start = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory() as temporary:
        work = args.keep or Path(temporary)
        for comparison in (c for c in COMPARISONS if c.key in chosen):
            outcome = compare(comparison, args.quick, args.corpus.resolve(), work)
            print(
                f"{comparison.title}: scratch {fmt(outcome.target)} at epoch "
                f"{outcome.budget.scratch_epochs}; fine-tuned reaches it at epoch "
                f"{outcome.reached}",
                flush=True,
            )
            outcomes.append(outcome)
    minutes = (time.perf_counter() - start) / 60
    harness.write_result(output, render(outcomes, command, minutes))


if __name__ == "__main__":
    main()
