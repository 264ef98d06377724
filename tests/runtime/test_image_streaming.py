"""Streamed image folders: the files listed, decoded per batch, and the same fingerprint,
statistics and batches as the folder loaded whole."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gencompile import datafiles
from gencompile.data_size import streams
from gencompile.datafiles import count_images
from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from gencompile.runtime.image_folders import StreamedImages
from gencompile.runtime.streaming import StreamedSplit

SCALE = {"scale": [0.0, 1.0], "standardize": False}
STANDARDIZE = {"scale": None, "standardize": True}


def config(folder: Path, cache: str, preprocessing: dict = SCALE, **overrides: Any) -> dict:
    resolved = {
        "source": {"type": "images", "dir": str(folder), "size": [6, 5], "color": "grayscale"},
        "validation_split": 0.2,
        "preprocessing": preprocessing,
        "augmentation": [],
        "batch_size": 8,
        "shuffle_buffer": 10000,
        "with_labels": True,
        "drop_remainder": False,
        "cache": cache,
    }
    resolved.update(overrides)
    return resolved


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two classes of small images of mixed modes and sizes (some are resized)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label, count in (("cat", 23), ("dog", 18)):
        (root / label).mkdir(parents=True)
        for i in range(count):
            size = (5, 6) if i % 3 else (9, 7)
            if i % 2:
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels, "RGB").save(root / label / f"{i:03d}.png")
            else:
                pixels = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
                Image.fromarray(pixels, "L").save(root / label / f"{i:03d}.png")
    return root


def batches(dataset: Any) -> list[Any]:
    return [tuple(np.asarray(part) for part in batch) for batch in dataset]


def assert_same_batches(mine: list[Any], theirs: list[Any], exact: bool) -> None:
    assert len(mine) == len(theirs)
    for ours, other in zip(mine, theirs, strict=True):
        for a, b in zip(ours, other, strict=True):
            if exact:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("preprocessing", [SCALE, STANDARDIZE], ids=["scale", "standardize"])
def test_a_streamed_folder_equals_the_loaded_one(folder: Path, preprocessing: dict) -> None:
    loaded = load_data(config(folder, "memory", preprocessing), seed=4)
    streamed = load_data(config(folder, "stream", preprocessing), seed=4)
    assert isinstance(streamed.x_train, StreamedSplit)
    assert streamed.fingerprint == loaded.fingerprint
    assert streamed.element_shape == loaded.element_shape == (6, 5, 1)
    assert streamed.num_classes == loaded.num_classes == 2
    np.testing.assert_array_equal(streamed.y_train, loaded.y_train)
    np.testing.assert_allclose(streamed.preprocessor.center, loaded.preprocessor.center)
    np.testing.assert_allclose(streamed.preprocessor.factor, loaded.preprocessor.factor, 1e-12)
    np.testing.assert_allclose(streamed.preprocessor.offset, loaded.preprocessor.offset, 1e-12)
    exact = preprocessing is SCALE  # min/max are exact; merged moments round differently
    assert_same_batches(batches(streamed.epochs(0, 3)), batches(loaded.epochs(0, 3)), exact)
    assert_same_batches(batches(streamed.validation), batches(loaded.validation), exact)
    np.testing.assert_allclose(np.asarray(streamed.x_val), loaded.x_val, rtol=1e-6, atol=1e-6)


def test_a_resumed_stream_equals_an_uninterrupted_one(folder: Path) -> None:
    bundle = load_data(config(folder, "stream", with_labels=False), seed=2)
    per_epoch = bundle.steps_per_epoch
    whole = [np.asarray(b) for b in bundle.epochs(0, 3)]
    resumed = [np.asarray(b) for b in bundle.epochs(2, 3)]
    assert len(whole) == 3 * per_epoch
    for mine, theirs in zip(resumed, whole[2 * per_epoch :], strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_pass_decodes_every_image_once_in_file_order(folder: Path) -> None:
    images = StreamedImages(config(folder, "stream")["source"])
    assert len(images) == 41 and images.labels is not None
    starts, chunks = zip(*images.chunks(), strict=True)
    whole = np.concatenate(chunks)
    assert starts[0] == 0 and whole.shape == (41, 6, 5, 1) and whole.dtype == np.uint8
    np.testing.assert_array_equal(images.read(np.array([40, 3])), whole[[40, 3]])
    assert images.file(0).name == "000.png" and images.file(40).parent.name == "dog"


def test_auto_streams_a_folder_beyond_the_threshold(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = config(folder, "auto")["source"]
    assert count_images(folder) == 41
    assert not streams(source, "auto")  # 41 x 6 x 5 float32: 4,920 bytes
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 41 * 6 * 5 * 4 - 1)
    assert streams(source, "auto") and not streams(source, "memory")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 41 * 6 * 5 * 4)
    assert not streams(source, "auto")
    assert streams({**source, "color": "rgb"}, "auto")


def test_a_corrupt_image_is_one_clear_error(folder: Path) -> None:
    (folder / "dog" / "005.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(RunError, match=r"^cannot read image .*dog/005\.png: ") as caught:
        load_data(config(folder, "stream"), seed=0)
    assert "Traceback" not in str(caught.value)


def test_images_beside_class_folders_are_refused_when_streamed(folder: Path) -> None:
    Image.new("L", (5, 6)).save(folder / "stray.png")
    with pytest.raises(RunError, match="mixes image files with class folders"):
        load_data(config(folder, "stream"), seed=0)


def test_the_spec_and_the_runtime_agree_on_what_streams() -> None:
    from gencompile.spec.data import STREAMING_TYPES

    assert STREAMING_TYPES == datafiles.STREAMING_SOURCES


def test_the_pass_shows_progress_on_a_terminal(
    folder: Path, terminal_progress: io.StringIO
) -> None:
    load_data(config(folder, "stream"), seed=0)
    assert "data statistics" in terminal_progress.getvalue()
    assert "41/41" in terminal_progress.getvalue()


def test_float_and_32_bit_images_are_refused_naming_file_and_mode(tmp_path: Path) -> None:
    from gencompile.runtime.sources import decode_image

    Image.fromarray(np.full((2, 2), 0.5, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(RunError, match=r"f\.tif: .*PIL mode F\b.*save it as 8- or 16-bit"):
        decode_image(tmp_path / "f.tif", 2, 2, "grayscale")
    Image.fromarray(np.full((2, 2), 70000, np.int32)).save(tmp_path / "i.tif")
    with pytest.raises(RunError, match=r"i\.tif: .*PIL mode I, values 70000\.\.70000"):
        decode_image(tmp_path / "i.tif", 2, 2, "rgb")


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_netpbm_and_jfif_images_are_read_not_skipped(folder: Path, cache: str) -> None:
    pixels = np.arange(30, dtype=np.uint8).reshape(6, 5) * 8
    for i, suffix in enumerate((".pgm", ".ppm", ".pbm", ".jfif", ".tif")):
        Image.fromarray(pixels, "L").save(folder / "cat" / f"x{i}{suffix}")
    (folder / "cat" / "notes.txt").write_text("not an image")  # other files stay ignored
    (folder / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    assert count_images(folder) == 46
    loaded = load_data(config(folder, cache, validation_split=0.0), seed=0)
    assert len(loaded.x_train) == 46 and np.bincount(np.asarray(loaded.y_train)).tolist() == [
        28,
        18,
    ]


def test_images_in_a_folder_inside_a_class_folder_are_refused(folder: Path) -> None:
    (folder / "cat" / "more" / "deeper").mkdir(parents=True)
    Image.fromarray(np.zeros((6, 5), np.uint8), "L").save(
        folder / "cat" / "more" / "deeper" / "a.png"
    )
    (folder / "dog" / "empty_folder").mkdir()  # a folder without images is no loss
    (folder / "dog" / ".thumbnails").mkdir()
    Image.fromarray(np.zeros((6, 5), np.uint8), "L").save(folder / "dog" / ".thumbnails" / "t.png")
    where = r"cat/more/deeper/a\.png is in a folder inside the class folder .*one level deep"
    for cache in ("memory", "stream"):
        with pytest.raises(RunError, match=where):
            load_data(config(folder, cache), seed=0)


def test_image_files_of_a_type_not_read_are_refused_not_skipped(folder: Path) -> None:
    for name in ("b.ico", "a.psd"):
        (folder / "dog" / name).write_bytes(b"\0" * 16)
    with pytest.raises(
        RunError, match=r"dog holds 2 image file\(s\) of a type .*\(e\.g\. a\.psd\)"
    ):
        load_data(config(folder, "memory"), seed=0)


def _macos_artifacts(root: Path) -> None:
    """What macOS leaves in a folder it zipped: `__MACOSX/` (AppleDouble copies of every
    file), `.DS_Store` and `._name` files beside the images (not images, despite `.png`)."""
    apple_double = b"\x00\x05\x16\x07" + b"\0" * 60
    for image in sorted(root.rglob("*.png")):
        copy = root / "__MACOSX" / image.parent.relative_to(root) / f"._{image.name}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(apple_double)
        (image.parent / f"._{image.name}").write_bytes(apple_double)
        (image.parent / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "._x.heic").write_bytes(apple_double)  # an image type not read, were it one


@pytest.mark.parametrize("layout", ["class folders", "flat"])
@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_macos_artifacts_in_an_images_folder_are_skipped(
    folder: Path, cache: str, layout: str
) -> None:
    if layout == "flat":
        folder = folder / "cat"
    source = config(folder, cache, with_labels=layout != "flat")
    clean = load_data(source, seed=1)
    # What a build checks (the memory estimate, the number of classes) and what is loaded.
    counted, classes = count_images(folder), datafiles.class_folders(folder)
    _macos_artifacts(folder)
    again = load_data(source, seed=1)
    assert again.fingerprint == clean.fingerprint
    np.testing.assert_array_equal(np.asarray(again.x_val), np.asarray(clean.x_val))
    assert_same_batches(batches(again.epochs(0, 1)), batches(clean.epochs(0, 1)), exact=True)
    assert (count_images(folder), datafiles.class_folders(folder)) == (counted, classes)
