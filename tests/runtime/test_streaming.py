"""Streamed npy data: the same batches, fingerprint and statistics as loaded data, read
from the file batch by batch with flat memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gencompile import datafiles
from gencompile.data_size import streams
from gencompile.datafiles import MappedNpy
from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from gencompile.runtime.streaming import StreamedSplit

ROOT = Path(__file__).resolve().parents[2]
SCALE = {"scale": [0.0, 1.0], "standardize": False}
STANDARDIZE = {"scale": None, "standardize": True}


def config(path: Path, cache: str, preprocessing: dict = SCALE, **overrides: Any) -> dict:
    resolved = {
        "source": {"type": "npy", "path": str(path)},
        "validation_split": 0.1,
        "preprocessing": preprocessing,
        "augmentation": [],
        "batch_size": 32,
        "shuffle_buffer": 10000,
        "with_labels": False,
        "drop_remainder": False,
        "cache": cache,
    }
    resolved.update(overrides)
    return resolved


@pytest.fixture
def vectors(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "x.npy"
    np.save(path, (rng.normal(size=(500, 6)) * 5 + 3).astype(np.float32))
    return path


def batches(dataset: Any) -> list[np.ndarray]:
    return [np.asarray(b) for b in dataset]


@pytest.mark.parametrize("preprocessing", [SCALE, STANDARDIZE], ids=["scale", "standardize"])
def test_streamed_equals_loaded(vectors: Path, preprocessing: dict) -> None:
    loaded = load_data(config(vectors, "memory", preprocessing), seed=7)
    streamed = load_data(config(vectors, "stream", preprocessing), seed=7)
    assert isinstance(streamed.x_train, StreamedSplit)
    assert streamed.fingerprint == loaded.fingerprint  # `cache` is not part of the data
    assert streamed.steps_per_epoch == loaded.steps_per_epoch
    for mine, theirs in zip(
        batches(streamed.epochs(0, 3)), batches(loaded.epochs(0, 3)), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6)
    for mine, theirs in zip(batches(streamed.validation), batches(loaded.validation), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(streamed.x_val), loaded.x_val, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streamed.x_train[5:9], loaded.x_train[5:9], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streamed.preprocessor.factor, loaded.preprocessor.factor, rtol=1e-12)


def test_min_max_scaling_streams_bit_identical_batches(vectors: Path) -> None:
    loaded = load_data(config(vectors, "memory"), seed=3)
    streamed = load_data(config(vectors, "stream"), seed=3)
    for mine, theirs in zip(
        batches(streamed.epochs(0, 2)), batches(loaded.epochs(0, 2)), strict=True
    ):
        assert np.array_equal(mine, theirs)


def test_resumed_epochs_equal_uninterrupted_ones(vectors: Path) -> None:
    bundle = load_data(config(vectors, "stream"), seed=5)
    whole = batches(bundle.epochs(0, 3))
    per_epoch = bundle.steps_per_epoch
    resumed = batches(bundle.epochs(2, 3))
    assert len(resumed) == per_epoch
    for mine, theirs in zip(resumed, whole[2 * per_epoch :], strict=True):
        assert np.array_equal(mine, theirs)
    # every training example once an epoch, in a new order each epoch
    first = np.concatenate(whole[:per_epoch])
    second = np.concatenate(whole[per_epoch : 2 * per_epoch])
    assert len(first) == len(bundle.x_train)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.sort(first, axis=0), np.sort(second, axis=0))


def test_fixed_steps_and_drop_remainder_have_static_batches(vectors: Path) -> None:
    bundle = load_data(config(vectors, "stream", drop_remainder=True), seed=1)
    stream = bundle.epochs(0, 2, steps=4)
    assert stream.element_spec.shape.as_list() == [32, 6]
    assert [len(b) for b in batches(stream)] == [32] * 8


def test_images_stream_with_augmentation(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    np.save(path, np.random.default_rng(0).integers(0, 255, (64, 8, 8), dtype=np.uint8))
    augmentation = [{"type": "random_flip", "mode": "horizontal"}]
    bundle = load_data(config(path, "stream", augmentation=augmentation), seed=0)
    assert bundle.kind == "image" and bundle.element_shape == (8, 8, 1)
    first = next(iter(bundle.train))
    assert first.shape == (32, 8, 8, 1)
    assert float(np.min(first)) >= 0.0 and float(np.max(first)) <= 1.0


def test_a_value_that_is_not_finite_is_named_by_example(tmp_path: Path) -> None:
    x = np.ones((300, 4), np.float32)
    x[217, 2] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, x)
    with pytest.raises(RunError, match=r"example 217 \(index \[217, 2\]\) is NaN"):
        load_data(config(path, "stream"), seed=0)


def test_auto_streams_only_beyond_the_threshold(
    vectors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = {"type": "npy", "path": str(vectors)}
    assert not streams(source, "auto")  # 12 KB of values
    assert streams(source, "stream") and not streams(source, "memory")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 1000)
    assert streams(source, "auto") and not streams(source, "memory")
    with pytest.raises(RunError, match=r"data\.cache must be one of"):
        streams(source, "disk")


def test_reading_rows_leaves_no_mapped_pages_resident(tmp_path: Path) -> None:
    status = Path("/proc/self/status")  # Linux: the resident set, by kind of page
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((40_000, 256), np.float32))  # 41 MB
    mapped = MappedNpy(path, "data.source.path")

    def resident_file_kb() -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith("RssFile:"))
        return int(line.split()[1])

    before = resident_file_kb()
    order = np.random.default_rng(0).permutation(len(mapped))
    for start in range(0, len(order), 4096):
        assert mapped.rows(order[start : start + 4096]).shape == (
            len(order[start : start + 4096]),
            256,
        )
    assert resident_file_kb() - before < 8 * 1024  # far below the file's 40 MiB


def test_the_statistics_pass_shows_progress_on_a_terminal(
    vectors: Path, terminal_progress: io.StringIO
) -> None:
    load_data(config(vectors, "stream"), seed=0)
    assert "data statistics" in terminal_progress.getvalue()
    assert "500/500" in terminal_progress.getvalue()


EXITS = """
import sys
import numpy as np
from gencompile.runtime.data import load_data
config = {
    "source": {"type": "npy", "path": sys.argv[1]}, "validation_split": 0.1,
    "preprocessing": {"scale": [0.0, 1.0], "standardize": False}, "augmentation": [],
    "batch_size": 32, "shuffle_buffer": 100, "with_labels": False, "drop_remainder": False,
    "cache": "stream",
}
data = load_data(config, seed=0)
first = next(iter(data.train))  # a data-dependent initialisation: a temporary iterator
batches = sum(1 for _ in data.epochs(0, 2))  # fit: every epoch read to its end
held_out = sum(1 for _ in data.validation)
print(batches, held_out, first.shape)
"""


@pytest.mark.slow
def test_a_process_that_read_streamed_data_as_training_does_exits(vectors: Path) -> None:
    """tf.numpy_function reads: an iterator still reading at interpreter exit can hang it
    (a TensorFlow limitation); training leaves none, and its process must end."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", EXITS, str(vectors)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["30", "2"]  # 450 / 32 -> 15 a epoch; 50 / 32 -> 2


# --------------------------------------------------------------------------- compiler


def lowered(*overrides: str) -> Any:
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec

    return lower(load_spec(ROOT / "specs" / "vae_digits.yaml", list(overrides)))


def test_streamed_data_counts_its_indices_not_its_values(tmp_path: Path) -> None:
    from gencompile.compiler.resources import estimate_memory

    path = tmp_path / "x.npy"
    np.save(path, np.zeros((20_000, 64), np.float32))
    given = f"data.source={{type: npy, path: {path}}}"
    metrics = "evaluation.metrics=[elbo]"
    loaded = estimate_memory(lowered(given, metrics, "data.cache=memory")).data_bytes
    streamed_plan = lowered(given, metrics, "data.cache=stream")
    assert streamed_plan.data["cache"] == "stream"
    streamed = estimate_memory(streamed_plan).data_bytes
    assert loaded == 20_000 * 64 * datafiles.BYTES_PER_LOADED_VALUE
    expected = 20_000 * datafiles.BYTES_PER_STREAMED_EXAMPLE + datafiles.STREAM_FIXED_BYTES
    assert streamed == expected


def test_only_file_sources_may_be_told_to_stream() -> None:
    from gencompile.errors import SpecError

    only = r"only npy, csv, parquet, images, tfrecord sources stream"
    with pytest.raises(SpecError, match=rf"data\.cache.*{only}"):
        lowered("data.cache=stream")
