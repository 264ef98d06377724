"""What `model.init_from` names, checked from files alone (no TensorFlow): the parent run's
folder, its model.weights.h5, its status and family, or a weights file. `gencompile
validate` (through the spec's checks) and the runtime's `init_from` both ask here, so a
problem reads the same before training and inside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencompile.errors import RunError

WEIGHTS = "model.weights.h5"
LOCK = "spec.lock.json"


def parent_family(run: Path) -> str | None:
    """The family of a run's locked spec (None: no readable lock)."""
    try:
        family = json.loads((run / LOCK).read_text())["resolved_spec"]["model"]["family"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return family if isinstance(family, str) else None


def _status(run: Path) -> str | None:
    """status.json's state (gencompile.run_status writes it), None when unreadable."""
    try:
        status = json.loads((run / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return status if isinstance(status, str) else None


def run_problem(value: str, family: str) -> tuple[str, str] | None:
    """Why `init_from.run: value` cannot start a `family` model (message, what to do), or
    None when its folder holds a finished run's weights of that family."""
    run = Path(value).expanduser()
    if not run.is_dir():
        what = "is a file, not a run folder" if run.exists() else "does not exist"
        return (
            f"{value} {what}{_resolved(run)}",
            "name a run folder of `gencompile train` (runs/<name>/<id>)",
        )
    if not (run / WEIGHTS).is_file():
        status = _status(run)
        why = (
            f"its training is {status}"
            if status in ("running", "failed", "interrupted")
            else "not a finished run of `gencompile train`"
        )
        return f"{value} has no {WEIGHTS} ({why})", "name a run folder that finished training"
    found = parent_family(run)
    if found is not None and found != family:
        return (
            f"{value} is a {found} run, and this model is a {family}",
            f"weights carry over only within a family (start from a {family} run)",
        )
    return None


def weights_problem(value: str) -> tuple[str, str] | None:
    """Why `init_from.weights: value` cannot be read (message, what to do), or None."""
    path = Path(value).expanduser()
    if not path.is_file():
        return (
            f"{value} does not exist{_resolved(path)}",
            "name a weights file (.weights.h5 or .keras)",
        )
    return None


def _resolved(path: Path) -> str:
    """' (as ABSOLUTE: ...)' for a relative path: it is read from the current directory,
    which is not where the spec was built when a generated project runs from its root."""
    if path.is_absolute():
        return ""
    return f" (as {path.absolute()}: a relative path is read from the current directory)"


class InitFromError(RunError):
    """A parent whose weights do not fit the model, found while training starts. Each of
    `lines` follows `where`, the location of model.init_from: the training process knows
    only the run's copy of the spec, so `gencompile train` restates it with `located` where
    the user wrote it (`init_from_location`)."""

    def __init__(self, where: str, lines: list[str], advice: str | None = None) -> None:
        self.where, self.lines, self.advice = where, lines, advice
        text = [f"{where}: {line}" for line in lines] + ([f"({advice})"] if advice else [])
        super().__init__("\n".join(text))

    def located(self, where: str, removed: Path | None = None) -> InitFromError:
        """The error restated at `where`; `removed`: the run folder given up with it."""
        if removed is None:
            return InitFromError(where, self.lines, self.advice)
        gone = f"nothing was trained: the run folder {removed} it had built was removed"
        return InitFromError(where, self.lines, "; ".join(filter(None, (self.advice, gone))))


def init_from_location(marks: Any, init_from: Any) -> str:
    """Where the user named the parent: `--set model.init_from.run=VALUE` when an override
    gave it, else `file:line:column` of model.init_from in the spec (or a base) file.
    `marks`: the loaded spec's (spec.loader.Marks); `init_from`: its model.init_from."""
    key = "run" if getattr(init_from, "run", None) is not None else "weights"
    if marks.locate(("model", "init_from", key)).file == "--set":
        return f"--set model.init_from.{key}={getattr(init_from, key)}"
    mark = marks.locate(("model", "init_from"), at_key=True)
    return ":".join(str(part) for part in (mark.file, mark.line, mark.column) if part is not None)
