"""A VQ-VAE starts from a parent run like every family (`model.init_from`): its encoder,
codebook, decoder and prior are taken by name, and the prior's fit goes on from the
parent's."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.errors import SpecError
from gencompile.runs import train
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vq_vae_digits.yaml"
QUICK = ["training.steps_per_epoch=2", "model.prior.epochs=1", "evaluation.metrics=[]"]


def fake_run(folder: Path, family: str) -> Path:
    """A finished run as far as the spec's checks read it (no TensorFlow)."""
    folder.mkdir(parents=True)
    lock = {"resolved_spec": {"model": {"family": family}}}
    (folder / "spec.lock.json").write_text(json.dumps(lock))
    (folder / "status.json").write_text(json.dumps({"status": "finished"}))
    (folder / "model.weights.h5").write_bytes(b"")
    return folder


def test_a_vq_vae_spec_takes_init_from(tmp_path: Path) -> None:
    parent = fake_run(tmp_path / "vq", "vq_vae")
    overrides = [f"model.init_from.run={parent}", "model.init_from.networks=[encoder]"]
    spec = load_spec(SPEC, overrides).spec
    assert spec.model.init_from is not None and spec.model.init_from.networks == ["encoder"]
    other = fake_run(tmp_path / "vae", "vae")
    with pytest.raises(SpecError) as caught:
        load_spec(SPEC, [f"model.init_from.run={other}"])
    assert "model.init_from.run" in str(caught.value)


@pytest.mark.slow
def test_a_vq_vae_starts_from_its_parent(tmp_path: Path) -> None:
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(SPEC, QUICK, epochs=1, run_dir=parent, quiet=True)
    overrides = [*QUICK, f"model.init_from.run={parent}", "model.encoder.freeze=true"]
    train(SPEC, overrides, epochs=1, run_dir=child, quiet=True)
    report = json.loads((child / "init_from.json").read_text())
    assert {label.split(".")[0] for label in report["taken"]} == {
        "encoder",
        "quantizer",
        "decoder",
        "prior",
    }
    assert report["fresh"] == [] and report["left_behind"] == []
    # The frozen encoder keeps the parent's weights bit for bit; the decoder trains on.
    with h5py.File(parent / "model.weights.h5") as a, h5py.File(child / "model.weights.h5") as b:
        encoder, decoder = "encoder/layers/conv2d/vars/0", "decoder/layers/conv2d/vars/0"
        assert np.array_equal(a[encoder], b[encoder])
        assert not np.array_equal(a[decoder], b[decoder])
