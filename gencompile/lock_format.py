"""The lock's format: its version, its checksum field and how its hashes are computed.

Shared by the compiler (which writes locks) and `lockfile` (which reads and checks them), so
reading a run's lock needs neither the compiler nor jinja2.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from importlib import metadata
from typing import Any

from gencompile._version import __version__
from gencompile.errors import RunError

# 2: `lock_sha256` covers every field (version 1 hashed the resolved spec alone).
LOCK_VERSION = 2
LOCK_CHECKSUM = "lock_sha256"
PINNED = ("tensorflow", "keras", "numpy")  # versions a lock records and a build pins


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


# The absolute folder a run was trained from: its spec's relative data paths were read
# against it, so every later command reads them there first (the run folder can be used
# from anywhere). Older locks have none: their paths are read against the current folder.
WORKING_DIRECTORY = "working_directory"
# The data.source fields that name files or folders (`files`: a glob of tfrecord shards).
DATA_FILE_FIELDS = ("path", "dir", "files")

# The working directory of the run whose lock is being lowered or loaded (`trained_in`).
_TRAINED_IN: ContextVar[str | None] = ContextVar("trained_in", default=None)


@contextmanager
def trained_in(lock: Mapping[str, Any] | None) -> Iterator[None]:
    """Within it, relative data paths resolve against the folder `lock`'s run was trained in."""
    token = _TRAINED_IN.set(None if lock is None else lock.get(WORKING_DIRECTORY))
    try:
        yield
    finally:
        _TRAINED_IN.reset(token)


def _present(path: str, field: str) -> bool:
    if field == "files":  # a pattern: present when it matches something
        return bool(glob.glob(path, recursive=True))
    return os.path.exists(path)


def data_file(value: str, field: str, trained: str | None = None) -> str:
    """Where data.source.`field` = `value` is read: absolute as given; relative, in the
    folder the run was trained in (`trained`, else `trained_in`'s) if it is there, else in
    the current folder (the run moved to another machine). A fresh spec (no such folder)
    reads it in the current folder, as given; so do older locks."""
    base = trained if trained is not None else _TRAINED_IN.get()
    given = os.path.expanduser(value)
    if base is None or os.path.isabs(given):
        return value
    recorded = os.path.join(base, given)
    if _present(recorded, field):
        return recorded
    if _present(given, field):
        return os.path.abspath(given)
    here = os.getcwd()
    raise RunError(
        f"data.source.{field} {value} is neither in {base} (the folder the run was trained "
        f"in) nor in {here} (the current folder); put it back in {base}, or run the command "
        "from a folder that holds it"
    )


def locate_data(config: dict[str, Any], trained: str) -> None:
    """Point the DATA of a run's generated code at the files the run read: each found is
    made absolute (its readers, the header of a CSV too, find it from any folder); one
    found nowhere is left for `runtime.data.located` to refuse, naming both folders, when
    the data is loaded (sampling often needs none)."""
    config[WORKING_DIRECTORY] = trained
    source = config.get("source")
    if not isinstance(source, dict):
        return
    for key in DATA_FILE_FIELDS:
        value = source.get(key)
        if isinstance(value, str):
            with suppress(RunError):
                source[key] = data_file(value, key, trained)
