"""Where training writes a run's final files (weights, exports, samples, metrics.json ...).

A first training writes them into the run folder. A continuation of a finished run
(`gencompile train --resume RUN --epochs N`) must leave the run's own final files those of
its finished revision until it finishes: while its project waits in
`checkpoints/continuation/` (its lock there says so), they go to `final/` beside it, and
`continuation.promote` moves them into the run once training finished (metrics.json
first, the lock last). A continuation that fails or is stopped half-way through writing
them, or that is discarded, leaves the run's own files as they were. No TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

PENDING = Path("checkpoints") / "continuation"  # a continuation's project until it finishes
FINAL = "final"  # in PENDING: the continuation's final files until `promote` moves them


def final_folder(run_dir: Path | str) -> Path:
    """The folder training writes `run_dir`'s final files to: `run_dir` itself, or, while
    a continuation of it is pending, its `final/` folder beside the pending project
    (created here)."""
    pending = Path(run_dir) / PENDING
    if not (pending / "spec.lock.json").is_file():
        return Path(run_dir)
    folder = pending / FINAL
    folder.mkdir(exist_ok=True)
    return folder
