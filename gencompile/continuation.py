"""Continue a finished run to more epochs: `gencompile train --resume RUN --epochs N`.

A run trained to K epochs ends with a checkpoint of epoch K (weights, optimizer state,
random state). Continuing builds the run's project with `training.epochs = N` (the only
change allowed: any other is refused, naming each differing field) as a pending project in
`checkpoints/continuation/`, whose lock is a new revision (epochs K -> N, the lock it
replaces), and resumes from that checkpoint, as a run interrupted after epoch K would be.
The pending project's spec.yaml (and its lock's `spec_source`) says N epochs, under a
header saying the run was continued (`continued_source`): training it trains the run.
The run's own project, lock, weights and metrics stay those of its finished K epochs until
the continuation finishes: its final files are written beside the pending project
(`runtime/final_files.py`), and only then do they and the pending project replace the
run's own (`promote`).
status.json names that finished revision meanwhile (`finished_revision`), so a
continuation that is interrupted or fails leaves a run that `sample` and `evaluate` use as
it was; `train --resume RUN` continues the pending continuation.

Learning-rate schedules follow the optimizer's step counter and warm-ups the epoch counter,
both restored, so the run ends as one trained to N without a stop would, unless its
schedule is sized to the total steps (cosine decay): that schedule is then the one of an
N-epoch run from step K x steps-per-epoch on (see README, "Continuing a finished run").
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gencompile.errors import RunError, quoted
from gencompile.files import read_json, temporary_of
from gencompile.lock_format import training_record
from gencompile.lockfile import data_drift, drift_refusal, version_drift
from gencompile.run_status import STATUS_NAME, epochs_phrase, read_status, write_status

# The pending folder (a continuation's project until it finishes) and, in it, the folder its
# final files (weights, exports, samples, metrics.json, ...) are written to meanwhile.
from gencompile.runtime.final_files import FINAL, PENDING  # no TensorFlow
from gencompile.spec import LoadedSpec, default_mapping, load_spec, validate_raw, variant_fields
from gencompile.spec.base import python_name
from gencompile.spec.loader import Marks, RawSpec, apply_override, parse_override

EPOCHS_FIELD = "training.epochs"
# EM's iterations are its epochs: `max_iter` caps `training.epochs`, so it grows with them.
EM_ITERATIONS_FIELD = "model.algorithm.max_iter"
MAX_SHOWN = 12  # differences listed before "and N more"
# In the pending folder: the checkpoint of the finished epochs (pruned from checkpoints/
# as the continuation trains on), kept for `discard` to continue from again.
KEPT_CHECKPOINT = "finished-checkpoint"
REPLACED = ".replaced-"  # a run's folder (saved_model/, latent/) moved aside by `promote`
CONTINUED = "# Continued by gencompile"  # the first words of continued_source's header
_INTEGER = re.compile(r"[0-9][0-9_]*(?=\s|,|}|$)")  # a plain decimal literal, as specs write


@dataclass(frozen=True)
class Continuation:
    """What a continuation trains: the run's spec with its new epochs, and the revision."""

    loaded: LoadedSpec
    revision: dict[str, Any]


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(field path, old value, new value) for every leaf where two spec dicts differ.

    >>> differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 3]}})
    [('a.b', 1, 2), ('a.c[1]', 2, 3)]
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            found += differences(old.get(key), new.get(key), where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found += differences(a, b, f"{path}[{i}]")
        return found
    return [] if old == new and type(old) is type(new) else [(path, old, new)]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def requested_spec(
    lock: dict[str, Any], spec: Path | str | None, overrides: list[str] | tuple[str, ...]
) -> LoadedSpec:
    """The spec a continuation was given: a spec file (with its --set), or the run's own
    resolved spec with the --set overrides applied."""
    if spec is not None:
        return load_spec(spec, list(overrides))
    data, marks = copy.deepcopy(lock["resolved_spec"]), Marks()
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, marks, key, value, default_mapping, variant_fields)
    return validate_raw(RawSpec(data, marks, None, lock["spec_source"]), opened=True)


def resolved(loaded: LoadedSpec) -> dict[str, Any]:
    """The resolved spec the compiler would lock for `loaded` (no TensorFlow)."""
    from gencompile.compiler.lower import lower

    return lower(loaded).resolved_spec


def length_fields(lock: dict[str, Any]) -> tuple[str, ...]:
    """The fields that say how long the run trains: the only ones a continuation changes."""
    algorithm = lock["resolved_spec"]["model"].get("algorithm")
    em = isinstance(algorithm, dict) and algorithm.get("type") in ("em", "variational")
    return (EPOCHS_FIELD, EM_ITERATIONS_FIELD) if em else (EPOCHS_FIELD,)


def refuse_other_changes(run_dir: Path, lock: dict[str, Any], given: dict[str, Any]) -> None:
    """A continuation trains the run's own spec; a change other than its length is a new
    run, refused with every differing field and both values."""
    allowed = length_fields(lock)
    changed = [d for d in differences(lock["resolved_spec"], given) if d[0] not in allowed]
    if not changed:
        return
    lines = [
        f"  {path}: {_short(old)} in the run, {_short(new)} given" for path, old, new in changed
    ]
    if len(lines) > MAX_SHOWN:
        lines = [*lines[:MAX_SHOWN], f"  and {len(lines) - MAX_SHOWN} more"]
    raise RunError(
        f"{run_dir} can only be continued with its own spec and a larger --epochs; the spec "
        f"given differs in {len(changed)} field{'s' if len(changed) > 1 else ''} besides "
        "training.epochs:\n"
        + "\n".join(lines)
        + "\nTrain a new run to change them (gencompile train SPEC)"
    )


def target_epochs(lock: dict[str, Any], epochs: int | None, given: dict[str, Any] | None) -> int:
    """The total a resume trains to: --epochs, else the given spec's, else the run's."""
    if epochs is not None:
        return int(epochs)
    source = given if given is not None else lock["resolved_spec"]
    return int(source["training"]["epochs"])


def with_epochs(lock: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The run's resolved spec trained to `epochs` in total (EM: as many iterations)."""
    spec: dict[str, Any] = copy.deepcopy(lock["resolved_spec"])
    spec["training"]["epochs"] = epochs
    if EM_ITERATIONS_FIELD in length_fields(lock):
        spec["model"]["algorithm"]["max_iter"] = max(spec["model"]["algorithm"]["max_iter"], epochs)
    return spec


def stop_reason(lock: dict[str, Any]) -> str:
    """What ends a finished run before its epochs: EM's convergence, or early stopping."""
    if EM_ITERATIONS_FIELD in length_fields(lock):
        return "EM converged (model.algorithm.tol)"
    return "training.early_stopping stopped it"


def finished_epochs(run_dir: Path, lock: dict[str, Any], record: dict[str, Any]) -> int:
    """The epochs a finished run trained, refusing one that cannot be continued exactly."""
    status = read_status(run_dir)
    if status not in (None, "finished") or not record:
        raise RunError(
            f"{run_dir} has not finished training (status: {status or 'no metrics.json'}): "
            f"finish it first with `gencompile train --resume {quoted(run_dir)}`, then continue it "
            "with --epochs N"
        )
    planned = int(lock["resolved_spec"]["training"]["epochs"])
    trained = int(record.get("epochs", 0))
    if trained < planned:
        raise RunError(
            f"{run_dir} stopped after {trained} of its {planned} epochs ({stop_reason(lock)}): "
            "a run of more epochs stops there too, so continuing it would train what no run "
            "of that length trains; train a new run with other stopping settings instead"
        )
    if not (run_dir / "checkpoints" / f"epoch-{trained:04d}.json").is_file():
        raise RunError(
            f"{run_dir} has no checkpoint of its last epoch ({trained}), so its optimizer and "
            "random state are gone and it cannot be continued exactly; train a new run with "
            "the total --epochs instead"
        )
    refuse_training_past_lock(run_dir, planned, trained)
    return trained


def refuse_training_past_lock(run_dir: Path, planned: int, trained: int) -> None:
    """A continuation resumes from the run's newest checkpoint, and records its epochs
    after the lock's: epochs beyond those were trained outside gencompile (its train.py
    run by hand), and continuing would record that model under a lock that does not say
    how it was trained."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    newest = newest_epoch(run_dir / "checkpoints")
    if trained > planned:
        raise RunError(
            f"{run_dir} cannot be continued: its lock says {epochs_phrase(planned)}, but its "
            f"metrics.json says {trained}, trained outside gencompile (its train.py run by "
            "hand); train a new run of the total epochs instead"
        )
    if newest > planned:
        raise RunError(
            f"{run_dir} cannot be continued: its lock says {epochs_phrase(planned)}, but its "
            f"checkpoints go on to epoch {newest}, trained outside gencompile (its train.py run "
            f"by hand): move the checkpoints of epochs {planned + 1}-{newest} out of "
            f"{run_dir / 'checkpoints'}, then continue it"
        )


def check_machine(lock: dict[str, Any]) -> None:
    """The epochs to come must run on what the first ones ran on (versions, data): said as
    `reproduce` says it, without --allow-drift, which a continuation does not take."""
    versions, data = version_drift(lock), data_drift(lock)
    if versions or data:
        raise RunError(f"{drift_refusal(versions, data, None)}, or train a new run")


def schedule_note(lock: dict[str, Any], before: int, after: int) -> str | None:
    """What continuing means for a learning rate sized to the run's total steps."""
    schedule = lock["resolved_spec"]["training"].get("schedule") or {}
    if schedule.get("type") != "cosine_decay":
        return None
    return (
        f"training.schedule is cosine_decay, which decays over the run's total steps: "
        f"epochs {before + 1}-{after} follow the cosine of a {after}-epoch run (the rate "
        f"jumps back up from where the {before}-epoch schedule ended), so the result "
        f"differs from an uninterrupted {after}-epoch run"
    )


def plan_continuation(
    run_dir: Path,
    lock: dict[str, Any],
    record: dict[str, Any],
    epochs: int,
) -> Continuation:
    """Check that the run can be continued to `epochs` in total; the spec and revision."""
    trained = finished_epochs(run_dir, lock, record)
    if epochs <= trained:
        raise RunError(
            f"{run_dir} already has {epochs_phrase(trained)}: --epochs is the new total, so give "
            f"more than {trained} to continue it"
        )
    check_machine(lock)
    note = schedule_note(lock, trained, epochs)
    if note:
        warnings.warn(note, stacklevel=2)
    spec = with_epochs(lock, epochs)
    source = continued_source(lock, spec, trained, epochs)
    loaded = validate_raw(RawSpec(spec, Marks(), None, source), opened=True)
    revision = {
        "revision": len(lock.get("revisions") or []) + 2,
        "epochs_before": trained,
        "epochs_after": epochs,
        "previous_lock_sha256": lock["lock_sha256"],
        "continued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return Continuation(loaded, revision)


def continued_source(lock: dict[str, Any], spec: dict[str, Any], before: int, after: int) -> str:
    """The run's spec.yaml (its lock's `spec_source`) as the continuation trains it, so that
    training that spec gives the run: a header saying it was continued, and the length
    fields (`length_fields`) set to `spec`'s values, edited in place where the source writes
    them as plain integers, the rest byte for byte; else the spec written out again (its
    comments lost). An earlier continuation's header is replaced."""
    lines = lock["spec_source"].splitlines(keepends=True)
    while lines and lines[0].startswith(CONTINUED):
        lines.pop(0)
    body = "".join(lines)
    for field in length_fields(lock):
        path = tuple(field.split("."))
        value = _value_at(spec, path)
        if value != _value_at(lock["resolved_spec"], path):  # EM's max_iter may stay
            body = _with_value(body, path, value)
    header = (
        f"{CONTINUED} (train --resume --epochs {after}): {epochs_phrase(before)} trained, "
        f"then on to {after}; the rest is the spec the run was first trained with.\n"
    )
    return header + body


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _with_value(text: str, path: tuple[str, ...], value: int) -> str:
    """`text` (a spec) with the integer at `path` set to `value`."""
    from gencompile.spec.loader import dump_yaml, parse_yaml

    data, marks = parse_yaml(text, "spec.yaml")
    written = marks.marks.get(path)
    try:
        current = _value_at(data, path)
    except (KeyError, TypeError):
        current = None
    if current == value and type(current) is int:
        return text
    if written is not None and written.line and written.column and type(current) is int:
        lines = text.splitlines(keepends=True)
        line, start = lines[written.line - 1], written.column - 1
        literal = _INTEGER.match(line, start)
        if literal is not None:
            lines[written.line - 1] = f"{line[:start]}{value}{line[literal.end() :]}"
            edited = "".join(lines)
            if _value_at(parse_yaml(edited, "spec.yaml")[0], path) == value:
                return edited
    apply_override(data, Marks(), path, value)  # where it cannot be edited in place
    return "# Written out again by gencompile; the comments of the original are not kept.\n" + (
        dump_yaml(data)
    )


def pending_folder(run_dir: Path) -> Path:
    return Path(run_dir) / PENDING


def pending_lock(run_dir: Path, allow_custom_code: bool = False) -> dict[str, Any] | None:
    """The verified lock of the continuation `run_dir` holds and has not finished (None:
    none). Its lock is written last, so a project without one is no continuation."""
    folder = pending_folder(run_dir)
    if not (folder / "spec.lock.json").is_file():
        return None
    from gencompile.generated import verified_lock

    return verified_lock(folder, allow_custom_code)


def build_pending(
    run_dir: Path, lock: dict[str, Any], continuation: Continuation, allow_custom_code: bool
) -> dict[str, Any]:
    """Build the run's project for its new length into `checkpoints/continuation/`; its
    lock gains the revision and keeps what training found (data fingerprint and statistics,
    workers) and the pins of what the run started from (a parent's weights). The run's
    own project and lock are left as they are, and status.json names them as the run's
    finished revision until the continuation finishes."""
    from gencompile.compiler.project import STARTED_FROM, build, write_lock

    folder = pending_folder(run_dir)
    if folder.exists():  # a build stopped before its lock: nothing in it was used yet
        shutil.rmtree(folder)
    write_status(
        run_dir,
        "finished",
        finished_revision={
            "epochs": continuation.revision["epochs_before"],
            "lock_sha256": lock["lock_sha256"],
        },
        continuation={"epochs": continuation.revision["epochs_after"]},
        discarded_continuation=None,  # an earlier one's: history now
    )
    built = build(continuation.loaded, folder, allow_custom_code=allow_custom_code)
    keep_checkpoint(run_dir, continuation.revision["epochs_before"])
    revisions = [*(lock.get("revisions") or []), continuation.revision]
    # The run started from its parent's (and application) weights as the lock pins them;
    # more epochs do not train from them again, so the build's pins of them as they are
    # now (changed, or not found from this folder) would be false.
    pins = {key: lock[key] for key in STARTED_FROM if key in lock}
    return write_lock(
        folder, {**built.lock, **training_record(lock), **pins, "revisions": revisions}
    )


def promote(run_dir: Path, pending: dict[str, Any]) -> dict[str, Any]:
    """The continuation finished: its final files (`final/`, metrics.json first), project
    and lock (`pending`, with what training found) replace the run's own, the lock last;
    the pending folder goes. Cut short, it is finished by `gencompile train --resume RUN`
    (the pending lock is still there: no epoch is left to train, the final files are
    written again and promoted)."""
    from gencompile.compiler.project import write_lock
    from gencompile.files import atomic_write_files
    from gencompile.generated import forget_generated

    folder = pending_folder(run_dir)
    move_final_files(folder / FINAL, run_dir)
    atomic_write_files({run_dir / path: (folder / path).read_bytes() for path in pending["files"]})
    sealed = write_lock(run_dir, pending)
    forget_generated(python_name(pending["name"]), folder)  # imported from there
    shutil.rmtree(folder)
    write_status(run_dir, "running", finished_revision=None, continuation=None)
    return sealed


def move_final_files(final: Path, run_dir: Path) -> None:
    """Move a finished continuation's final files from `final` into `run_dir`, each
    replacing the run's own: metrics.json first, so that from then on the run no longer
    reads as its finished revision (`generated.kept_finished`); a folder (saved_model/,
    latent/) is put in place by renames and the one it replaces removed after."""
    import os

    _remove_replaced(run_dir)  # left by a promote killed half-way
    if final.is_dir():
        entries = sorted(final.iterdir(), key=lambda p: (p.name != "metrics.json", p.name))
        for entry in entries:
            if entry.name.startswith("."):  # a write cut short
                continue
            target = run_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                os.replace(target, target.with_name(f"{REPLACED}{os.getpid()}-{target.name}"))
            os.replace(entry, target)
    _remove_replaced(run_dir)


def _remove_replaced(run_dir: Path) -> None:
    for aside in run_dir.glob(f"{REPLACED}*"):
        shutil.rmtree(aside, ignore_errors=True)


def unfinished_continuation(run_dir: Path, pending: dict[str, Any], epochs: int) -> RunError:
    """A continuation to other epochs than the pending one's, refused."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    kept = read_json(run_dir / STATUS_NAME).get("finished_revision") or {}
    planned = int(pending["resolved_spec"]["training"]["epochs"])
    return RunError(
        f"{run_dir} has a continuation to {planned} epochs that has not finished (its newest "
        f"checkpoint is of epoch {newest_epoch(run_dir / 'checkpoints')}): finish it with "
        f"`gencompile train --resume {quoted(run_dir)}`, then continue it to {epochs} epochs, or "
        f"give it up with `gencompile train --resume {quoted(run_dir)} --discard-continuation`; "
        f"meanwhile the run keeps its finished training of {epochs_phrase(kept.get('epochs', '?'))}"
    )


def keep_checkpoint(run_dir: Path, epoch: int) -> None:
    """Keep the checkpoint of the finished `epoch` beside the pending project: the
    continuation prunes it from `checkpoints/` as it trains on, and a discarded one puts it
    back. Hard links (a checkpoint file is replaced, never changed in place), else copies."""
    from gencompile.runtime.checkpoint_files import paths  # no TensorFlow

    kept = pending_folder(run_dir) / KEPT_CHECKPOINT
    kept.mkdir(parents=True, exist_ok=True)
    checkpoint = paths(Path(run_dir) / "checkpoints", epoch)
    # The best weights early stopping would restore too, before the manifest naming them.
    files = [*_stopping_weights(checkpoint), checkpoint.weights, checkpoint.rng]
    for path in (*files, checkpoint.manifest):  # manifest last
        try:
            (kept / path.name).hardlink_to(path)
        except OSError:
            shutil.copy2(path, kept / path.name)


def _stopping_weights(checkpoint: Any) -> list[Path]:
    """The best-weights file of early stopping a checkpoint names, if it is there."""
    from gencompile.runtime.checkpoint_files import stopping_weights_file

    named = stopping_weights_file(checkpoint)
    return [named[0]] if named is not None and named[0].is_file() else []


@dataclass(frozen=True)
class Discarded:
    """What `discard` gave up: a continuation to `target` epochs (None: not recorded) that
    reached `reached`, leaving the run its finished training of `epochs`. `continuable`:
    the checkpoint of that last epoch is there, so `--resume RUN --epochs M` works."""

    run_dir: Path
    epochs: int
    target: int | None
    reached: int
    continuable: bool


def discard(run_dir: Path | str) -> Discarded:
    """Give up a continuation that was interrupted or failed: the run becomes again the
    finished run of its finished revision, as if the continuation had never started.

    Removed: the pending project and lock, the final files the continuation wrote beside
    them (`final/`), the checkpoints, history.csv rows, progress pictures and TensorBoard
    events of the epochs after the finished ones (and the temporary files of writes cut
    short). The run's own project, lock and final files (weights, exports, samples,
    metrics, prior_history.csv, report) were never touched by the continuation and are not
    now. Each step can be repeated: a discard cut short is finished by running it again
    (the epoch the continuation reached is recorded in status.json first; the pending lock
    goes only after the epochs' files, then its folder with the kept checkpoint, which is
    back in place by then, and status.json's `finished_revision` last)."""
    from gencompile.generated import forget_generated, kept_finished
    from gencompile.run_status import not_training
    from gencompile.runtime import history_file  # no TensorFlow
    from gencompile.runtime.checkpoint_files import newest_epoch

    run_dir = Path(run_dir)
    then = f"discard it with `gencompile train --resume {quoted(run_dir)} --discard-continuation`"
    with not_training(run_dir, then):
        status = read_status(run_dir)
        record = read_json(run_dir / STATUS_NAME)
        folder = pending_folder(run_dir)
        pending = (folder / "spec.lock.json").is_file()
        if not pending and not isinstance(record.get("finished_revision"), dict):
            raise RunError(_nothing_to_discard(run_dir, status))
        kept = kept_finished(run_dir)
        if kept is None:
            raise RunError(
                f"{run_dir}'s continuation has already replaced the run's own lock or "
                "metrics.json, so there is no finished training to go back to: finish it "
                f"with `gencompile train --resume {quoted(run_dir)}`"
            )
        epochs = int(kept["epochs"])
        target = kept["continuation"].get("epochs")
        checkpoints = run_dir / "checkpoints"
        # The epochs it trained: checkpointed, or only in history.csv (a checkpoint is
        # written at most every checkpoint.every_seconds), or recorded by a discard cut short.
        earlier = record.get("discarded_continuation")
        reached = max(
            newest_epoch(checkpoints),
            max(history_file.read_epochs(run_dir / "history.csv"), default=0),
            earlier.get("reached", 0) if isinstance(earlier, dict) else 0,
            epochs,
        )
        discarded = {
            "epochs": target,
            "reached": reached,
            "discarded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        # Before anything goes, so that a discard cut short and run again still knows it.
        write_status(run_dir, record.get("status") or "failed", discarded_continuation=discarded)
        continuable = _restore_checkpoint(checkpoints, folder / KEPT_CHECKPOINT, epochs)
        _remove_epochs_after(run_dir, epochs)
        (folder / "spec.lock.json").unlink(missing_ok=True)  # no continuation from here on
        if folder.exists():
            name = read_json(run_dir / "spec.lock.json").get("name")
            if isinstance(name, str):  # imported from there by this process: forget it
                forget_generated(python_name(name), folder)
            shutil.rmtree(folder)
        write_status(
            run_dir,
            "finished",
            error=None,
            pid=None,  # the process that trained the continuation: gone
            host=None,
            finished_revision=None,
            continuation=None,
            discarded_continuation=discarded,
        )
    return Discarded(run_dir, epochs, target, reached, continuable)


def _nothing_to_discard(run_dir: Path, status: str | None) -> str:
    if status in ("interrupted", "failed"):
        return (
            f"{run_dir} has no continuation to discard: it is its own first training, "
            f"{status} before it finished; finish it with "
            f"`gencompile train --resume {quoted(run_dir)}`"
        )
    return (
        f"{run_dir} has no continuation to discard (status: {status or 'no status.json'}); "
        f"continue it with `gencompile train --resume {quoted(run_dir)} --epochs N`"
    )


def _restore_checkpoint(checkpoints: Path, kept: Path, epoch: int) -> bool:
    """Put the finished `epoch`'s checkpoint back into `checkpoints` from the copy kept
    beside the pending project, unless a whole one is there; whether one is there now."""
    from gencompile.files import atomic_write_bytes
    from gencompile.runtime.checkpoint_files import paths, verify

    there, copy_ = paths(checkpoints, epoch), paths(kept, epoch)
    if there.manifest.is_file() and verify(there) is None:
        return True
    if not copy_.manifest.is_file() or verify(copy_) is not None:
        return False
    for best in _stopping_weights(copy_):
        atomic_write_bytes(checkpoints / best.name, best.read_bytes())
    for name in ("weights", "rng", "manifest"):  # the manifest, the commit point, last
        atomic_write_bytes(getattr(there, name), getattr(copy_, name).read_bytes())
    return True


def _remove_epochs_after(run_dir: Path, epochs: int) -> None:
    """The files a continuation wrote for its epochs after `epochs`: checkpoints (each
    manifest first, which uncommits it), history.csv rows, progress pictures, TensorBoard
    events (rewritten without them)."""
    import re

    from gencompile.runtime.checkpoint_files import listed

    checkpoints = run_dir / "checkpoints"
    for checkpoint in listed(checkpoints):
        if checkpoint.epoch > epochs:
            for path in (checkpoint.manifest, checkpoint.weights, checkpoint.rng):
                path.unlink(missing_ok=True)
    # Also the temporary files of writes cut short (`files.temporary_of`), by the name
    # they were written for.
    numbered = re.compile(r"^(?:samples-)?epoch-(\d{4,})\.")
    for folder in (checkpoints, run_dir / "progress"):
        for path in sorted(folder.glob("*epoch-*")) if folder.is_dir() else []:
            written = temporary_of(path.name)
            match = numbered.match(written[0] if written else path.name)
            if match and int(match.group(1)) > epochs and path.is_file():
                path.unlink()  # a write cut short, or a progress picture
    trim_history(run_dir / "history.csv", epochs)
    board = run_dir / "tensorboard"
    if board.is_dir() and any(board.glob("*/events.out.tfevents.*")):
        from gencompile.runtime.tensorboard import drop_steps_after  # TensorFlow: only here

        drop_steps_after(board, epochs)


def trim_history(path: Path, epochs: int) -> None:
    """history.csv without its rows after `epochs`, written as training writes it. Untouched
    if none goes."""
    from gencompile.runtime import history_file  # no TensorFlow

    rows = history_file.read_epochs(path)
    kept = {epoch: row for epoch, row in rows.items() if epoch <= epochs}
    if len(kept) < len(rows):
        history_file.write(path, kept)
