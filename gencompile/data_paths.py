"""Where a run's data files are read: a spec's relative data paths were read against the
folder the run was trained from, which its lock records (`working_directory`), so every
later command (and the run's generated code) reads them there first; the run folder can
then be used from anywhere. Without TensorFlow, and vendored by `eject` with the runtime."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gencompile.errors import RunError

__all__ = [
    "DATA_FILE_FIELDS",
    "WORKING_DIRECTORY",
    "data_file",
    "in_trained_folder",
    "locate_data",
    "read_where_trained",
    "read_where_trained_in",
    "trained_folder",
    "trained_in",
]

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


def in_trained_folder(value: str, field: str, trained: str | None = None) -> str | None:
    """Relative `value` joined to the folder the run was trained in (`trained`, else
    `trained_in`'s) if it is there; None for an absolute path, a run with no such folder
    recorded, or a path not there. `field`: how presence is told (`DATA_FILE_FIELDS`)."""
    base = trained if trained is not None else _TRAINED_IN.get()
    given = os.path.expanduser(value)
    if base is None or os.path.isabs(given):
        return None
    recorded = os.path.join(base, given)
    return recorded if _present(recorded, field) else None


def read_where_trained(value: str, trained: str | None = None) -> str:
    """Where a weights path a run read (`model.init_from`'s run or file, a keras_application
    file) is read now: relative, in the folder the run was trained in (`trained`, else
    `trained_in`'s) if it is there, else as given (from the current folder), whose absence
    the reader says. Its data is read the same way (`data_file`), which refuses one in
    neither folder itself."""
    return in_trained_folder(value, "path", trained) or value


def data_file(value: str, field: str, trained: str | None = None) -> str:
    """Where data.source.`field` = `value` is read: absolute as given; relative, in the
    folder the run was trained in (`trained`, else `trained_in`'s) if it is there, else in
    the current folder (the run moved to another machine). A fresh spec (no such folder)
    reads it in the current folder, as given; so do older locks."""
    base = trained if trained is not None else _TRAINED_IN.get()
    given = os.path.expanduser(value)
    if base is None or os.path.isabs(given):
        return value
    recorded = in_trained_folder(value, field, base)
    if recorded is not None:
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


def trained_folder(project: Path | str) -> str | None:
    """The folder the run in `project` was trained in, as its spec.lock.json records it;
    None for a project not trained yet, an older lock, or none that reads."""
    try:
        lock = json.loads((Path(project) / "spec.lock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    trained = lock.get(WORKING_DIRECTORY) if isinstance(lock, dict) else None
    return trained if isinstance(trained, str) and os.path.isabs(trained) else None


def read_where_trained_in(
    trained: str | None,
    data: dict[str, Any],
    init_from: dict[str, Any] | None = None,
    application_weights: dict[str, dict[str, str]] | None = None,
) -> None:
    """Point a run's generated config at the files the run read, in `trained`, the folder
    it was trained in, first: its DATA (`locate_data`), the parent of INIT_FROM and each
    file of APPLICATION_WEIGHTS (`read_where_trained`): the files `reproduce` and
    `build --locked` check, from whichever folder the run's code is started. Nothing
    changes without such a folder (a fresh build reads the paths as the spec gives them)."""
    if trained is None:
        return
    locate_data(data, trained)
    for key in ("run", "weights"):
        if init_from is not None and isinstance(init_from.get(key), str):
            init_from[key] = read_where_trained(init_from[key], trained)
    for layers in (application_weights or {}).values():
        for layer, path in layers.items():
            layers[layer] = read_where_trained(path, trained)
