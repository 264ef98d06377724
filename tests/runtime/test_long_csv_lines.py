"""A streamed CSV with a line longer than pyarrow's block: read with a block that holds it
(as the in-memory loader reads it), or refused in the product's words beyond a bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gencompile.errors import RunError
from gencompile.runtime import tables
from gencompile.runtime.csv_lines import longest_line


def source(path: Path) -> dict:
    return {"type": "csv", "path": str(path), "columns": ["a", "b"], "label_column": None}


def write_notes(path: Path, note: int, before: int = 400, after: int = 300) -> np.ndarray:
    """A CSV whose unused `notes` column holds one cell `note` characters long, after
    `before` short rows (several blocks) and before `after` more; returns its (a, b)."""
    values = np.arange(2 * (before + after + 1), dtype=np.float32).reshape(-1, 2)
    lines = ["a,b,notes"]
    for i, (a, b) in enumerate(values):
        text = '"' + "x, y\t" * (note // 5) + '"' if i == before else "short"
        lines.append(f"{a:g},{b:g},{text}")
    path.write_text("\n".join(lines) + "\n")
    return values


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tables, "BLOCK_BYTES", 512)  # blocks of 3 KiB for 3 columns


def test_a_line_longer_than_a_block_deep_in_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    values = write_notes(path, note=20_000)
    x_path, _ = tables.cached_table(source(path))
    assert np.array_equal(np.load(x_path), values)  # every row once, in order


def test_a_line_beyond_the_bound_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 16 << 10)
    path = tmp_path / "notes.csv"
    write_notes(path, note=20_000, before=30)
    length = len(path.read_text().splitlines()[31])
    with pytest.raises(RunError) as caught:
        tables.cached_table(source(path))
    assert str(caught.value) == (
        f"{path} line 32 is {length / 1024:.1f} KiB long, more than the 16.0 KiB a line of a "
        "streamed CSV may take; shorten or drop that line, or set data.cache: memory to load "
        "the file whole"
    )
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing half-converted kept


def test_one_long_cell_does_not_widen_the_strings_of_a_whole_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tables, "CELL_BYTES", 4000)
    cells = ["1"] * 100
    cells[40] = "9" * 300
    batch = pa.RecordBatch.from_pydict({"c0": cells})
    slices = list(tables._row_slices(batch))
    assert [s.num_rows for s in slices] == [3] * 33 + [1]  # 4 bytes x 300 x 3 <= 4000
    assert pa.concat_arrays([s.column(0) for s in slices]).to_pylist() == cells


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"", (1, 0)),
        (b"a,b\n1,2", (1, 3)),
        (b"a,b\n\n1,2345\r\n", (3, 7)),  # a carriage return counts: pyarrow's block holds it
        (b"a\n" + b"x" * 3000 + b"\n1", (2, 3000)),  # across scan blocks
    ],
)
def test_longest_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes, expected: tuple[int, int]
) -> None:
    from gencompile.runtime import csv_lines

    monkeypatch.setattr(csv_lines, "SCAN_BYTES", 1000)
    path = tmp_path / "d.csv"
    path.write_bytes(text)
    assert longest_line(str(path)) == expected
