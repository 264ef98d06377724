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
from gencompile.run_status import RunInterrupted, write_status
from gencompile.sweep import plan_sweep, run_sweep
from gencompile.sweep.plan import overrides_of
from tests.test_sweep_resume import SPEC, FakeResume, FakeTraining


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


class StoppedFirst(FakeTraining):
    """Ctrl-C in the first trial before its first checkpoint: its run says `interrupted`
    and its checkpoints folder holds none."""

    def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> Any:
        if not self.calls:
            self.calls.append(list(overrides))
            write_status(Path(options["run_dir"]), "interrupted")
            raise RunInterrupted("interrupted: Ctrl-C")
        return super().__call__(spec, overrides, epochs, **options)


def test_a_search_trial_stopped_before_its_first_checkpoint_is_trained_again(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its values were dropped: the search drew a new point, and README and the interrupt
    message said it is trained again."""
    monkeypatch.setattr("gencompile.runs.train", StoppedFirst())
    plan = plan_sweep(spec, search="optuna", trials=2, sweeps_dir=tmp_path / "sweeps")
    with pytest.raises(RunInterrupted) as info:
        run_sweep(plan, echo=lambda line: None)
    assert str(info.value).endswith(
        "(trial 0 stopped before its first checkpoint: its values are trained again from "
        "epoch 1, in a new folder)"
    )
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    lines: list[str] = []
    result = run_sweep(plan, echo=lines.append)
    stopped = result.rows[0].values
    assert resumed.folders == [] and len(training.calls) == 2
    assert training.calls[0][-2:] == overrides_of(stopped)  # its values, in a new folder
    assert training.options[0]["run_dir"] == plan.folder / "trial-0001"
    assert "trial 1: trains the values of trial 0 again, which stopped before its first " in (
        "\n".join(lines)
    )
    assert [(row.number, row.state, row.note) for row in result.rows] == [
        (0, "interrupted", "trained again by trial 1"),
        (1, "complete", "the values of trial 0 again, from epoch 1"),
        (2, "complete", ""),
    ]
    assert result.rows[1].values == stopped
    more = FakeTraining()  # trained again once: a longer search draws new points
    monkeypatch.setattr("gencompile.runs.train", more)
    longer = plan_sweep(spec, search="optuna", trials=3, sweeps_dir=tmp_path / "sweeps")
    assert len(run_sweep(longer, echo=lambda line: None).rows) == 4
    assert len(more.calls) == 1 and more.options[0]["run_dir"] == plan.folder / "trial-0003"


def test_a_killed_search_trial_without_a_checkpoint_is_trained_again(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 in a trial's first minute (no checkpoint yet): the common case."""
    import socket

    import optuna

    from gencompile.sweep.run import _suggest
    from tests.test_sweep_resume import _dead_pid

    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = plan_sweep(spec, search="optuna", trials=1, sweeps_dir=tmp_path / "sweeps")
    run_sweep(plan, echo=lambda line: None)
    study = optuna.load_study(study_name=plan.name, storage=plan.storage)
    killed = study.ask()  # what a process killed during its trial leaves in the study
    values = {path: _suggest(killed, path, p) for path, p in plan.parameters.items()}
    killed.set_user_attr("process", [socket.gethostname(), _dead_pid()])
    killed.set_user_attr("run_dir", "trial-0001")
    killed.set_user_attr("values", values)
    (plan.folder / "trial-0001/checkpoints").mkdir(parents=True)
    write_status(plan.folder / "trial-0001", "running", pid=_dead_pid(), host=socket.gethostname())
    training = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", training)
    more = plan_sweep(spec, search="optuna", trials=2, sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(more, echo=lambda line: None)
    assert training.calls == [overrides_of(values)]
    assert [(row.number, row.state, row.values) for row in result.rows][1:] == [
        (1, "interrupted", values),
        (2, "complete", values),
    ]


def test_a_grid_trial_stopped_before_its_first_checkpoint_says_which_trial_trains_it(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", StoppedFirst())
    plan = _grid(spec, tmp_path / "sweeps", None)
    with pytest.raises(RunInterrupted):
        run_sweep(plan, echo=lambda line: None)
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    result = run_sweep(plan, echo=lambda line: None)
    assert [(row.number, row.state, row.note) for row in result.rows] == [
        (0, "interrupted", "trained again by trial 1"),
        (1, "complete", "the values of trial 0 again, from epoch 1"),
        (2, "complete", ""),
    ]
    assert result.rows[1].values == result.rows[0].values == {"model.latent_dim": 2}
