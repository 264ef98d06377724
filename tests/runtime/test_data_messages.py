"""Data errors say where (the shard and the record within it, the line) and what to do,
in one short line: a huge cell is shortened, a cut-off shard is not TensorFlow's fragment,
a text file in another encoding names data.source.encoding."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from gencompile.runtime.text_data import read_source_text
from tests.runtime.test_tables import config as csv_config
from tests.runtime.test_tfrecord import config, example, feature, vector_record, write_shards

SPECS = Path(__file__).resolve().parents[2] / "specs"


def bad_record(index: int, values: list[float], label: int) -> object:
    """A maker of shards whose record `index` (counting over all shards) is replaced."""

    def make(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
        if i == index:
            x = np.asarray(values, np.float32)
            return example(pixels=feature(x, "float"), label=feature([label], "int64")), x
        return vector_record(rng, i)

    return make


@pytest.mark.parametrize("cache", ["memory", "stream"])
@pytest.mark.parametrize(
    ("values", "label", "said"),
    [
        ([1, float("nan"), 3, 4, 5, 6], 1, r", value \[0, 1, 0\] is NaN; clean the data first"),
        ([1, 2, 3, 4, 5, 6], -1, r" is negative; labels must be >= 0"),
    ],
)
def test_a_bad_value_or_label_names_its_shard_and_record(
    tmp_path: Path, cache: str, values: list[float], label: int, said: str
) -> None:
    write_shards(tmp_path / "s", [20, 20, 20], bad_record(45, values, label))
    with pytest.raises(RunError) as caught:
        load_data(config(tmp_path / "s" / "*.tfrecord", cache), seed=0)
    message = str(caught.value)
    assert "shard-2.tfrecord, record 5 (counting from 0)" in message, message
    assert re.search(said, message), message


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_shard_cut_inside_a_record_says_to_re_export_it(tmp_path: Path, cache: str) -> None:
    write_shards(tmp_path / "s", [40], vector_record)
    shard = tmp_path / "s" / "shard-0.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-30])
    with pytest.raises(RunError) as caught:
        load_data(config(tmp_path / "s" / "*.tfrecord", cache), seed=0)
    message = str(caught.value)
    assert message.startswith(f"{shard}: the record at byte ")
    assert "cut short" in message and "re-export the shard or leave it out" in message
    assert "'" not in message and "failed with" not in message and "\n" not in message


@pytest.mark.parametrize("cache", ["memory", "stream"])
@pytest.mark.parametrize(("cell", "said"), [("x" * 100_000, "non-numeric"), ("9" * 400, "the")])
def test_a_huge_csv_cell_is_shortened_in_the_message(
    tmp_path: Path, cache: str, cell: str, said: str
) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(20)) + f"1,{cell}\n")
    with pytest.raises(RunError) as caught:
        load_data(csv_config(path, cache), seed=0)
    message = str(caught.value)
    assert len(message) < 300, message[:400]
    assert f"{said} " in message and f"{cell[:20]!r}… ({len(cell):,} characters)" in message
    assert "column 'b' at data row 21 (line 22)" in message


def test_a_text_file_in_another_encoding_names_the_encoding_setting(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    text = tmp_path / "latin.txt"
    text.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    source = {"type": "text", "path": str(text)}
    with pytest.raises(RunError, match=r"set data\.source\.encoding .*, e\.g\. latin-1"):
        read_source_text(source, 0)
    assert read_source_text({**source, "encoding": "latin-1"}, 0).startswith("café")
    spec = tmp_path / "charlm.yaml"
    shutil.copy(SPECS / "charlm_text.yaml", spec)
    code, _, err = run_cli("validate", str(spec), "--set", f"data.source.path={text}")
    assert code == 2 and "set data.source.encoding to the file's encoding, e.g. latin-1" in err


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_nan_in_an_npy_names_the_file_loaded_as_streamed(tmp_path: Path, cache: str) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    x[23, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    setup = csv_config(tmp_path / "nan.npy", cache)
    setup["source"] = {"type": "npy", "path": str(tmp_path / "nan.npy")}
    with pytest.raises(RunError) as caught:
        load_data(setup, seed=0)
    assert str(caught.value) == (
        f"data.source ({tmp_path / 'nan.npy'}): example 23 (index [23, 1]) is NaN; "
        "clean the data first"
    )


def test_a_non_numeric_cell_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4x\n")
    with pytest.raises(RunError, match=r"'4x' in column 'b' .*\(line 3\); fix that cell, or list"):
        load_data(csv_config(path, "memory"), seed=0)


def test_a_damaged_image_says_what_to_do(tmp_path: Path) -> None:
    from gencompile.runtime.sources import decode_image

    (tmp_path / "im.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(RunError, match=r"im\.png: .*; replace or remove the file, or export"):
        decode_image(tmp_path / "im.png", 4, 4, "grayscale")


@pytest.mark.parametrize("cache", ["memory", "stream"])
@pytest.mark.parametrize(
    ("name", "said"),
    [("d.csv.gz", r"d\.csv\.gz is gzip-compressed, not CSV text; decompress it first \(gunzip"),
     ("d.csv", r"d\.csv is a Parquet file, not CSV text; use type: parquet")],
)  # fmt: skip
def test_a_binary_file_given_as_csv_is_named_as_what_it_is(
    tmp_path: Path, cache: str, name: str, said: str
) -> None:
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
    else:
        pq.write_table(pa.table({"a": [1.0, 2.0], "b": [3.0, 4.0]}), path)
    with pytest.raises(RunError, match=said):
        load_data(csv_config(path, cache), seed=0)
