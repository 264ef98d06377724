"""Every command that trains checks, before TensorFlow starts, that the run fits in memory:
a fresh `train`, `train --resume` (an interrupted run, a continuation to more epochs) and
`reproduce`; with `--workers N` (or a run trained by N workers) N processes must fit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gencompile.compiler.project import write_lock
from gencompile.continuation import pending_folder
from gencompile.lockfile import read_lock
from gencompile.run_status import read_status, write_status

TOO_LITTLE = "300M"  # below TensorFlow's own share, so every training is refused


@pytest.fixture
def run(trained_vae: Path, tmp_path: Path) -> Path:
    """A copy of the finished one-epoch run (commands below may change it)."""
    return Path(shutil.copytree(trained_vae, tmp_path / "run"))


def refused(err: str, workers: int = 1) -> None:
    """The memory refusal of `train`, one line, naming each worker when there are several."""
    assert err.startswith("error: tiny-vae needs about ") and err.count("\n") == 1, err
    assert "allowed by GENCOMPILE_MEMORY" in err and "Traceback" not in err
    assert (f"x {workers} workers" in err) == (workers > 1), err


def test_an_interrupted_run_is_not_resumed_where_it_cannot_fit(
    run: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_status(run, "interrupted")
    monkeypatch.setenv("GENCOMPILE_MEMORY", TOO_LITTLE)
    code, _, err = run_cli("train", "--resume", str(run))
    assert code == 1
    refused(err)
    assert read_status(run) == "interrupted"  # left as it was, to resume elsewhere


def test_a_continuation_is_not_built_where_it_cannot_fit(
    run: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = read_lock(run)
    monkeypatch.setenv("GENCOMPILE_MEMORY", TOO_LITTLE)
    code, _, err = run_cli("train", "--resume", str(run), "--epochs", "3")
    assert code == 1
    refused(err)
    assert read_lock(run) == before
    assert not pending_folder(run).exists()  # no continuation was built


def test_a_run_is_not_reproduced_where_it_cannot_fit(
    run: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENCOMPILE_MEMORY", TOO_LITTLE)
    code, _, err = run_cli("reproduce", str(run), "-o", str(tmp_path / "again"))
    assert code == 1
    refused(err)
    assert not (tmp_path / "again").exists()


def test_a_run_of_n_workers_is_reproduced_only_where_n_fit(
    run: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process fits in 700 MiB; the two that trained the run do not."""
    write_lock(run, {**read_lock(run), "workers": 2})
    monkeypatch.setenv("GENCOMPILE_MEMORY", "700M")
    code, _, err = run_cli("reproduce", str(run), "-o", str(tmp_path / "again"))
    assert code == 1
    refused(err, workers=2)
    assert "raise GENCOMPILE_MEMORY to at least" in err and "x 2 workers)" in err
    assert not (tmp_path / "again").exists()


def test_a_run_of_n_workers_is_resumed_only_where_n_fit(
    run: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume starts as many workers as the run started with (the lock's `workers`)."""
    write_lock(run, {**read_lock(run), "workers": 2})
    write_status(run, "interrupted")
    monkeypatch.setenv("GENCOMPILE_MEMORY", "700M")
    code, _, err = run_cli("train", "--resume", str(run))
    assert code == 1
    refused(err, workers=2)
    assert read_status(run) == "interrupted"


def test_train_with_workers_checks_every_worker(
    tiny_vae_spec: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENCOMPILE_MEMORY", "700M")  # one fits, four do not
    runs = tmp_path / "runs"
    code, _, err = run_cli("train", str(tiny_vae_spec), "--workers", "4", "--runs-dir", str(runs))
    assert code == 1
    refused(err, workers=4)
    assert not runs.exists()  # refused before anything was written
