"""The lock's format: its version, its checksum field and how its hashes are computed.

Shared by the compiler (which writes locks) and `lockfile` (which reads and checks them), so
reading a run's lock needs neither the compiler nor jinja2.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

from gencompile._version import __version__

# 2: `lock_sha256` covers every field (version 1 hashed the resolved spec alone).
LOCK_VERSION = 2
LOCK_CHECKSUM = "lock_sha256"
# Versions a lock records and a build pins: each decides trained weights or numbers (SciPy:
# a flow's LU init, FID's square root; scikit-learn: k-means starts, built-in data, metrics).
# Locks written before SciPy and scikit-learn were recorded lack them: not compared.
PINNED = ("tensorflow", "keras", "numpy", "scipy", "scikit-learn")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def lock_checksum(lock: dict[str, Any]) -> str:
    """sha256 of every field of a lock except the checksum itself."""
    return sha256_text(canonical_json({k: v for k, v in lock.items() if k != LOCK_CHECKSUM}))


def installed_versions() -> dict[str, str | None]:
    """Versions from package metadata, so no TensorFlow import is needed."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "gencompile": __version__,
    }
    for name in PINNED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# What training (and continuing it) records in a lock after the build wrote it: the data it
# ran on, the fitted preprocessing, its worker count and its continuations. A rebuild that
# keeps a project's trained outputs keeps these with them (`compiler.project.build`).
TRAINING_RECORD = (
    "data_fingerprint",
    "data_statistics",
    "workers",
    "revisions",
    "working_directory",
)


def training_record(lock: dict[str, Any]) -> dict[str, Any]:
    """The fields of `lock` that training recorded (those it has: None ones left out)."""
    return {key: lock[key] for key in TRAINING_RECORD if lock.get(key) is not None}
