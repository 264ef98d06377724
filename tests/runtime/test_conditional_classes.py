"""A conditional model's num_classes against its data's labels: a label the model has no class
for fails the run before training, for every source (tfrecord labels are seen while the
shards are scanned), and the check leaves the data's fingerprint as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime.data import load_data
from tests.runtime.test_tfrecord import config, vector_record, write_shards

CSV = "u,v,label\n" + "".join(f"{i * 0.1},{-i * 0.2},{'abc'[i % 3]}\n" for i in range(30))


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    write_shards(tmp_path / "shards", [30, 37, 11], vector_record)  # labels i % 3: 0, 1, 2
    return tmp_path / "shards" / "*.tfrecord"


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_tfrecord_labels_beyond_num_classes_fail_the_run(shards: Path, cache: str) -> None:
    with pytest.raises(RunError) as caught:
        load_data(config(shards, cache, num_classes=2), seed=0)
    assert str(caught.value) == (
        f"the data ({shards}) has 3 classes, labels 0..2, but model.conditional.num_classes "
        "is 2: set num_classes: 3 in the spec and build again"
    )


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_enough_classes_load_with_the_fingerprint_of_the_data_alone(
    shards: Path, cache: str
) -> None:
    checked = load_data(config(shards, cache, num_classes=3), seed=0)
    assert checked.num_classes == 3
    # A project built before the key existed: the same data, the same fingerprint.
    assert checked.fingerprint == load_data(config(shards, cache), seed=0).fingerprint
    assert load_data(config(shards, cache, num_classes=5), seed=0).num_classes == 3


def csv_config(path: Path, num_classes: int, cache: str) -> dict:
    return {
        "source": {"type": "csv", "path": str(path), "columns": None, "label_column": "label"},
        "validation_split": 0.1,
        "preprocessing": {"scale": None, "standardize": True},
        "augmentation": [],
        "batch_size": 8,
        "shuffle_buffer": 16,
        "with_labels": True,
        "drop_remainder": False,
        "cache": cache,
        "num_classes": num_classes,
    }


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_csv_class_names_beyond_num_classes_fail_the_run(tmp_path: Path, cache: str) -> None:
    (tmp_path / "lab.csv").write_text(CSV)
    with pytest.raises(RunError, match=r"has 3 classes, labels 0\.\.2, but model\.conditional"):
        load_data(csv_config(tmp_path / "lab.csv", 2, cache), seed=0)
    bundle = load_data(csv_config(tmp_path / "lab.csv", 3, cache), seed=0)
    assert sorted(np.unique(np.concatenate([bundle.y_train, bundle.y_val]))) == [0, 1, 2]
