"""The generated README's "Use" commands: each one works as written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.project import build
from gencompile.spec import load_spec_text

SPEC = """\
spec_version: 1
name: npy-points
data:
  source: {{type: npy, path: {path}}}
  batch_size: 32
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: gaussian}}
training: {{epochs: 1}}
"""
NOTE = "The spec reads its data from points.npy, relative to the current directory:"


@pytest.mark.parametrize("absolute", [False, True])
def test_a_relative_data_path_says_where_to_run_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, absolute: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("points.npy", np.zeros((64, 2), np.float32))
    path = tmp_path / "points.npy" if absolute else "points.npy"
    project = build(load_spec_text(SPEC.format(path=path)), tmp_path / "project").directory
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert (NOTE in readme) is not absolute
    assert "python -m npy_points.train --epochs 5 --run-dir short/ # a shorter run" in readme
    assert "python -m npy_points.train --resume" in readme
