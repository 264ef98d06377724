"""Sweeps that really train: a 2x2 grid on a tiny spec (four ordinary runs with the right
overrides, a summary, compare of the sweep folder); in the slow tier an Optuna search of two
trials and a trial pruned through the epoch listener (its fit stops after the first
epoch), whose callback the default tier checks without training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

SPEC = """\
spec_version: 1
name: tiny-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: bernoulli}
training:
  epochs: 1
evaluation:
  metrics: [elbo]
output:
  samples: {count: 4}
sweep:
  trials: 2
  parameters:
    model.latent_dim: {type: int, low: 2, high: 4}
    training.optimizer.learning_rate: {type: log_uniform, low: 1.0e-3, high: 1.0e-2}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # sweeps/ goes here
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


@pytest.mark.slow  # four trainings; test_sweep_resume covers the grid's bookkeeping
def test_a_2x2_grid_trains_four_ordinary_runs(spec: Path, run_cli) -> None:
    grid = [
        "--grid",
        "model.latent_dim=2,3",
        "--grid",
        "training.optimizer.learning_rate=1e-3,3e-3",
    ]
    code, out, err = run_cli("sweep", str(spec), *grid)
    assert code == 0, err
    folder = Path("sweeps/tiny-vae")
    trials = sorted(folder.glob("trial-*"))
    assert [t.name for t in trials] == [f"trial-000{i}" for i in range(4)]
    seen = []
    for trial in trials:
        lock = json.loads((trial / "spec.lock.json").read_text())
        resolved = lock["resolved_spec"]
        seen.append(
            (resolved["model"]["latent_dim"], resolved["training"]["optimizer"]["learning_rate"])
        )
        assert json.loads((trial / "status.json").read_text())["status"] == "finished"
        assert "elbo" in json.loads((trial / "metrics.json").read_text())["metrics"]
    assert seen == [(2, 0.001), (2, 0.003), (3, 0.001), (3, 0.003)]
    with (folder / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["state"] for row in rows] == ["complete"] * 4
    elbos = {row["trial"]: float(row["elbo"]) for row in rows}
    best = max(elbos, key=elbos.__getitem__)
    assert f"best: trial {best}, elbo" in out and f"run: sweeps/tiny-vae/trial-000{best}" in out
    assert (folder / "summary.md").read_text().startswith("# Sweep tiny-vae\n\ngrid over ")
    # the same command again: every combination finished, nothing trains
    code, out, _ = run_cli("sweep", str(spec), *grid)
    assert code == 0 and "4 grid combination(s) finished before: skipped" in out
    assert len(list(folder.glob("trial-*"))) == 4
    # compare of the sweep folder: its trials, the two swept fields, best elbo first
    code, out, err = run_cli("compare", str(folder), "--sort", "elbo", "--format", "csv")
    assert code == 0, err
    table = list(csv.DictReader(out.splitlines()))
    assert list(table[0])[:4] == [
        "run",
        "status",
        "model.latent_dim",
        "training.optimizer.learning_rate",
    ]
    assert table[0]["run"] == f"tiny-vae/trial-000{best}"
    assert [float(row["elbo"]) for row in table] == sorted(elbos.values(), reverse=True)


@pytest.mark.slow  # the search's bookkeeping is covered without training in test_sweep_resume
def test_an_optuna_search_of_two_trials(spec: Path, run_cli) -> None:
    import optuna

    code, out, err = run_cli("sweep", str(spec), "--search", "optuna", "--name", "search")
    assert code == 0, err
    assert "pruning is off: elbo is computed once, after training" in out
    study = optuna.load_study(study_name="search", storage="sqlite:///sweeps/search/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for trial in study.trials:
        assert 2 <= trial.params["model.latent_dim"] <= 4
        assert 1e-3 <= trial.params["training.optimizer.learning_rate"] <= 1e-2
        run_dir = Path("sweeps/search", trial.user_attrs["run_dir"])  # its name, in the sweep
        lock = json.loads((run_dir / "spec.lock.json").read_text())
        assert lock["resolved_spec"]["model"]["latent_dim"] == trial.params["model.latent_dim"]
    assert f"best: trial {study.best_trial.number}, elbo" in out
    # each trial shows its epochs as `gencompile train` does (plain lines off a terminal)
    assert out.count("epoch 1/1  loss ") == 2


@pytest.mark.slow  # test_the_epoch_listener_stops_a_fit covers the callback without training
def test_a_pruned_trial_stops_after_its_epoch(
    spec: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    args = ["--search", "optuna", "--trials", "1", "--epochs", "3", "--metric", "val_loss"]
    code, out, err = run_cli("sweep", str(spec), *args, "--name", "pruned")
    assert "pruning by val_loss after each epoch" in out
    assert "trial 0: pruned after epoch 1" in out
    assert code == 1 and err.splitlines()[-1] == (
        "error: no trial of sweeps/pruned finished (1 pruned); see sweeps/pruned/summary.md; "
        "run the same command with a larger --trials for more"
    )
    history = Path("sweeps/pruned/trial-0000/history.csv").read_text().splitlines()
    assert len(history) == 2  # the header and epoch 1: the fit stopped there
    lock = json.loads(Path("sweeps/pruned/trial-0000/spec.lock.json").read_text())
    assert lock["resolved_spec"]["training"]["validation_every_epochs"] == 1
    summary = Path("sweeps/pruned/summary.csv").read_text()
    assert ",pruned," in summary and "pruned after epoch 1" in summary
    # the run says so too: finished, but pruned after epoch 1 of the 3 its lock asks for
    run = Path("sweeps/pruned/trial-0000")
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["pruned_after_epoch"]) == ("finished", 1)
    report = (run / "report.md").read_text()
    assert "Pruned: a sweep's pruner stopped it after epoch 1 of the 3 asked for." in report
    code, out, err = run_cli("compare", "sweeps/pruned", "--format", "csv")
    assert code == 0, err
    assert [row["status"] for row in csv.DictReader(out.splitlines())] == ["pruned"]
    # reproduce stops after the same epoch, and finds the same weights and metrics
    code, out, err = run_cli("reproduce", str(run), "-o", "again")
    assert code == 0, err
    assert "identical" in out and "epochs trained (pruned)" in out
    assert json.loads(Path("again/status.json").read_text())["pruned_after_epoch"] == 1
    assert len(Path("again/history.csv").read_text().splitlines()) == 2
    # `train --resume` trains the epochs its lock asks for: then an ordinary finished run
    code, out, err = run_cli("train", "--resume", str(run))
    assert code == 0, err
    assert len((run / "history.csv").read_text().splitlines()) == 4
    assert json.loads((run / "status.json").read_text())["pruned_after_epoch"] is None
    assert "Pruned" not in (run / "report.md").read_text()


def test_the_epoch_listener_stops_a_fit() -> None:
    """What a pruned trial relies on: listeners see each epoch's logs (1-based epochs) and
    any one of them answering True stops the fit; nobody listening adds no callback."""
    from types import SimpleNamespace

    from gencompile.runtime import epoch_listeners

    assert epoch_listeners.callbacks() == []
    seen: list[tuple[int, dict[str, float]]] = []

    def listener(epoch: int, logs: dict[str, float]) -> bool:
        seen.append((epoch, logs))
        return logs.get("val_loss", 0.0) > 10

    with epoch_listeners.listening(listener):
        [callback] = epoch_listeners.callbacks()
        model = SimpleNamespace(stop_training=False)
        callback.set_model(model)
        callback.on_epoch_end(0, {"loss": 3.0, "val_loss": 5.0})
        assert model.stop_training is False
        callback.on_epoch_end(1, {"loss": 2.0, "val_loss": 12.0})
        assert model.stop_training is True
    assert seen == [(1, {"loss": 3.0, "val_loss": 5.0}), (2, {"loss": 2.0, "val_loss": 12.0})]
    assert epoch_listeners.callbacks() == []  # the block's end removes the listener
