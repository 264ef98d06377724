"""Provenance of a fine-tuned run: which parent it started from, pinned by hashes.

`model.init_from` names a run or a weights file. The lock of a run built from such a spec
records the parent (`parent`: its path, the sha256 of its weights file and, for a run, of
its lock), so that `reproduce` can tell when the parent has changed or gone, `compare`
shows where each run started from, and the report lists what was taken and left fresh
(the runtime's init_from.json). The weights files of `keras_application` layers are pinned
the same way (`pretrained`). Imports no TensorFlow: the lock is written at build time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencompile.data_paths import WORKING_DIRECTORY, read_where_trained
from gencompile.files import sha256_file

WEIGHTS = "model.weights.h5"
LOCK = "spec.lock.json"
INIT_REPORT = "init_from.json"  # what the runtime took from the parent and left fresh
RELATIVE = "; paths are relative to the working directory"


def parent_hashes(init_from: dict[str, Any], trained: str | None = None) -> dict[str, str | None]:
    """The sha256 of the parent's weights file and, for a run, of its lock (None when the
    file is missing), read where the run reads them (`read_where_trained`: a relative
    path in the folder the run was trained in, `trained`, first)."""
    if "run" in init_from:
        run = _read(init_from["run"], trained)
        return {"weights_sha256": _hash(run / WEIGHTS), "lock_sha256": _hash(run / LOCK)}
    return {"weights_sha256": _hash(_read(init_from["weights"], trained))}


def parent_link(init_from: dict[str, Any] | None) -> dict[str, Any] | None:
    """The lock's `parent` entry of a plan's init_from (None without one)."""
    if init_from is None:
        return None
    source: dict[str, Any] = {k: init_from[k] for k in ("run", "weights") if k in init_from}
    return {**source, **parent_hashes(init_from)}


def _read(value: str, trained: str | None = None) -> Path:
    return Path(read_where_trained(str(value), trained)).expanduser()


def _hash(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _relative(where: str, lock: dict[str, Any]) -> str:
    """How a relative path of the lock is read, for a message saying it is gone ("" for an
    absolute one)."""
    if Path(where).expanduser().is_absolute():
        return ""
    trained = lock.get(WORKING_DIRECTORY)
    if not trained:  # an older lock: read from the current folder alone
        return RELATIVE
    return (
        f"; a relative path is read in {trained}, the folder the run was trained in, "
        f"else in {Path.cwd()}, the current folder"
    )


def parent_gone(lock: dict[str, Any]) -> str | None:
    """The parent of a fine-tuned run when its weights are gone from where the run reads
    them (a relative path: in the folder it was trained in, else in the current folder),
    with what to do; None if they are there (or no parent). A re-run needs them: no
    option can start it without them."""
    parent = lock.get("parent")
    trained = lock.get(WORKING_DIRECTORY)
    if not parent or parent_hashes(parent, trained)["weights_sha256"] is not None:
        return None
    pinned = f"sha256 {str(parent.get('weights_sha256'))[:12]} in the lock"
    where = parent.get("run") or parent.get("weights")
    relative = _relative(where, lock)
    if "run" in parent:
        what = f"whose {WEIGHTS} is gone" if _read(where, trained).is_dir() else "which is gone"
        return (
            f"it was fine-tuned from the run {where} (model.init_from.run), {what}: "
            f"restore that run there (its weights' {pinned}{relative}), then reproduce again"
        )
    return (
        f"it was fine-tuned from the weights file {where} (model.init_from.weights), which "
        f"is gone: put it back there ({pinned}{relative}), then reproduce again"
    )


def parent_problem(lock: dict[str, Any]) -> str | None:
    """Why a fine-tuned run cannot be reproduced as it was: its parent is gone
    (`parent_gone`) or its weights changed since the lock was written. None when it is the
    same (or no parent)."""
    gone = parent_gone(lock)
    if gone:
        return gone
    parent = lock.get("parent")
    if not parent:
        return None
    where = parent.get("run") or parent.get("weights")
    if parent.get("weights_sha256") is None:  # a lock an earlier continuation pinned as null
        return (
            f"the run started from {where}, whose weights' sha256 its lock does not record, "
            "so a change cannot be detected"
        )
    now = parent_hashes(parent, lock.get(WORKING_DIRECTORY))["weights_sha256"]
    if now != parent["weights_sha256"]:
        return (
            f"the run started from {where}, whose weights have changed since "
            f"(sha256 {parent['weights_sha256'][:12]} then, {str(now)[:12]} now)"
        )
    return None


def pretrained_link(files: dict[str, dict[str, str]]) -> dict[str, dict[str, str | None]] | None:
    """The lock's `pretrained` entry: the weights file of each keras_application layer
    (`network.layer`) and its sha256 (None without such a file)."""
    pinned = {
        f"{network}.{layer}": {"weights": path, "sha256": _hash(_read(path))}
        for network, layers in files.items()
        for layer, path in layers.items()
    }
    return pinned or None


def pretrained_gone(lock: dict[str, Any]) -> str | None:
    """The first keras_application weights file of the lock that is gone from where the run
    reads it (a relative path: in the folder it was trained in, else in the current
    folder), with what to do; None if all are there. A re-run cannot start from it, even
    as it is now."""
    for layer, pinned in (lock.get("pretrained") or {}).items():
        if _hash(_read(pinned["weights"], lock.get(WORKING_DIRECTORY))) is None:
            relative = _relative(pinned["weights"], lock) or RELATIVE
            return (
                f"{layer} started from {pinned['weights']}, which is gone (sha256 "
                f"{str(pinned['sha256'])[:12]} in the lock); put it back "
                f"({relative.removeprefix('; ')})"
            )
    return None


def pretrained_problem(lock: dict[str, Any]) -> str | None:
    """Why a run on pretrained application weights cannot be reproduced as it was: a weights
    file is gone (`pretrained_gone`) or changed since the lock was written. None when all
    are the same."""
    gone = pretrained_gone(lock)
    if gone:
        return gone
    for layer, pinned in (lock.get("pretrained") or {}).items():
        now = _hash(_read(pinned["weights"], lock.get(WORKING_DIRECTORY)))
        if now is not None and now != pinned["sha256"]:
            return (
                f"{layer} started from {pinned['weights']}, which has changed since "
                f"(sha256 {str(pinned['sha256'])[:12]} then, {now[:12]} now)"
            )
    return None


def parent_label(lock: dict[str, Any]) -> str:
    """The parent of a run in brief (`compare`): its path and short weights hash, or ""."""
    parent = lock.get("parent")
    if not parent:
        return ""
    digest = parent.get("weights_sha256") or "missing"
    return f"{parent.get('run') or parent.get('weights')} ({digest[:12]})"


def report_lines(run_dir: Path, lock: dict[str, Any]) -> list[str]:
    """The report's lines on the parent: where the run started, what it left fresh and
    what of the parent it left behind (strict: false)."""
    if not lock.get("parent"):
        return []
    lines = [f"started from {parent_label(lock)}"]
    try:
        taken = json.loads((run_dir / INIT_REPORT).read_text())
    except (OSError, ValueError):
        return lines
    fresh = taken.get("fresh", [])
    lines.append(f"layers taken from it: {len(taken.get('taken', []))}")
    lines += [f"started fresh: {entry['layer']}: {entry['why']}" for entry in fresh]
    behind = taken.get("left_behind", [])
    lines += [f"left behind in the parent: {entry['layer']}: {entry['why']}" for entry in behind]
    return lines
