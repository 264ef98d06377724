"""A sample metric whose reference split is too small for it is refused before training:
a data file's size is known only once it is read, and the refusal used to come after the
epochs, leaving a failed run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SPEC = """\
spec_version: 1
name: few-held-out
seed: 0
data:
  source: {type: npz, path: rows.npz}
  validation_split: 0.1
  preprocessing: {standardize: true}
  batch_size: 8
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: gaussian}
training:
  epochs: 30
evaluation:
  metrics: [precision_recall]
  num_samples: 50
"""


def test_too_few_held_out_rows_for_a_sample_metric_stop_before_the_first_epoch(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "rows.npz", x=np.random.default_rng(0).normal(size=(30, 3)))
    (tmp_path / "spec.yaml").write_text(SPEC)
    code, _, err = run_cli("train", "spec.yaml", "--runs-dir", "runs", "--quiet")
    assert code == 1
    assert err.strip() == (
        "error: precision_recall: the validation split holds 3 example(s), and "
        "precision_recall compares the samples with at least 4; set data.validation_split "
        "to at least 0.1334 (4 examples)"
    )
    (run,) = (tmp_path / "runs").glob("*/*")
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert not (run / "history.csv").exists()  # no epoch was spent on it
