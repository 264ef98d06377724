"""history.csv: one row an epoch, `epoch` (1-based) then the sorted log keys, a cell left
empty where an epoch has no value (not validated). Read and written here, without
TensorFlow: by training's `HistoryCSV` callback, and by the commands that read a run or
trim it (a discarded continuation's epochs)."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gencompile.files import atomic_write_text

__all__ = ["names", "read_epochs", "read_numbers", "read_rows", "write"]


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a history.csv; a last line without its newline (a write cut short) is
    not a row."""
    if not Path(path).is_file():
        return []
    text = Path(path).read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_epochs(path: Path) -> dict[int, dict[str, str]]:
    """Epoch -> its non-empty cells; rows without an integer epoch are left out (with a
    warning naming the file and line)."""
    return {
        epoch: {key: value for key, value in row.items() if value not in ("", None)}
        for _, epoch, row in _numbered_rows(path)
    }


def _numbered_rows(path: Path) -> Iterator[tuple[int, int, dict[str, str]]]:
    """(line, epoch, the other cells) of each row with an integer epoch; a row without one
    is left out, with a warning."""
    for line, row in enumerate(read_rows(path), start=2):  # line 1: the header
        try:
            epoch = int(row.pop("epoch"))
        except (KeyError, TypeError, ValueError):
            _damaged(path, line, "has no epoch number; the row is left out")
            continue
        yield line, epoch, row


def read_numbers(path: Path) -> dict[int, dict[str, float]]:
    """Epoch -> its cells as numbers. A damaged or hand-edited file costs only what is
    damaged, each with a warning naming the file and line: a row without an integer epoch
    is left out, and a cell that is not a number reads as missing."""
    numbers: dict[int, dict[str, float]] = {}
    for line, epoch, row in _numbered_rows(path):
        numbers[epoch] = {}
        for key, cell in row.items():
            if cell in ("", None) or key is None:  # not validated, or a short row
                continue
            try:
                numbers[epoch][key] = float(cell)
            except (TypeError, ValueError):
                _damaged(path, line, f"{key} {cell!r} is not a number; read as missing")
    return numbers


def _damaged(path: Path, line: int, what: str) -> None:
    # Located here, so that a second reader of the same file (the report) repeats nothing.
    warnings.warn(
        f"{path} line {line} {what} (a damaged or edited history: correct or delete the line "
        "to silence this)",
        stacklevel=1,
    )


def names(path: Path) -> list[str]:
    """The logged names (the header after `epoch`); [] without a file."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [name for name in next(csv.reader(handle), []) if name != "epoch"]


def write(path: Path, rows: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Write `rows` (epoch -> cells) in one atomic replace; the columns after `epoch`."""
    keys = sorted({key for row in rows.values() for key in row})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in sorted(rows):
        writer.writerow([epoch, *(rows[epoch].get(key, "") for key in keys)])
    atomic_write_text(path, buffer.getvalue())
    return keys
