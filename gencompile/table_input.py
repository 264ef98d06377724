"""Rows of a table a user passes to a run (`impute --input`, `score --input`): read with
the data size limit, cells parsed with their line and column in every message, columns
checked against the training features."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gencompile.datafiles import IMAGE_SUFFIXES, read_csv_text
from gencompile.errors import RunError
from gencompile.generated import trained_fingerprint
from gencompile.runtime.csv_lines import data_row_line, records

# Files of arrays, tables and pictures other commands read or write (`score --input`,
# `sample -o`): never CSV text, whatever their bytes.
NOT_CSV = (".npy", ".npz", ".parquet", *IMAGE_SUFFIXES)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an input CSV: a regular file, read with the data size limit; blank
    lines are skipped, as the training readers skip them."""
    if path.suffix.lower() in NOT_CSV:  # before its bytes fail as text
        raise RunError(
            f"--input {path}: a {path.suffix} file is not a CSV table; give the rows as a CSV "
            "file (a header row naming the features; for impute, empty cells to fill)"
        )
    # The training CSV reader's: a byte that is not UTF-8 is named by its line.
    text = read_csv_text(path, "--input", advice="use a smaller file, in parts")
    try:
        found = list(records(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise RunError(f"--input {path} is not a readable CSV file: {err}") from None
    if not found:
        raise RunError(f"--input {path} is empty: it needs a header row and data rows")
    header = [name.strip() for name in found[0][1]]
    if len(found) == 1:
        raise RunError(
            f"--input {path} has a header but no data rows: add data rows (for `impute`, "
            "with empty cells where values are missing)"
        )
    for line, row in found[1:]:
        if len(row) != len(header):
            raise RunError(f"{path}, line {line}: {len(row)} cells, the header has {len(header)}")
    return header, [row for _, row in found[1:]]


def number(cell: str, row: int, column: int, header: list[str], path: Path) -> float:
    """A cell's value; empty, NaN or NA is missing (NaN); anything else must be a finite
    number."""
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na"):
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        where = cell_place(path, row, column, header)
        raise RunError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise RunError(
            f"{cell_place(path, row, column, header)}: {cell!r} is not a finite number (it "
            f"reads as {value}); observed values must be finite, and an empty cell is one to "
            "impute"
        )
    return value


def cell_place(path: Path, row: int, column: int, header: list[str]) -> str:
    """`PATH, line L, column C ('name')`: where data row `row`'s (from 0) cell is, its line
    counted as `read_csv` counts (blank lines skipped, a quoted cell may span lines); the
    file is read again, which only a message pays for."""
    line = data_row_line(str(path), row)
    return f"{path}, line {line}, column {column + 1} ({header[column]!r})"


def check_training_data(found: str, lock: dict[str, Any], run_dir: Path) -> None:
    """The column names and the preprocessing come from the training data: it must be the
    data the run was trained on."""
    recorded = trained_fingerprint(run_dir, lock)
    if recorded is not None and recorded != found:
        raise RunError(
            f"the training data of {run_dir} changed since training (its fingerprint differs "
            "from the lock's), so its column names and scaling no longer describe the model; "
            "restore the data, or retrain"
        )


def check_label_column(
    header: list[str], cells: list[list[str]], lock: dict[str, Any], path: Path
) -> None:
    """Refuse, before its cells are parsed (class names are no numbers), a table holding the
    source's label column: the training table itself is the natural input, but the label is
    not a feature. Says which column it is and what to do (a conditional model takes each
    row's class as a last column `label` of class indices)."""
    spec = lock["resolved_spec"]
    source = spec["data"]["source"]
    name = source.get("label_column")
    if not name or name not in header:
        return
    if name == "label" and _class_indices(cells, header.index(name)):
        return  # the `label` column of class indices a conditional model reads
    features = source.get("columns")
    rows = f"the features {listed(features)} only" if features else "the features only"
    index = "its class index (the position of its class name among the training data's "
    index += "class names, sorted)"
    conditional = spec["model"].get("conditional") is not None
    column = header.index(name)
    if name == "label" and conditional:  # the column a conditional model reads: keep it
        raise RunError(
            f"{path}, column {column + 1} ('label') holds class names, as the run's source "
            f"does; give each row's class there as {index}"
        )
    fix = f"drop the {name!r} column"
    if conditional:
        fix += f", and give each row's class as a last column 'label' holding {index}"
    raise RunError(
        f"{path}, column {column + 1} ({name!r}) is the run's label column, not a feature: "
        f"the rows must hold {rows}; {fix}"
    )


def _class_indices(cells: list[list[str]], column: int) -> bool:
    """Every filled cell of `column` reads as a number (class indices, not class names; an
    empty cell is said to be empty where the cells are parsed)."""
    try:
        [float(row[column]) for row in cells if row[column].strip()]
    except ValueError:
        return False
    return True


def check_header(
    header: list[str], expected: tuple[str, ...], source: dict[str, Any], path: Path
) -> None:
    """The input's columns must be the training features, named and ordered alike."""
    if header == list(expected):
        return
    if source.get("type") == "csv":
        need = f"name the training CSV's feature columns in order: {listed(expected)}"
    else:
        need = (
            f"be {listed(expected)}: the training data ({source.get('type')}) has no column "
            f"names, so its features are called x0..x{len(expected) - 1}, in this order"
        )
    if len(header) != len(expected):
        raise RunError(
            f"{path} has {len(header)} columns; the model was trained on {len(expected)} "
            f"features: the header must {need}"
        )
    if sorted(header) == sorted(expected):
        raise RunError(
            f"{path} names the right columns in another order ({listed(header)}); "
            f"the header must {need}"
        )
    column, name = next((j, n) for j, n in enumerate(header) if n != expected[j])
    raise RunError(
        f"{path}, column {column + 1}: {name!r} where the model expects "
        f"{expected[column]!r}; the header must {need}"
    )


def listed(names: Sequence[str], shown: int = 12) -> str:
    """The first `shown` names, comma-separated, and how many there are in all."""
    text = ",".join(names[:shown])
    return text + (f",... ({len(names)} in all)" if len(names) > shown else "")
