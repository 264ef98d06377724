"""Hostile inputs for `gencompile eject`: a missing or damaged project, a folder that holds
the user's files, a file where a folder goes, the project itself as the target, a project
of another gencompile. Each: exit 1, one line saying what to do, nothing written.

(Damaged locks and custom code are in the grids of test_lock.py and test_code_execution.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.project import build, write_lock
from gencompile.lockfile import read_lock
from gencompile.spec import load_spec


@pytest.fixture
def project(tiny_vae_spec: Path, tmp_path: Path) -> Path:
    """A fresh build of the tiny VAE in the test's folder."""
    return build(load_spec(tiny_vae_spec), tmp_path / "built").directory


def one_line(outcome) -> None:
    assert len((outcome.out + outcome.err).strip().splitlines()) == 1, outcome.err


def test_a_missing_run(hostile) -> None:
    outcome = hostile("eject", "no-such-run", "-o", "out")
    outcome.assert_refused(1, "no-such-run does not exist")
    one_line(outcome)


def test_a_folder_with_no_lock(hostile, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain/model.py").write_text("x = 1\n")
    outcome = hostile("eject", "plain", "-o", "out")
    outcome.assert_refused(1, "spec.lock.json")
    one_line(outcome)


def test_a_changed_generated_file(hostile, project: Path) -> None:
    model = project / "tiny_vae/model.py"
    model.write_text(model.read_text() + "\nimport os\n")
    outcome = hostile("eject", "built", "-o", "out")
    outcome.assert_refused(1, "tiny_vae/model.py")
    one_line(outcome)


def test_a_non_empty_output_folder(hostile, project: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/notes.txt").write_text("mine\n")
    outcome = hostile("eject", "built", "-o", "out")
    outcome.assert_refused(1, "out is not empty", "--force")
    one_line(outcome)


def test_force_writes_into_a_non_empty_folder_and_keeps_other_files(
    hostile, project: Path, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/notes.txt").write_text("mine\n")
    outcome = hostile("eject", "built", "-o", "out", "--force")
    assert outcome.code == 0, outcome.err
    assert (tmp_path / "out/notes.txt").read_text() == "mine\n"
    assert (tmp_path / "out/tiny_vae/_runtime/__init__.py").is_file()


def test_a_file_as_the_output(hostile, project: Path, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file\n")
    outcome = hostile("eject", "built", "-o", "out")
    outcome.assert_refused(1, "is a file, not a folder")
    one_line(outcome)


def test_the_project_itself_as_the_output(hostile, project: Path) -> None:
    outcome = hostile("eject", "built", "-o", "built", "--force")
    outcome.assert_refused(1, "is the project being ejected")
    one_line(outcome)


def test_a_project_of_another_gencompile(hostile, project: Path) -> None:
    lock = read_lock(project)
    lock["versions"]["gencompile"] = "0.1.0"
    write_lock(project, lock)
    outcome = hostile("eject", "built", "-o", "out")
    outcome.assert_refused(1, "gencompile 0.1.0", "build --locked")
    one_line(outcome)
