"""`score --input` of a CSV with a missing cell: the message names the line the row starts on
(blank lines and multi-line cells counted as the reader counts them) and what the cell holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.scoring import read_input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,\n", "line 3, column 2 ('b') is empty: "),
        ("a,b\n1,2\n\n\n3, \n", "line 5, column 2 ('b') is empty: "),
        ('a,b\n"1\n",2\nNA,4\n', "line 4, column 1 ('a') holds 'NA', a missing value: "),
        ("a,b\n\n1,nan\n", "line 3, column 2 ('b') holds 'nan', a missing value: "),
    ],
)  # fmt: skip
def test_a_missing_cell_is_named_where_it_is_and_as_it_reads(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode())
    with pytest.raises(RunError) as caught:
        read_input(path)
    assert str(caught.value) == (
        f"{path}, {message}every value is needed to score a row; fill it first (gencompile impute)"
    )
