"""What the benchmark scripts share: clocks, contenders, interleaved training, paired
compiled-step blocks, summary statistics, the machine line and the markdown report.

Importing this module does not import TensorFlow: the memory benchmarks and the
scikit-learn worker of `gmm_em.py` import it in processes whose peak RSS is measured.
`EpochClock` (a Keras callback) and the helpers that touch Keras import it when first used.

Scripts run as `python benchmarks/<name>.py`, so `import harness` finds this file.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

# ====================================================================== the scripts' folder


def forget_script_folder() -> None:
    """Take this folder off `sys.path` (Python puts a script's folder first).

    A script named like its spec (`vae_digits.py` for `specs/vae_digits.yaml`) is otherwise
    importable as `vae_digits`, and the spec loader refuses a name that an importable module
    already has. Call it at the start of `main`, after `harness` has been imported.
    """
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]


# ====================================================================== statistics


def median(values: Iterable[float]) -> float:
    """The median of any iterable of numbers, as a float."""
    return float(statistics.median(list(values)))


def spread(values: Sequence[float], digits: int = 3) -> str:
    """`mean ± stdev` of the values, or the value alone when there is one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def listed(values: Iterable[float], digits: int = 3) -> str:
    """The values, comma-separated, each with `digits` decimals."""
    return ", ".join(f"{v:.{digits}f}" for v in values)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Element-wise numerator / denominator of two paired sequences of equal length."""
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


def paired_geometric_ratio(
    values: Sequence[float], reference: Sequence[float]
) -> tuple[float, float, float]:
    """The geometric mean of values[i] / reference[i] (each pair drawn with the same seed)
    and its ~95 % interval: exp(mean log ratio -+ 2 standard errors); nan bounds for one
    pair."""
    logs = [math.log(v / r) for v, r in zip(values, reference, strict=True)]
    centre = statistics.mean(logs)
    if len(logs) < 2:
        return math.exp(centre), math.nan, math.nan
    error = statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(centre), math.exp(centre - 2 * error), math.exp(centre + 2 * error)


def check_matches(found: dict[str, Any], expected: dict[str, Any], model: str) -> None:
    """Stop the benchmark if the spec's values (`found`) differ from the hand-written
    `model`'s constants (`expected`): the comparison would no longer be like for like."""
    wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    if wrong:
        raise SystemExit(
            f"the spec no longer matches the hand-written {model} (found, expected): {wrong}"
        )


# ====================================================================== the machine


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or `n/a` where the OS has none."""
    try:
        return listed(os.getloadavg(), digits=2)
    except OSError:
        return "n/a"


def machine_line(frameworks: bool = True) -> str:
    """`TensorFlow x, Keras y, Python z, N CPU(s)`; without frameworks, Python and CPUs only.
    The versions come from the installed metadata: no TensorFlow import for a line."""
    tail = f"Python {platform.python_version()}, {os.cpu_count()} CPU(s)"
    if not frameworks:
        return tail
    return f"TensorFlow {version('tensorflow')}, Keras {version('keras')}, {tail}"


def platform_line() -> str:
    """`x86_64, 3.11.7, linux`: the architecture, Python and OS, for the memory reports."""
    return f"{platform.machine()}, {platform.python_version()}, {sys.platform}"


def utc_stamp() -> str:
    """The time now, as the reports print it: `2026-01-31 12:00 UTC`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ====================================================================== the report


def render_table(rows: Sequence[Sequence[Any]], columns: Sequence[str], align: str = "") -> str:
    """A markdown table. Cells are written with `str` (format numbers before);
    `align` has one letter a column, `l` or `r` (default: first left, the rest right)."""
    align = align or "l" + "r" * (len(columns) - 1)
    if len(align) != len(columns):
        raise ValueError(f"{len(columns)} columns but alignment {align!r}")
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row {list(row)!r} has {len(row)} cells, not {len(columns)}")
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [columns, rule, *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def write_result(path: Path, text: str, echo: bool = True) -> None:
    """Print the report (unless `echo` is off), write it to `path` (folders made) and say so."""
    if echo:
        print()
        print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


# ====================================================================== timing Keras training


@functools.cache
def _epoch_clock_class() -> type:
    import keras

    class EpochClock(keras.callbacks.Callback):
        """Wall and CPU duration of every epoch but the first of each `fit` call.

        An epoch lasts from the end of the previous epoch to its own end (after its logs
        reached the host), so the loop's work between epochs counts. The first epoch of a
        fit has no previous end within that fit: it is where tracing happens (in the first
        fit) and where `fit` sets itself up, so it is not timed. `epochs[i]` is the epoch
        whose durations are `wall[i]` and `cpu[i]` (CPU: this process, all threads).
        """

        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[int] = []
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self._last: tuple[float, float] | None = None

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._last = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            now = (time.perf_counter(), time.process_time())
            if self._last is not None:
                self.epochs.append(epoch)
                self.wall.append(now[0] - self._last[0])
                self.cpu.append(now[1] - self._last[1])
            self._last = now

        def wall_by_epoch(self) -> dict[int, float]:
            return dict(zip(self.epochs, self.wall, strict=True))

    return EpochClock


def __getattr__(name: str) -> Any:  # `harness.EpochClock` imports Keras on first use
    if name == "EpochClock":
        return _epoch_clock_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fresh_start(seed: int, deterministic: bool = True, clear: bool = True) -> None:
    """What a new `gencompile train` process starts from: clean Keras state, seeded RNGs."""
    import keras

    from gencompile.runtime import repro

    if clear:
        keras.backend.clear_session()
    repro.set_seed(seed, deterministic=deterministic)


@dataclass
class Contender:
    """One model under training in a benchmark: `fit` continues it over a range of epochs.

    `callbacks` makes the model's own callbacks for each fit (the clock is added);
    `steps` is the steps per epoch (None: the data's own epoch).
    """

    name: str
    model: Any  # keras.Model
    data: Any  # gencompile.runtime.data.DataBundle
    callbacks: Callable[[], list[Any]] = list
    steps: int | None = None
    clock: Any = field(default_factory=lambda: _epoch_clock_class()())
    losses: list[float] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return self.steps or self.data.steps_per_epoch

    def fit(self, start: int, stop: int) -> None:
        # epoch e's batches depend only on (seed, e), so resumed fits see one stream
        stream = (
            self.data.epochs(start, stop)
            if self.steps is None
            else self.data.epochs(start, stop, steps=self.steps)
        )
        history = self.model.fit(
            stream,
            steps_per_epoch=self.steps_per_epoch,
            initial_epoch=start,
            epochs=stop,
            callbacks=[*self.callbacks(), self.clock],
            shuffle=False,  # the stream is shuffled per epoch, seeded
            verbose=0,
        )
        self.losses.extend(float(v) for v in history.history.get("loss", []))

    def steps_per_second(self) -> float:
        """Steps per epoch / median epoch wall time (robust to bursts of load)."""
        if not self.clock.wall:
            raise SystemExit("no epoch was timed: each fit needs at least 2 epochs")
        return self.steps_per_epoch / median(self.clock.wall)

    def cpu_ms_per_step(self) -> float:
        """Median epoch CPU time (this process, all threads) per step, in ms."""
        return 1e3 * median(self.clock.cpu) / self.steps_per_epoch


def train_interleaved(contenders: list[Contender], epochs: int, chunk: int, flip: int) -> None:
    """Train every contender for `epochs`, alternating between them every `chunk` epochs
    (0: no alternation), the first to go flipping every chunk (`flip` offsets it by round).

    Short chunks put the models side by side in time, so load from elsewhere on the machine
    hits them alike; `fit` resumes with `initial_epoch`, so the training equals one long fit.
    """
    chunk = chunk or epochs
    for number, start in enumerate(range(0, epochs, chunk)):
        stop = min(epochs, start + chunk)
        order = contenders if (number + flip) % 2 == 0 else contenders[::-1]
        for contender in order:
            contender.fit(start, stop)


@dataclass
class StepRunner:
    """One call of a model's compiled train function: `steps_per_call` training steps
    (Keras' `steps_per_execution`, which `steps_per_execution: auto` sets above one)."""

    call: Callable[[], Any]
    steps_per_call: int = 1

    def __call__(self) -> Any:
        return self.call()


def step_runner(model: Any, data: Any) -> StepRunner:
    """The model's compiled train function on its own (repeated) training batches."""
    model.make_train_function()
    iterator = iter(data.train.repeat())
    return StepRunner(lambda: model.train_function(iterator), int(model.steps_per_execution))


def _calls(steps: int, per_call: int) -> int:
    """Calls of `per_call` steps that cover `steps` steps (at least one)."""
    return max(1, math.ceil(steps / per_call))


def paired_blocks(
    runners: dict[str, Callable[[], Any]],
    blocks: int,
    steps: int,
    *,
    warmup: int = 20,
    loss_key: str = "loss",
    rng: Any = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds per training step of each runner, one value per block.

    `steps` and `warmup` count training steps: a runner whose calls run several steps
    (`StepRunner.steps_per_call`; other callables run one) is called fewer times, and its
    time is divided by the steps it ran, not by its calls.
    Blocks are short and taken in turns, the order rotating (or shuffled by the numpy
    Generator `rng`), so a burst of load from elsewhere on the machine lands on neighbouring
    blocks of every runner instead of on one runner's whole fit. `loss_key` is read after
    each block to wait for its last step.
    """
    per_call = {name: getattr(run, "steps_per_call", 1) for name, run in runners.items()}
    for name, run in runners.items():
        for _ in range(_calls(warmup, per_call[name]) if warmup else 0):
            logs = run()
        if warmup:
            float(logs[loss_key])  # the warm-up is done before the first block starts
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for block in range(blocks):
        if rng is None:
            shift = block % len(names)
            order = names[shift:] + names[:shift]
        else:
            order = list(runners)
            rng.shuffle(order)
        for name in order:
            run, calls = runners[name], _calls(steps, per_call[name])
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                logs = run()
            float(logs[loss_key])
            ran = calls * per_call[name]
            wall[name].append((time.perf_counter() - start) / ran)
            cpu[name].append((time.process_time() - start_cpu) / ran)
    return wall, cpu


# ====================================================================== runs reused from --work


def check_reused(run_dir: Path, spec: Path, overrides: Sequence[str]) -> None:
    """Stop if `run_dir` holds a run trained from another resolved spec than `spec` under
    `overrides` (the budget too: pass `training.epochs=N` among them): a run reused from
    --work must hold the weights this call would train."""
    import json

    from gencompile.continuation import differences, resolved
    from gencompile.spec import load_spec

    lock = run_dir / "spec.lock.json"
    if not lock.exists():
        return  # nothing to reuse: the caller trains it
    wanted = resolved(load_spec(spec, list(overrides)))
    changed = differences(json.loads(lock.read_text())["resolved_spec"], wanted)
    if changed:
        fields = ", ".join(f"{path} {old}, wanted {new}" for path, old, new in changed[:3])
        raise SystemExit(
            f"{run_dir} was trained from another spec or budget than {spec.name} with "
            f"{list(overrides)}: {fields}; move it away or pass another --work"
        )


# ====================================================================== the package as installed

PACKAGE = Path(__file__).resolve().parents[1] / "gencompile"


def byte_compile_package() -> str:
    """Byte-compile gencompile as installing a wheel does (the Makefile's `bytecode`), so
    that the processes timed start as an installed gencompile does: an editable install
    where PYTHONDONTWRITEBYTECODE is set (this machine) compiles every module again in
    every process. A line for the report says so."""
    import compileall

    compileall.compile_dir(PACKAGE, quiet=1)
    setting = os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"
    return (
        "gencompile's modules byte-compiled first (`python -m compileall gencompile`), as a "
        f"wheel install leaves them (PYTHONDONTWRITEBYTECODE here: {setting})"
    )


# ====================================================================== peak memory of a command


def gencompile_train(spec: Path, runs: Path, *settings: str) -> list[str]:
    """The `gencompile train` command line for `spec`, one `--set` per setting."""
    command = [sys.executable, "-m", "gencompile", "train", str(spec), "--runs-dir", str(runs)]
    command.append("--quiet")
    for setting in settings:
        command += ["--set", setting]
    return command


def peak_rss(command: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of `command`, run in a fresh process of its own.

    A middle process (this file, `--peak-rss`) runs the command and reports its child's
    ru_maxrss, so the figure is the command's alone, not the largest child of the caller.
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--peak-rss", *command], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return int(done.stdout.strip().splitlines()[-1]), seconds


def _report_peak_rss(command: list[str]) -> None:
    """The `--peak-rss` mode: run `command`, print the peak RSS (bytes) of that child."""
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(done.returncode)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)  # Linux: KiB


if __name__ == "__main__" and sys.argv[1:2] == ["--peak-rss"]:
    _report_peak_rss(sys.argv[2:])
