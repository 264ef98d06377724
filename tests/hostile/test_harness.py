"""The corpus' own harness: snapshots see writes, and a refusal is checked in full."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_snapshot_sees_added_changed_and_removed_files(tools, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    before = tools.snapshot(tmp_path)
    (tmp_path / "a").write_text("changed")
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("new")
    assert tools.changed(before, tools.snapshot(tmp_path)) == {"a", "b", "c"}


def test_a_refusal_with_a_stray_write_fails(tools) -> None:
    outcome = tools.Outcome(2, "", "error: no", {"README.md"})
    with pytest.raises(AssertionError, match="outside the intended output"):
        outcome.assert_refused(2, "no")
    outcome.assert_refused(2, "no", allowed=["README"])
    with pytest.raises(AssertionError, match="exit 2, wanted 1"):
        outcome.assert_refused(1)


def test_the_shared_run_is_finished(trained_vae: Path, hostile) -> None:
    outcome = hostile("compare", str(trained_vae))
    assert outcome.code == 0, outcome.err
    assert "iwae_nll" in outcome.out
