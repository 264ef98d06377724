"""history.csv: one row an epoch, `epoch` (1-based) then the sorted log keys, a cell left
empty where an epoch has no value (not validated). Read and written here, without
TensorFlow: by training's `HistoryCSV` callback, and by the commands that read a run or
trim it (a discarded continuation's epochs)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gencompile.files import atomic_write_text

__all__ = ["column", "names", "read_epochs", "read_rows", "write"]


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
    """Epoch -> its non-empty cells; rows without an integer epoch are left out."""
    rows = {}
    for row in read_rows(path):
        try:
            epoch = int(row.pop("epoch"))
        except (KeyError, TypeError, ValueError):
            continue
        rows[epoch] = {key: value for key, value in row.items() if value not in ("", None)}
    return rows


def names(path: Path) -> list[str]:
    """The logged names (the header after `epoch`); [] without a file."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [name for name in next(csv.reader(handle), []) if name != "epoch"]


def column(path: Path, name: str) -> list[float]:
    """The finite values of column `name`, epoch by epoch (epochs without one left out)."""
    cells = [row.get(name) or "" for row in read_rows(path)]
    values = [float(cell) for cell in cells if cell]
    return [value for value in values if math.isfinite(value)]


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
