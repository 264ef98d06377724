"""Provenance of a fine-tuned run: which parent it started from, pinned by hashes.

`model.init_from` names a run or a weights file; its lock records the sha256 of the
parent's weights file and, for a run, of the parent's lock, so that `reproduce` can tell
when the parent has changed or gone. Imports no TensorFlow: the lock is written at build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gencompile.files import sha256_file

WEIGHTS = "model.weights.h5"
LOCK = "spec.lock.json"


def parent_hashes(init_from: dict[str, Any]) -> dict[str, str | None]:
    """The sha256 of the parent's weights file and, for a run, of its lock (None when the
    file is missing: the lock says so rather than failing the build)."""
    if "run" in init_from:
        run = Path(init_from["run"]).expanduser()
        return {"weights_sha256": _hash(run / WEIGHTS), "lock_sha256": _hash(run / LOCK)}
    return {"weights_sha256": _hash(Path(init_from["weights"]).expanduser())}


def _hash(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None
