"""CSV files loaded whole read through the streamed conversion's blocks: memory follows the
numbers, not the longest cell; quoted line breaks and classic-Mac line ends read alike
loaded and streamed."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gencompile.runtime import tables
from gencompile.runtime.data import load_data
from tests.runtime.test_tables import config


def test_one_long_cell_in_an_unused_column_costs_no_memory_per_cell(tmp_path: Path) -> None:
    path = tmp_path / "note.csv"
    rows = [f"{i},{2 * i},{'z' * 4096 if i == 700 else 'ok'}" for i in range(2000)]
    path.write_text("a,b,note\n" + "\n".join(rows) + "\n")
    source = config(path, "memory", columns=["a", "b"])["source"]
    tracemalloc.start()
    try:
        x, labels = tables.load_csv(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert labels is None and x.shape == (2000, 2) and x[700, 1] == 1400
    # every cell as a string of the longest one's width would take 2000 x 3 x 16 KiB (98 MB)
    assert peak < 8 << 20


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_quoted_line_breaks_read_across_block_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    monkeypatch.setattr(tables, "BLOCK_BYTES", 512)  # many blocks: some end inside a quote
    path = tmp_path / "nl.csv"
    kinds = ['"multi\nline"', '"two\nlines"', "single"]
    lines = [f"{i}.5,{i},{kinds[i % 3]}" for i in range(3000)]
    path.write_text("a,b,kind\n" + "\n".join(lines) + "\n")
    with path.open(newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == 3001
    bundle = load_data(config(path, cache, label_column="kind"), seed=0)
    labels = np.concatenate([bundle.y_train, bundle.y_val])
    assert len(labels) == 3000 and list(np.bincount(labels)) == [1000, 1000, 1000]


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_classic_mac_line_ends_read_loaded_and_streamed(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b\r" + b"".join(b"%d,%d\r" % (i, 2 * i) for i in range(50)))
    bundle = load_data(config(path, cache), seed=0)
    assert len(bundle.x_train) + len(bundle.x_val) == 50
