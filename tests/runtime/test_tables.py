"""Streamed CSV and Parquet data: converted once into a float32 .npy cache, then read batch
by batch; the same batches, labels, fingerprint and messages as the table loaded whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile import datafiles
from gencompile.data_size import streams
from gencompile.errors import RunError
from gencompile.runtime import tables
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
    monkeypatch.setattr(tables, "BLOCK_BYTES", 512)


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,4,5\n", "line 3 has 3 fields, the header has 2"),
        ("a,b,kind\n1,2,x\n3,4\n5,6,z\n", "line 3 has 2 fields, the header has 3"),
        ("a,b,kind\n1,2\n3,4\n", "line 2 has 2 fields, the header has 3"),  # every row
        ("a,b\n\n1,2\n\n\n3\n", "line 6 has 1 field, the header has 2"),  # blank lines
        ('"a\nb",c\n1,2\n3,4,5\n', "line 4 has 3 fields, the header has 2"),  # 2-line header
    ],
)
@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_row_of_another_width_is_named_by_its_line(
    tmp_path: Path, text: str, message: str, cache: str
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache), seed=0)
    assert str(caught.value) == f"{path} {message}: fix or drop that row"


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_bad_cell_after_blank_lines_is_named_by_its_line(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n\n\n3,\n4,5\n")  # both readers skip blank lines
    with pytest.raises(RunError, match=r"empty cell in column 'b' at data row 2 \(line 5\)"):
        load_data(config(path, cache), seed=0)


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
    first, labels = tables.cached_table(source)
    assert first.parent == tmp_path / "cache" / "tables"
    assert np.load(first).shape == (300, 3) and np.load(first).dtype == np.float32
    assert labels is not None and labels.dtype == np.int32
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp files

    def refuse(*_: Any) -> None:
        raise AssertionError("converted again")

    with monkeypatch.context() as patched:
        patched.setattr(tables, "_convert", refuse)
        again, same = tables.cached_table(source)
    assert again == first and np.array_equal(same, labels)
    path.write_text(path.read_text().replace("kind", "kind", 1) + "1,2,3,cat\n")
    changed, _ = tables.cached_table(source)
    assert changed != first and np.load(changed).shape == (301, 3)


# --------------------------------------------------------------------------- parquet

ROOT = Path(__file__).resolve().parents[2]


def write_parquet(path: Path, rows: int = 300, kind: Any = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    names = np.array(["cat", "dog", "ant"])[np.arange(rows) % 3]
    kind = pa.array(names).dictionary_encode() if kind is None else kind
    table = pa.table(
        {
            "a": rng.normal(size=rows),
            "b": rng.integers(-5, 5, rows).astype(np.int16),
            "c": rng.normal(size=rows).astype(np.float32),
            "kind": kind,
        }
    )
    pq.write_table(table, path, row_group_size=64)  # several row groups
    return path


def parquet_config(path: Path, cache: str, **source: Any) -> dict:
    return config(path, cache, **source) | {
        "source": {"type": "parquet", "path": str(path), "columns": None, "label_column": None}
        | source
    }


def test_a_small_parquet_file_loads_whole_with_class_names_as_sorted_indices(
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    path = write_parquet(tmp_path / "d.parquet")
    bundle = load_data(parquet_config(path, "auto", label_column="kind"), seed=0)
    assert not isinstance(bundle.x_train, StreamedSplit)
    assert bundle.feature_names == ("a", "b", "c") and bundle.num_classes == 3
    table = pq.read_table(path)
    kinds = np.asarray(table.column("kind").to_pylist())
    everything = np.concatenate([bundle.y_train, bundle.y_val])
    assert sorted(everything.tolist()) == sorted(
        np.searchsorted(["ant", "cat", "dog"], kinds).tolist()
    )


@pytest.mark.parametrize("labels", ["names", "numbers", None])
def test_streamed_parquet_equals_loaded(tmp_path: Path, labels: str | None) -> None:
    kind = np.arange(300) % 4 if labels == "numbers" else None
    path = write_parquet(tmp_path / "d.parquet", kind=kind)
    given = {"label_column": "kind"} if labels else {"columns": ["a", "b", "c"]}
    loaded = load_data(parquet_config(path, "memory", **given), seed=6)
    streamed = load_data(parquet_config(path, "stream", **given), seed=6)
    assert isinstance(streamed.x_train, StreamedSplit)
    assert streamed.fingerprint == loaded.fingerprint
    assert streamed.num_classes == loaded.num_classes == {None: None, "names": 3}.get(labels, 4)
    for a, b in zip(batches(streamed.epochs(0, 2)), batches(loaded.epochs(0, 2)), strict=True):
        if labels:
            np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
            assert np.array_equal(a[1], b[1])
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_parquet_cells_are_checked(tmp_path: Path, cache: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, None, 4.0], "b": [1.0, 2.0, 3.0, 4.0]}), path)
    with pytest.raises(RunError, match=r"empty cell in column 'a' at data row 3"):
        load_data(parquet_config(path, cache), seed=0)
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, float("inf")], "b": [1.0] * 4}), path)
    with pytest.raises(RunError, match=r"column 'a' at data row 4 is infinite"):
        load_data(parquet_config(path, cache), seed=0)
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "z", "w"]}), path)
    with pytest.raises(RunError, match=r"column 'b' holds string, not numbers"):
        load_data(parquet_config(path, cache), seed=0)


def test_the_compiler_reads_a_parquet_shape_and_size_from_its_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.compiler.lower import lower
    from gencompile.compiler.resources import estimate_memory
    from gencompile.errors import SpecError
    from gencompile.spec import load_spec

    path = write_parquet(tmp_path / "d.parquet")

    def lowered(*overrides: str) -> Any:
        return lower(load_spec(ROOT / "specs" / "vae_digits.yaml", list(overrides)))

    given = f"data.source={{type: parquet, path: {path}, label_column: kind}}"
    metrics = "evaluation.metrics=[elbo]"
    plan = lowered(given, metrics, "data.cache=memory")
    assert tuple(plan.data_shape) == (3,)
    assert estimate_memory(plan).data_bytes == 300 * 3 * datafiles.BYTES_PER_LOADED_VALUE
    with pytest.raises(SpecError, match=r"column 'kind' .* holds dictionary"):
        lowered(f"data.source={{type: parquet, path: {path}}}", metrics)
    source = {"type": "parquet", "path": str(path), "label_column": "kind"}
    assert not streams(source, "auto")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 300 * 3 * 4 - 1)
    assert streams(source, "auto")


def test_a_file_rewritten_during_its_conversion_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "cache"))  # nothing converted yet
    path = write_csv(tmp_path / "d.csv")
    source = config(path, "stream", label_column="kind")["source"]
    convert = tables._convert

    def convert_then_append(*args: Any) -> Any:
        labels = convert(*args)
        with open(path, "a") as handle:
            handle.write("1,2,3,cat\n")
        return labels

    monkeypatch.setattr(tables, "_convert", convert_then_append)
    with pytest.raises(RunError, match="changed while it was being read"):
        tables.cached_table(source)
    monkeypatch.setattr(tables, "_convert", convert)
    x_path, _ = tables.cached_table(source)
    assert np.load(x_path).shape == (301, 3)


def test_rows_longer_than_a_block_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "BLOCK_BYTES", 64)  # a row of 100 cells is ~400 bytes
    path = tmp_path / "wide.csv"
    values = np.arange(500, dtype=np.float32).reshape(5, 100)
    lines = [",".join(f"f{i}" for i in range(100))] + [",".join(map(str, r)) for r in values]
    path.write_text("\n".join(lines) + "\n")
    x_path, _ = tables.cached_table(config(path, "stream")["source"])
    assert np.array_equal(np.load(x_path), values)
