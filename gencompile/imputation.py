"""`gencompile impute`: fill the missing cells of a CSV with a trained mixture's
conditional means, after checking the CSV against what the model was trained on."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.datafiles import read_text_file
from gencompile.errors import RunError
from gencompile.files import atomic_write_text
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import writable_output, writing


@dataclass(frozen=True)
class Imputation:
    path: Path
    rows_filled: int
    cells_filled: int


def impute(
    run_dir: Path | str,
    input_csv: Path | str,
    out_csv: Path | str,
    allow_custom_code: bool = False,
) -> Imputation:
    """Fill the empty (or NaN) cells of a CSV with a trained mixture's conditional means.

    The header must name the training data's features in their order (a CSV source's
    columns; x0, x1, ... for data without names). Observed cells must be finite numbers and
    are written back exactly as they were read; rows with nothing missing pass through
    unchanged.
    """
    run_dir, input_csv, out_csv = Path(run_dir), Path(input_csv), Path(out_csv)
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    if lock.get("family") != "mixture":
        raise RunError(
            f"{run_dir} holds a {lock.get('family')} model; only a mixture model can impute"
        )
    writable_output(out_csv, "-o", "imputed.csv")
    header, cells = _read_csv(input_csv)
    values = np.array(
        [[_number(c, i, j, header, input_csv) for j, c in enumerate(row)]
         for i, row in enumerate(cells)],
        dtype="float64",
    ).reshape(len(cells), len(header))  # fmt: skip
    from gencompile.runtime import repro
    from gencompile.runtime.contract import Imputer
    from gencompile.runtime.data import load_data

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    if not isinstance(model, Imputer):
        raise RunError(f"{run_dir} holds a {lock['family']} model; only a mixture can impute")
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    _check_training_data(data.fingerprint, lock, run_dir)
    _check_header(header, data.feature_names, data.source, input_csv)
    missing = np.isnan(values)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        scaled = data.preprocessor.transform(values.reshape(-1, *data.element_shape))
    _check_scaled(scaled.reshape(values.shape), missing, header, input_csv)
    filled = data.preprocessor.inverse(np.asarray(model.impute(scaled)).reshape(scaled.shape))
    filled = filled.reshape(values.shape)
    rows = [
        [repr(float(filled[i, j])) if missing[i, j] else cell for j, cell in enumerate(row)]
        for i, row in enumerate(cells)
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with writing(out_csv):
        atomic_write_text(out_csv, buffer.getvalue())
    return Imputation(out_csv, int(missing.any(axis=1).sum()), int(missing.sum()))


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an input CSV: a regular file, read with the data size limit."""
    try:
        text = read_text_file(path, "--input", advice="impute a smaller file, in parts")
    except UnicodeDecodeError as err:
        raise RunError(f"--input {path} is not UTF-8 text: {err}") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise RunError(f"--input {path} is not a readable CSV file: {err}") from None
    if not rows:
        raise RunError(f"--input {path} is empty: it needs a header row and data rows")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if not body:
        raise RunError(
            f"--input {path} has a header but no data rows: nothing to impute; "
            "add rows with empty cells where values are missing"
        )
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise RunError(f"{path}, line {i}: {len(row)} cells, the header has {len(header)}")
    return header, body


def _number(cell: str, row: int, column: int, header: list[str], path: Path) -> float:
    """A cell's value; empty or NaN is missing (NaN); anything else must be a finite number."""
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na"):
        return float("nan")
    where = f"{path}, line {row + 2}, column {column + 1} ({header[column]!r})"
    try:
        value = float(text)
    except ValueError:
        raise RunError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise RunError(
            f"{where}: {cell!r} is not a finite number (it reads as {value}); observed values "
            "must be finite, and an empty cell is one to impute"
        )
    return value


def _check_training_data(found: str, lock: dict[str, Any], run_dir: Path) -> None:
    """The column names and the preprocessing come from the training data: it must be the
    data the run was trained on."""
    recorded = lock.get("data_fingerprint")
    if recorded is not None and recorded != found:
        raise RunError(
            f"the training data of {run_dir} changed since training (its fingerprint differs "
            "from the lock's), so its column names and scaling no longer describe the model; "
            "restore the data, or retrain"
        )


def _check_header(
    header: list[str], expected: tuple[str, ...], source: dict[str, Any], path: Path
) -> None:
    """The input's columns must be the training features, named and ordered alike."""
    if header == list(expected):
        return
    if source.get("type") == "csv":
        need = f"name the training CSV's feature columns in order: {_names(expected)}"
    else:
        need = (
            f"be {_names(expected)}: the training data ({source.get('type')}) has no column "
            f"names, so its features are called x0..x{len(expected) - 1}, in this order"
        )
    if len(header) != len(expected):
        raise RunError(
            f"{path} has {len(header)} columns; the model was trained on {len(expected)} "
            f"features: the header must {need}"
        )
    if sorted(header) == sorted(expected):
        raise RunError(
            f"{path} names the right columns in another order ({_names(header)}); "
            f"the header must {need}"
        )
    column, name = next((j, n) for j, n in enumerate(header) if n != expected[j])
    raise RunError(
        f"{path}, column {column + 1}: {name!r} where the model expects "
        f"{expected[column]!r}; the header must {need}"
    )


def _names(names: Sequence[str], shown: int = 12) -> str:
    text = ",".join(names[:shown])
    return text + (f",... ({len(names)} in all)" if len(names) > shown else "")


def _check_scaled(scaled: np.ndarray, missing: np.ndarray, header: list[str], path: Path) -> None:
    """Observed values so large that the model's float32 preprocessing overflows them."""
    bad = np.argwhere(~np.isfinite(scaled) & ~missing)
    if bad.size:
        row, column = (int(i) for i in bad[0])
        raise RunError(
            f"{path}, line {row + 2}, column {column + 1} ({header[column]!r}): the value is "
            "too large for the model (beyond float32's range once scaled like the training "
            "data); check the units of that column"
        )
