"""`train --resume` and a continuation say changed data as a data change, naming the field
and the file, in the words of `reproduce` and `build --locked` (`lockfile.drift_refusal`);
other versions get "install the locked versions"."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gencompile import lockfile
from gencompile.lockfile import read_lock
from gencompile.run_status import read_status, write_status

SPEC = """\
spec_version: 1
name: gmm-csv
data:
  source: {type: csv, path: d.csv}
  validation_split: 0.1
model: {family: mixture, components: 2, covariance: diag, algorithm: {type: em, max_iter: 2}}
evaluation: {metrics: [nll]}
training: {epochs: 2}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished GMM run on the CSV file beside it (folder/d.csv)."""
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("trained")
    values = np.random.default_rng(0).normal(size=(300, 2))
    np.savetxt(folder / "d.csv", values, delimiter=",", header="a,b", comments="", fmt="%.6f")
    (folder / "g.yaml").write_text(SPEC)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return train("g.yaml", quiet=True).run_dir.resolve()


@pytest.fixture
def changed(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the run, the data file it read), one row of the data edited since."""
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    data = Path(read_lock(run)["working_directory"]) / "d.csv"
    original = data.read_text()
    lines = original.splitlines()
    lines[4] = "9.0,9.0"
    data.write_text("\n".join(lines) + "\n")
    yield run, data
    data.write_text(original)


def said_as_a_data_change(err: str, run: Path, data: Path, remedy: str) -> None:
    recorded = read_lock(run)["data_fingerprint"][:16]
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"the data (data.source.path = d.csv, read from {data}) changed since the run" in err
    assert err.endswith(f", the lock's {recorded}; restore it{remedy}\n"), err
    assert "install" not in err.lower() and "machine" not in err


def test_resume_says_changed_data_as_reproduce_does(changed: tuple[Path, Path], run_cli) -> None:
    run, data = changed
    write_status(run, "interrupted")
    code, _, err = run_cli("train", "--resume", str(run))
    assert code == 1
    assert err.startswith(f"error: cannot resume {run}: the data (")
    said_as_a_data_change(err, run, data, ", or pass --allow-drift to run on the data as it is now")
    assert read_status(run) == "interrupted"


def test_a_continuation_says_changed_data_without_allow_drift(
    changed: tuple[Path, Path], run_cli
) -> None:
    run, data = changed
    code, _, err = run_cli("train", "--resume", str(run), "--epochs", "3")
    assert code == 1
    said_as_a_data_change(err.replace(", or train a new run\n", "\n"), run, data, "")
    assert err.endswith("; restore it, or train a new run\n") and "--allow-drift" not in err


def test_resume_says_other_versions_with_their_own_remedy(
    trained: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    write_status(run, "interrupted")
    monkeypatch.setattr(lockfile, "version_drift", lambda lock: ["keras 0.1 in the lock"])
    code, _, err = run_cli("train", "--resume", str(run))
    assert (code, err) == (
        1,
        f"error: cannot resume {run}: this machine differs from the lock: keras 0.1 in the "
        "lock; install the locked versions, or pass --allow-drift to resume anyway (its "
        "weights then differ from an uninterrupted run's)\n",
    )
