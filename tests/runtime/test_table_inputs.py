"""Hostile CSV and Parquet inputs: a label column mixing numbers and text, a file without a
header row, a byte order mark, a file that is not UTF-8, bad labels. Each is refused (or
read) the same way loaded whole and streamed, by one line naming file, line and column."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile import datafiles
from gencompile.errors import RunError
from gencompile.runtime import tables
from gencompile.runtime.data import load_arrays, load_data

CACHES = ["memory", "stream"]


def config(path: Path, cache: str, **source: Any) -> dict:
    kind = "parquet" if path.suffix == ".parquet" else "csv"
    return {
        "source": {"type": kind, "path": str(path), "columns": None, "label_column": None} | source,
        "validation_split": 0.2,
        "preprocessing": {"scale": None, "standardize": True},
        "augmentation": [],
        "batch_size": 16,
        "shuffle_buffer": 100,
        "with_labels": bool(source.get("label_column")),
        "drop_remainder": False,
        "cache": cache,
    }


def write_labels(path: Path, labels: list[str], header: str = "x1,x2,label") -> Path:
    rows = "".join(f"{i * 0.5},{-i * 0.25},{label}\n" for i, label in enumerate(labels))
    path.write_text(f"{header}\n{rows}")
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows, so that the odd label sits in a later block."""
    monkeypatch.setattr(tables, "BLOCK_BYTES", 512)


# --------------------------------------------------------------------------- defect 1


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize(
    "labels, odd, row",
    [
        ([str(i % 11) if i != 123 else "?" for i in range(220)], "numbers and the text '?'", 124),
        ([str(1 + i % 3) if i != 40 else "NA" for i in range(90)], "the text 'NA'", 41),
        ([["ant", "cat"][i % 2] if i != 7 else "3" for i in range(60)], "names and the number", 8),
    ],
    ids=["0-10 and ?", "1-3 and NA", "names and 3"],
)
def test_a_label_column_of_numbers_and_text_is_refused_naming_the_cell(
    tmp_path: Path, cache: str, labels: list[str], odd: str, row: int
) -> None:
    path = write_labels(tmp_path / "lab.csv", labels)
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache, label_column="label"), seed=0)
    message = str(caught.value)
    assert message.startswith(f"{path}: column 'label' holds ")
    assert odd in message
    assert f"(data row {row}, line {row + 1})" in message
    assert "either all class indices or all class names" in message


@pytest.mark.parametrize("cache", CACHES)
def test_a_parquet_label_column_of_numbers_and_text_is_refused(tmp_path: Path, cache: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = [str(1 + i % 3) if i != 6 else "NA" for i in range(300)]
    path = tmp_path / "lab.parquet"
    table = pa.table({"a": np.arange(300.0), "label": labels})
    pq.write_table(table, path, row_group_size=64)
    with pytest.raises(RunError, match=r"column 'label' holds numbers and the text 'NA' "
                       r"\(data row 7\): a label column is either"):  # fmt: skip
        load_data(config(path, cache, label_column="label"), seed=0)


@pytest.mark.parametrize("cache", CACHES)
def test_class_names_and_class_numbers_still_load(tmp_path: Path, cache: str) -> None:
    names = write_labels(tmp_path / "names.csv", ["dog", "ant", "cat"] * 10)
    numbers = write_labels(tmp_path / "numbers.csv", ["10", "2", "0"] * 10)
    for path, classes in ((names, 3), (numbers, 11)):
        bundle = load_data(config(path, cache, label_column="label"), seed=0)
        assert bundle.num_classes == classes
    _x, y = load_arrays(config(numbers, cache, label_column="label")["source"], 0)
    assert y is not None and y[:3].tolist() == [10, 2, 0]  # numbers as they are


# --------------------------------------------------------------------------- defect 6


@pytest.mark.parametrize("cache", CACHES)
def test_a_csv_without_a_header_row_is_refused(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("".join(f"{i * 0.1:.2f},{(i % 5) * 1.0:.1f},{i % 3}\n" for i in range(40)))
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache), seed=0)
    assert str(caught.value) == (
        f"data.source.path: line 1 of {path} looks like data, not column names "
        "(0.00, 0.0, 0): add a header row"
    )


def test_the_compiler_refuses_a_csv_without_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(datafiles.DataFileError, match="looks like data, not column names"):
        datafiles.read_header_row(path, "data.source.path")
    path.write_text("1,b\n3,4\n")  # one name is enough
    assert datafiles.read_header_row(path, "data.source.path") == ["1", "b"]


# --------------------------------------------------------------------------- defect 7


@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize(
    "label, what",
    [("-1", "the label -1 at {p}, column 'label', data row 3 (line 4) is negative"),
     ("1.5", "the label 1.5 at {p}, column 'label', data row 3 (line 4) is not a whole number")],
)  # fmt: skip
def test_a_bad_label_is_named_by_file_row_and_column(
    tmp_path: Path, cache: str, label: str, what: str
) -> None:
    path = write_labels(tmp_path / "lab.csv", ["0", "1", label, "2"] * 5)
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache, label_column="label"), seed=0)
    assert str(caught.value).startswith(f"data.source (csv): {what.format(p=path)}")


@pytest.mark.parametrize("cache", CACHES)
def test_a_bad_parquet_label_is_named_by_row_and_column(tmp_path: Path, cache: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "lab.parquet"
    pq.write_table(pa.table({"a": np.arange(20.0), "label": [0] * 6 + [-1] + [1] * 13}), path)
    with pytest.raises(RunError, match=r"the label -1 at .*lab.parquet, column 'label', data row 7 is negative"):  # fmt: skip  # noqa: E501
        load_data(config(path, cache, label_column="label"), seed=0)


def test_a_bad_npz_label_is_named_by_array_and_index(tmp_path: Path) -> None:
    path = tmp_path / "l.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0.0, 1.0, 2.5, 2.0]))
    source = {"type": "npz", "path": str(path), "key": "x", "labels": "y"}
    with pytest.raises(RunError, match=r"the label 2.5 at .*l.npz, array 'y', index 2 is not a whole"):  # fmt: skip  # noqa: E501
        load_arrays(source, seed=0)


@pytest.mark.parametrize("cache", CACHES)
def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "bom.csv"
    body = "a,b,label\n" + "".join(f"{i}.5,{-i},{i % 3}\n" for i in range(30))
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    bundle = load_data(config(path, cache, columns=["a", "b"], label_column="label"), seed=0)
    assert bundle.feature_names == ("a", "b") and bundle.num_classes == 3
    plain = tmp_path / "plain.csv"
    plain.write_text(body)
    same = load_data(config(plain, cache, columns=["a", "b"], label_column="label"), seed=0)
    assert np.array_equal(np.asarray(bundle.y_train), np.asarray(same.y_train))
    assert bundle.fingerprint != "" and bundle.num_classes == same.num_classes
    # a bad cell after the mark is still named by its line
    path.write_bytes(b"\xef\xbb\xbf" + (body + "1,oops,2\n").encode())
    with pytest.raises(RunError, match=r"'oops' in column 'b' at data row 31 \(line 32\)"):
        load_data(config(path, cache, columns=["a", "b"], label_column="label"), seed=0)


@pytest.mark.parametrize("cache", CACHES)
def test_a_csv_that_is_not_utf8_is_named_by_its_line(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,b\n1,2\n3,4\ncafé,5\n".encode("cp1252"))
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache), seed=0)
    assert str(caught.value) == (
        f"data.source.path: {path} line 4 is not UTF-8 text (byte 0xe9 at byte 18); "
        "save it as UTF-8 (in Excel: CSV UTF-8)"
    )


@pytest.mark.usefixtures("small_blocks")
def test_a_streamed_csv_not_utf8_beyond_the_header_is_named_by_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datafiles, "HEADER_LIMIT", 64)  # the header check reads no further
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},{i * 2}\n" for i in range(500))
    path.write_bytes(b"a,b\n" + rows.encode() + b"9,\xe9\n")
    with pytest.raises(RunError, match=r"late.csv line 502 is not UTF-8 text \(byte 0xe9"):
        load_data(config(path, "stream"), seed=0)


@pytest.mark.parametrize("cache", CACHES)
def test_a_header_only_csv_is_refused_without_a_warning(tmp_path: Path, cache: str) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text("a,b\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RunError, match="no data rows below the header"):
            load_data(config(path, cache), seed=0)


@pytest.mark.parametrize("cache", CACHES)
def test_a_parquet_value_is_printed_as_a_number(tmp_path: Path, cache: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"a": [1.0, float("nan"), 2.0], "b": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(RunError) as caught:
        load_data(config(path, cache), seed=0)
    assert "the value nan in column 'a' at data row 2 is NaN" in str(caught.value)
    assert "np.float64" not in str(caught.value)


@pytest.mark.parametrize("cache", CACHES)
def test_an_empty_parquet_file_is_refused_alike(tmp_path: Path, cache: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.float64())}), path)
    with pytest.raises(RunError, match=r"empty.parquet: the Parquet file holds no rows$"):
        load_data(config(path, cache), seed=0)
