"""Errors gencompile reports to users.

A bad spec is a `SpecError` holding every `Problem` found, each located at
`file:line:col` with the dotted field path; the CLI prints one line per problem and
exits with code 2. A failed run is a `RunError` (exit 1); a refused command line (a bad
option value, a missing or conflicting option, an output format the command does not
write) is a `UsageRefusal` (exit 2).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located as precisely as the YAML allows."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    # The spec that was given, when the problem lies in a base it reaches through `extends:`
    # (the location alone would name only the base, shared by every spec extending it).
    through: str | None = None

    def location(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        text = f"{self.location()}: {self.path or '<root>'}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        if self.through:
            text += f" (in {self.through}, through extends:)"
        return text


class GencompileError(Exception):
    """Base class of every error gencompile reports without a traceback."""

    exit_code = 1
    prefix = "error: "  # how the command line introduces the message


class SpecError(GencompileError):
    """A spec that cannot be loaded, validated or compiled. Holds every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.column or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


class RunError(GencompileError):
    """A run that failed: missing data, NaN loss, corrupt run directory, ..."""

    exit_code = 1


class UsageRefusal(RunError):
    """A refused command line: an option value out of range, a missing or conflicting
    option, one the run's family does not take, an output format the command does not
    write. Exit code 2, as a bad spec; a `RunError` still, so the library's callers (the
    server answers 422) refuse it as any input they are given."""

    exit_code = 2


def quoted(path: object) -> str:
    """A path as a command in a message spells it, quoted for the shell when it needs it (a
    folder with a space), so that the command pasted runs as written."""
    return shlex.quote(str(path))
