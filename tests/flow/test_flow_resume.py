"""A dequantized flow killed mid-epoch resumes to the same weights as an uninterrupted run.

The dequantization noise comes from the model's own SeedGenerator, whose state the
checkpoints keep, and actnorm's data-dependent initialisation runs only on a fresh start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.runs import resume, train

SPEC = """\
spec_version: 1
name: flow-resume
seed: 4
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 128
model:
  family: flow
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit}
    - {type: actnorm}
    - {type: affine_coupling, mask: checkerboard, hidden: [16], repeat: 2}
training:
  checkpoint: {every_epochs: 1, every_seconds: 0, keep: 3}
evaluation:
  importance_samples: 4
output:
  samples: {count: 16}
"""
EPOCHS = 4


@pytest.mark.slow
def test_dequantized_flow_killed_mid_epoch_resumes_to_identical_weights(tmp_path: Path, killed_run):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    whole = train(spec, epochs=EPOCHS, run_dir=tmp_path / "whole", quiet=True)
    run_dir = killed_run(spec, tmp_path / "killed", [], EPOCHS)
    assert (run_dir / "checkpoints" / "epoch-0002.json").is_file()

    resumed = resume(run_dir, quiet=True)

    assert resumed.record["weights_sha256"] == whole.record["weights_sha256"]
    assert resumed.metrics == whole.metrics
