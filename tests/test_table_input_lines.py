"""The CSV of `score --input` / `impute --input`: blank lines skipped as the training readers
skip them, and every message naming the line a row starts on (a quoted cell may span
lines)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.table_input import number, read_csv


def table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode())
    return path


def values(path: Path) -> list[list[float]]:
    header, rows = read_csv(path)
    return [
        [number(c, i, j, header, path) for j, c in enumerate(row)] for i, row in enumerate(rows)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n3,4\n\n",  # an editor's extra final newline
        "a,b\n1,2\n\n\n3,4\n",
        "a,b\r\n1,2\r\n\r\n3,4\r\n\r\n",
        "\na,b\n1,2\n3,4",  # before the header too
    ],
)
def test_blank_lines_are_not_rows(tmp_path: Path, text: str) -> None:
    assert values(table(tmp_path, text)) == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a,b\n"1\n",2\n3,x\n', "line 4, column 2 ('b'): 'x' is not a number"),
        ("a,b\n1,2\n\n\n3,x\n", "line 5, column 2 ('b'): 'x' is not a number"),
        ("a,b\n\n1,1e999\n", "line 3, column 2 ('b'): '1e999' is not a finite number (it reads as"),
        ('a,b\n"1\n\n",2\n\n3\n', "line 6: 1 cells, the header has 2"),
    ],
)  # fmt: skip
def test_messages_name_the_line_a_row_starts_on(tmp_path: Path, text: str, message: str) -> None:
    path = table(tmp_path, text)
    with pytest.raises(RunError) as caught:
        values(path)
    assert str(caught.value).startswith(f"{path}, {message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [("\n\n", "is empty: it needs a header row"), ("a,b\n\n\n", "has a header but no data rows")],
)
def test_a_file_of_blank_lines_has_no_rows(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RunError, match=message):
        read_csv(table(tmp_path, text))


def test_empty_nan_and_na_cells_are_missing(tmp_path: Path) -> None:
    [[a, b, c, d]] = values(table(tmp_path, "a,b,c,d\n, NA ,nan,1\n"))
    assert math.isnan(a) and math.isnan(b) and math.isnan(c) and d == 1.0
