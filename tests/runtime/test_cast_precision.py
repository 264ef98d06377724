"""Values float32 would round (unix timestamps, int64 counts) are preprocessed from their
raw values before the float32 cast, loaded or streamed alike; data float32 holds well
enough trains on exactly the values it always did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from gencompile.runtime.pipeline import split_indices
from gencompile.runtime.preprocessing import Preprocessor

STANDARDIZE = {"scale": None, "standardize": True}
TIMES = 1_700_000_000 + 10 * np.arange(100, dtype=np.int64)  # float32 spacing there: 128


def config(source: dict, cache: str, preprocessing: dict = STANDARDIZE) -> dict:
    return {
        "source": source,
        "validation_split": 0.2,
        "preprocessing": preprocessing,
        "augmentation": [],
        "batch_size": 16,
        "shuffle_buffer": 100,
        "with_labels": False,
        "drop_remainder": False,
        "cache": cache,
    }


def table(tmp_path: Path, kind: str, values: np.ndarray) -> dict:
    """A source of two columns: t = `values`, v small numbers."""
    v = np.arange(len(values)) % 7
    if kind == "npy":
        np.save(tmp_path / "d.npy", np.stack([values, v.astype(values.dtype)], axis=1))
        return {"type": "npy", "path": str(tmp_path / "d.npy")}
    common = {"columns": None, "label_column": None}
    if kind == "parquet":
        pq.write_table(pa.table({"t": values, "v": v}), tmp_path / "d.parquet")
        return {"type": "parquet", "path": str(tmp_path / "d.parquet"), **common}
    lines = ["t,v", *(f"{t},{k}" for t, k in zip(values, v, strict=True))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    return {"type": "csv", "path": str(tmp_path / "d.csv"), **common}


def exact_standardized(values: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) t standardized in float64 with the training split's mean/std."""
    train_idx, val_idx = split_indices(len(values), 0.2, seed)
    t = values.astype(np.float64)
    mean, std = t[train_idx].mean(), t[train_idx].std()
    return (t[train_idx] - mean) / std, (t[val_idx] - mean) / std


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENCOMPILE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("kind", ["csv", "parquet", "npy"])
def test_timestamps_are_standardized_before_the_float32_cast(tmp_path: Path, kind: str) -> None:
    source = table(tmp_path, kind, TIMES)
    train, held_out = exact_standardized(TIMES)
    prints = set()
    for cache in ("memory", "stream"):
        bundle = load_data(config(source, cache), seed=0)
        x_train, x_val = np.asarray(bundle.x_train), np.asarray(bundle.x_val)
        assert x_train.dtype == np.float32
        assert len(np.unique(x_train[:, 0])) == len(train)  # 9 distinct values before the fix
        np.testing.assert_allclose(x_train[:, 0], train, atol=1e-6)
        np.testing.assert_allclose(x_val[:, 0], held_out, atol=1e-6)
        batch = next(iter(bundle.train))
        assert len(np.unique(np.asarray(batch)[:, 0])) == len(batch)  # what training reads
        prints.add(bundle.fingerprint)
    assert len(prints) == 1  # loaded and streamed data are the same data


@pytest.mark.parametrize("kind", ["csv", "npy"])
@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_timestamps_without_preprocessing_are_refused_with_advice(
    tmp_path: Path, kind: str, cache: str
) -> None:
    source = table(tmp_path, kind, TIMES)
    plain = {"scale": None, "standardize": False}
    with pytest.raises(RunError) as caught:
        load_data(config(source, cache, plain), seed=0)
    message = str(caught.value)
    name = "'t'" if kind == "csv" else "'x0'"
    assert f"feature {name} loses precision as float32 (values 1700000000 to 1700000990" in message
    assert "set data.preprocessing.standardize: true" in message and "offset" in message


@pytest.mark.parametrize("kind", ["npy", "parquet", "csv"])
@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_ids_beyond_what_float64_holds_are_refused(tmp_path: Path, cache: str, kind: str) -> None:
    ids = (np.uint64(2**60) + np.arange(40, dtype=np.uint64)).astype(np.uint64)
    source = table(tmp_path, kind, ids)
    with pytest.raises(RunError, match=r"integers such as 1152921504606847015 are beyond 2\*\*53"):
        load_data(config(source, cache), seed=0)


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_data_float32_holds_well_trains_on_the_values_it_always_did(
    tmp_path: Path, cache: str
) -> None:
    """float64 data near 1 (moons, decimals): preprocessed from its float32 cast, as before,
    so that earlier runs reproduce bit for bit."""
    raw = np.random.default_rng(3).normal(size=(200, 3)) * [1.0, 5.0, 0.01] + [0.5, -2.0, 3.0]
    np.save(tmp_path / "d.npy", raw)
    assert not np.array_equal(raw, raw.astype(np.float32))  # float32 rounds it, a little
    bundle = load_data(config({"type": "npy", "path": str(tmp_path / "d.npy")}, cache), seed=0)
    train_idx, _ = split_indices(len(raw), 0.2, 0)
    as_before = Preprocessor.fit(raw.astype(np.float32)[train_idx], "vector", None, True)
    expected = as_before.transform(raw.astype(np.float32)[train_idx])
    if cache == "memory":
        assert np.array_equal(np.asarray(bundle.x_train), expected)
    else:  # streamed statistics are merged chunk by chunk: equal up to float64 rounding
        np.testing.assert_allclose(np.asarray(bundle.x_train), expected, atol=1e-6)


def test_streamed_table_caches_stay_float32_unless_float32_rounds(tmp_path: Path) -> None:
    """The float32 cache (half the disk and reads) for ordinary tables."""
    plain: dict[str, Any] = table(tmp_path, "csv", np.arange(100, dtype=np.int64))
    load_data(config(plain, "stream"), seed=0)
    (tmp_path / "wide").mkdir()
    load_data(config(table(tmp_path / "wide", "csv", TIMES), "stream"), seed=0)
    kinds = {np.load(f, mmap_mode="r").dtype.str for f in (tmp_path / "cache").rglob("*-x.npy")}
    assert kinds == {"<f4", "<f8"}


def int64_records(folder: Path, values: np.ndarray) -> Path:
    """Shards of records with an int64 feature [t, v]."""
    from tests.runtime.test_tfrecord import example, feature, write_shards

    def make(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
        row = [int(values[i]), i % 7]
        return example(tv=feature(row, "int64")), np.asarray(row)

    write_shards(folder, [60, len(values) - 60], make)
    return folder / "*.tfrecord"


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_int64_tfrecord_timestamps_are_standardized_before_the_cast(
    tmp_path: Path, cache: str
) -> None:
    from tests.runtime.test_tfrecord import config as records_config

    x = {"type": "values", "name": "tv", "shape": [2], "dtype": "int64"}
    files = int64_records(tmp_path / "s", TIMES)
    resolved = records_config(files, cache, x=x, label=None, preprocessing=STANDARDIZE)
    bundle = load_data(resolved, seed=0)
    train, held_out = exact_standardized(TIMES)
    for split, exact in ((bundle.x_train, train), (bundle.x_val, held_out)):
        values = np.sort(np.asarray(split)[:, 0])  # streamed records come in shard order
        np.testing.assert_allclose(values, np.sort(exact), atol=1e-6)
        assert len(np.unique(values)) == len(exact)
    plain = {"scale": None, "standardize": False}
    with pytest.raises(RunError, match=r"feature 'x0' loses precision as float32"):
        load_data(records_config(files, cache, x=x, label=None, preprocessing=plain), seed=0)


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_csv_ids_beyond_int64_are_refused(tmp_path: Path, cache: str) -> None:
    ids = [10**19 + 7 * i for i in range(300)]  # 20 digits: beyond int64, float64 merges them
    lines = ["t,v", *(f"{t},{i % 7}" for i, t in enumerate(ids))]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    source = {"type": "csv", "path": str(tmp_path / "d.csv"), "columns": None}
    with pytest.raises(RunError, match=r"column 't'.* beyond 2\*\*53"):
        load_data(config({**source, "label_column": None}, cache), seed=0)
