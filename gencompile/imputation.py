"""`gencompile impute`: fill the missing cells of a CSV with a trained model, after checking
the CSV against what the model was trained on.

Three families define p(x_missing | x_observed) and impute, each its own way (`METHODS`):
a mixture by closed-form conditional means, a VAE by pseudo-Gibbs sampling, a flow by MAP
completion (`runtime/imputation.py`). The others are refused before TensorFlow starts.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.errors import RunError, UsageRefusal
from gencompile.files import atomic_write_text
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import csv_only, writable_output, writing
from gencompile.sample_options import check_seed
from gencompile.table_input import (
    check_header,
    check_label_column,
    check_training_data,
    number,
    read_csv,
)

# Iterations of the iterative methods when --iterations is not given.
DEFAULT_ITERATIONS = {"vae": 50, "flow": 200}
DEFAULT_LEARNING_RATE = 0.05  # the flow's Adam steps, in the model's (preprocessed) units

METHODS = {
    "mixture": "the mixture's conditional means (closed-form Gaussian conditioning)",
    "vae": "the VAE's pseudo-Gibbs sampling",
    "flow": "the flow's MAP completion",
}
REFUSED = {
    "gan": "a GAN has no encoder and no likelihood, so nothing in it gives p(x_missing | "
    "x_observed)",
    "diffusion": "a diffusion model's likelihood is not tractable to condition on part of "
    "an example, and it has no encoder",
    "autoregressive": "an autoregressive model conditions each value on those before it "
    "only, not on values observed anywhere in the row",
}


@dataclass(frozen=True)
class Imputation:
    path: Path
    rows_filled: int
    cells_filled: int
    method: str  # how the cells were filled, in words, with the settings used


def impute(
    run_dir: Path | str,
    input_csv: Path | str,
    out_csv: Path | str,
    allow_custom_code: bool = False,
    *,
    iterations: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
) -> Imputation:
    """Fill the empty (or NaN) cells of a CSV with a trained mixture, VAE or flow.

    The header must name the training data's features in their order (a CSV source's
    columns; x0, x1, ... for data without names). Observed cells must be finite numbers and
    are written back exactly as they were read; rows with nothing missing pass through
    unchanged. `iterations` (VAE, flow), `learning_rate` (flow) and `seed` (VAE) tune the
    iterative methods; a mixture's means are exact and take none.
    """
    run_dir, input_csv, out_csv = Path(run_dir), Path(input_csv), Path(out_csv)
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    family = str(lock.get("family"))
    check_seed(seed)
    _check_options(family, run_dir, iterations, learning_rate, seed)
    if family == "vae" and lock["resolved_spec"]["model"].get("conditional") is not None:
        raise UsageRefusal(
            f"{run_dir} holds a conditional VAE: it needs each row's class, which "
            "an imputation CSV does not carry; impute with an unconditional model"
        )
    writable_output(out_csv, "-o", "imputed.csv", {"--input": input_csv}, run_dir)
    csv_only(out_csv, "impute")  # after writable_output: a folder is refused, as a folder
    header, cells = read_csv(input_csv)
    check_label_column(header, cells, lock, input_csv)  # before its class names fail as numbers
    values = np.array(
        [[number(c, i, j, header, input_csv) for j, c in enumerate(row)]
         for i, row in enumerate(cells)],
        dtype="float64",
    ).reshape(len(cells), len(header))  # fmt: skip
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    check_training_data(data.fingerprint, lock, run_dir)
    check_header(header, data.feature_names, data.source, input_csv)
    missing = np.isnan(values)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        scaled = data.preprocessor.transform(values.reshape(-1, *data.element_shape))
    _check_scaled(scaled.reshape(values.shape), missing, header, input_csv)
    filled_scaled, method = _fill(model, family, scaled, data, iterations, learning_rate, seed)
    filled = data.preprocessor.inverse(filled_scaled.reshape(scaled.shape))
    filled = filled.reshape(values.shape)  # float64 where float32 would round (timestamps)
    if not np.isfinite(filled[missing]).all():
        raise RunError(
            f"{method} gave values that are not finite (the model diverged on these rows); "
            + (
                "try a smaller --learning-rate"
                if family == "flow"
                else "its decoder gives non-finite means: check the run's training metrics"
            )
        )
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
    return Imputation(out_csv, int(missing.any(axis=1).sum()), int(missing.sum()), method)


def _check_options(
    family: str,
    run_dir: Path,
    iterations: int | None,
    learning_rate: float | None,
    seed: int | None,
) -> None:
    """The family can impute, and takes the options given (refused before TensorFlow)."""
    if family in REFUSED or family not in METHODS:
        why = REFUSED.get(family, "its family has no imputation")
        raise UsageRefusal(
            f"{run_dir} holds a {family} model, which cannot impute: {why}. Imputation works "
            "with mixture (conditional means), vae (pseudo-Gibbs sampling) and flow (MAP "
            "completion) runs"
        )
    unused = [
        name
        for name, value, takers in (
            ("--iterations", iterations, ("vae", "flow")),
            ("--learning-rate", learning_rate, ("flow",)),
            ("--seed", seed, ("vae",)),
        )
        if value is not None and family not in takers
    ]
    if unused:
        raise UsageRefusal(
            f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to a "
            f"{family} model ({METHODS[family]}"
            + (", exact: no options)" if family == "mixture" else ", deterministic: no --seed)")
        )
    if iterations is not None and iterations < 1:
        raise UsageRefusal(f"--iterations must be at least 1, got {iterations}")
    if learning_rate is not None and not learning_rate > 0:
        raise UsageRefusal(f"--learning-rate must be > 0, got {learning_rate}")


def _fill(
    model: Any,
    family: str,
    scaled: np.ndarray,
    data: Any,
    iterations: int | None,
    learning_rate: float | None,
    seed: int | None,
) -> tuple[np.ndarray, str]:
    """The rows with their NaNs filled in model space, and the method in words."""
    from gencompile.runtime import imputation
    from gencompile.runtime.contract import DensityModel, Imputer, LatentVariableModel

    if family == "mixture" and isinstance(model, Imputer):
        flat = scaled.reshape(len(scaled), -1)
        return np.asarray(model.impute(flat)).reshape(scaled.shape), METHODS["mixture"]
    iterations = iterations or DEFAULT_ITERATIONS[family]
    start = _training_mean(data)
    if family == "vae" and isinstance(model, LatentVariableModel):
        seed = 0 if seed is None else seed
        filled = imputation.vae_pseudo_gibbs(model, scaled, start, iterations, seed)
        return filled, f"{METHODS['vae']} ({iterations} iterations, seed {seed})"
    if family == "flow" and isinstance(model, DensityModel):
        rate = learning_rate or DEFAULT_LEARNING_RATE
        filled = imputation.flow_map_completion(model, scaled, start, iterations, rate)
        return filled, f"{METHODS['flow']} ({iterations} Adam steps, learning rate {rate:g})"
    raise RunError(f"the {family} model of this run does not have the methods imputation uses")


def _training_mean(data: Any) -> np.ndarray:
    """The mean training example in model space: where the missing cells start."""
    from gencompile.runtime.splits import batches

    total, count = np.zeros(data.element_shape, np.float64), 0
    for rows in batches(data.x_train, 4096):
        total += np.asarray(rows, np.float64).sum(axis=0)
        count += len(rows)
    return (total / max(count, 1)).astype(np.float32)


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
