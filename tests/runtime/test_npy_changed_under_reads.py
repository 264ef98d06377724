"""A streamed .npy file rewritten while a run reads it (`np.save` over it by an export
script) is one clear error, never a SIGBUS that kills the process without a word; a
file replaced by a rename keeps being read as it was opened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gencompile
from gencompile.datafiles import MappedNpy
from gencompile.errors import RunError

ROOT = Path(gencompile.__file__).resolve().parents[1]  # the code under test
CHANGED = "changed while it was being read"


def test_a_file_cut_short_under_the_reader_is_an_error_not_sigbus(tmp_path: Path) -> None:
    """In a child process: on a memory map the kernel kills the reader (status -7)."""
    script = f"""
import numpy as np
from gencompile.datafiles import MappedNpy
from gencompile.errors import RunError
path = {str(tmp_path / "d.npy")!r}
np.save(path, np.arange(400_000, dtype=np.float32).reshape(100_000, 4))
data = MappedNpy(path, "data.source.path")
assert data.rows(np.array([5, 99_999]))[1, 0] == 399_996
np.save(path, np.zeros((10, 4), np.float32))  # truncates the file, then writes it
for read in (lambda: data.rows(np.array([99_999])), lambda: data.chunk(0, 100_000)):
    try:
        read()
    except RunError as err:
        print(err)
    else:
        raise SystemExit("read a changed file")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(CHANGED in line for line in lines), lines
    assert "write new data to another file" in lines[0]  # training adds how to go on


def test_a_file_rewritten_at_the_same_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.ones((50, 3)))
    data = MappedNpy(path, "data.source.path")
    assert data.rows(np.array([3]))[0].tolist() == [1.0, 1.0, 1.0]
    np.save(path, np.full((50, 3), 2.0))
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1_000_000))  # a coarse clock's tick
    with pytest.raises(RunError, match=CHANGED):
        data.rows(np.array([3]))


def test_a_file_replaced_by_a_rename_is_read_as_it_was_opened(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.arange(12.0).reshape(4, 3))
    data = MappedNpy(path, "data.source.path")
    np.save(tmp_path / "new.npy", np.zeros((2, 3)))
    os.replace(tmp_path / "new.npy", path)
    assert data.rows(np.array([3, 0])).tolist() == [[9.0, 10.0, 11.0], [0.0, 1.0, 2.0]]
    assert data.chunk(1, 3).tolist() == [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]


@pytest.mark.parametrize("fortran", [False, True])
def test_rows_and_chunks_read_the_array(tmp_path: Path, fortran: bool) -> None:
    array = np.arange(7 * 2 * 3, dtype=">i4").reshape(7, 2, 3)
    np.save(tmp_path / "d.npy", np.asfortranarray(array) if fortran else array)
    data = MappedNpy(tmp_path / "d.npy", "data.source.path")
    picked = np.array([6, 0, 3, 3])
    assert np.array_equal(data.rows(picked), array[picked])
    assert np.array_equal(data.chunk(2, 6), array[2:6])
    assert data.rows(picked).flags.writeable
