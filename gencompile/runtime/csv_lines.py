"""Where a CSV file's rows are: the line a data row starts on, the first row whose field
count is not the header's, and the longest line.

numpy's and pyarrow's readers report a row by its position among the data rows (or not at
all), skipping blank lines, while a person fixing the file looks for a line. These helpers
read the file again with Python's `csv` reader (quoted fields may span lines; blank lines
are not rows, as for both readers), so only a file with a problem pays for the pass, and the
loaded and streamed paths name the same line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

import numpy as np

from gencompile.datafiles import open_data_file
from gencompile.errors import RunError

WHERE = "data.source.path"
SCAN_BYTES = 1 << 20  # read at a time when looking for line ends


def records(text: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line it starts on, fields) of every record of CSV `text` (a text stream opened with
    newline=""), the header first; blank lines are not records."""
    reader = csv.reader(text)
    start = 1
    for fields in reader:
        if fields:
            yield start, fields
        start = reader.line_num + 1


def _records(path: str) -> Iterator[tuple[int, list[str]]]:
    """`records` of a CSV file."""
    with open_data_file(path, WHERE) as handle:
        yield from records(io.TextIOWrapper(handle, encoding="utf-8", newline=""))


def ragged_row(path: str) -> RunError | None:
    """The error naming the first data row whose field count is not the header's; None
    when every row has the header's (or the file cannot be read so far)."""
    try:
        records = _records(path)
        _, header = next(records)
        for line, fields in records:
            if len(fields) != len(header):
                return RunError(
                    f"{path} line {line} has {len(fields)} field{'s' * (len(fields) != 1)}, "
                    f"the header has {len(header)}: fix or drop that row"
                )
    except (csv.Error, UnicodeDecodeError, OSError, StopIteration, RunError):
        return None
    return None


def data_row_line(path: str, row: int) -> int:
    """The line data row `row` (from 0) starts on; row + 2 (one header line, no blank
    lines) when the file cannot be read that far."""
    try:
        for index, (line, _) in enumerate(_records(path)):
            if index == row + 1:  # the header is record 0
                return line
    except (csv.Error, UnicodeDecodeError, OSError, RunError):
        pass
    return row + 2


def longest_line(path: str) -> tuple[int, int]:
    """(line number, length in bytes without its newline) of a file's longest physical line,
    found by a vectorised scan for newlines: one block of the file in memory at a time."""
    best_line, best_length = 1, 0
    line, start, offset = 1, 0, 0  # line number and offset where the current line starts
    with open_data_file(path, WHERE) as handle:
        for block in iter(lambda: handle.read(SCAN_BYTES), b""):
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")) + offset
            if ends.size:
                lengths = np.diff(ends, prepend=start - 1) - 1
                longest = int(np.argmax(lengths))
                if lengths[longest] > best_length:
                    best_line, best_length = line + longest, int(lengths[longest])
                line, start = line + ends.size, int(ends[-1]) + 1
            offset += len(block)
    if offset - start > best_length:  # a last line without a newline
        best_line, best_length = line, offset - start
    return best_line, best_length
