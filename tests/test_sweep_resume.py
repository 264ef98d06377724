"""A sweep's bookkeeping with training replaced by a stand-in that writes a run's
metrics.json: an interrupted sweep continues where it stopped, finished grid combinations
are skipped, a failed trial does not stop the others, and a folder holding another sweep
is refused. Real trainings are in test_sweep_run.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gencompile.errors import RunError
from gencompile.run_status import RunInterrupted, write_status
from gencompile.runs import TrainResult
from gencompile.sweep import plan_sweep, run_sweep

SPEC = """\
spec_version: 1
name: tiny-vae
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
evaluation:
  metrics: [elbo]
sweep:
  trials: 3
  parameters:
    model.latent_dim: {type: int, low: 2, high: 6}
    model.encoder.mlp: {type: choice, values: [[8], [16, 8]]}
"""


class FakeTraining:
    """Stands in for `gencompile.runs.train`: elbo = -latent_dim; may fail or stop."""

    def __init__(
        self,
        fail_on: set[int] = frozenset(),
        stop_on: set[int] = frozenset(),
        crash_on: set[int] = frozenset(),
        checkpoint_on: set[int] = frozenset(),
    ):
        self.calls: list[list[str]] = []
        self.options: list[dict[str, Any]] = []
        self.fail_on, self.stop_on, self.crash_on = set(fail_on), set(stop_on), set(crash_on)
        self.checkpoint_on = set(checkpoint_on)  # stopped after a checkpoint of epoch 2

    def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> TrainResult:
        self.calls.append(list(overrides))
        self.options.append(options)
        count = len(self.calls)
        if count in self.stop_on:
            raise RunInterrupted("interrupted: Ctrl-C")
        if count in self.checkpoint_on:
            stopped_after_checkpoint(Path(options["run_dir"]), 2)
            raise RunInterrupted("interrupted: Ctrl-C")
        if count in self.fail_on:
            raise RunError("the loss became NaN at epoch 1")
        if count in self.crash_on:
            raise ValueError("n_samples=4 should be >= n_clusters=8.")
        values = dict(text.split("=", 1) for text in overrides)
        latent = json.loads(values.get("model.latent_dim", "2"))
        run_dir = Path(options["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)  # the sweep claims it first
        metrics = {"elbo": -float(latent)}
        (run_dir / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        return TrainResult(run_dir, metrics, {"metrics": metrics})


def stopped_after_checkpoint(run_dir: Path, epoch: int) -> None:
    """What Ctrl-C leaves in a run folder once a checkpoint was written: status.json
    `interrupted` and the checkpoint's manifest (all `newest_epoch` reads)."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / f"checkpoints/epoch-{epoch:04d}.json").write_text("{}")
    write_status(run_dir, "interrupted")


class FakeResume:
    """Stands in for `gencompile.runs.resume`: finishes the run in its folder (elbo -9)."""

    def __init__(self, during: Any = None) -> None:
        self.folders: list[Path] = []
        self.during = during  # called first: another process, meanwhile

    def __call__(self, run_dir: Any, **options: Any) -> TrainResult:
        self.folders.append(Path(run_dir))
        if self.during is not None:
            self.during()
        metrics = {"elbo": -9.0}
        (Path(run_dir) / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        write_status(Path(run_dir), "finished")
        return TrainResult(Path(run_dir), metrics, {"metrics": metrics})


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def grid_plan(spec: Path, tmp_path: Path) -> Any:
    grid = ["model.latent_dim=2,3", "training.optimizer.learning_rate=1e-3,3e-3"]
    return plan_sweep(spec, grid, sweeps_dir=tmp_path / "sweeps")


def test_an_interrupted_grid_continues_and_skips_what_finished(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FakeTraining(stop_on={3})
    monkeypatch.setattr("gencompile.runs.train", first)
    with pytest.raises(RunInterrupted, match="run the same sweep command again to continue"):
        run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    assert len(first.calls) == 3  # two finished, the third stopped
    summary = (tmp_path / "sweeps/tiny-vae/summary.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in summary[1:]] == ["complete", "complete", "interrupted"]
    second = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", second)
    lines: list[str] = []
    result = run_sweep(grid_plan(spec, tmp_path), echo=lines.append)
    assert "2 grid combination(s) finished before: skipped" in lines
    assert [call[-2:] for call in second.calls] == [
        ["model.latent_dim=3", "training.optimizer.learning_rate=0.001"],
        ["model.latent_dim=3", "training.optimizer.learning_rate=0.003"],
    ]
    assert (result.ran, result.skipped) == (2, 2)
    finished = sorted(
        (r.values["model.latent_dim"], r.values["training.optimizer.learning_rate"])
        for r in result.rows
        if r.state == "complete"
    )
    assert finished == [(2, 0.001), (2, 0.003), (3, 0.001), (3, 0.003)]
    assert [r.state for r in result.rows].count("interrupted") == 1  # the stopped attempt
    assert result.best is not None and result.best.value == -2.0  # elbo: higher is better
    again = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", again)
    assert run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None).ran == 0
    assert again.calls == []


def test_a_search_continues_to_its_number_of_trials(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training = FakeTraining(fail_on={2})
    monkeypatch.setattr("gencompile.runs.train", training)
    lines: list[str] = []
    plan = plan_sweep(spec, search="optuna", sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(plan, echo=lines.append)
    assert [row.state for row in result.rows] == ["complete", "failed", "complete"]
    assert any(line.startswith("trial 1 failed: the loss became NaN") for line in lines)
    assert result.rows[1].note == "the loss became NaN at epoch 1"
    for row in result.rows:
        assert 2 <= row.values["model.latent_dim"] <= 6
        assert row.values["model.encoder.mlp"] in ([8], [16, 8])  # a list, not its JSON
    more = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", more)
    lines.clear()
    longer = plan_sweep(spec, search="optuna", trials=4, sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(longer, echo=lines.append)
    assert "2 trial(s) finished before; 2 to go" in lines
    assert len(more.calls) == 2 and len(result.rows) == 5
    summary = (plan.folder / "summary.csv").read_text().splitlines()
    assert summary[0] == "trial,state,elbo,model.latent_dim,model.encoder.mlp,note,run"
    assert len(summary) == 6
    assert (plan.folder / "optuna.db").is_file()


def test_a_folder_holding_another_sweep_is_refused(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    other = plan_sweep(spec, ["model.latent_dim=4,5"], sweeps_dir=tmp_path / "sweeps")
    with pytest.raises(RunError, match="holds another sweep \\(its grid differ\\): give --name"):
        run_sweep(other, echo=lambda line: None)
    named = plan_sweep(spec, ["model.latent_dim=4,5"], name="wider", sweeps_dir=tmp_path / "sweeps")
    assert run_sweep(named, echo=lambda line: None).ran == 2


def test_a_trial_crashing_with_any_error_does_not_stop_the_sweep(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training = FakeTraining(crash_on={1})
    monkeypatch.setattr("gencompile.runs.train", training)
    lines: list[str] = []
    result = run_sweep(grid_plan(spec, tmp_path), echo=lines.append)
    assert len(training.calls) == 4 and result.ran == 4
    assert [row.state for row in result.rows] == ["failed", "complete", "complete", "complete"]
    assert result.rows[0].note == "ValueError: n_samples=4 should be >= n_clusters=8."
    assert "trial 0 failed: ValueError: n_samples=4 should be >= n_clusters=8." in lines
    again = FakeTraining(crash_on={1})  # the same command again tries the failed one once
    monkeypatch.setattr("gencompile.runs.train", again)
    result = run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    assert (result.ran, result.skipped, len(again.calls)) == (1, 3, 1)
    assert [row.state for row in result.rows].count("failed") == 2
    search = FakeTraining(crash_on={2})
    monkeypatch.setattr("gencompile.runs.train", search)
    plan = plan_sweep(spec, search="optuna", name="search", sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(plan, echo=lambda line: None)
    assert [row.state for row in result.rows] == ["complete", "failed", "complete"]
    assert result.rows[1].note.startswith("ValueError: n_samples=4")


def test_two_sweeps_on_one_database_share_the_grid(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second sweep started while the first trains its first trial skips that one and
    trains the rest; the first then finds them finished: each combination once."""
    second = FakeTraining()
    second_lines: list[str] = []

    class First(FakeTraining):
        def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> Any:
            if not self.calls:
                monkeypatch.setattr("gencompile.runs.train", second)
                run_sweep(grid_plan(spec_path, tmp_path), echo=second_lines.append)
                monkeypatch.setattr("gencompile.runs.train", self)
            return super().__call__(spec, overrides, epochs, **options)

    spec_path = spec
    first = First()
    monkeypatch.setattr("gencompile.runs.train", first)
    result = run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    assert (len(first.calls), len(second.calls)) == (1, 3)
    assert any("taken by another process: skipped" in line for line in second_lines)
    assert len(result.rows) == 4 and {row.state for row in result.rows} == {"complete"}
    trained = {tuple(call[-2:]) for call in first.calls + second.calls}
    assert len(trained) == 4


def test_the_study_is_created_under_the_sweep_lock(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sweeps starting together on a new database must not both create its tables."""
    import fcntl

    import optuna

    create = optuna.create_study
    seen: list[bool] = []

    def checking(**options: Any) -> Any:
        plan = grid_plan(spec, tmp_path)
        with (plan.folder / "study.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append(True)
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
                seen.append(False)
        return create(**options)

    monkeypatch.setattr(optuna, "create_study", checking)
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    assert seen == [True]


def test_a_continued_search_draws_new_points_the_same_on_every_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeded by the spec's seed alone, a continuation replayed the first call's draws:
    trials 2 and 3 repeated trials 0 and 1 (a float range makes a repeat by chance unlikely)."""
    spec = tmp_path / "lr.yaml"
    rate = "    training.optimizer.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-2}\n"
    spec.write_text(SPEC + rate)

    def search(name: str, trials: int) -> list[dict[str, Any]]:
        monkeypatch.setattr("gencompile.runs.train", FakeTraining())
        plan = plan_sweep(
            spec, search="optuna", trials=trials, name=name, sweeps_dir=tmp_path / "sweeps"
        )
        return [row.values for row in run_sweep(plan, echo=lambda line: None).rows]

    first = search("a", 2)
    longer = search("a", 4)
    assert longer[:2] == first and len(longer) == 4
    for values in longer[2:]:
        assert values not in first
    assert search("b", 2) == first and search("b", 4) == longer  # the same commands: the same


def _dead_pid() -> int:
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_search_trial_whose_process_was_killed_reads_as_interrupted(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search trial killed with its process (kill -9) stayed `running` in the summary
    for ever, while `compare` said its run was interrupted."""
    import socket

    import optuna

    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = plan_sweep(spec, search="optuna", trials=1, sweeps_dir=tmp_path / "sweeps")
    run_sweep(plan, echo=lambda line: None)
    study = optuna.load_study(study_name=plan.name, storage=plan.storage)
    killed = study.ask()  # what a process killed during its trial leaves in the study
    killed.set_user_attr("process", [socket.gethostname(), _dead_pid()])
    more = plan_sweep(spec, search="optuna", trials=2, sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(more, echo=lambda line: None)
    assert [row.state for row in result.rows] == ["complete", "interrupted", "complete"]
    assert result.rows[1].note == "its process ended without finishing it"
    summary = (plan.folder / "summary.csv").read_text()
    assert ",interrupted," in summary and ",running," not in summary


def test_each_trial_shows_its_epochs(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trials trained quietly: nothing between `trial N: ...` and its result."""
    training = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", training)
    run_sweep(grid_plan(spec, tmp_path), echo=lambda line: None)
    assert [options.get("quiet", False) for options in training.options] == [False] * 4


def grid_with(spec: Path, tmp_path: Path, storage: str | None) -> Any:
    return plan_sweep(
        spec, ["model.latent_dim=2,3"], sweeps_dir=tmp_path / "sweeps", storage=storage
    )


def test_another_storage_is_refused_before_anything_trains(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same sweep without its --storage made a new study in the folder's optuna.db,
    numbered from 0, and retrained trial-0000 and trial-0001 over the first study's runs."""
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    run_sweep(grid_with(spec, tmp_path, shared), echo=lambda line: None)
    folder = tmp_path / "sweeps/tiny-vae"
    assert json.loads((folder / "sweep.json").read_text())["storage"] == shared
    again = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", again)
    with pytest.raises(RunError) as info:
        run_sweep(grid_with(spec, tmp_path, None), echo=lambda line: None)
    assert str(info.value) == (
        f"{folder} was swept with --storage {shared}, not its own optuna.db (no --storage): "
        "give the same storage to continue it, or --name for a new sweep"
    )
    assert again.calls == [] and not (folder / "optuna.db").exists()
    assert run_sweep(grid_with(spec, tmp_path, shared), echo=lambda line: None).skipped == 2


def test_trial_folders_of_a_study_the_database_lacks_are_never_rebuilt(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = grid_with(spec, tmp_path, None)
    run_sweep(plan, echo=lambda line: None)
    (plan.folder / "optuna.db").unlink()  # the study gone, its trial folders kept
    (plan.folder / "trial-0000/metrics.json").write_text('{"metrics": {"elbo": 1.5}}')
    again = FakeTraining()
    monkeypatch.setattr("gencompile.runs.train", again)
    with pytest.raises(RunError, match=r"holds trial folders \(trial-0000, trial-0001\) that"):
        run_sweep(grid_with(spec, tmp_path, None), echo=lambda line: None)
    assert again.calls == []
    assert (plan.folder / "trial-0000/metrics.json").read_text() == '{"metrics": {"elbo": 1.5}}'


def test_a_sweep_json_without_its_storage_continues_and_records_it(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = grid_with(spec, tmp_path, None)
    run_sweep(plan, echo=lambda line: None)
    path = plan.folder / "sweep.json"
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "storage"}
    path.write_text(json.dumps(older))  # as gencompile wrote it before
    assert run_sweep(plan, echo=lambda line: None).skipped == 2
    assert json.loads(path.read_text()) == plan.identity()


def test_an_older_sweep_json_is_not_rewritten_by_a_refused_call(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep.json from before the storage was kept, continued once without the sweep's
    --storage: the refused call must not record "no storage", or the right command is
    refused from then on."""
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = grid_with(spec, tmp_path, shared)
    run_sweep(plan, echo=lambda line: None)
    path = plan.folder / "sweep.json"
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "storage"}
    path.write_text(json.dumps(older))  # as gencompile wrote it before
    with pytest.raises(RunError, match="that the study 'tiny-vae' in its database does not know"):
        run_sweep(grid_with(spec, tmp_path, None), echo=lambda line: None)
    assert json.loads(path.read_text()) == older
    assert run_sweep(plan, echo=lambda line: None).skipped == 2
    assert json.loads(path.read_text()) == plan.identity()


def test_an_interrupted_grid_trial_continues_its_run_from_its_checkpoint(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained again from epoch 1 in a new folder, the interrupted trial's checkpointed
    epochs were lost, and its folder stayed an `interrupted` row for ever."""
    monkeypatch.setattr("gencompile.runs.train", FakeTraining(checkpoint_on={1}))
    plan = grid_with(spec, tmp_path, None)
    folder = plan.folder / "trial-0000"
    with pytest.raises(RunInterrupted) as info:
        run_sweep(plan, echo=lambda line: None)
    assert str(info.value) == (
        f"interrupted: the sweep {plan.folder} keeps its finished trials; run the same sweep "
        f"command again to continue it (trial 0 goes on in {folder} from its checkpoint of "
        "epoch 2)"
    )
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    lines: list[str] = []
    result = run_sweep(plan, echo=lines.append)
    assert resumed.folders == [folder]  # continued in place, not trained again
    assert training.calls == [["model.latent_dim=3"]]  # the other combination, new
    assert f"trial 1: continues trial 0 ({folder}) from its checkpoint of epoch 2" in lines
    assert [(row.number, row.state, row.run_dir) for row in result.rows] == [
        (1, "complete", str(folder)),
        (2, "complete", str(plan.folder / "trial-0002")),
    ]
    assert result.rows[0].value == -9.0
    assert result.rows[0].note == "continues trial 0 from epoch 2"
    summary = (plan.folder / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and ",interrupted," not in "\n".join(summary)
    assert not (plan.folder / "trial-0001").exists()
    again, resumed_again = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", again)
    monkeypatch.setattr("gencompile.runs.resume", resumed_again)
    result = run_sweep(plan, echo=lambda line: None)
    assert (result.ran, result.skipped) == (0, 2)  # finished this way: not a third time
    assert again.calls == [] and resumed_again.folders == []


def test_an_interrupted_search_trial_continues_with_its_values(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gencompile.runs.train", FakeTraining(checkpoint_on={2}))
    plan = plan_sweep(spec, search="optuna", trials=2, sweeps_dir=tmp_path / "sweeps")
    with pytest.raises(RunInterrupted, match=r"\(trial 1 goes on in .*trial-0001 from its"):
        run_sweep(plan, echo=lambda line: None)
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    result = run_sweep(plan, echo=lambda line: None)
    assert resumed.folders == [plan.folder / "trial-0001"] and training.calls == []
    assert [(row.number, row.state) for row in result.rows] == [(0, "complete"), (2, "complete")]
    study_rows = {row.number: row for row in result.rows}
    import optuna

    study = optuna.load_study(study_name=plan.name, storage=plan.storage)
    assert study.trials[2].params == study.trials[1].params  # the interrupted one's values
    assert study_rows[2].values == study.trials[1].user_attrs["values"]


def test_a_trial_stopped_before_its_first_checkpoint_is_trained_again(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoCheckpoint(FakeTraining):
        def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> Any:
            if not self.calls:
                self.calls.append(list(overrides))
                write_status(Path(options["run_dir"]), "interrupted")
                raise RunInterrupted("interrupted: Ctrl-C")
            return super().__call__(spec, overrides, epochs, **options)

    monkeypatch.setattr("gencompile.runs.train", NoCheckpoint())
    plan = grid_with(spec, tmp_path, None)
    with pytest.raises(RunInterrupted, match=r"\(trial 0 stopped before its first checkpoint: it"):
        run_sweep(plan, echo=lambda line: None)
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    result = run_sweep(plan, echo=lambda line: None)
    assert resumed.folders == [] and len(training.calls) == 2
    assert [row.state for row in result.rows] == ["interrupted", "complete", "complete"]


def test_two_processes_never_continue_the_same_run(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second search process started while the first continues the interrupted trial's
    run finds that run taken (a running trial continues it): it trains new trials."""
    monkeypatch.setattr("gencompile.runs.train", FakeTraining(checkpoint_on={1}))
    plan = plan_sweep(spec, search="optuna", trials=3, sweeps_dir=tmp_path / "sweeps")
    with pytest.raises(RunInterrupted):
        run_sweep(plan, echo=lambda line: None)
    other_training, other_resumed = FakeTraining(), FakeResume()

    def other_process() -> None:
        monkeypatch.setattr("gencompile.runs.train", other_training)
        monkeypatch.setattr("gencompile.runs.resume", other_resumed)
        run_sweep(plan, echo=lambda line: None)
        monkeypatch.setattr("gencompile.runs.resume", resumed)

    resumed = FakeResume(during=other_process)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    result = run_sweep(plan, echo=lambda line: None)
    assert resumed.folders == [plan.folder / "trial-0000"]
    assert other_resumed.folders == [] and len(other_training.calls) == 2
    assert [(row.number, row.state) for row in result.rows] == [
        (1, "complete"),
        (2, "complete"),
        (3, "complete"),
    ]


def test_a_trial_whose_process_was_killed_continues_its_run(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 leaves the trial running in the study and its run `running` with a dead
    process id: both read as interrupted, and the run goes on from its checkpoint."""
    import socket

    import optuna

    from gencompile.sweep.run import _suggest

    monkeypatch.setattr("gencompile.runs.train", FakeTraining())
    plan = plan_sweep(spec, search="optuna", trials=1, sweeps_dir=tmp_path / "sweeps")
    run_sweep(plan, echo=lambda line: None)
    study = optuna.load_study(study_name=plan.name, storage=plan.storage)
    killed = study.ask()  # what a process killed during its trial leaves in the study
    values = {path: _suggest(killed, path, p) for path, p in plan.parameters.items()}
    run_dir = plan.folder / "trial-0001"
    killed.set_user_attr("process", [socket.gethostname(), _dead_pid()])
    killed.set_user_attr("run_dir", str(run_dir))
    killed.set_user_attr("values", values)
    stopped_after_checkpoint(run_dir, 5)
    write_status(run_dir, "running", pid=_dead_pid(), host=socket.gethostname())
    training, resumed = FakeTraining(), FakeResume()
    monkeypatch.setattr("gencompile.runs.train", training)
    monkeypatch.setattr("gencompile.runs.resume", resumed)
    more = plan_sweep(spec, search="optuna", trials=2, sweeps_dir=tmp_path / "sweeps")
    result = run_sweep(more, echo=lambda line: None)
    assert resumed.folders == [run_dir] and training.calls == []
    assert [(row.number, row.state, row.values) for row in result.rows][1:] == [
        (2, "complete", values)
    ]
    assert result.rows[1].note == "continues trial 1 from epoch 5"
