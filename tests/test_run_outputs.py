"""An `-o` of `sample`, `score`, `impute` or `latent` never replaces a file of the run it
reads (its lock, metrics, history, weights, pictures): refused before any work, with the
file left as it was. A new file in the run folder is not one of its files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gencompile.errors import RunError
from gencompile.outputs import writable_output

COMMANDS = {
    "sample": ["sample", "RUN", "-n", "2", "-o", "OUT"],
    "score": ["score", "RUN", "--split", "heldout", "-o", "OUT"],
    "impute": ["impute", "RUN", "--input", "rows.csv", "-o", "OUT"],
    "latent": ["latent", "RUN", "interpolate", "--from", "0", "--to", "1", "-o", "OUT"],
}


NAMES = ("spec.lock.json", "metrics.json", "history.csv", "samples.png", "latent/map.png")
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
    assert f"-o {target} is a file of the run being read" in " ".join(err.split()), err
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
