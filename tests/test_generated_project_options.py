"""The options of a generated project's train.py (`training.parse_args`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.runtime import training


@pytest.mark.parametrize("epochs", ["0", "-2"])
def test_epochs_below_one_is_a_usage_error_that_writes_nothing(
    epochs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        training.parse_args(["--epochs", epochs, "--run-dir", str(run_dir)], 5, tmp_path)
    assert stopped.value.code == 2
    assert f"argument --epochs: must be >= 1 (got {int(epochs)})" in capsys.readouterr().err
    assert not run_dir.exists()


def test_epochs_of_one_or_more_is_taken(tmp_path: Path) -> None:
    args = training.parse_args(["--epochs", "1", "--run-dir", str(tmp_path / "run")], 5, tmp_path)
    assert args.epochs == 1
    assert training.parse_args(["--run-dir", str(tmp_path / "run")], 5, tmp_path).epochs == 5
