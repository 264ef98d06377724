"""A VQ-VAE continuation stopped after its prior stage: prior_history.csv is a final file
of the run, kept as it was until the continuation finishes, and after a discard."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gencompile.runs import resume, train

from .conftest import SPEC, TINY


@pytest.mark.slow  # two VQ-VAE trainings with their prior stage: ~25 s
def test_a_failed_continuation_keeps_the_runs_prior_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.continuation import discard
    from gencompile.runtime import training

    tiny = [*TINY, "training.steps_per_epoch=3"]
    run = train(SPEC, tiny, epochs=1, run_dir=tmp_path / "run", quiet=True).run_dir
    before = (run / "prior_history.csv").read_bytes()

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "samples.png")

    monkeypatch.setattr(training, "write_samples", no_room)  # after the prior's fit
    with pytest.raises(OSError, match="No space left"):
        resume(run, quiet=True, epochs=2)
    monkeypatch.undo()
    refitted = run / "checkpoints" / "continuation" / "final" / "prior_history.csv"
    assert refitted.read_bytes() != before  # the prior of the 2-epoch VQ-VAE
    assert (run / "prior_history.csv").read_bytes() == before

    discard(run)

    assert (run / "prior_history.csv").read_bytes() == before
