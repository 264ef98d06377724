"""What runs after and around training reads streamed splits in bounded blocks, and gives
the numbers it gives on the same data loaded whole."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import keras
import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.runtime import mixture, splits, training
from gencompile.runtime.data import load_data
from gencompile.runtime.metrics import samples
from gencompile.runtime.streaming import StreamedArray, StreamedSplit
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: {name}
seed: 3
data:
  source: {{type: npy, path: data.npy}}
  validation_split: {validation}
  preprocessing: {preprocessing}
  batch_size: 64
model:
{model}
evaluation:
  metrics: {metrics}
  num_samples: 100
  importance_samples: 8
"""

FAMILIES = {
    "vae": (
        "  family: vae\n  latent_dim: 2\n  encoder: {mlp: [16]}\n  decoder: {mlp: [16]}\n"
        "  likelihood: {type: gaussian, sigma: learned}",
        "[elbo, iwae_nll, bits_per_dim, energy_distance]",
    ),
    "flow": (
        "  family: flow\n  transforms:\n    - {type: actnorm}\n    - {type: maf, hidden: [16]}",
        "[nll, bits_per_dim, energy_distance]",
    ),
    "mixture": (
        "  family: mixture\n  components: 3\n  covariance: full\n"
        "  algorithm: {type: em, max_iter: 5, tol: 0.0, init: kmeans}",
        "[nll, bic, aic, energy_distance]",
    ),
    "diffusion": (
        "  family: diffusion\n  timesteps: 20\n  denoiser: {type: mlp, hidden: [16]}\n"
        "  sampler: {type: ddpm}",
        "[denoising_loss, energy_distance]",
    ),
}


def clusters(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
    x = centres[rng.integers(0, 3, rows)] + rng.normal(scale=0.5, size=(rows, 2))
    np.save(path, x.astype(np.float32))
    return path


def generated(
    folder: Path,
    family: str,
    monkeypatch: pytest.MonkeyPatch,
    rows: int,
    validation: float,
    preprocessing: str = "{scale: [-1, 1]}",
) -> ModuleType:
    """The generated `train` module of a small spec of `family` on `rows` 2-D vectors."""
    folder.mkdir()
    monkeypatch.chdir(folder)  # data paths are relative to the working directory
    clusters(folder / "data.npy", rows)
    model, metrics = FAMILIES[family]
    name = f"streamed-{family}-{folder.name}"
    spec_file = folder / "spec.yaml"
    spec_file.write_text(
        SPEC.format(
            name=name,
            model=model,
            metrics=metrics,
            validation=validation,
            preprocessing=preprocessing,
        )
    )
    spec = load_spec(spec_file)
    plan = lower(spec)
    for relative, text in render_project(spec, plan).items():
        target = folder / "project" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    monkeypatch.syspath_prepend(str(folder / "project"))
    return importlib.import_module(f"{plan.package}.train")


def evaluated(train: ModuleType, cache: str) -> tuple[Any, Any]:
    """(the metrics, the model) of a model initialised on `cache` data and evaluated on it."""
    data = load_data({**train.DATA, "cache": cache}, seed=train.SEED)
    keras.utils.set_random_seed(train.SEED)  # the same initial weights for both
    model = training.build_and_compile(train.build_model, train.TRAINING, data, epochs=1)
    if hasattr(model, "initialize"):
        model.initialize(data)
    return train.evaluate(model, data, train.EVALUATION), data


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_streamed_data_gives_the_metrics_of_loaded_data(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = generated(tmp_path / family, family, monkeypatch, rows=1200, validation=0.25)
    loaded, loaded_data = evaluated(train, "memory")
    streamed, streamed_data = evaluated(train, "stream")
    assert isinstance(streamed_data.x_val, StreamedSplit)
    assert isinstance(loaded_data.x_val, np.ndarray)
    assert set(loaded) == set(streamed) and loaded
    for name, value in loaded.items():
        assert streamed[name] == value, name  # min-max scaling: the same bits
    assert streamed.computed_with == loaded.computed_with


def test_standardized_streamed_data_gives_the_metrics_to_float_rounding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = generated(
        tmp_path / "standardized", "mixture", monkeypatch, 1200, 0.25, "{standardize: true}"
    )
    loaded, _ = evaluated(train, "memory")
    streamed, _ = evaluated(train, "stream")  # mean and variance merged chunk by chunk
    assert dict(streamed) == pytest.approx(dict(loaded), rel=1e-9)


@pytest.fixture
def largest_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the blocks of rows read from streamed files, as they are read."""
    sizes: list[int] = []
    read = StreamedArray.read

    def counted(self: StreamedArray, indices: np.ndarray) -> np.ndarray:
        sizes.append(len(indices))
        return read(self, indices)

    monkeypatch.setattr(StreamedArray, "read", counted)
    return sizes


def test_evaluation_and_initialisation_read_bounded_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, largest_read: list[int]
) -> None:
    monkeypatch.setattr(mixture, "INIT_EXAMPLES", 500)
    monkeypatch.setattr(samples, "REFERENCE_EXAMPLES", 300)
    train = generated(tmp_path / "bounded", "mixture", monkeypatch, rows=20_000, validation=0.5)
    data = load_data({**train.DATA, "cache": "stream"}, seed=train.SEED)
    assert len(data.x_val) == len(data.x_train) == 10_000
    model = training.build_and_compile(train.build_model, train.TRAINING, data, epochs=1)
    model.initialize(data)
    assert largest_read == [500]  # k-means on the first INIT_EXAMPLES training rows
    largest_read.clear()
    streamed = train.evaluate(model, data, train.EVALUATION)
    # nll over 10,000 held-out rows, bic/aic over 10,000 training rows, 300 for reference
    assert max(largest_read) == mixture.EVAL_BATCH < len(data.x_val)
    assert sum(largest_read) == 10_000 + 10_000 + 300
    reference = {"split": "validation", "examples": 300, "subset_of": 10_000}
    assert streamed.computed_with["energy_distance"]["reference"] == reference
    assert streamed.computed_with["nll"]["examples"] == 10_000
    # loaded data uses the same rows: the same initialisation, the same numbers
    loaded, _ = evaluated(train, "memory")
    assert loaded == pytest.approx(dict(streamed), rel=1e-9)


def test_pictures_read_the_first_rows_of_a_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, largest_read: list[int]
) -> None:
    monkeypatch.setattr(training, "SCATTER_EXAMPLES", 50)
    clusters(tmp_path / "data.npy", 400)
    config = {
        "source": {"type": "npy", "path": str(tmp_path / "data.npy")},
        "validation_split": 0.5,
        "preprocessing": {"scale": None, "standardize": False},
        "augmentation": [],
        "batch_size": 32,
        "shuffle_buffer": 100,
        "with_labels": False,
        "drop_remainder": False,
        "cache": "stream",
    }
    data = load_data(config, seed=0)
    largest_read.clear()
    points = np.zeros((10, 2), np.float32)
    training.save_picture(points, tmp_path / "samples.png", data)
    assert largest_read == [50]
    assert (tmp_path / "samples.png").stat().st_size > 0


def test_split_batches_cover_a_split_in_order() -> None:
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.arange(5)
    pairs = list(splits.labelled_batches(x, y, 2))
    assert [len(xb) for xb, _ in pairs] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in pairs]), x)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in pairs]), y)
    assert splits.mean_of(xb for xb, _ in pairs) == pytest.approx(4.5)
    np.testing.assert_array_equal(splits.head(x, 99), x)
