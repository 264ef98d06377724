"""A run's lock written before a validation rule existed still opens: `sample`, `evaluate`,
`--resume` and `reproduce` take the run as it trained. The rules against what a new run
would train or evaluate badly (`checks.TRAINING_RULES`, `EVALUATION_RULES`) refuse new
specs; `evaluate` applies the evaluation rules to what it is asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import validate_raw
from gencompile.spec.loader import Marks, RawSpec

ROOT = Path(__file__).resolve().parents[1]


def em_with_steps() -> dict:
    """gmm_blobs (EM) with training.steps_per_epoch, as gencompile accepted it before."""
    from gencompile.continuation import resolved as locked_spec
    from gencompile.spec import load_spec

    resolved = locked_spec(load_spec(ROOT / "specs" / "gmm_blobs.yaml"))
    resolved["training"]["steps_per_epoch"] = 2
    return resolved


def test_a_later_training_rule_refuses_a_new_spec_but_not_a_runs_lock() -> None:
    resolved = em_with_steps()
    with pytest.raises(SpecError, match="EM accumulates every batch"):
        validate_raw(RawSpec(resolved, Marks(), None, ""))
    opened = validate_raw(RawSpec(resolved, Marks(), None, ""), opened=True)
    assert opened.opened and opened.spec.training.steps_per_epoch == 2


def test_evaluate_checks_what_it_is_asked_not_the_rules_of_training() -> None:
    from gencompile.runs import checked_metrics

    lock = {"resolved_spec": em_with_steps()}
    assert checked_metrics(lock, ["nll"], "evaluate RUN") == ["nll"]
    with pytest.raises(SpecError) as refused:
        checked_metrics(lock, ["energy_distance"], "evaluate RUN", num_samples=1)
    (problem,) = refused.value.problems
    assert problem.file == "evaluate RUN --num-samples 1"
    assert problem.message.startswith("energy_distance needs at least 2 samples")


def test_a_run_trained_before_a_rule_is_sampled_and_evaluated(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's run: an EM mixture trained with steps_per_epoch by a gencompile that
    allowed it (its lock then read "malformed" to every command)."""
    import gencompile.spec as spec_module
    from gencompile.runs import train
    from gencompile.spec.checks import CHECKS, check_unused_training

    with monkeypatch.context() as older:  # the gencompile before the rule
        older.setattr(spec_module, "CHECKS", tuple(c for c in CHECKS if c != check_unused_training))
        settings = ["training.steps_per_epoch=2", "evaluation.metrics=[nll]"]
        run = train(ROOT / "specs" / "gmm_blobs.yaml", settings, epochs=1, run_dir=tmp_path / "run")
    lock = json.loads((run.run_dir / "spec.lock.json").read_text())
    assert lock["resolved_spec"]["training"]["steps_per_epoch"] == 2
    code, _, err = run_cli("sample", str(run.run_dir), "-n", "3", "-o", str(tmp_path / "s.npz"))
    assert code == 0, err
    code, _, err = run_cli("evaluate", str(run.run_dir), "--metrics", "nll")
    assert code == 0, err
