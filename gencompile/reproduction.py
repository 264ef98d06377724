"""`gencompile reproduce`: re-run a finished run from its lock into a new folder and compare
weights and metrics, like with like."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencompile.errors import RunError, quoted
from gencompile.files import read_json
from gencompile.generated import (
    load_trained_model,
    read_record,
    refuse_unfinished,
    trained_fingerprint,
    verified_lock,
)
from gencompile.lockfile import build_locked, started_from_drift
from gencompile.provenance import INIT_REPORT, parent_gone, pretrained_gone
from gencompile.run_status import RunInterrupted, pruned_epoch
from gencompile.runs import (
    check_before_training,
    claim_folder,
    locked_plan,
    record_pruned,
    train_in,
)

NOT_AT_TRAINING = "not compared: added later by `gencompile evaluate`, not computed in training"


OTHER_SETTINGS = "not compared: re-evaluated with other settings than training used"


@dataclass(frozen=True)
class Comparison:
    name: str
    original: Any
    reproduced: Any
    skipped: str = ""  # why the row is shown but not compared ("" = compared)

    @property
    def same(self) -> bool:
        return bool(self.skipped) or self.original == self.reproduced


@dataclass(frozen=True)
class Reproduction:
    run_dir: Path
    rows: list[Comparison]

    @property
    def identical(self) -> bool:
        """Weights and every metric both runs computed in training match bit for bit."""
        return all(row.same for row in self.rows)


def metric_rows(original: dict[str, Any], again: dict[str, Any]) -> list[Comparison]:
    """Like with like: the reproduction's training computes the spec's metrics, so those are
    compared. A metric the original gained from a later `evaluate` (or recomputed there with
    other settings: other weights, other sample counts) is listed with the reason instead."""
    before, after = original.get("metrics", {}), again["metrics"]
    how_before, how_after = original.get("computed_with", {}), again.get("computed_with", {})
    rows = []
    for name in sorted(set(before) | set(after)):
        skipped = ""
        if name not in after and name in before:
            skipped = NOT_AT_TRAINING
        elif name in how_before and how_before[name] != how_after.get(name):
            skipped = OTHER_SETTINGS
        rows.append(Comparison(name, before.get(name), after.get(name), skipped))
    return rows


def stages(lock: dict[str, Any]) -> list[tuple[str, ...]]:
    """The trainings that made a run, as flags of its generated train.py: one, or for a
    continued run its first length and then each continuation from the checkpoint before
    (a learning rate sized to the total steps changed at each, so they are replayed)."""
    revisions = lock.get("revisions") or []
    if not revisions:
        return [()]
    first = ("--epochs", str(revisions[0]["epochs_before"]))
    return [first] + [("--resume", "--epochs", str(r["epochs_after"])) for r in revisions]


def _empty(directory: Path, remove: bool) -> None:
    """Take back what a refused build wrote into a folder that was new (or empty) before."""
    if remove:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


@contextmanager
def _reproduction_interrupted(run_dir: Path, directory: Path) -> Iterator[None]:
    """An interrupted re-run's own advice (`train --resume` the copy) would finish the copy
    but never compare it: point at `reproduce` again instead."""
    try:
        yield
    except RunInterrupted as stopped:
        raise RunInterrupted(
            f"interrupted: the reproduction of {run_dir} in {directory} stopped before it "
            f"finished; reproduce it again with `gencompile reproduce {quoted(run_dir)}` "
            "(into a new "
            f"folder: remove {directory} or pass another -o)"
        ) from stopped


def _stopped_after(epoch: int | None) -> AbstractContextManager[None]:
    """Stop the fits in this block after `epoch`, as a sweep's pruner stopped the original
    (the same callback, so the same weights); None: no stop."""
    if epoch is None:
        return nullcontext()
    from gencompile.runtime.epoch_listeners import listening

    return listening(lambda done, logs: done >= epoch)


def reproduce(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    allow_drift: bool = False,
    allow_custom_code: bool = False,
) -> Reproduction:
    """Re-run a finished run from its lock into a new folder; compare weights and metrics."""
    from gencompile.runtime.repro import weights_sha256

    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)
    refuse_unfinished(run_dir)  # running, failed or interrupted: says how to finish it
    record = read_record(run_dir)
    if not record:
        raise RunError(
            f"{run_dir} has not finished training (no metrics.json) to reproduce: finish it "
            f"with `gencompile train --resume {quoted(run_dir)}`"
        )
    # A fine-tuned run re-runs from the same parent, and from the same application weights:
    # checked before the lock's spec is validated again (which would fault a gone file at a
    # place in the minified lock rather than say what changed). Gone, they are needed (no
    # --allow-drift); changed, the re-run may start from them as they are now. Relative
    # paths are read where the re-run reads them: in the folder the run was trained in first.
    gone = parent_gone(lock) or pretrained_gone(lock)
    if gone:
        raise RunError(f"cannot reproduce {run_dir}: {gone}")
    changed = started_from_drift(lock)
    if changed and not allow_drift:
        raise RunError(
            f"cannot reproduce {run_dir}: {changed[0]} (--allow-drift re-runs from it as it is now)"
        )
    # Before TensorFlow starts (the model is loaded next), with as many workers as trained
    # the run: `train_in` below starts them all on this machine.
    check_before_training(locked_plan(lock), lock.get("workers"))
    model, _ = load_trained_model(run_dir, False, allow_custom_code)
    original_weights = weights_sha256(model)  # what the file holds now, not what was noted
    if out_dir is not None:
        directory = Path(out_dir)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise RunError(
                f"{directory} exists and is not empty: a reproduction goes into a new folder "
                "(leave out -o to put it beside the run)"
            )
        existed = directory.exists()
    else:
        directory = claim_folder(run_dir.with_name(f"{run_dir.name}-reproduced"))
        existed = False
    try:  # refused (drift, other generated code): the folder goes, empty as it came
        built = build_locked(
            run_dir, directory, allow_drift, allow_custom_code, anyway="to re-run it anyway"
        )
    except BaseException:
        _empty(directory, remove=not existed)
        raise
    workers = lock.get("workers")  # a run of `--workers N`: the same summation order again
    pruned = pruned_epoch(run_dir)  # a pruned sweep trial: stopped after the same epoch
    with _stopped_after(pruned), _reproduction_interrupted(run_dir, directory):
        results = [
            train_in(
                directory,
                built.plan.package,
                built.lock,
                True,
                *flags,
                allow=allow_custom_code,
                workers=workers,
            )
            for flags in stages(lock)
        ]
    again = results[-1]
    rows = []
    if pruned is not None:
        record_pruned(directory, pruned)
        rows.append(Comparison("epochs trained (pruned)", pruned, again.record.get("epochs")))
    rows += [
        Comparison("weights sha256", original_weights, again.record["weights_sha256"]),
        Comparison(
            "data fingerprint",
            trained_fingerprint(run_dir, lock),
            again.record["data_fingerprint"],
        ),
    ]
    if lock.get("parent"):  # what each run started from
        rows.append(
            Comparison(
                "parent weights sha256",
                lock["parent"]["weights_sha256"],
                started_from(directory, built.lock),
            )
        )
    return Reproduction(directory, rows + metric_rows(record, again.record))


def started_from(directory: Path, lock: dict[str, Any]) -> str | None:
    """The sha256 of the parent weights a re-run read, as its training recorded them
    (init_from.json), else as its lock pins them."""
    read = read_json(directory / INIT_REPORT).get("parent")
    if isinstance(read, dict) and read.get("weights_sha256"):
        return str(read["weights_sha256"])
    pinned = lock.get("parent") or {}
    return pinned.get("weights_sha256")
