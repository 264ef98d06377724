"""An `-o` of `sample`, `score`, `impute` or `latent` never replaces a file of the run it
reads (its lock, project, metrics, history, weights, pictures): refused before any work,
with the file left as it was, saying which kind of file it is. A new file in the run
folder is not one of its files, nor one the user wrote there (an earlier -o)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.outputs import writable_output

COMMANDS = {
    "sample": ["sample", "RUN", "-n", "2", "-o", "OUT"],
    "score": ["score", "RUN", "--split", "heldout", "-o", "OUT"],
    "impute": ["impute", "RUN", "--input", "rows.csv", "-o", "OUT"],
    "latent": ["latent", "RUN", "interpolate", "--from", "0", "--to", "1", "-o", "OUT"],
}


KINDS = {
    "spec.lock.json": "its lock",
    "metrics.json": "one its training wrote",
    "history.csv": "one its training wrote",
    "samples.png": "one its training wrote",
    "latent/map.png": "one its training wrote",
    "README.md": "a file of its generated project",
}
NAMES = tuple(KINDS)
# latent writes only .png or .npz: its other names are refused by their suffix first
CASES = [(c, n) for c in sorted(COMMANDS) for n in NAMES if c != "latent" or n.endswith(".png")]


@pytest.mark.parametrize(("command", "name"), CASES)
def test_an_output_that_is_a_file_of_the_run_is_refused(
    run_cli, trained_vae, tmp_path, monkeypatch, command, name
) -> None:
    target = trained_vae / name
    before = target.read_bytes()
    monkeypatch.chdir(tmp_path)
    args = [str(trained_vae) if a == "RUN" else str(target) if a == "OUT" else a
            for a in COMMANDS[command]]  # fmt: skip
    code, _, err = run_cli(*args)
    assert code == 1, err
    said = f"-o {target} is a file of the run being read ({trained_vae}), {KINDS[name]}:"
    assert said in " ".join(err.split()), err
    assert "give another output file" in err
    assert target.read_bytes() == before


def test_the_check_sees_through_other_names_and_allows_new_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "latent").mkdir(parents=True)
    (run / "latent" / "map.png").write_bytes(b"picture")
    os.symlink(run, tmp_path / "link")
    for given in (run / "latent" / "map.png", tmp_path / "link" / "latent" / "map.png"):
        with pytest.raises(RunError, match="is a file of the run being read"):
            writable_output(given, "-o", "map.png", run_dir=run)
    assert writable_output(run / "latent" / "new.png", "-o", "x.png", run_dir=run)
    (tmp_path / "map.png").write_bytes(b"mine")
    assert writable_output(tmp_path / "map.png", "-o", "x.png", run_dir=run)


def test_each_kind_of_run_file_is_named_and_a_file_of_the_user_is_not_one(tmp_path: Path) -> None:
    """The run's files are its lock, what the lock lists (a folder of them: all of it) and
    what training writes; any other file there is the user's, replaced like any output."""
    run = tmp_path / "run"
    files = {"spec.yaml": "", "README.md": "", "pkg/model.py": "", "tests/test_model.py": ""}
    names = {
        "spec.lock.json": "its lock",
        "spec.yaml": "a file of its generated project",
        "pkg/model.py": "a file of its generated project",
        "pkg/__pycache__/model.pyc": "a file of its generated project",
        "metrics.json": "one its training wrote",
        "checkpoints/epoch-0001.json": "one its training wrote",
        "prior_history.csv": "one its training wrote",
        "init_from.json": "one its training wrote",
        "stale-20261204T101010Z/metrics.json": "one its training wrote",
    }
    for name in (*names, "my_draws.npz", "stale_draws.npz", "mine/scores.csv"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("x")
    (run / "spec.lock.json").write_text(json.dumps({"files": files}))
    for name, kind in names.items():
        with pytest.raises(RunError, match=f"run being read \\({run}\\), {kind}: writing it"):
            writable_output(run / name, "-o", "x.npz", run_dir=run)
    for name in ("my_draws.npz", "stale_draws.npz", "mine/scores.csv"):
        assert writable_output(run / name, "-o", "x.npz", run_dir=run) == run / name


def test_an_output_written_into_the_run_folder_before_is_written_again(
    run_cli, trained_vae: Path, tmp_path: Path
) -> None:
    """`sample RUN -o RUN/my_draws.npz` twice: the second was refused as the run's record."""
    run = tmp_path / "run"
    shutil.copytree(trained_vae, run)  # the shared run stays as it is
    (run / "my_draws.npz").write_bytes(b"the first call's draws")
    code, _, err = run_cli("sample", str(run), "-n", "3", "-o", str(run / "my_draws.npz"))
    assert code == 0, err
    assert np.load(run / "my_draws.npz")["samples"].shape[0] == 3


def test_the_default_output_inside_the_run_folder_is_not_the_runs_own_picture(
    run_cli, trained_vae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd RUN && gencompile sample .`: the default samples.png would be the run's own."""
    run = tmp_path / "run"
    shutil.copytree(trained_vae, run)
    before = (run / "samples.png").read_bytes()
    monkeypatch.chdir(run)
    code, _, err = run_cli("sample", ".", "-n", "3")
    assert code == 1 and "samples.png" in err and "Traceback" not in err, err
    assert (run / "samples.png").read_bytes() == before
