"""A tiny beta-TCVAE trained on shapes2d end to end: the tc term tracked, N set from the
data and saved, and the MIG computed on the held-out codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

TINY_TCVAE = """\
spec_version: 1
name: tiny-tcvae
seed: 4
data:
  source: {type: builtin, name: shapes2d, n_samples: 600}
  validation_split: 0.25
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 150
model:
  family: vae
  latent_dim: 3
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
  losses:
    tc: {weight: 6.0}
training:
  epochs: 2
evaluation:
  metrics: [elbo, mig]
output:
  samples: {count: 4, format: npz}
  tensorboard: false
  report: {latent_pictures: false}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("tcvae")
    spec = folder / "tcvae.yaml"
    spec.write_text(TINY_TCVAE)
    return train(spec, run_dir=folder / "run", quiet=True).run_dir


def test_the_tc_term_is_tracked_every_epoch(run: Path) -> None:
    with (run / "history.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    tc = np.array([float(row["tc"]) for row in rows])
    assert np.all(np.isfinite(tc))
    # each term of the loss is logged: loss = reconstruction + KL + (6 - 1) x TC, batch
    # by batch, and so in the epoch's means too
    last = rows[-1]
    terms = float(last["reconstruction"]) + float(last["kl"]) + 5.0 * float(last["tc"])
    assert float(last["loss"]) == pytest.approx(terms, rel=1e-4)


def test_mig_is_computed_on_the_held_out_factors(run: Path) -> None:
    record = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= record["metrics"]["mig"] <= 1.0
    how = record["computed_with"]["mig"]
    assert how["examples"] == 150 and how["bins"] == 20
    assert set(how["gap_per_factor"]) == {"shape", "scale", "x", "y"}


def test_the_training_size_is_saved_with_the_weights(run: Path) -> None:
    import h5py

    with h5py.File(run / "model.weights.h5") as weights:
        model_variables = [float(weights["vars"][key][()]) for key in weights["vars"]]
    assert 450.0 in model_variables  # 600 examples less the 25 % held out
