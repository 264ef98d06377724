"""Processes running one search stop at its `--trials`: a trial running in another
process counts as taken when a process decides whether to start one more (claimed under
the study lock), so finished trials never overshoot the target."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from gencompile.runs import TrainResult
from gencompile.sweep import plan_sweep, run_sweep
from tests.conftest import SWEEP_VAE

SPEC = (
    SWEEP_VAE
    + """\
sweep:
  trials: 2
  parameters:
    model.latent_dim: {type: int, low: 2, high: 6}
"""
)


class OtherProcessStarts:
    """Stands in for `gencompile.runs.train`; during the first trial another process (a
    live one: this test's parent) claims a trial of the same study and is still running it."""

    def __init__(self, storage: str, name: str):
        self.storage, self.name, self.calls = storage, name, 0

    def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> Any:
        import optuna

        self.calls += 1
        if self.calls == 1:
            other = optuna.load_study(study_name=self.name, storage=self.storage).ask()
            other.set_user_attr("process", [socket.gethostname(), os.getppid()])
        run_dir = Path(options["run_dir"])
        metrics = {"elbo": -1.0}
        (run_dir / "metrics.json").write_text(json.dumps({"metrics": metrics}))
        return TrainResult(run_dir, metrics, {"metrics": metrics})


def test_a_trial_running_elsewhere_counts_toward_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    plan = plan_sweep(spec, search="optuna", sweeps_dir=tmp_path / "sweeps")
    training = OtherProcessStarts(plan.storage, plan.name)
    monkeypatch.setattr("gencompile.runs.train", training)
    lines: list[str] = []
    result = run_sweep(plan, echo=lines.append)
    # one finished here and one running elsewhere make the 2 trials: no second one here
    assert (training.calls, result.ran) == (1, 1)
    assert "trial(s) 1 running in other processes make up the 2 trials: no more here" in lines
    assert [row.state for row in result.rows] == ["complete", "running"]


class OtherProcessFinishes(OtherProcessStarts):
    """As `OtherProcessStarts`, but the other process has finished its trial by the time
    this one would claim its next."""

    def __call__(self, spec: Any, overrides: list[str], epochs: Any, **options: Any) -> Any:
        import optuna

        result = super().__call__(spec, overrides, epochs, **options)
        study = optuna.load_study(study_name=self.name, storage=self.storage)
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if trial.user_attrs.get("process", [None, None])[1] == os.getppid():
                study.tell(trial.number, -2.0)
        return result


def test_trials_finished_by_another_process_are_said_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    plan = plan_sweep(spec, search="optuna", sweeps_dir=tmp_path / "sweeps")
    monkeypatch.setattr("gencompile.runs.train", OtherProcessFinishes(plan.storage, plan.name))
    lines: list[str] = []
    result = run_sweep(plan, echo=lines.append)
    assert "the 2 trials are finished (some by other processes): no more here" in lines
    assert not any("running in other processes" in line for line in lines)
    assert [row.state for row in result.rows] == ["complete", "complete"]


def test_processes_starting_together_draw_different_points(tmp_path: Path) -> None:
    """Each claim seeds the sampler by the trials the study holds then (running ones
    included): two processes that started together no longer train the same values."""
    import optuna

    from gencompile.sweep.run import _claim_trial, _suggest

    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        SPEC.replace(
            "model.latent_dim: {type: int, low: 2, high: 6}",
            "model.latent_dim: {type: int, low: 2, high: 1000}",
        )
    )
    plan = plan_sweep(spec, search="optuna", sweeps_dir=tmp_path / "sweeps")
    plan.folder.mkdir(parents=True)
    drawn = []
    for _ in range(2):  # each process loads the study on its own
        study = optuna.create_study(study_name=plan.name, storage=plan.storage, load_if_exists=True)
        study.sampler = optuna.samplers.TPESampler(seed=plan.seed)  # as both start
        trial = _claim_trial(plan, study)
        assert trial is not None
        drawn.append({path: _suggest(trial, path, p) for path, p in plan.parameters.items()})
    assert drawn[0] != drawn[1]
