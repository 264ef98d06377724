"""Augmentation depends on (seed, epoch, batch) alone: a resumed run augments as an
uninterrupted one, batch for batch, and ends with the same history and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.runs import resume, train
from gencompile.runtime.data import load_data

ROOT = Path(__file__).resolve().parents[2]
AUGMENTATION = [
    {"type": "random_flip", "mode": "horizontal"},
    {"type": "random_translation", "height_factor": 0.2, "width_factor": 0.2},
]


def _config(path: Path, augmentation: list[dict]) -> dict:
    return {
        "source": {"type": "npy", "path": str(path)},
        "validation_split": 0.0,
        "preprocessing": {"scale": [0, 1], "standardize": False},
        "augmentation": augmentation,
        "batch_size": 32,
        "shuffle_buffer": 10000,
        "cache": "memory",
        "with_labels": False,
        "drop_remainder": False,
    }


def test_a_resumed_stream_augments_as_an_uninterrupted_one(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    np.save(path, np.random.default_rng(0).integers(0, 255, (64, 8, 8, 1)).astype(np.uint8))
    config = _config(path, AUGMENTATION)
    whole = [b.numpy() for b in load_data(config, 5).epochs(0, 3)]
    resumed = [b.numpy() for b in load_data(config, 5).epochs(2, 3)]
    plain = [b.numpy() for b in load_data(_config(path, []), 5).epochs(0, 3)]

    assert len(whole) == 6 and len(resumed) == 2
    for got, expected in zip(resumed, whole[4:], strict=True):
        np.testing.assert_array_equal(got, expected)
    # Augmented at all, and differently in each batch and epoch.
    assert not any(np.array_equal(a, p) for a, p in zip(whole, plain, strict=True))
    shifts = [a - p for a, p in zip(whole, plain, strict=True)]
    assert not np.array_equal(shifts[0], shifts[2])


@pytest.mark.slow  # three short trainings of the digits VAE: about 15 s
def test_a_resumed_augmented_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "vae_digits.yaml"
    overrides = [
        "data.augmentation=[{type: random_translation, height_factor: 0.2, width_factor: 0.2}]",
        "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}",
        "evaluation.importance_samples=8",
    ]
    whole = train(spec, overrides, epochs=2, run_dir=tmp_path / "whole", quiet=True)
    train(spec, overrides, epochs=1, run_dir=tmp_path / "part", quiet=True)
    resumed = resume(tmp_path / "part", epochs=2, quiet=True)

    history = (tmp_path / "whole" / "history.csv").read_text()
    resumed_history = (tmp_path / "part" / "history.csv").read_text()
    assert _without_seconds(resumed_history) == _without_seconds(history)
    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]


def _without_seconds(history: str) -> list[list[str]]:
    """history.csv's rows without the columns that time the epochs."""
    rows = [line.split(",") for line in history.splitlines()]
    timed = {i for i, name in enumerate(rows[0]) if "seconds" in name or "time" in name}
    return [[v for i, v in enumerate(row) if i not in timed] for row in rows]


def test_a_resumed_tfrecord_stream_augments_as_an_uninterrupted_one(tmp_path: Path) -> None:
    from tests.runtime.test_tfrecord import config, image_record, write_shards

    write_shards(tmp_path / "images", [20, 13], image_record)
    x = {"type": "image", "name": "image", "size": [4, 5], "color": "grayscale"}
    source = config(tmp_path / "images" / "*", "stream", x=x, validation_split=0.0)

    def batches(augmentation: list[dict], first: int) -> list[np.ndarray]:
        data = load_data({**source, "augmentation": augmentation}, seed=5)
        return [x.numpy() for x, _ in data.epochs(first, 3)]

    whole, resumed = batches(AUGMENTATION, 0), batches(AUGMENTATION, 2)
    plain = batches([], 0)
    assert len(whole) == 15 and len(resumed) == 5
    for got, expected in zip(resumed, whole[10:], strict=True):
        np.testing.assert_array_equal(got, expected)
    assert not all(np.array_equal(a, p) for a, p in zip(whole, plain, strict=True))
