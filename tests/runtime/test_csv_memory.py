"""The memory a CSV source costs loaded whole is its values (rows x used columns x
`BYTES_PER_LOADED_VALUE`), estimated from its header and its first MiB, not its text size:
short cells (0/1) took more than 12 bytes a byte of text, long ones (%.6f) far less."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile import datafiles
from gencompile.compiler.lower import lower
from gencompile.compiler.resources import check_memory, estimate_memory
from gencompile.data_size import streams
from gencompile.datafiles import BYTES_PER_LOADED_VALUE, DataFileError, csv_extent
from gencompile.errors import RunError
from gencompile.runtime import tables
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
OLD_BYTES_PER_TEXT_BYTE = 12  # the rule this replaces: the file's size times 12


def write_csv(path: Path, values: np.ndarray, fmt: str, label: bool = False) -> Path:
    """`values` as a CSV with a header row f0, f1, ... (and a label column `kind`)."""
    names = [f"f{i}" for i in range(values.shape[1])] + (["kind"] if label else [])
    if label:
        values = np.column_stack([values, np.arange(len(values)) % 3])
    np.savetxt(path, values, fmt=fmt, delimiter=",", header=",".join(names), comments="")
    return path


def short_cells(path: Path, rows: int = 150_000, width: int = 10) -> Path:
    """0/1 cells, 2 bytes of text each: 3 MB, beyond the 1 MiB sample."""
    return write_csv(path, np.random.default_rng(0).integers(0, 2, (rows, width)), "%d")


def long_cells(path: Path, rows: int = 30_000, width: int = 10) -> Path:
    """%.6f normals, 9 to 10 bytes of text each: 2.9 MB."""
    return write_csv(path, np.random.default_rng(1).standard_normal((rows, width)), "%.6f")


def lowered(path: Path, *overrides: str) -> Any:
    given = f"data.source={{type: csv, path: {path}}}"
    spec = ROOT / "specs" / "vae_digits.yaml"
    return lower(load_spec(spec, [given, "evaluation.metrics=[elbo]", *overrides]))


@pytest.mark.parametrize("make, rows", [(short_cells, 150_000), (long_cells, 30_000)])
def test_the_estimate_is_the_values_of_the_rows_sampled_from_the_first_mib(
    tmp_path: Path, make: Any, rows: int
) -> None:
    path = make(tmp_path / "d.csv")
    assert path.stat().st_size > datafiles.HEADER_LIMIT  # the rows are estimated, not read
    estimated, width = csv_extent({"type": "csv", "path": str(path)})
    assert width == 10 and abs(estimated - rows) <= rows // 100
    plan = lowered(path, "data.cache=memory")
    assert estimate_memory(plan).data_bytes == estimated * 10 * BYTES_PER_LOADED_VALUE


def test_the_width_is_the_columns_the_source_reads(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", np.ones((5, 4)), "%d", label=True)
    assert csv_extent({"path": str(path)}) == (5, 5)  # no label_column: all are features
    assert csv_extent({"path": str(path), "label_column": "kind"}) == (5, 4)
    assert csv_extent({"path": str(path), "columns": ["f0", "f2"]}) == (5, 2)


def test_a_small_file_is_counted_row_by_row(tmp_path: Path) -> None:
    """Whole in the sample: quoted line breaks, blank lines and a byte order mark counted as
    the loaders read them."""
    path = tmp_path / "d.csv"
    path.write_bytes(b'\xef\xbb\xbfa,b\n1,"2\n"\n\n3,4\n5,6')
    assert csv_extent({"path": str(path)}) == (3, 2)
    path.write_text("a,b\n")
    assert csv_extent({"path": str(path)}) == (0, 2)


def test_rows_longer_than_the_sample_count_at_least_one(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "1" * (3 << 20) + ",2\n")
    rows, width = csv_extent({"path": str(path)})
    assert width == 2 and 1 <= rows <= 3


def test_the_header_is_checked_as_before(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(DataFileError, match="looks like data, not column names"):
        csv_extent({"path": str(path)})


def test_a_csv_that_fits_by_its_values_is_no_longer_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long cells: 12x the text was 4x what loading takes, so a file that fits was refused
    by `check_memory` (before training) and by `load_csv` (the runtime's own check)."""
    path = long_cells(tmp_path / "d.csv")
    plan = lowered(path, "data.cache=memory")
    estimate = estimate_memory(plan)
    old = path.stat().st_size * OLD_BYTES_PER_TEXT_BYTE
    new = 30_000 * 10 * BYTES_PER_LOADED_VALUE
    assert new < old // 3
    limit = estimate.total - estimate.data_bytes + (new + old) // 2  # new < limit < old
    monkeypatch.setenv("GENCOMPILE_MEMORY", str(limit))
    assert check_memory(plan).data_bytes <= new
    source = {"type": "csv", "path": str(path), "columns": None, "label_column": None}
    monkeypatch.setenv("GENCOMPILE_MEMORY", str((new + old) // 2))
    x, labels = tables.load_csv(source)
    assert x.shape == (30_000, 10) and labels is None


def test_a_csv_of_short_cells_is_refused_by_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0/1 cells: loading takes 14 bytes a byte of text, more than the old 12."""
    path = short_cells(tmp_path / "d.csv")
    old = path.stat().st_size * OLD_BYTES_PER_TEXT_BYTE
    needed = 150_000 * 10 * BYTES_PER_LOADED_VALUE
    assert needed > old
    monkeypatch.setenv("GENCOMPILE_MEMORY", str((needed + old) // 2))
    source = {"type": "csv", "path": str(path), "columns": None, "label_column": None}
    with pytest.raises(RunError, match=r"about 150000 rows x 10 columns\) needs about 40\.1 MiB"):
        tables.load_csv(source)


def test_auto_streams_a_csv_whose_float32_values_exceed_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for npy and Parquet data: rows x columns x 4 bytes against STREAM_THRESHOLD."""
    path = short_cells(tmp_path / "d.csv", rows=20_000)
    source = {"type": "csv", "path": str(path)}
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 20_000 * 10 * 4)
    assert not streams(source, "auto") and streams(source, "stream")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 20_000 * 10 * 4 - 1)
    assert streams(source, "auto") and not streams(source, "memory")
