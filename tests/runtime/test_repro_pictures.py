"""Tests of the runtime's reproducibility helpers and sample pictures."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import gencompile.files as files_module
from gencompile.runtime.pictures import save_image_grid, save_samples, save_scatter
from gencompile.runtime.repro import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    set_seed,
    sha256_file,
    weights_sha256,
)

# --- set_seed / weights_sha256 ----------------------------------------------------------


@pytest.fixture
def restore_determinism():
    """Op determinism is process-wide; switch it back off for the rest of the test session."""
    from tensorflow.python.framework import config as tf_config  # private, test-only

    was_enabled = tf_config.is_op_determinism_enabled()
    yield
    if not was_enabled:
        tf_config.disable_op_determinism()


def _fit_small_model(seed: int) -> tuple[str, str]:
    """Build and briefly train a small model; return hashes after init and after training."""
    set_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    initial = weights_sha256(model)
    x = np.random.normal(size=(64, 4)).astype("float32")  # seeded by set_seed
    y = x.sum(axis=1, keepdims=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=True, verbose=0)
    return initial, weights_sha256(model)


def test_set_seed_makes_inits_and_fits_bit_identical(restore_determinism):
    first = _fit_small_model(7)
    second = _fit_small_model(7)
    other = _fit_small_model(8)
    assert first == second
    assert first[0] != other[0] and first[1] != other[1]
    assert first[0] != first[1]  # training changed the weights


def test_weights_sha256_sees_every_value_and_shape():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.set_weights([np.zeros((2, 2), "float32"), np.zeros(2, "float32")])
    base = weights_sha256(model)
    assert len(base) == 64 and base == weights_sha256(model)
    model.set_weights([np.zeros((2, 2), "float32"), np.array([0.0, 1e-30], "float32")])
    assert weights_sha256(model) != base

    # the same six zeros in the same order, but shaped (1, 3) + (3,) instead of (2, 2) + (2,)
    reshaped = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    reshaped.set_weights([np.zeros((1, 3), "float32"), np.zeros(3, "float32")])
    assert weights_sha256(reshaped) != base


# --- atomic writes ----------------------------------------------------------------------


def test_atomic_writes_leave_no_temp_files(tmp_path: Path):
    target = tmp_path / "sub" / "data.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    atomic_write_text(tmp_path / "note.txt", "héllo\n")
    assert (tmp_path / "note.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(os.listdir(tmp_path)) == ["note.txt", "sub"]
    assert os.listdir(tmp_path / "sub") == ["data.bin"]
    mode = (tmp_path / "note.txt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "keep.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.json"]


def test_many_files_are_written_whole_with_one_folder_sync_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    synced: list[Path] = []
    monkeypatch.setattr(files_module, "_fsync_directory", synced.append)
    written = {
        tmp_path / "a.py": b"a = 1\n",
        tmp_path / "b.py": b"b = 2\n",
        tmp_path / "pkg" / "c.py": b"c = 3\n",
        tmp_path / "pkg" / "d.py": b"d = 4\n",
    }
    files_module.atomic_write_files(written)
    assert {path: path.read_bytes() for path in written} == written
    assert synced == [tmp_path, tmp_path / "pkg"]
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_atomic_write_json_is_stable_and_plain(tmp_path: Path):
    path = tmp_path / "metrics.json"
    atomic_write_json(
        path,
        {"b": np.float32(0.5), "a": np.arange(3), "c": np.int64(4), "p": Path("x/y")},
    )
    text = path.read_text()
    assert text.endswith("}\n")
    assert (
        text
        == json.dumps({"a": [0, 1, 2], "b": 0.5, "c": 4, "p": "x/y"}, indent=2, sort_keys=True)
        + "\n"
    )


def test_sha256_file(tmp_path: Path):
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_image_grid_of_small_grey_images(tmp_path: Path):
    images = np.zeros((10, 8, 8, 1), dtype="float32")
    images[0] = 1.0
    images[1, :, :, 0] = 0.5
    path = save_image_grid(images, tmp_path / "grid.png")
    assert path == tmp_path / "grid.png"
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.mode == "L"
        # 4 columns x 3 rows of 32-px cells (8 px upscaled 4x) with 1-px separators
        assert picture.size == (4 * 32 + 3, 3 * 32 + 2)
        pixels = np.asarray(picture)
    assert pixels[0, 0] == 255 and pixels[31, 31] == 255  # first image, white
    assert pixels[0, 32] == 128  # separator
    assert pixels[0, 33] == 128  # second image: 0.5 -> 128 (rounded)
    assert pixels[0, 66] == 0  # third image, black
    assert pixels[97, 130] == 128  # empty cells of the last row are background
    assert os.listdir(tmp_path) == ["grid.png"]


def test_image_grid_rgb_columns_and_value_range(tmp_path: Path):
    images = np.full((3, 40, 20, 3), -1.0, dtype="float32")
    images[:, :, :, 0] = 1.0  # red in [-1, 1]
    path = save_image_grid(images, tmp_path / "rgb.png", columns=3, value_range=(-1.0, 1.0))
    with Image.open(path) as picture:
        assert picture.mode == "RGB"
        assert picture.size == (3 * 40 + 2, 80)  # 20 px wide -> scale 2
        assert tuple(np.asarray(picture)[0, 0]) == (255, 0, 0)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        save_image_grid(np.zeros((2, 8, 8, 2)), tmp_path / "bad.png")


def test_scatter_writes_png(tmp_path: Path):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(200, 2))
    reference = rng.normal(size=(500, 2))
    path = save_scatter(samples, tmp_path / "scatter.png", reference=reference, title="moons")
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        assert picture.size == (500, 500)
        assert len(set(picture.convert("RGB").getdata())) > 2  # something was drawn
    assert os.listdir(tmp_path) == ["scatter.png"]


def test_save_samples_dispatches_by_kind(tmp_path: Path):
    grid = save_samples(np.zeros((4, 8, 8, 1)), tmp_path / "images.png", kind="image")
    with Image.open(grid) as picture:
        assert picture.size == (65, 65)
    two = save_samples(np.ones((50, 2)), tmp_path / "two.png", kind="vector")
    many = save_samples(
        np.ones((50, 16)), tmp_path / "many.png", kind="vector", reference=np.zeros((80, 16))
    )
    one = save_samples(np.ones((50, 1)), tmp_path / "one.png", kind="vector")
    for path in (two, many, one):
        with Image.open(path) as picture:
            assert picture.format == "PNG"
