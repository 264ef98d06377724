"""A generated project's train.py runs as a script too (`python train.py`, from its package
folder, or `python PKG/train.py`), not only as `python -m PKG.train`: it imported `.model`
relatively and died with an ImportError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gencompile.compiler.project import build
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_train_py_runs_as_a_script_from_its_package_folder(tmp_path: Path) -> None:
    build(load_spec(ROOT / "specs" / "gmm_blobs.yaml"), tmp_path / "project")
    package = tmp_path / "project" / "gmm_blobs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # gencompile itself; not the project
    done = subprocess.run(
        [sys.executable, "train.py", "--help"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--epochs" in done.stdout and "Traceback" not in done.stderr
