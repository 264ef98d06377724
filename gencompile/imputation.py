"""`gencompile impute`: fill the missing cells of a CSV with a trained mixture's
conditional means, after checking the CSV against what the model was trained on."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gencompile.errors import RunError
from gencompile.files import atomic_write_text
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import writable_output, writing
from gencompile.table_input import check_header, check_training_data, number, read_csv


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
    header, cells = read_csv(input_csv)
    values = np.array(
        [[number(c, i, j, header, input_csv) for j, c in enumerate(row)]
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
    check_training_data(data.fingerprint, lock, run_dir)
    check_header(header, data.feature_names, data.source, input_csv)
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
