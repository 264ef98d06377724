"""The CSV/Parquet conversion cache: a damaged entry is converted again with a warning,
never trusted; a cache folder that cannot be made names GENCOMPILE_CACHE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from tests.runtime.test_tables import config, write_csv


@pytest.mark.parametrize("damaged", ["-x.npy", "-y.npy"])
def test_a_damaged_cache_entry_is_converted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damaged: str
) -> None:
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "cache"))
    path = write_csv(tmp_path / "d.csv", rows=60)
    setup = config(path, "stream", label_column="kind")
    first = load_data(setup, seed=0)
    (entry,) = (tmp_path / "cache" / "tables").glob(f"*{damaged}")
    entry.write_bytes(entry.read_bytes()[:140])  # a partial copy
    with pytest.warns(UserWarning, match=r"cached conversion of .*d\.csv in .* is damaged"):
        again = load_data(setup, seed=0)
    assert again.fingerprint == first.fingerprint
    assert np.array_equal(again.y_train, first.y_train)
    assert entry.stat().st_size > 140  # mended


def test_a_cache_folder_that_cannot_be_made_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notadir").write_text("")
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "notadir"))
    path = write_csv(tmp_path / "d.csv", rows=20)
    with pytest.raises(
        RunError, match=r"table cache folder .*notadir/tables: .*set GENCOMPILE_CACHE"
    ):
        load_data(config(path, "stream"), seed=0)
