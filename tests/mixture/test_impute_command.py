"""`gencompile impute RUN --input in.csv -o out.csv` on a trained mixture."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gencompile.generated import import_generated
from gencompile.runs import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("gmm") / "run"
    train(ROOT / "specs" / "gmm_blobs.yaml", [], epochs=5, run_dir=run_dir, quiet=True)
    return run_dir


def test_impute_fills_only_missing_cells_and_beats_column_means(
    blobs_run, tmp_path, run_cli
) -> None:
    from gencompile.runtime.data import load_data

    module = import_generated(blobs_run, "gmm_blobs")
    data = load_data(module.DATA, seed=module.SEED)
    truth = data.preprocessor.inverse(data.x_val)[:60]
    header = [f"x{j}" for j in range(truth.shape[1])]  # builtin data: features x0..x15
    cells = [[repr(float(v)) for v in row] for row in truth]
    for i in range(0, 60, 2):  # every other row loses four features
        for j in (0, 3, 7, 11):
            cells[i][j] = ""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *cells])

    code, out, _ = run_cli("impute", str(blobs_run), "--input", str(source), "-o", str(target))
    assert code == 0
    assert "with the mixture's conditional means (closed-form Gaussian conditioning)" in out

    with target.open(newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == header
    for i, row in enumerate(written[1:]):
        if i % 2:
            assert row == cells[i]  # complete rows pass through unchanged, text and all
        for j, cell in enumerate(row):
            if cells[i][j]:
                assert cell == cells[i][j]  # observed cells are kept verbatim
    filled = np.array([[float(c) for c in row] for row in written[1:]])
    hidden = np.zeros_like(truth, dtype=bool)
    hidden[::2][:, [0, 3, 7, 11]] = True
    column_means = data.preprocessor.inverse(data.x_train).mean(axis=0)
    mixture_error = np.abs(filled - truth)[hidden].mean()
    mean_error = np.abs(np.broadcast_to(column_means, truth.shape) - truth)[hidden].mean()
    assert mixture_error < 0.5 * mean_error, (mixture_error, mean_error)


def test_the_iterative_methods_options_are_refused_for_a_mixture(
    blobs_run, tmp_path, run_cli
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(",".join(f"x{j}" for j in range(16)) + "\n" + "1.0," * 15 + "\n")
    args = ("impute", str(blobs_run), "--input", str(source), "-o", str(tmp_path / "out.csv"))
    code, _, err = run_cli(*args, "--iterations", "5", "--seed", "1")
    assert code == 2
    said = " ".join(err.split())
    assert "--iterations, --seed do not apply to a mixture model" in said
    assert "exact: no options" in said
    assert not (tmp_path / "out.csv").exists()
