"""How a sweep ends when nothing went to plan, with training replaced by the stand-ins of
test_sweep_resume.py: every trial failed (one `error:` line naming the summary), a trial
stopped before its first checkpoint (its values trained again, a search's too), a relative
SQLite --storage (made absolute, so the sweep continues from another directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gencompile.errors import RunError
from gencompile.sweep import plan_sweep, run_sweep
from tests.test_sweep_resume import SPEC, FakeTraining


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # sweeps/ goes here
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def test_a_sweep_whose_every_trial_failed_ends_with_one_error_line(
    spec: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It ended with a bare `no trial finished`: no `error:`, nothing saying what to do."""
    monkeypatch.setattr("gencompile.runs.train", FakeTraining(fail_on={1, 2}))
    code, out, err = run_cli("sweep", str(spec), "--grid", "model.latent_dim=2,3")
    assert "trial 0 failed: the loss became NaN at epoch 1" in out
    assert (code, err.splitlines()) == (
        1,
        [
            "error: no trial of sweeps/tiny-vae finished (2 failed; trial 0: the loss became "
            "NaN at epoch 1); the trials' notes are in sweeps/tiny-vae/summary.md: fix what "
            "they say (in the spec, or with other values under a new --name) and run the "
            "sweep again"
        ],
    )
    assert "the loss became NaN at epoch 1" in Path("sweeps/tiny-vae/summary.md").read_text()


GRID = ["model.latent_dim=2,3"]


def _grid(spec: Path, sweeps: Path, storage: str | None) -> Any:
    return plan_sweep(spec, GRID, sweeps_dir=sweeps, storage=storage)


def test_a_relative_sqlite_storage_is_recorded_absolute(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sweep.json kept `sqlite:///shared.db` as typed: from another directory the same
    --storage made a new empty shared.db there and the sweep was refused for the wrong
    reason (its database "deleted or replaced?")."""
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    sweeps = tmp_path / "sweeps"
    run_sweep(_grid(spec, sweeps, "sqlite:///shared.db"), echo=lambda line: None)
    shared = f"sqlite:///{(tmp_path / 'shared.db').resolve()}"
    assert json.loads((sweeps / "tiny-vae/sweep.json").read_text())["storage"] == shared
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    with pytest.raises(RunError) as info:  # another file: this directory's shared.db
        run_sweep(_grid(spec, sweeps, "sqlite:///shared.db"), echo=lambda line: None)
    assert str(info.value).startswith(
        f"{sweeps / 'tiny-vae'} was swept with --storage {shared}, not --storage "
        f"sqlite:///{other.resolve() / 'shared.db'}: give the same storage to continue it"
    )
    assert list(other.iterdir()) == []
    again = _grid(spec, sweeps, "sqlite:///../shared.db")  # the same file, named from here
    assert again.storage == shared
    assert run_sweep(again, echo=lambda line: None).skipped == 2


def test_a_relative_storage_recorded_before_continues_from_its_directory(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = _grid(spec, tmp_path / "sweeps", "sqlite:///shared.db")
    run_sweep(plan, echo=lambda line: None)
    path = plan.folder / "sweep.json"
    path.write_text(json.dumps({**plan.identity(), "storage": "sqlite:///shared.db"}))
    assert run_sweep(plan, echo=lambda line: None).skipped == 2  # as gencompile wrote it before
    assert json.loads(path.read_text()) == plan.identity()


def test_a_call_refused_for_foreign_trial_folders_leaves_no_new_database(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = _grid(spec, tmp_path / "sweeps", None)
    run_sweep(plan, echo=lambda line: None)
    path = plan.folder / "sweep.json"
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "storage"}
    path.write_text(json.dumps(older))  # as gencompile wrote it before it kept the storage
    elsewhere = tmp_path / "new.db"
    with pytest.raises(RunError, match="holds trial folders"):
        run_sweep(_grid(spec, tmp_path / "sweeps", f"sqlite:///{elsewhere}"), lambda line: None)
    assert not elsewhere.exists()
    assert (plan.folder / "optuna.db").is_file()  # the sweep's own, untouched
