"""TensorBoard logs of a run: the event files hold history.csv's numbers at its epochs, the
learning rate, the sample pictures and the networks' graphs; a resume never repeats a step."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gencompile.runs import train
from gencompile.runtime.callbacks import NaNGuard, SamplePictures
from gencompile.runtime.tensorboard import TensorBoardLog, learning_rates
from gencompile.runtime.training import TrainingClock, fit_callbacks
from tests.conftest import quick

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.source.n_samples=400",
    "training.validation_every_epochs=1",
    "output.samples.every_epochs=1",
    "output.samples.count=16",
    "evaluation.metrics=[elbo]",
]


def read_events(folder: Path) -> EventAccumulator:
    """Everything in an event folder (the default size guidance keeps only some steps)."""
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0})
    events.Reload()
    return events


def scalars(events: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    """`tf.summary.scalar` values by tag: (step, value) in order (TF2 stores tensors)."""
    found = {}
    for tag in events.Tags()["tensors"]:
        if events.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue  # an image, a graph
        points = [(e.step, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        found[tag] = [(step, float(value)) for step, value in points]
    return found


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_scalars_match_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    train = scalars(read_events(run_dir / "tensorboard" / "train"))
    validation = scalars(read_events(run_dir / "tensorboard" / "validation"))
    rows = history(run_dir)
    assert rows
    for column in rows[0]:
        if column == "epoch":
            continue
        board = validation if column.startswith("val_") else train
        tag = "epoch_" + column.removeprefix("val_")
        expected = [(int(r["epoch"]), float(r[column])) for r in rows if r[column] != ""]
        assert [step for step, _ in board[tag]] == [step for step, _ in expected], tag
        for (_, got), (_, want) in zip(board[tag], expected, strict=True):
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7), (tag, got, want)
    return train


def test_a_run_logs_history_learning_rate_pictures_and_graphs_and_no_noise(
    tmp_path: Path,
) -> None:
    """One `gencompile train` process: its TensorBoard logs, and (tests/test_quiet.py)
    TensorFlow's start-up noise left out of its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    command = [sys.executable, "-m", "gencompile", "train", "specs/vae_moons.yaml", "--epochs", "2"]
    overrides = [arg for override in TINY for arg in ("--set", override)]
    done = subprocess.run(
        [*command, *overrides, "--runs-dir", str(tmp_path), "--quiet"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    noise = ("cuda", "absl", "onednn")
    lines = done.stderr.lower().splitlines()
    assert [line for line in lines if any(word in line for word in noise)] == []
    (run_dir,) = (tmp_path / "vae-moons").iterdir()
    train_scalars = assert_scalars_match_history(run_dir)
    rate = pytest.approx(2e-3)  # the spec's constant learning rate
    assert train_scalars["epoch_learning_rate"] == [(1, rate), (2, rate)]
    events = read_events(run_dir / "tensorboard" / "train")
    pictures = events.Tensors("samples")
    assert [e.step for e in pictures] == [1, 2]
    # An image summary: width, height, then the PNG of progress/samples-epoch-0001.png.
    width, height, png = tf.make_ndarray(pictures[0].tensor_proto)
    assert png.startswith(b"\x89PNG")
    saved = tf.image.decode_png((run_dir / "progress/samples-epoch-0001.png").read_bytes())
    assert (int(height), int(width)) == tuple(saved.shape[:2])
    assert {"encoder", "decoder"} <= set(events.Tags()["tensors"])  # the Keras graphs


@pytest.mark.parametrize("switch", [True, False, None])
def test_the_spec_switch_turns_the_logs_off(tmp_path: Path, switch: bool | None) -> None:
    model = SimpleNamespace(training_callbacks=lambda: [])
    training = {
        "checkpoint": {"every_epochs": 1, "keep": 1},
        "distribution": {"strategy": "none"},
        "early_stopping": None,
    }
    output = {"samples": {"count": 4, "format": "png", "every_epochs": 1}, "export": []}
    if switch is not None:  # None: a project built before the switch existed
        output["tensorboard"] = switch
    clock = TrainingClock(tmp_path)
    made = fit_callbacks(model, None, training, output, tmp_path, NaNGuard(tmp_path), clock)
    boards = [c for c in made if isinstance(c, TensorBoardLog)]
    pictures = next(c for c in made if isinstance(c, SamplePictures))
    assert len(boards) == (1 if switch else 0)
    assert pictures.log == (boards[0].image if switch else None)
    if switch:
        assert boards[0].log_dir == tmp_path / "tensorboard"


def _compiled() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.25), loss="mse")
    return model


def _epochs(log: TensorBoardLog, epochs: range) -> None:
    log.on_train_begin()
    for epoch in epochs:  # Keras' 0-based epoch; the logged step is epoch + 1
        log.on_epoch_end(epoch, {"loss": float(epoch), "val_loss": 10.0 + epoch})
    log.on_train_end()


def test_a_resume_drops_the_epochs_it_trains_again_and_appends(tmp_path: Path) -> None:
    model = _compiled()
    first = TensorBoardLog(tmp_path)
    first.set_model(model)
    _epochs(first, range(5))  # epochs 1-5 logged, but the newest checkpoint is epoch 3
    resumed = TensorBoardLog(tmp_path, initial_epoch=3)
    resumed.set_model(model)
    _epochs(resumed, range(3, 6))  # epochs 4-6 trained again
    train = scalars(read_events(tmp_path / "train"))
    validation = scalars(read_events(tmp_path / "validation"))
    assert train["epoch_loss"] == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0), (5, 4.0), (6, 5.0)]
    assert [step for step, _ in validation["epoch_loss"]] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in train["epoch_learning_rate"]] == [1, 2, 3, 4, 5, 6]


def test_learning_rates_of_every_optimizer_and_none_without_weights() -> None:
    model = _compiled()
    model.discriminator_optimizer = keras.optimizers.Adam(1e-4)
    model.generator_optimizer = model.optimizer  # the same one: logged once
    rates = learning_rates(model)
    assert rates == {"learning_rate": 0.25, "discriminator_learning_rate": pytest.approx(1e-4)}
    frozen = _compiled()
    frozen.trainable = False
    assert learning_rates(frozen) == {}
    assert np.isfinite(list(rates.values())).all()


FAMILY_SPECS = [
    "vae_moons.yaml",
    "gan_ring8.yaml",
    "flow_moons.yaml",
    "diffusion_swissroll.yaml",
    "gmm_blobs.yaml",  # EM: one epoch is one iteration, its log-likelihood logged
    "charlm_arithmetic.yaml",
]


@pytest.mark.slow
@pytest.mark.parametrize("spec", FAMILY_SPECS)
def test_every_family_logs_its_history(tmp_path: Path, spec: str) -> None:
    overrides = quick(spec, ["training.steps_per_epoch=4", "training.validation_every_epochs=1"])
    if not spec.startswith("charlm"):  # text has no picture
        overrides.append("output.samples.every_epochs=2")
    result = train(ROOT / "specs" / spec, overrides, epochs=2, run_dir=tmp_path / "run")
    train_scalars = assert_scalars_match_history(result.run_dir)
    assert train_scalars
    if spec.startswith("gmm"):
        assert "epoch_log_likelihood" in train_scalars
    else:
        assert "epoch_learning_rate" in train_scalars


def test_a_torn_last_record_is_dropped_on_resume(tmp_path: Path) -> None:
    model = _compiled()
    first = TensorBoardLog(tmp_path)
    first.set_model(model)
    _epochs(first, range(2))
    (events,) = (tmp_path / "train").glob("events.out.tfevents.*")
    with open(events, "ab") as handle:  # a process killed in the middle of a write
        handle.write(b"\x20\x00\x00\x00\x00\x00\x00\x00partial")
    resumed = TensorBoardLog(tmp_path, initial_epoch=2)
    resumed.set_model(model)
    _epochs(resumed, range(2, 3))
    assert [step for step, _ in scalars(read_events(tmp_path / "train"))["epoch_loss"]] == [1, 2, 3]


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_its_logs_without_repeating_a_step(
    tmp_path: Path, killed_run
) -> None:
    from gencompile.runs import resume

    overrides = [
        "data.source.n_samples=3000",
        "evaluation.metrics=[elbo]",
        "training.validation_every_epochs=1",
        "training.checkpoint={every_epochs: 1, every_seconds: 0, keep: 3}",
    ]
    run_dir = killed_run(ROOT / "specs" / "vae_moons.yaml", tmp_path / "run", overrides, 4)
    before = scalars(read_events(run_dir / "tensorboard" / "train"))
    assert [step for step, _ in before["epoch_loss"]] == [1, 2]
    resume(run_dir, quiet=True)
    train_scalars = assert_scalars_match_history(run_dir)  # steps 1-4, each once
    assert [step for step, _ in train_scalars["epoch_loss"]] == [1, 2, 3, 4]
