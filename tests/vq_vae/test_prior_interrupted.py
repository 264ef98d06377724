"""A VQ-VAE stopped in stage 2 says its prior's epochs so far are trained again."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile import run_status
from gencompile.run_status import RunInterrupted, interrupted_message, recorded


@pytest.fixture
def stopped_after_epoch_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from gencompile.runtime import checkpoint_files

    monkeypatch.setattr(checkpoint_files, "newest_epoch", lambda directory: 2)
    return tmp_path


def test_a_stop_in_stage_1_says_nothing_of_the_prior(stopped_after_epoch_2: Path) -> None:
    run = stopped_after_epoch_2
    assert interrupted_message(run) == (
        f"interrupted: {run} keeps its checkpoint of epoch 2; continue with "
        f"`gencompile train --resume {run}`"
    )


def test_a_stop_in_stage_2_counts_the_prior_epochs_trained_again(
    stopped_after_epoch_2: Path,
) -> None:
    run = stopped_after_epoch_2
    history = run / run_status.PRIOR_HISTORY
    history.write_text("epoch,loss\n1,3.5\n")
    assert interrupted_message(run).endswith(
        f"--resume {run}`; its prior's 1 epoch so far is trained again (the checkpoints hold "
        "the VQ-VAE's epochs: --resume fits the prior from the start)"
    )
    history.write_text("epoch,loss\n1,3.5\n2,3.1\n3,2.9")  # the last line cut short
    again = "its prior's 2 epochs so far are trained again"
    with pytest.raises(RunInterrupted, match=again), recorded(run):
        raise KeyboardInterrupt


def test_the_message_reads_the_file_the_prior_writes() -> None:
    vq = pytest.importorskip("gencompile.runtime.vq")
    assert run_status.PRIOR_HISTORY == vq.PRIOR_HISTORY
