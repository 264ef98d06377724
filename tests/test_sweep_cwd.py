"""A sweep's trial folders are found whatever directory the sweep command runs from:
its study recorded them relative to the directory of its first call, so from another one
the summary fell back to the study's old values (another best trial, a `run:` path that
did not exist) and an interrupted trial was trained again from epoch 1 in a new folder.
Training is replaced by the stand-ins of test_sweep_resume.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gencompile.run_status import RunInterrupted, write_status
from gencompile.sweep import plan_sweep, run_sweep
from tests.test_sweep_resume import SPEC, FakeResume, FakeTraining

GRID = ["model.latent_dim=2,3"]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The spec and the first call's directory; another directory, to run from later."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    (first / "tiny.yaml").write_text(SPEC)
    monkeypatch.chdir(first)
    return first, other


def _from(other: Path, first: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same sweep, run from `other`: its spec and --sweeps-dir named from there."""
    monkeypatch.chdir(other)
    return plan_sweep(first / "tiny.yaml", GRID, sweeps_dir=first / "sweeps")


def test_the_summary_reads_the_trial_folders_from_another_directory(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = places
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())  # elbo -2 and -3
    plan = plan_sweep(Path("tiny.yaml"), GRID, sweeps_dir=Path("sweeps"))
    run_sweep(plan, echo=lambda line: None)
    trained_on = first / plan.folder / "trial-0001"  # `train --resume`: now the best
    (trained_on / "metrics.json").write_text(json.dumps({"metrics": {"elbo": -1.0}}))
    write_status(trained_on, "finished")
    result = run_sweep(_from(other, first, monkeypatch), echo=lambda line: None)
    assert [(row.number, row.value) for row in result.rows] == [(0, -2.0), (1, -1.0)]
    assert result.best is not None and result.best.number == 1
    assert Path(result.best.run_dir) == trained_on  # the path printed as `run:` exists
    summary = (trained_on.parent / "summary.csv").read_text()
    assert f"1,complete,-1.0,3,trained on after the sweep (then -3),{trained_on}" in summary


def test_an_interrupted_trial_continues_from_another_directory(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = places
    monkeypatch.setattr("gencompile.runs.train", FakeTraining(checkpoint_on={1}))
    with pytest.raises(RunInterrupted, match=r"trial 0 goes on in sweeps/tiny-vae/trial-0000"):
        run_sweep(plan_sweep(Path("tiny.yaml"), GRID, sweeps_dir=Path("sweeps")), echo=print)
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    plan = _from(other, first, monkeypatch)
    result = run_sweep(plan, echo=lambda line: None)
    assert resumed.folders == [plan.folder / "trial-0000"]  # its checkpoint, not epoch 1
    assert training.calls == [["model.latent_dim=3"]]
    assert not (plan.folder / "trial-0001").exists()
    assert [(row.number, row.run_dir) for row in result.rows] == [
        (1, str(plan.folder / "trial-0000")),
        (2, str(plan.folder / "trial-0002")),
    ]


def test_a_trial_gone_from_its_folder_is_said(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not silently the study's value, as if its run had been read."""
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = plan_sweep(Path("tiny.yaml"), GRID, sweeps_dir=Path("sweeps"))
    run_sweep(plan, echo=lambda line: None)
    shutil.rmtree(plan.folder / "trial-0000")
    result = run_sweep(plan, echo=lambda line: None)
    assert result.rows[0].note == "its run folder is not found here: the value the sweep saw"
    assert result.rows[1].note == ""


@pytest.mark.parametrize("recorded", ["trial-0003", "sweeps/x/trial-0003", "/old/x/trial-0003"])
def test_a_recorded_folder_is_read_in_the_sweep_folder(recorded: str) -> None:
    """Studies written before recorded a path (relative to their first call's directory)."""
    from gencompile.sweep.summary import trial_folder

    class Recorded:
        user_attrs = {"run_dir": recorded}

    assert trial_folder(Path("/sweeps/x"), Recorded()) == Path("/sweeps/x/trial-0003")  # type: ignore[arg-type]
