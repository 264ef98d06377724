"""A run's relative data paths are read where it was trained (the lock's working_directory)
first, then in the current folder; so a run is evaluated, sampled, resumed, continued,
reproduced and rebuilt from any folder. Gone from both, one line names both; changed, the
refusal says it is the data, which field and which file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gencompile.data_paths import data_file, trained_in
from gencompile.errors import RunError
from gencompile.lockfile import drift_refusal, read_lock

SPEC = """\
spec_version: 1
name: gmm-csv
data:
  source: {type: csv, path: d.csv}
  validation_split: 0.1
  preprocessing: {standardize: true}
model: {family: mixture, components: 3, covariance: full, algorithm: {type: em, max_iter: 2}}
evaluation: {metrics: [nll]}
training: {epochs: 2}
"""


def write_csv(path: Path, values: np.ndarray) -> None:
    np.savetxt(path, values, delimiter=",", header="a,b", comments="", fmt="%.6f")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the folder it was trained from, the run): a GMM fitted on trained/d.csv."""
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("trained")
    write_csv(folder / "d.csv", np.random.default_rng(0).normal(size=(600, 2)))
    (folder / "g.yaml").write_text(SPEC)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        run = train("g.yaml", quiet=True).run_dir.resolve()
    return folder, run


@pytest.fixture
def run(trained: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the run (commands below change it), the data left where it trained."""
    return Path(shutil.copytree(trained[1], tmp_path / "run"))


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another working folder, holding another d.csv of the same name."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    write_csv(folder / "d.csv", np.ones((600, 2)))
    monkeypatch.chdir(folder)
    return folder


def test_the_lock_records_the_folder_the_run_was_trained_from(
    trained: tuple[Path, Path],
) -> None:
    folder, run = trained
    assert read_lock(run)["working_directory"] == str(folder)


def test_a_run_is_used_from_another_folder_and_reads_its_own_data(
    trained: tuple[Path, Path], run: Path, elsewhere: Path, run_cli
) -> None:
    recorded = json.loads((run / "metrics.json").read_text())["metrics"]["nll"]
    code, _, err = run_cli("evaluate", str(run))
    assert (code, err) == (0, "")
    assert json.loads((run / "metrics.json").read_text())["metrics"]["nll"] == recorded

    code, out, err = run_cli("reproduce", str(run), "-o", str(elsewhere / "again"))
    assert (code, err) == (0, "")
    assert "identical: weights and every metric match bit for bit" in out

    code, _, err = run_cli("build", "--locked", str(run), "-o", str(elsewhere / "lb"))
    assert (code, err) == (0, "")
    code, _, err = run_cli("sample", str(run), "-n", "10", "-o", str(elsewhere / "s.csv"))
    assert (code, err) == (0, "")
    assert (elsewhere / "s.csv").read_text().splitlines()[0] == "a,b"  # the run's header

    code, _, err = run_cli("train", "--resume", str(run), "--epochs", "3", "--quiet")
    assert (code, err) == (0, "")
    lock = read_lock(run)
    assert lock["resolved_spec"]["training"]["epochs"] == 3
    assert lock["working_directory"] == str(trained[0])  # a continuation keeps it


def test_data_gone_from_both_folders_is_one_line_naming_both(
    trained: tuple[Path, Path], run: Path, elsewhere: Path, run_cli
) -> None:
    folder = trained[0]
    (elsewhere / "d.csv").unlink()
    line = (
        f"error: data.source.path d.csv is neither in {folder} (the folder the run was "
        f"trained in) nor in {elsewhere} (the current folder); put it back in {folder}, or "
        "run the command from a folder that holds it\n"
    )
    kept = folder / "d.csv.kept"
    (folder / "d.csv").rename(kept)
    try:
        for args in (
            ["evaluate", str(run)],
            ["reproduce", str(run), "-o", str(elsewhere / "again")],
            ["build", "--locked", str(run), "-o", str(elsewhere / "lb")],
            ["train", "--resume", str(run), "--epochs", "3"],
        ):
            assert run_cli(*args)[::2] == (1, line), args
    finally:
        kept.rename(folder / "d.csv")


def test_a_moved_run_reads_the_current_folder_when_its_own_has_no_such_file(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = trained[0]
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(folder / "d.csv", moved / "other.csv")
    monkeypatch.chdir(moved)
    with trained_in({"working_directory": str(folder)}):
        assert data_file("d.csv", "path") == str(folder / "d.csv")
        assert data_file("other.csv", "path") == str(moved / "other.csv")
        assert data_file(str(folder / "d.csv"), "path") == str(folder / "d.csv")
    assert data_file("d.csv", "path") == "d.csv"  # a fresh spec: as given, as before


def test_changed_data_is_said_as_a_data_change_naming_the_field_and_file(
    trained: tuple[Path, Path], run: Path, elsewhere: Path, run_cli
) -> None:
    folder = trained[0]
    original = (folder / "d.csv").read_text()
    lines = original.splitlines()
    lines[4] = "9.0,9.0"  # one row edited after the run
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    try:
        reproduced = run_cli("reproduce", str(run), "-o", str(elsewhere / "again"))
        rebuilt = run_cli("build", "--locked", str(run), "-o", str(elsewhere / "lb"))
    finally:
        (folder / "d.csv").write_text(original)
    recorded = read_lock(run)["data_fingerprint"][:16]
    for code, _, err in (reproduced, rebuilt):
        assert code == 1
        assert err.startswith(
            f"error: the data (data.source.path = d.csv, read from {folder / 'd.csv'}) "
            "changed since the run: its fingerprint is "
        )
        assert err.endswith(
            f", the lock's {recorded}; restore it, or pass --allow-drift to run on the data "
            "as it is now\n"
        )
        assert "...." not in err and "install" not in err.lower()


def test_version_drift_keeps_its_advice_and_reproduce_says_its_own_words() -> None:
    versions = ["numpy 1.0 in the lock, 2.0 installed"]
    data = ["the data (data.source.path = d.csv, read from /d/d.csv) changed since the run"]
    assert drift_refusal(versions, [], "to build anyway") == (
        "this machine differs from the lock: numpy 1.0 in the lock, 2.0 installed; install "
        "the locked versions, or pass --allow-drift to build anyway"
    )
    assert drift_refusal(versions, data, "to re-run it anyway") == (
        "the data (data.source.path = d.csv, read from /d/d.csv) changed since the run; "
        "restore it, or pass --allow-drift to run on the data as it is now. This machine "
        "differs from the lock: numpy 1.0 in the lock, 2.0 installed; install the locked "
        "versions, or pass --allow-drift to re-run it anyway"
    )


def test_a_lock_whose_folder_is_not_absolute_is_refused(
    trained: tuple[Path, Path], run: Path
) -> None:
    from gencompile.compiler.project import write_lock

    write_lock(run, {**read_lock(run), "working_directory": "somewhere"})
    with pytest.raises(RunError) as refused:
        read_lock(run)
    assert str(refused.value) == (
        f"{run / 'spec.lock.json'} is malformed: working_directory: must be an absolute "
        "folder (got 'somewhere')"
    )


def test_every_file_field_of_a_source_is_read_where_the_run_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.runtime.data import located

    trained = tmp_path / "trained"
    (trained / "images").mkdir(parents=True)
    (trained / "shards").mkdir()
    (trained / "shards" / "a.tfrecord").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    config = {
        "working_directory": str(trained),
        "source": {"type": "images", "dir": "images", "files": "shards/*.tfrecord", "key": "x"},
        "batch_size": 8,
    }
    assert located(config) == {
        "source": {
            "type": "images",
            "dir": str(trained / "images"),
            "files": str(trained / "shards" / "*.tfrecord"),
            "key": "x",
        },
        "batch_size": 8,
    }
    with pytest.raises(RunError, match=r"^data.source.files other/\*.tfrecord is neither in "):
        located({**config, "source": {"type": "tfrecord", "files": "other/*.tfrecord"}})
