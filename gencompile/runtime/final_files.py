"""Where training writes a run's final files (weights, exports, samples, metrics.json ...).

A first training writes them into the run folder. A continuation of a finished run
(`gencompile train --resume RUN --epochs N`) must leave the run's own final files those of
its finished revision until it finishes: while its project waits in
`checkpoints/continuation/` (its lock there says so), they go to `final/` beside it, and
`continuation.promote` moves them into the run once training finished (metrics.json
first, the lock last). A continuation that fails or is stopped half-way through writing
them, or that is discarded, leaves the run's own files as they were. No TensorFlow here.

While a continuation is pending, its project's code alone trains the run, as gencompile
runs it (`--run-dir RUN`): `check_trainer` refuses a generated train.py run by hand that
would write the run's checkpoints or final files with other code (the run's own, whose
final files would then wait in `final/` under the continuation's lock), or that would
train the pending project in its own folder (lost when the continuation is promoted).
"""

from __future__ import annotations

from pathlib import Path

from gencompile.errors import RunError, quoted
from gencompile.files import read_json

PENDING = Path("checkpoints") / "continuation"  # a continuation's project until it finishes
FINAL = "final"  # in PENDING: the continuation's final files until `promote` moves them


def pending(run_dir: Path | str) -> bool:
    """Whether a continuation of `run_dir` is pending (its lock is written last: a project
    without one is no continuation yet)."""
    return (Path(run_dir) / PENDING / "spec.lock.json").is_file()


def final_folder(run_dir: Path | str) -> Path:
    """The folder training writes `run_dir`'s final files to: `run_dir` itself, or, while
    a continuation of it is pending, its `final/` folder beside the pending project
    (created here)."""
    if not pending(run_dir):
        return Path(run_dir)
    folder = Path(run_dir) / PENDING / FINAL
    folder.mkdir(exist_ok=True)
    return folder


def check_trainer(project_dir: Path, run_dir: Path) -> None:
    """Refuse to train `run_dir` with the generated project in `project_dir` when a pending
    continuation is in the way (see above): both commands finish it with the gencompile
    command that started it."""
    project, run = project_dir.resolve(), Path(run_dir).resolve()
    if project.parts[-len(PENDING.parts) :] == PENDING.parts and pending(project.parents[1]):
        owner = project.parents[1]
        if run != owner:
            raise RunError(
                f"{project} is a continuation of the run {owner}, waiting there until it "
                f"finishes: train it with `gencompile train --resume {quoted(owner)}`, not in {run}"
            )
    elif pending(run):
        raise RunError(
            f"{run} has a continuation pending in {run / PENDING}, whose code alone trains "
            f"the run until it finishes: finish it with `gencompile train --resume {quoted(run)}`, "
            f"or give it up with `gencompile train --resume {quoted(run)} --discard-continuation`"
        )


def whole(run_dir: Path | str) -> bool:
    """Whether a run's final files are there and readable: metrics.json, and weights that
    open as an HDF5 file. (`gencompile train --resume` of a finished run writes damaged
    ones again from its last checkpoint.)"""
    metrics = Path(run_dir) / "metrics.json"
    try:
        read_json(metrics)  # a JSON object, or a RunError
    except RunError:
        return False
    return metrics.is_file() and readable_hdf5(Path(run_dir) / "model.weights.h5")


def readable_hdf5(path: Path) -> bool:
    """Whether `path` opens as an HDF5 file (a truncated or overwritten one does not)."""
    import h5py  # type: ignore[import-untyped]  # (no TensorFlow)

    try:
        with h5py.File(path, "r") as handle:
            handle.visit(lambda name: None)  # walks every group: a damaged index fails here
    except Exception:  # h5py raises OSError, KeyError, RuntimeError for a damaged file
        return False
    return True
