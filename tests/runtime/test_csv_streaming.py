"""Streamed CSV data: converted once into a float32 .npy cache, then read batch by batch;
the same batches, labels, fingerprint and messages as the CSV loaded whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile import datafiles
from gencompile.datafiles import streams
from gencompile.errors import RunError
from gencompile.runtime import csv_cache
from gencompile.runtime.data import load_data
from gencompile.runtime.streaming import StreamedSplit

STANDARDIZE = {"scale": None, "standardize": True}
SCALE = {"scale": [0.0, 1.0], "standardize": False}


def config(path: Path, cache: str, **source: Any) -> dict:
    return {
        "source": {"type": "csv", "path": str(path), "columns": None, "label_column": None}
        | source,
        "validation_split": 0.2,
        "preprocessing": STANDARDIZE,
        "augmentation": [],
        "batch_size": 16,
        "shuffle_buffer": 100,
        "with_labels": bool(source.get("label_column")),
        "drop_remainder": False,
        "cache": cache,
    }


def write_csv(path: Path, rows: int = 300, labels: list[str] | None = None) -> Path:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(rows, 3)) * 4 + 1
    names = labels or ["cat", "dog", "ant"]
    lines = ["a, b,c,kind"]  # a spaced header name: stripped, as when loaded
    for i, row in enumerate(values):
        lines.append(f"{row[0]:.6f}, {row[1]:.6f},{row[2]:.6f},{names[i % len(names)]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def batches(dataset: Any) -> list[Any]:
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b)
            for b in dataset]  # fmt: skip


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows, so that a few hundred rows take many blocks."""
    monkeypatch.setattr(csv_cache, "BLOCK_BYTES", 512)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("labels", [None, ["cat", "dog", "ant"], ["3", "0", "1"]])
def test_streamed_csv_equals_loaded(tmp_path: Path, labels: list[str] | None) -> None:
    path = write_csv(tmp_path / "d.csv", labels=labels)
    given = {"label_column": "kind"} if labels else {"columns": ["a", "b", "c"]}
    loaded = load_data(config(path, "memory", **given), seed=4)
    streamed = load_data(config(path, "stream", **given), seed=4)
    assert isinstance(streamed.x_train, StreamedSplit)
    assert streamed.fingerprint == loaded.fingerprint
    assert streamed.num_classes == loaded.num_classes
    assert streamed.feature_names == loaded.feature_names == ("a", "b", "c")
    if labels:
        assert np.array_equal(streamed.y_train, loaded.y_train)
        assert np.array_equal(streamed.y_val, loaded.y_val)
        assert loaded.num_classes == (3 if labels[0] == "cat" else 4)
    for stream in ("epochs", "validation"):
        mine = batches(streamed.epochs(0, 2) if stream == "epochs" else streamed.validation)
        theirs = batches(loaded.epochs(0, 2) if stream == "epochs" else loaded.validation)
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs, strict=True):
            if labels:  # (features, labels)
                np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
                assert np.array_equal(a[1], b[1])
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("small_blocks")
def test_min_max_scaled_csv_streams_bit_identical_batches(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv")
    given = {"label_column": "kind"}
    loaded = load_data(config(path, "memory", **given) | {"preprocessing": SCALE}, seed=2)
    streamed = load_data(config(path, "stream", **given) | {"preprocessing": SCALE}, seed=2)
    for (xa, ya), (xb, yb) in zip(
        batches(streamed.epochs(0, 2)), batches(loaded.epochs(0, 2)), strict=True
    ):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", r"empty cell in column 'b' at data row 251 \(line 252\)"),
        ("x1", r"non-numeric value 'x1' in column 'b' at data row 251 \(line 252\)"),
        ("1e999", r"'1e999' in column 'b' at data row 251 \(line 252\) is infinite"),
    ],
)
def test_a_bad_cell_deep_in_the_file_is_named_by_column_and_line(
    tmp_path: Path, cell: str, message: str
) -> None:
    path = write_csv(tmp_path / "d.csv")
    lines = path.read_text().splitlines()
    first, _, rest = lines[251].partition(",")
    lines[251] = f"{first},{cell},{rest.partition(',')[2]}"
    path.write_text("\n".join(lines) + "\n")
    for cache in ("memory", "stream"):  # the same words either way
        with pytest.raises(RunError, match=message):
            load_data(config(path, cache, label_column="kind"), seed=0)


def test_rows_of_another_width_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(RunError, match=r"cannot read CSV .*Expected 2 columns, got 3"):
        load_data(config(path, "stream"), seed=0)


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n")
    with pytest.raises(RunError, match="no data rows below the header"):
        load_data(config(path, "stream"), seed=0)


def test_the_conversion_is_cached_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "cache"))
    path = write_csv(tmp_path / "d.csv")
    source = config(path, "stream", label_column="kind")["source"]
    first, labels = csv_cache.cached_csv(source)
    assert first.parent == tmp_path / "cache" / "csv"
    assert np.load(first).shape == (300, 3) and np.load(first).dtype == np.float32
    assert labels is not None and labels.dtype == np.int32
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp files

    def refuse(*_: Any) -> None:
        raise AssertionError("converted again")

    with monkeypatch.context() as patched:
        patched.setattr(csv_cache, "_convert", refuse)
        again, same = csv_cache.cached_csv(source)
    assert again == first and np.array_equal(same, labels)
    path.write_text(path.read_text().replace("kind", "kind", 1) + "1,2,3,cat\n")
    changed, _ = csv_cache.cached_csv(source)
    assert changed != first and np.load(changed).shape == (301, 3)


def test_auto_streams_a_csv_whose_loading_would_take_as_much_as_large_npy_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "d.csv")  # about 10 KB of text
    source = {"type": "csv", "path": str(path)}
    assert not streams(source, "auto") and streams(source, "stream")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 4096)
    assert streams(source, "auto") and not streams(source, "memory")
