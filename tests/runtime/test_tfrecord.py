"""tfrecord sources: shards of tf.train.Example records, loaded whole when small and
streamed in shard order otherwise, with located spec errors checked before TensorFlow."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gencompile import datafiles
from gencompile.data_size import streams
from gencompile.errors import RunError, SpecError
from gencompile.runtime.data import load_data
from gencompile.runtime.records import RecordSplit
from gencompile.tfrecords import estimated_records, example_features

VALUES = {"type": "values", "name": "pixels", "shape": [2, 3], "dtype": "float32"}


def feature(values: Any, kind: str) -> tf.train.Feature:
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def example(**features: tf.train.Feature) -> bytes:
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write_shards(
    folder: Path, sizes: list[int], make: Any, compression: str | None = None
) -> list[np.ndarray]:
    """Shards shard-0.tfrecord... of `sizes` records; `make(rng, i)` -> (record, x)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    written, index = [], 0
    for s, size in enumerate(sizes):
        with tf.io.TFRecordWriter(str(folder / f"shard-{s}.tfrecord"), compression) as writer:
            for _ in range(size):
                record, x = make(rng, index)
                writer.write(record)
                written.append(x)
                index += 1
    return written


def vector_record(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
    x = rng.normal(size=6).astype(np.float32) * 3 + 1
    return example(pixels=feature(x, "float"), label=feature([i % 3], "int64")), x


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return buffer.getvalue()


def image_record(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
    pixels = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    return example(image=feature([png(pixels)], "bytes"), label=feature([i % 2], "int64")), pixels


def config(
    files: Path | str, cache: str, x: dict = VALUES, label: str | None = "label", **overrides: Any
) -> dict:
    resolved = {
        "source": {
            "type": "tfrecord",
            "files": str(files),
            "features": {"x": x, "label": label},
            "compression": "none",
        },
        "validation_split": 0.2,
        "preprocessing": {"scale": [0.0, 1.0], "standardize": False},
        "augmentation": [],
        "batch_size": 8,
        "shuffle_buffer": 16,
        "with_labels": label is not None,
        "drop_remainder": False,
        "cache": cache,
    }
    resolved.update(overrides)
    return resolved


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    write_shards(tmp_path / "shards", [30, 37, 11], vector_record)
    return tmp_path / "shards" / "*.tfrecord"


def rows(array: Any) -> set[bytes]:
    return {np.asarray(row).tobytes() for row in np.asarray(array)}


def test_streamed_records_equal_loaded_ones_but_for_the_order(shards: Path) -> None:
    loaded = load_data(config(shards, "memory"), seed=3)
    streamed = load_data(config(shards, "stream"), seed=3)
    assert isinstance(streamed.x_train, RecordSplit)
    assert streamed.fingerprint == loaded.fingerprint  # the same sha256 of the same values
    assert streamed.steps_per_epoch == loaded.steps_per_epoch == 8  # 62 training records
    assert streamed.element_shape == loaded.element_shape == (2, 3, 1)
    np.testing.assert_array_equal(streamed.preprocessor.center, loaded.preprocessor.center)
    np.testing.assert_array_equal(streamed.preprocessor.factor, loaded.preprocessor.factor)
    # the same records held out (by record index), each split in file order
    assert rows(streamed.x_val) == rows(loaded.x_val) and len(streamed.x_val) == 16
    assert rows(streamed.x_train) == rows(loaded.x_train)
    epoch = [(np.asarray(x), np.asarray(y)) for x, y in streamed.epochs(0, 1)]
    assert rows(np.concatenate([x for x, _ in epoch])) == rows(loaded.x_train)
    assert sorted(np.concatenate([y for _, y in epoch])) == sorted(loaded.y_train)
    held_out = np.concatenate([np.asarray(x) for x, _ in streamed.validation])
    np.testing.assert_array_equal(held_out, np.asarray(streamed.x_val))
    np.testing.assert_array_equal(streamed.x_train[3:5], np.asarray(streamed.x_train)[3:5])


def test_a_streamed_record_split_is_read_by_batches_in_one_pass(shards: Path) -> None:
    from gencompile.runtime import splits

    loaded = load_data(config(shards, "memory"), seed=3)
    streamed = load_data(config(shards, "stream"), seed=3)
    split = streamed.x_train
    whole = np.asarray(split)
    passes = []
    read = split._batches
    split._batches = lambda: passes.append(1) or read()  # count the passes over the shards
    pairs = list(splits.labelled_batches(split, streamed.y_train, 5))
    assert len(passes) == 1  # not one pass from the start per slice
    assert [len(x) for x, _ in pairs] == [5] * 12 + [2]  # 62 training records
    np.testing.assert_array_equal(np.concatenate([x for x, _ in pairs]), whole)
    np.testing.assert_array_equal(np.concatenate([y for _, y in pairs]), streamed.y_train)
    # a mean over the split is the loaded one's, in another order: equal to float rounding
    mean = splits.mean_of(splits.batches(streamed.x_val, 3))
    assert mean == pytest.approx(float(np.mean(loaded.x_val, dtype=np.float64)), rel=1e-12)


def class_sorted_record(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
    """Shards of one class each, as class-sorted exports often are (SORTED_SHARD a shard)."""
    x = rng.normal(size=6).astype(np.float32)
    x[0] = 10.0 * (i // SORTED_SHARD)
    return example(pixels=feature(x, "float"), label=feature([i // SORTED_SHARD], "int64")), x


SORTED_SHARD = 60


def test_subsets_of_streamed_records_are_the_loaded_ones(tmp_path: Path) -> None:
    """A reference or an initialisation reads a subset of a split: streamed shards give the
    rows loaded data gives, in its order, not the first records of the first shards."""
    from gencompile.runtime.metrics.samples import reference_data
    from gencompile.runtime.metrics.tstr import real_split
    from gencompile.runtime.splits import head, head_positions

    write_shards(tmp_path / "sorted", [SORTED_SHARD] * 3, class_sorted_record)
    files = tmp_path / "sorted" / "*.tfrecord"
    loaded = load_data(config(files, "memory", validation_split=0.5), seed=3)
    streamed = load_data(config(files, "stream", validation_split=0.5), seed=3)
    assert isinstance(streamed.x_val, RecordSplit)
    for name in ("x_train", "x_val"):
        np.testing.assert_array_equal(
            head(getattr(streamed, name), 40), head(getattr(loaded, name), 40)
        )
    classes = streamed.y_train[head_positions(streamed.x_train, 40)]
    np.testing.assert_array_equal(classes, loaded.y_train[:40])
    assert set(classes) == {0, 1, 2}  # not the first shard's class alone
    np.testing.assert_array_equal(reference_data(streamed), reference_data(loaded))
    # the labels that go with the subset's rows (train on synthetic, test on real)
    mine, mine_described = real_split(streamed.x_val, streamed.y_val, streamed)
    theirs, theirs_described = real_split(loaded.x_val, loaded.y_val, loaded)
    np.testing.assert_array_equal(mine.x, theirs.x)
    np.testing.assert_array_equal(mine.y, theirs.y)
    np.testing.assert_array_equal(mine.y, np.rint(mine.x[:, 0, 0, 0] / 10).astype(int))
    assert mine_described == theirs_described


def test_latent_tools_show_the_held_out_examples_loaded_data_shows(tmp_path: Path) -> None:
    """`latent reconstruct` (the first held-out examples) and `--from 3` (held-out example
    3) name the same examples, with their labels, whether the shards load or stream."""
    from types import SimpleNamespace

    from gencompile.latent import examples
    from gencompile.runtime.latent_actions import first_held_out

    write_shards(tmp_path / "sorted", [SORTED_SHARD] * 3, class_sorted_record)
    files = tmp_path / "sorted" / "*.tfrecord"
    found = {}
    for cache in ("memory", "stream"):
        run = SimpleNamespace(
            run_dir=tmp_path, data=load_data(config(files, cache, validation_split=0.5), seed=3)
        )
        found[cache] = (*first_held_out(run, 12), *examples(run, "3,0,40", "--from"))
    for mine, theirs in zip(found["stream"], found["memory"], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert len(set(found["stream"][1])) > 1  # a seeded subset, not the first shard's class


def test_rows_of_a_streamed_record_split_are_read_by_position(shards: Path) -> None:
    streamed = load_data(config(shards, "stream"), seed=3)
    whole = np.asarray(streamed.x_train)
    for key in ([40, 3, 40, 61, 0], slice(50, None, 4), -1, np.array([], np.int64)):
        np.testing.assert_array_equal(streamed.x_train[key], whole[key])
    with pytest.raises(IndexError):
        streamed.x_train[[62]]


def test_the_streamed_order_is_a_function_of_seed_and_epoch(shards: Path) -> None:
    bundle = load_data(config(shards, "stream", label=None), seed=5)
    again = load_data(config(shards, "stream", label=None), seed=5)
    per_epoch = bundle.steps_per_epoch
    whole = [np.asarray(b) for b in bundle.epochs(0, 3)]
    resumed = [np.asarray(b) for b in again.epochs(2, 3)]
    assert len(whole) == 3 * per_epoch
    for mine, theirs in zip(resumed, whole[2 * per_epoch :], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    first = np.concatenate(whole[:per_epoch])
    second = np.concatenate(whole[per_epoch : 2 * per_epoch])
    assert not np.array_equal(first, second) and rows(first) == rows(second)
    fixed = bundle.epochs(0, 2, steps=3)
    assert fixed.element_spec.shape.as_list() == [8, 2, 3, 1]
    assert sum(1 for _ in fixed) == 6


def test_encoded_images_decode_to_their_pixels(tmp_path: Path) -> None:
    written = write_shards(tmp_path / "images", [9, 9], image_record, compression="GZIP")
    x = {"type": "image", "name": "image", "size": [4, 5], "color": "grayscale"}
    source = config(tmp_path / "images" / "*", "memory", x=x)
    source["source"]["compression"] = "gzip"
    source["preprocessing"] = {"scale": None, "standardize": False}
    loaded = load_data({**source, "validation_split": 0.0}, seed=0)
    assert loaded.kind == "image" and loaded.num_classes == 2
    assert rows(loaded.x_train) == rows(np.stack(written)[..., None].astype(np.float32))
    streamed = load_data({**source, "validation_split": 0.0, "cache": "stream"}, seed=0)
    assert streamed.fingerprint == loaded.fingerprint
    resized = load_data({**source, "source": {**source["source"], "features": {
        "x": {**x, "size": [8, 10]}, "label": "label"}}}, seed=0)  # fmt: skip
    assert resized.element_shape == (8, 10, 1)
    assert float(resized.x_train.min()) >= 0 and float(resized.x_train.max()) <= 255


def test_16_bit_images_read_alike_from_a_folder_and_from_records(tmp_path: Path) -> None:
    """A 16-bit PNG is rescaled (v >> 8, TensorFlow's uint16 -> uint8) in an images folder
    as in a TFRecord: not clamped to 0 and 255 by PIL's convert("L")."""
    rng = np.random.default_rng(0)
    encoded = []
    for c in "ab":
        (tmp_path / "folder" / c).mkdir(parents=True)
        for i in range(3):
            pixels = (np.linspace(0, 65535, 20).reshape(4, 5) * rng.uniform(0.5, 1.0)).astype(
                np.uint16
            )
            Image.fromarray(pixels).save(tmp_path / "folder" / c / f"{i}.png")
            encoded.append((tmp_path / "folder" / c / f"{i}.png").read_bytes())
    (tmp_path / "records").mkdir()
    with tf.io.TFRecordWriter(str(tmp_path / "records" / "a.tfrecord")) as writer:
        for i, data in enumerate(encoded):
            writer.write(example(image=feature([data], "bytes"), label=feature([i // 3], "int64")))
    settings = {"validation_split": 0.0, "preprocessing": {"scale": None, "standardize": False}}
    x = {"type": "image", "name": "image", "size": [4, 5], "color": "grayscale"}
    records = load_data({**config(tmp_path / "records" / "*", "memory", x=x), **settings}, 0)
    folder = {"type": "images", "dir": str(tmp_path / "folder"), "size": [4, 5]}
    images = load_data(
        {**config("", "memory"), **settings, "source": {**folder, "color": "grayscale"}}, 0
    )
    assert rows(images.x_train) == rows(records.x_train)
    assert len(np.unique(np.asarray(images.x_train))) > 50  # not only 0 and 255


def test_moved_shards_keep_their_fingerprint(shards: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shards.parent.rename(moved)
    again = load_data(config(moved / "shard-*", "stream"), seed=3).fingerprint
    (tmp_path / "shards").symlink_to(moved)
    assert again == load_data(config(shards, "memory"), seed=3).fingerprint


def test_a_corrupt_record_is_one_clear_error(shards: Path) -> None:
    damaged = shards.parent / "shard-1.tfrecord"
    data = bytearray(damaged.read_bytes())
    data[200] ^= 0xFF  # inside a record: its checksum no longer matches
    damaged.write_bytes(bytes(data))
    with pytest.raises(RunError, match=r"shard-1\.tfrecord: .*corrupted record") as caught:
        load_data(config(shards, "stream"), seed=0)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_later_record_without_the_feature_names_its_shard(tmp_path: Path) -> None:
    def make(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
        if i == 25:
            return example(other=feature([1.0], "float")), np.zeros(6)
        return vector_record(rng, i)

    write_shards(tmp_path / "shards", [20, 20], make)
    # the record itself, not the batch of 512 it was parsed in
    where = r"shard-1\.tfrecord: record 5 \(counting from 0\) has no feature '(pixels|label)'"
    with pytest.raises(RunError, match=where):
        load_data(config(tmp_path / "shards" / "*.tfrecord", "stream"), seed=0)


@pytest.mark.parametrize("cache", ["stream", "memory"])
@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (feature(np.arange(6), "int64"), "has feature 'pixels' of type int64, the spec says "
         "float32"),
        (feature(np.ones(5), "float"), "has 5 float32 values in feature 'pixels', the spec's "
         "shape needs 6"),
    ],
)  # fmt: skip
def test_a_record_of_the_wrong_type_or_size_is_named_as_such(
    tmp_path: Path, cache: str, bad: tf.train.Feature, said: str
) -> None:
    def make(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
        if i == 25:
            return example(pixels=bad, label=feature([0], "int64")), np.zeros(6)
        return vector_record(rng, i)

    write_shards(tmp_path / "shards", [40], make)
    with pytest.raises(RunError) as caught:
        load_data(config(tmp_path / "shards" / "*.tfrecord", cache), seed=0)
    message = str(caught.value)
    assert "shard-0.tfrecord: record 25 (counting from 0) " + said in message
    assert "damaged" not in message and "Iterator" not in message and "\n" not in message


@pytest.mark.parametrize("cache", ["stream", "memory"])
@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_a_shard_ending_in_a_partial_record_header_is_refused(
    tmp_path: Path, cache: str, compression: str | None
) -> None:
    """TensorFlow's reader takes a cut-off record header for the end of the shard."""
    import gzip

    write_shards(tmp_path / "shards", [20, 20], vector_record, compression)
    first, second = (tmp_path / "shards" / f"shard-{s}.tfrecord" for s in (0, 1))
    raw = gzip.decompress(first.read_bytes()) if compression else first.read_bytes()
    cut = raw + raw[:10]
    second.write_bytes(gzip.compress(cut) if compression else cut)
    source = config(tmp_path / "shards" / "*.tfrecord", cache)
    source["source"]["compression"] = "gzip" if compression else "none"
    where = "decompressed byte" if compression else "byte"
    with pytest.raises(
        RunError, match=rf"shard-1\.tfrecord: 10 bytes at {where} offset {len(raw)}, after its 20"
    ):
        load_data(source, seed=0)


@pytest.mark.parametrize("cache", ["stream", "memory"])
def test_a_stray_small_file_among_the_shards_is_refused(shards: Path, cache: str) -> None:
    (shards.parent / "zz_notes.txt").write_text("abc")
    with pytest.raises(RunError, match=r"zz_notes\.txt: 3 bytes at byte offset 0, after its 0"):
        load_data(config(shards.parent / "*", cache), seed=0)


def test_auto_streams_beyond_the_threshold(shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = config(shards, "auto")["source"]
    assert estimated_records(source) == 78  # equal records: bytes / the first one's size
    assert not streams(source, "auto")
    monkeypatch.setattr(datafiles, "STREAM_THRESHOLD", 78 * 6 * 4 - 1)
    assert streams(source, "auto") and not streams(source, "memory")


def test_the_wire_reader_counts_what_tensorflow_wrote() -> None:
    record = example(
        a=feature([1.0, 2.0, 3.0], "float"),
        b=feature([1, 300, -5, 2**40], "int64"),
        c=feature([b"x", b"yz"], "bytes"),
    )
    found = {name: (info.kind, info.count) for name, info in example_features(record).items()}
    assert found == {"a": ("float", 3), "b": ("int64", 4), "c": ("bytes", 2)}


# --------------------------------------------------------------------------- the spec


SPEC = """\
spec_version: 1
name: records
seed: 1
data:
  source:
    type: tfrecord
    files: shards/*.tfrecord
    features:
      x: {x}
      label: {label}
  batch_size: 16
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: gaussian, sigma: learned}}
training:
  epochs: 1
evaluation:
  metrics: [elbo]
"""
GOOD_X = "{type: values, name: pixels, shape: [6]}"


def build_problems(folder: Path, x: str = GOOD_X, label: str = "label", *sets: str) -> str:
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec

    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(x=x, label=label))
    with pytest.raises(SpecError) as caught:
        lower(load_spec(spec, list(sets)))
    return "\n".join(str(p) for p in caught.value.problems)


BAD = [
    ("missing-x", "{type: values, name: pixel, shape: [6]}", "label",
     r"spec\.yaml:9:\d+: data\.source\.features\.x\.name: no feature 'pixel' "
     r".*did you mean 'pixels'"),
    ("wrong-shape", "{type: values, name: pixels, shape: [2, 4]}", "label",
     r"spec\.yaml:9:\d+: data\.source\.features\.x\.shape: feature 'pixels' holds 6 values "
     r"an example, but shape \[2, 4\] needs 8"),
    ("wrong-dtype", "{type: values, name: pixels, shape: [6], dtype: int64}", "label",
     r"data\.source\.features\.x\.dtype: feature 'pixels' holds float values, not int64 "
     r"\(set dtype: float32\)"),
    ("not-an-image", "{type: image, name: pixels, size: [2, 3]}", "label",
     r"data\.source\.features\.x\.type: feature 'pixels' holds 6 float values, not one"),
    ("missing-label", GOOD_X, "kind", r"spec\.yaml:10:\d+: data\.source\.features\.label: no "),
    ("label-not-int", GOOD_X, "pixels", r"data\.source\.features\.label: feature 'pixels' holds"),
]  # fmt: skip


@pytest.mark.parametrize("x, label, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_features_are_located_spec_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, x: str, label: str, message: str
) -> None:
    write_shards(tmp_path / "shards", [3], vector_record)
    monkeypatch.chdir(tmp_path)
    assert re.search(message, build_problems(tmp_path, x, label))


def test_an_empty_glob_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = build_problems(tmp_path)
    assert "spec.yaml:7:12: data.source.files: no file matches shards/*.tfrecord" in found


def test_a_file_that_is_not_tfrecord_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "a.tfrecord").write_text("spec_version: 1\n")
    monkeypatch.chdir(tmp_path)
    found = build_problems(tmp_path)
    assert "data.source.files:" in found and "is not a TFRecord file" in found


def test_a_shard_linked_from_outside_the_spec_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.spec import load_spec

    outside = tmp_path / "elsewhere"
    write_shards(outside, [3], vector_record)
    project = tmp_path / "project"
    (project / "shards").mkdir(parents=True)
    (project / "shards" / "a.tfrecord").symlink_to(outside / "shard-0.tfrecord")
    spec = project / "spec.yaml"
    spec.write_text(SPEC.format(x=GOOD_X, label="label"))
    monkeypatch.chdir(project)
    with pytest.raises(SpecError, match="outside the spec's folder tree"):
        load_spec(spec)


def test_a_glob_outside_the_spec_folder_is_refused_unexpanded(tmp_path: Path) -> None:
    from gencompile.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(x=GOOD_X, label="label").replace("shards/*", "/**/*"))
    with pytest.raises(SpecError, match=r"data\.source\.files: /\*\*/\*\.tfrecord is outside"):
        load_spec(spec)


def test_the_schema_lists_the_tfrecord_source() -> None:
    from gencompile.spec import Spec

    schema = json.dumps(Spec.model_json_schema())
    assert "TfrecordSource" in schema and "RecordImage" in schema


@pytest.mark.filterwarnings("error:Your input ran out of data")
def test_a_tiny_model_trains_one_epoch_on_streamed_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.runs import train

    write_shards(tmp_path / "shards", [40, 40], vector_record)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(x=GOOD_X, label="label"))
    monkeypatch.chdir(tmp_path)
    result = train(spec, run_dir=tmp_path / "run", overrides=["data.cache=stream"], quiet=True)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert "elbo" in json.dumps(metrics)
    lock = json.loads((result.run_dir / "spec.lock.json").read_text())
    assert len(lock["data_fingerprint"]) == 64


def test_the_record_pass_shows_progress_on_a_terminal(
    shards: Path, terminal_progress: io.StringIO
) -> None:
    load_data(config(shards, "stream"), seed=0)
    assert "data statistics" in terminal_progress.getvalue()
    assert "78/78" in terminal_progress.getvalue()


def sparse_record(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
    """Mostly zeros: such records compress about 100 times."""
    x = np.zeros(512, np.float32)
    x[rng.integers(0, 512, 3)] = 1.0
    return example(v=feature(x, "float")), x


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_compressed_shards_are_estimated_by_their_decompressed_records(
    tmp_path: Path, compression: str
) -> None:
    write_shards(tmp_path / "z", [3000, 1000], sparse_record, compression.upper())
    x = {"type": "values", "name": "v", "shape": [512]}
    source = {**config(tmp_path / "z" / "*", "auto", x, None)["source"]}
    source["compression"] = compression
    # compressed bytes over a decompressed record would say about 40
    assert 3800 <= estimated_records(source) <= 4200


def test_shards_that_compress_unlike_the_first_are_estimated_by_their_own_ratio(
    tmp_path: Path,
) -> None:
    """A sparse first shard compresses ~100x, a dense second one hardly: the first's ratio
    applied to both said ~40 times the records, and refused a small data set."""

    def sparse_then_dense(rng: np.random.Generator, i: int) -> tuple[bytes, np.ndarray]:
        if i < 1500:
            return sparse_record(rng, i)
        x = rng.normal(size=512).astype(np.float32)
        return example(v=feature(x, "float")), x

    write_shards(tmp_path / "z", [1500, 1500], sparse_then_dense, "GZIP")
    x = {"type": "values", "name": "v", "shape": [512]}
    source = {**config(tmp_path / "z" / "*", "auto", x, None)["source"], "compression": "gzip"}
    assert 2900 <= estimated_records(source) <= 3100


@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_an_empty_first_shard_is_left_out(tmp_path: Path, compression: str | None) -> None:
    written = write_shards(tmp_path / "e", [0, 5, 4], vector_record, compression)
    source = config(tmp_path / "e" / "*", "memory")
    source["source"]["compression"] = (compression or "none").lower()
    assert estimated_records(source["source"]) in range(8, 11)
    bundle = load_data(source, seed=0)
    assert len(bundle.x_train) + len(bundle.x_val) == len(written) == 9


def test_an_empty_first_shard_passes_the_compile_time_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_shards(tmp_path / "shards", [0, 3], vector_record)
    monkeypatch.chdir(tmp_path)
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec

    (tmp_path / "spec.yaml").write_text(SPEC.format(x=GOOD_X, label="label"))
    lower(load_spec(tmp_path / "spec.yaml", []))  # no "holds no records"
    (tmp_path / "shards" / "shard-1.tfrecord").write_bytes(b"")
    assert "matches only empty files (2); export the records" in build_problems(tmp_path)


def test_empty_compressed_shards_are_left_out_but_not_stray_files(tmp_path: Path) -> None:
    write_shards(tmp_path / "g", [0], vector_record, "GZIP")
    write_shards(tmp_path / "z", [0], vector_record, "ZLIB")
    (tmp_path / "g" / "shard-0.tfrecord").rename(tmp_path / "a-gzip.tfrecord")
    (tmp_path / "z" / "shard-0.tfrecord").rename(tmp_path / "b-zlib.tfrecord")
    (tmp_path / "c-notes.tfrecord").write_text("abc")
    assert (tmp_path / "a-gzip.tfrecord").stat().st_size > 0
    found = datafiles.record_files(str(tmp_path / "*.tfrecord"))
    assert found == [tmp_path / "c-notes.tfrecord"]
