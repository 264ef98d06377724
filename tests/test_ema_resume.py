"""A fine-tuned run's EMA copy taken whole from its parent goes on averaging from the
parent's average after `train --resume` too: the mark that skips the decay's warm-up
(`ema.started_from_average`) is not in the checkpoint, so the resume sets it again from
init_from.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.runs import resume, train
from gencompile.runtime.training import averages_taken_whole

ROOT = Path(__file__).resolve().parents[1]
GAN = ROOT / "specs" / "gan_ring8.yaml"
QUICK = [
    "training.steps_per_epoch=2",
    "evaluation.metrics=[]",
    "model.generator={mlp: [16]}",
    "model.discriminator={mlp: [16]}",
]


def arrays(weights: Path, network: str) -> np.ndarray:
    """Every array of a network in a weights file, flattened into one vector."""
    found: list[np.ndarray] = []
    with h5py.File(weights, "r") as h5:
        h5[network].visititems(
            lambda _, item: (
                found.append(np.ravel(item[()])) if isinstance(item, h5py.Dataset) else None
            )
        )
    return np.concatenate(found)


@pytest.mark.slow
def test_a_resumed_fine_tune_keeps_the_parents_average(tmp_path: Path) -> None:
    """Two resumed steps at decay 0.999 move the average by about 0.2 % of its distance to
    the generator; warmed up again from step 2 (decay 0.25, then 0.31) they moved it most
    of the way, throwing the parent's average away."""
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(GAN, QUICK, epochs=1, run_dir=parent, quiet=True)
    train(GAN, [*QUICK, f"model.init_from.run={parent}"], epochs=1, run_dir=child, quiet=True)
    before = tmp_path / "epoch1.weights.h5"
    shutil.copy(child / "model.weights.h5", before)
    resume(child, quiet=True, epochs=2)
    start = arrays(before, "ema_generator")
    moved = np.linalg.norm(arrays(child / "model.weights.h5", "ema_generator") - start)
    gap = np.linalg.norm(arrays(child / "model.weights.h5", "generator") - start)
    assert moved < 0.01 * gap


def test_only_ema_copies_taken_whole_are_marked_again() -> None:
    report = {
        "taken": ["generator.dense", "ema_generator.dense", "ema_denoiser.dense", "ema_other"],
        "fresh": [{"layer": "ema_denoiser.extra", "why": "..."}],
    }
    assert averages_taken_whole(report) == ["ema_generator", "ema_other"]
    assert averages_taken_whole({}) == []
