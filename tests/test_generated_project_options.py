"""The options of a generated project's train.py (`training.parse_args`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.project import build
from gencompile.errors import RunError
from gencompile.runtime import training
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


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


def test_resume_of_a_folder_with_a_model_but_no_checkpoint_says_what_works(
    tmp_path: Path,
) -> None:
    """An ejected run holds model.weights.h5 without checkpoints: --resume names the way
    that works (another --run-dir), not a plain training that is then refused too."""
    ejected = tmp_path / "ejected"
    ejected.mkdir()
    (ejected / "model.weights.h5").write_bytes(b"weights")
    with pytest.raises(RunError) as refused:
        training.parse_args(["--resume"], 5, ejected)
    assert str(refused.value) == (
        f"{ejected} holds a trained model (model.weights.h5) but no checkpoint to resume "
        "from (an ejected run comes without them): train anew into another folder with "
        "--run-dir DIR; this folder keeps its model"
    )
    with pytest.raises(RunError, match="another folder with --run-dir DIR"):
        training.parse_args([], 5, ejected)  # a plain training: refused, as advised
    args = training.parse_args(["--run-dir", str(tmp_path / "elsewhere")], 5, ejected)
    assert args.run_dir == tmp_path / "elsewhere"


def test_the_readme_says_a_relative_init_from_path_is_read_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "parent.weights.h5").write_bytes(b"weights")
    spec = REPO / "specs" / "vae_moons.yaml"
    for given, said in (("parent.weights.h5", True), (str(tmp_path / "parent.weights.h5"), False)):
        loaded = load_spec(spec, [f"model.init_from.weights={given}"])
        readme = (build(loaded, tmp_path / "p", force=True).directory / "README.md").read_text()
        note = (
            f"It starts from the pretrained weights of {given} (`model.init_from`, kept as\n"
            "`INIT_FROM` in `vae_moons/train.py`), relative to the current directory"
        )
        assert (note in readme) == said
