"""Benchmark: `gencompile train SPEC` against a hand-written Keras script, each one whole process.

For each family (issue #16): the spec trained by the CLI and the matching script of
`benchmarks/handwritten/` (same data, split, model, optimizer, batches, epochs and held-out
metrics) run as subprocesses, alternately, in `--rounds` rounds whose order flips each round.
The wall time of each process is everything a user waits for: interpreter and TensorFlow
start-up, data, training, evaluation and the files each writes (gencompile: the project,
checkpoints, weights, the exported model, samples and report; the script: its weights and
a samples picture). Quality comes from the run's metrics.json and the script's JSON line.

Both sides evaluate the same metrics: where a spec's defaults include a metric the script
does not compute (fd_digits, bleu, the flow's energy distance), `--set evaluation.metrics=...`
drops it from the gencompile run, so neither side does work the other skips.

    .venv/bin/python benchmarks/whole_process.py                  # all six, 3 rounds
    .venv/bin/python benchmarks/whole_process.py --family vae --rounds 5
    .venv/bin/python benchmarks/whole_process.py --quick          # smoke: tiny budgets, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"  # --corpus for another
# The char-LSTM trains on the corpus's first characters: one epoch of all 1.1 M takes
# minutes on this machine; both sides read this same file.
EXCERPT_CHARS = 200_000
EXCERPT = Path(tempfile.gettempdir()) / f"whole_process_{CORPUS.stem}_{EXCERPT_CHARS}.txt"


@dataclass(frozen=True)
class Family:
    name: str
    spec: str
    script: str
    epochs: int | None  # the budget, passed to both sides (None: the spec's own)
    quick_epochs: int | None
    metrics: tuple[str, ...]  # compared, the first is the headline
    lower_is_better: tuple[bool, ...]
    overrides: tuple[str, ...] = ()  # --set for gencompile
    script_args: tuple[str, ...] = ()
    # where the script's model starts differently from the spec's, so its quality column is
    # not like for like (the gap is this choice, not seed noise); "" when it is the same
    differs: str = ""


FAMILIES = {
    f.name: f
    for f in (
        Family(
            "vae", "vae_digits", "vae_digits", 40, 2, ("iwae_nll", "elbo"), (True, False),
            ("evaluation.metrics=[elbo,iwae_nll]",),
        ),
        Family(
            "gan", "gan_ring8", "gan_ring8", 2, 1,
            ("energy_distance", "modes_captured", "high_quality"), (True, False, False),
        ),
        Family(
            "flow", "flow_moons", "flow_moons", 20, 2, ("nll",), (True,),
            ("evaluation.metrics=[nll]",),
            differs="the script's coupling heads start at zeros (the spec's former "
            "head_init), the spec's at glorot_uniform, which learns faster at a fixed budget "
            "(results/flow_head_init.md)",
        ),
        Family(
            "diffusion", "diffusion_swissroll", "diffusion_swissroll", 30, 2,
            ("energy_distance", "denoising_loss"), (True, True),
        ),
        Family(
            "charlm", "charlm_text", "charlm_text", 2, 1, ("bits_per_char", "perplexity"),
            (True, True),
            ("evaluation.metrics=[perplexity,bits_per_char]", f"data.source.path={EXCERPT}"),
            ("--text", str(EXCERPT)),
            differs="the script's output bias starts at zero, the spec's at the training "
            "text's log unigram frequencies",
        ),
        Family("mixture", "gmm_blobs", "gmm_em_tf", None, None, ("nll", "bic"), (True, True)),
        # Not a Keras script: scikit-learn's EM, which needs no TensorFlow start-up (context).
        Family(
            "mixture-sklearn", "gmm_blobs", "gmm_em", None, None, ("nll", "bic"), (True, True)
        ),
    )
}  # fmt: skip


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the process and its children
    metrics: dict[str, float]


@dataclass
class Result:
    family: Family
    epochs: int | None
    gencompile: list[Run] = field(default_factory=list)
    handwritten: list[Run] = field(default_factory=list)


def gencompile_command(family: Family, runs_dir: Path, epochs: int | None) -> list[str]:
    command = harness.gencompile_train(
        Path(f"specs/{family.spec}.yaml"), runs_dir, *family.overrides
    )
    return command + ([] if epochs is None else ["--epochs", str(epochs)])


def script_command(family: Family, output: Path, epochs: int | None) -> list[str]:
    command = [sys.executable, f"benchmarks/handwritten/{family.script}.py", *family.script_args]
    command += ["--output", str(output)]
    return command + ([] if epochs is None else ["--epochs", str(epochs)])


COMMANDS = (gencompile_command, script_command)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of the whole process, and its stdout; a failure stops the
    benchmark. CPU time moves less than wall time when the machine is shared."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return wall, cpu, done.stdout


def run_gencompile(family: Family, epochs: int | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="whole-gc-") as tmp:
        wall, cpu, _ = timed(gencompile_command(family, Path(tmp), epochs))
        (found,) = Path(tmp).glob("*/*/metrics.json")
        metrics = json.loads(found.read_text())["metrics"]
    return Run(wall, cpu, {name: float(metrics[name]) for name in family.metrics})


def run_script(family: Family, epochs: int | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="whole-hw-") as tmp:
        wall, cpu, stdout = timed(script_command(family, Path(tmp), epochs))
    line = [s for s in stdout.splitlines() if s.startswith("{")][-1]
    metrics = json.loads(line)
    return Run(wall, cpu, {name: float(metrics[name]) for name in family.metrics})


def machine_line() -> str:
    return f"{harness.machine_line()}, load average {harness.load_average()}"


def median(runs: list[Run], key: str = "wall") -> float:
    return harness.median(
        getattr(r, key) if key in ("wall", "cpu") else r.metrics[key] for r in runs
    )


def paired(result: Result) -> str:
    """Each round's ratio: the two runs of a round ran back to back, under one load."""
    pairs = zip(result.handwritten, result.gencompile, strict=True)
    return ", ".join(f"{hw.wall / gc.wall:.2f}" for hw, gc in pairs)


def summary_row(r: Result) -> list[str]:
    head = r.family.metrics[0]
    better = "lower" if r.family.lower_is_better[0] else "higher"
    gc, hw = median(r.gencompile), median(r.handwritten)
    cpu = median(r.handwritten, "cpu") / median(r.gencompile, "cpu")
    return [
        f"{r.family.name} ({r.family.spec})",
        str(r.epochs or "spec"),
        f"{gc:.1f}",
        f"{hw:.1f}",
        f"**{hw / gc:.2f}**",
        paired(r),
        f"{cpu:.2f}",
        f"{head} ({better} is better)",
        f"{median(r.gencompile, head):.4g}",
        f"{median(r.handwritten, head):.4g}",
    ]


COLUMNS = (
    "family", "epochs", "gencompile wall s", "hand-written wall s", "ratio hand / gencompile",
    "per round", "CPU-time ratio", "headline metric", "gencompile", "hand-written",
)  # fmt: skip


def every_run(r: Result) -> list[str]:
    lines = [f"### {r.family.name}", ""]
    for side, runs in (("gencompile", r.gencompile), ("hand-written", r.handwritten)):
        walls = ", ".join(f"{run.wall:.1f}" for run in runs)
        cpus = ", ".join(f"{run.cpu:.1f}" for run in runs)
        quality = "; ".join(
            f"{m} " + ", ".join(f"{run.metrics[m]:.4g}" for run in runs) for m in r.family.metrics
        )
        lines.append(f"- {side}: wall s {walls}; CPU s {cpus}; {quality}")
    commands = [shlex.join(c(r.family, Path("TMP"), r.epochs)) for c in COMMANDS]
    shown = [c.replace(sys.executable, "python") for c in commands]
    return [*lines, f"- commands: `{shown[0]}` and `{shown[1]}`", ""]


def render(
    results: list[Result], args: argparse.Namespace, machines: list[str], compiled: str
) -> str:
    lines = [
        "# Whole-process comparison: `gencompile train` vs a hand-written Keras script",
        "",
        f"Generated {harness.utc_stamp()} by `python benchmarks/whole_process.py "
        f"{' '.join(args.argv)}` ({args.rounds} interleaved round(s), order flipped each "
        "round; medians).",
        "",
        "Machine before and after: " + " | ".join(machines),
        "",
        compiled + ".",
        "",
        harness.render_table([summary_row(r) for r in results], COLUMNS, "lrrrrlrlrr"),
        "",
        *(
            f"- {r.family.name}: quality not like for like: {r.family.differs}."
            for r in results
            if r.family.differs
        ),
        "",
        "## Every run",
        "",
    ]
    for r in results:
        lines += every_run(r)
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="one budget for every chosen family")
    parser.add_argument("--quick", action="store_true", help="tiny budgets, 1 round")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the char-LSTM's text")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.rounds = 1
    default = "whole_process.quick.md" if args.quick else "whole_process.md"
    args.output = args.output or RESULTS / default
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    chosen = [FAMILIES[name] for name in (args.family or FAMILIES)]
    results = [
        Result(f, args.epochs or (f.quick_epochs if args.quick else f.epochs)) for f in chosen
    ]
    if any(f.name == "charlm" for f in chosen):
        text = args.corpus.read_text(encoding="utf-8")[:EXCERPT_CHARS]
        EXCERPT.write_text(text, encoding="utf-8")
    compiled = harness.byte_compile_package()
    machines = [machine_line()]
    for round_index in range(args.rounds):
        for result in results:
            sides = [("gencompile", run_gencompile), ("handwritten", run_script)]
            for side, run in sides if round_index % 2 == 0 else sides[::-1]:
                outcome = run(result.family, result.epochs)
                getattr(result, side).append(outcome)
                print(
                    f"round {round_index + 1} {result.family.name:9s} {side:11s} "
                    f"{outcome.wall:6.1f} s  {outcome.metrics}",
                    flush=True,
                )
    machines.append(machine_line())
    text = render(results, args, machines, compiled)
    harness.write_result(args.output, text)


if __name__ == "__main__":
    main()
