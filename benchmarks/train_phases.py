"""Where one `gencompile train` process spends its wall and CPU time, phase by phase.

Runs `gencompile train SPEC ...` in this process (as the console script does, with its
quick exit) after wrapping the functions of each phase with a timer that records wall time
and process CPU time (all threads). A phase whose CPU is well under its wall waited for
something (a disk, a thread, the machine's other users); one whose CPU exceeds its wall ran
TensorFlow's threads. The table goes to stderr just before the process ends, with the
number and total time of the fsync calls made.

    python benchmarks/train_phases.py specs/gan_ring8.yaml --runs-dir /tmp/r --quiet --epochs 2

Nested phases (a checkpoint inside the fit) are listed indented under their parent; a
parent's figures include its children's.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

START_WALL, START_CPU = time.perf_counter(), time.process_time()


@dataclass
class Phase:
    depth: int
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    order: int = field(default=0)


PHASES: dict[str, Phase] = {}
_DEPTH = [0]


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        phase = PHASES.setdefault(name, Phase(_DEPTH[0], order=len(PHASES)))
        wall, cpu = time.perf_counter(), time.process_time()
        _DEPTH[0] += 1
        try:
            return function(*args, **kwargs)
        finally:
            _DEPTH[0] -= 1
            phase.calls += 1
            phase.wall += time.perf_counter() - wall
            phase.cpu += time.process_time() - cpu

    return wrapper


def patch(module_name: str, attribute: str, name: str | None = None) -> None:
    """Wrap `module.attribute` (a function, or `Class.method` as "Class.method")."""
    import importlib

    module = importlib.import_module(module_name)
    owner, _, leaf = attribute.rpartition(".")
    target = getattr(module, owner) if owner else module
    setattr(target, leaf, timed(name or attribute, getattr(target, leaf)))


def instrument() -> None:
    """The phases of a run, in the order they happen."""
    patch("gencompile.runs", "build", "spec, lowering, project build")
    patch("gencompile.runs", "import_generated", "import generated (TensorFlow, Keras)")
    from gencompile.runtime import data, training

    patch("gencompile.runtime.repro", "set_seed")
    patch("gencompile.runtime.data", "load_data")
    patch("gencompile.runtime.training", "build_and_compile")
    patch("gencompile.runtime.training", "fit")
    patch("gencompile.runtime.training", "fit_callbacks")
    patch("gencompile.runtime.checkpoints", "save_checkpoint", "checkpoint save")
    patch("gencompile.runtime.callbacks", "HistoryCSV.on_epoch_end", "history.csv row")
    patch("gencompile.runtime.callbacks", "HistoryCSV.on_train_end", "history.csv fsync")
    patch("gencompile.runtime.callbacks", "CheckpointKeeper.snapshot", "epoch snapshot")
    patch("gencompile.runtime.tensorboard", "TensorBoardLog.on_train_begin", "tensorboard graphs")
    patch("gencompile.runtime.tensorboard", "TensorBoardLog.on_epoch_end", "tensorboard scalars")
    patch("gencompile.runtime.tensorboard", "TensorBoardLog.image", "tensorboard image")
    patch("gencompile.runtime.tensorboard", "TensorBoardLog.on_train_end", "tensorboard close")
    patch("gencompile.runtime.callbacks", "SamplePictures.on_epoch_end", "progress pictures")
    patch("keras.callbacks", "CallbackList.on_train_begin", "callbacks on_train_begin")
    for family in ("vae", "gan", "flow", "diffusion", "autoregressive", "mixture"):
        patch(f"gencompile.runtime.{family}", "evaluate", f"evaluate ({family})")
    patch("gencompile.runtime.training", "write_artifacts")
    patch("gencompile.runtime.training", "atomic_save", "atomic_save (weights, .keras, export)")
    patch("gencompile.runtime.training", "samples_in_data_units", "draw samples")
    patch("gencompile.runtime.training", "save_picture", "samples picture")
    patch("gencompile.runtime.pictures", "save_curves", "curves.png")
    patch("gencompile.runtime.report_pictures", "write_latent_pictures", "latent pictures")
    patch("gencompile.runs", "write_lock", "spec.lock.json")
    patch("gencompile.runs", "write_report", "report.md, report.html")
    patch("gencompile.cli", "_print_metrics", "print metrics")
    del data, training


FSYNCS = Phase(0)


def count_fsyncs() -> None:
    real = os.fsync

    def fsync(fd: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            real(fd)
        finally:
            FSYNCS.calls += 1
            FSYNCS.wall += time.perf_counter() - wall
            FSYNCS.cpu += time.process_time() - cpu

    os.fsync = fsync


def report() -> None:
    wall, cpu = time.perf_counter() - START_WALL, time.process_time() - START_CPU
    lines = ["", "| phase | calls | wall s | CPU s |", "|---|---:|---:|---:|"]
    for name, p in sorted(PHASES.items(), key=lambda item: item[1].order):
        indent = "&nbsp;&nbsp;" * p.depth
        lines.append(f"| {indent}{name} | {p.calls} | {p.wall:.2f} | {p.cpu:.2f} |")
    lines.append(f"| os.fsync (all) | {FSYNCS.calls} | {FSYNCS.wall:.2f} | {FSYNCS.cpu:.2f} |")
    lines.append(f"| **whole process up to os._exit** | 1 | {wall:.2f} | {cpu:.2f} |")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def main() -> None:
    import harness

    harness.forget_script_folder()  # benchmarks/flow_moons.py is not the spec's package
    sys.argv = ["gencompile", "train", *sys.argv[1:]]
    import gencompile.runtime  # noqa: F401  (the quiet TensorFlow import, as the CLI does)

    timed("imports (TensorFlow, Keras, runtime, CLI)", instrument)()
    count_fsyncs()
    real_exit = os._exit

    def exit_after_report(code: int) -> None:
        report()
        real_exit(code)

    os._exit = exit_after_report
    patch("gencompile.process_end", "end_process", "end_process (thread joins, atexit)")
    from gencompile.cli import main as cli_main
    from gencompile.process_end import run_then_exit

    run_then_exit(cli_main)


if __name__ == "__main__":
    main()
