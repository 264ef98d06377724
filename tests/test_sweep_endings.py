"""How a sweep ends when nothing went to plan, with training replaced by the stand-ins of
test_sweep_resume.py: every trial failed (one `error:` line naming the summary), a trial
stopped before its first checkpoint (its values trained again, a search's too), a relative
SQLite --storage (made absolute, so the sweep continues from another directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
