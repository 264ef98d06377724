"""An explicit `training.steps_per_execution` above 1 under a distribution strategy is
refused before anything trains: Keras' multi-step loop fails there with a raw TensorFlow
error (a placeholder unfed) at the first step."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import RunError, SpecError
from gencompile.runtime.training import steps_per_execution
from gencompile.spec import load_spec, load_spec_text

SPECS = Path(__file__).resolve().parents[2] / "specs"
MIRRORED = """\
spec_version: 1
name: moons
data:
  source: {type: builtin, name: moons}
model:
  family: flow
  transforms: [{type: affine_coupling, mask: alternating}]
training:
  epochs: 1
  steps_per_execution: 2
  distribution: {strategy: mirrored}
"""


def test_mirrored_with_two_steps_per_call_is_refused_at_its_line() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(MIRRORED, "spec.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "training.steps_per_execution"
    assert (problem.file, problem.line) == ("spec.yaml", 10)  # `steps_per_execution: 2`
    assert problem.message == (
        "Keras' multi-step loop fails under a distribution strategy (got 2 with "
        "distribution.strategy 'mirrored', which `gencompile train --workers` also sets); "
        "use 1 or auto, which is 1 there"
    )


@pytest.mark.parametrize("per_call", ["1", "auto"])
def test_one_step_per_call_or_auto_is_accepted_under_a_strategy(per_call: str) -> None:
    text = MIRRORED.replace("steps_per_execution: 2", f"steps_per_execution: {per_call}")
    assert load_spec_text(text, "spec.yaml").spec.training.distribution.strategy == "mirrored"


def test_several_steps_per_call_stay_allowed_on_one_device() -> None:
    # maf_moons: 2400 training examples in 10 batches of 256, so 5 divides an epoch
    loaded = load_spec(SPECS / "maf_moons.yaml", ["training.steps_per_execution=5"])
    assert loaded.spec.training.steps_per_execution == 5


def test_train_with_workers_refuses_several_steps_per_call_before_starting_them(
    run_cli, tmp_path: Path
) -> None:
    spec = tmp_path / "moons.yaml"
    spec.write_text(MIRRORED.replace("  distribution: {strategy: mirrored}\n", ""))
    runs = str(tmp_path / "runs")
    code, _, err = run_cli("train", str(spec), "--workers", "2", "--runs-dir", runs)
    assert code == 2, err
    assert f"{spec}:10:3: training.steps_per_execution: " in err  # at its line
    assert "distribution.strategy 'multi_worker', which `gencompile train --workers`" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing built, no worker started


def test_a_project_built_before_the_check_is_refused_at_run_time() -> None:
    class Data:
        steps_per_epoch = 10

    training = {
        "steps_per_epoch": None,
        "steps_per_execution": 2,
        "distribution": {"strategy": "multi_worker"},
    }
    with pytest.raises(RunError) as caught:
        steps_per_execution(training, Data(), epochs=1)
    assert str(caught.value) == (
        "training.steps_per_execution=2 fails under the 'multi_worker' distribution "
        "strategy (Keras' multi-step loop): set it to 1 or auto in the spec and build again"
    )
