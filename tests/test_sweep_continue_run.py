"""A real trial stopped by Ctrl-C after its second epoch's checkpoint: the same sweep
continues its run from that checkpoint (its epochs are not trained again), and the new
trial's pruning listener reports the resumed epochs to Optuna."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.run_status import RunInterrupted, read_status
from gencompile.runtime import history_file
from gencompile.runtime.epoch_listeners import listening
from gencompile.sweep import plan_sweep, run_sweep
from tests.conftest import SWEEP_VAE

SPEC = (
    SWEEP_VAE
    + """\
sweep:
  trials: 1
  parameters:
    model.latent_dim: {type: int, low: 2, high: 6}
"""
)


def ctrl_c_after(stop: int) -> object:
    """Ctrl-C at the end of epoch `stop` (its checkpoint written: listeners come after)."""

    def listener(epoch: int, logs: dict[str, float]) -> bool:
        if epoch == stop:
            raise KeyboardInterrupt
        return False

    return listening(listener)


@pytest.mark.slow  # a training of 3 epochs in two parts (~10 s); test_sweep_resume covers
# the bookkeeping without training
def test_an_interrupted_trial_goes_on_from_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    plan = plan_sweep(
        spec, search="optuna", epochs=3, metric="val_loss", sweeps_dir=tmp_path / "sweeps"
    )
    run_dir = plan.folder / "trial-0000"
    with ctrl_c_after(2), pytest.raises(RunInterrupted, match=r"checkpoint of epoch 2\)$"):
        run_sweep(plan, echo=lambda line: None)
    assert read_status(run_dir) == "interrupted"
    capsys.readouterr()
    lines: list[str] = []
    result = run_sweep(plan, echo=lines.append)
    trained = [
        line.split()[1] for line in capsys.readouterr().out.splitlines() if "val_loss" in line
    ]
    assert trained == ["3/3"]  # epochs 1 and 2 not trained again
    assert f"trial 1: continues trial 0 ({run_dir}) from its checkpoint of epoch 2" in lines
    assert read_status(run_dir) == "finished" and not (plan.folder / "trial-0001").exists()
    assert sorted(history_file.read_epochs(run_dir / "history.csv")) == [1, 2, 3]
    assert [(row.number, row.state, row.run_dir) for row in result.rows] == [
        (1, "complete", str(run_dir))
    ]
    study = optuna.load_study(study_name=plan.name, storage=plan.storage)
    first, continued = study.trials
    assert continued.params == first.params
    assert sorted(continued.intermediate_values) == [3]  # the resumed epoch, reported
