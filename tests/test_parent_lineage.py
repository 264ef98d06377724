"""A fine-tuned run's lock pins the parent weights it actually trained from: a continuation
keeps the pins (more epochs do not start from the parent again), `reproduce` and
`build --locked` refuse a changed parent (one line naming it) and, with --allow-drift,
record and show the parent the re-run read. A relative parent path is read where the
run's data is: in the folder the run was trained in first, then in the current folder, by
the checks and by the re-run alike, so the run is reproduced from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gencompile.compiler.project import write_lock
from gencompile.data_paths import WORKING_DIRECTORY, read_where_trained_in
from gencompile.errors import RunError
from gencompile.files import sha256_file
from gencompile.lockfile import read_lock
from gencompile.provenance import (
    parent_gone,
    parent_hashes,
    parent_problem,
    pretrained_problem,
    report_lines,
)
from gencompile.reproduction import reproduce
from gencompile.runs import resume, train

SPEC = """\
spec_version: 1
name: {name}
data:
  source: {{type: builtin, name: digits, classes: [0, 1]}}
  preprocessing: {{scale: [0.0, 1.0]}}
  batch_size: 128
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8], activation: relu}}
  decoder: {{mlp: [8], activation: relu}}
{init_from}
training: {{epochs: 1}}
evaluation: {{metrics: [elbo]}}
output: {{samples: {{count: 2}}}}
"""
PARENT = "runs/parent"  # relative, as users name it: read from the current folder
CHILD = "runs/child"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding runs/parent and runs/child, fine-tuned from it by its relative path
    (both trained from that folder, which the child's lock records)."""
    folder = tmp_path_factory.mktemp("lineage")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, run, init_from in (
            ("lineage-parent", PARENT, ""),
            ("lineage-child", CHILD, f"  init_from: {{run: {PARENT}}}"),
        ):
            spec = folder / f"{name}.yaml"
            spec.write_text(SPEC.format(name=name, init_from=init_from))
            train(spec, run_dir=run, quiet=True)
    return folder


@pytest.fixture
def copied(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained folder this test may change, made the current folder and the
    one the child's lock says it was trained in (where its parent is read first)."""
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    monkeypatch.chdir(folder)
    lock = read_lock(folder / CHILD)
    write_lock(folder / CHILD, {**lock, WORKING_DIRECTORY: str(folder)})
    return folder


def change_parent(folder: Path) -> str:
    """Other weights for the parent, still readable as its weights (the child has the same
    networks): as a parent trained on would have. Returns their sha256."""
    shutil.copyfile(folder / CHILD / "model.weights.h5", folder / PARENT / "model.weights.h5")
    return sha256_file(folder / PARENT / "model.weights.h5")


def test_the_lock_pins_the_parent_the_child_started_from(copied: Path) -> None:
    lock = read_lock(copied / CHILD)
    started = json.loads((copied / CHILD / "init_from.json").read_text())["parent"]
    assert lock["parent"] == {"run": PARENT, **started}
    assert started["weights_sha256"] == sha256_file(copied / PARENT / "model.weights.h5")


def test_a_continuation_keeps_the_pin_of_a_parent_changed_since(copied: Path) -> None:
    """...and `reproduce` then refuses, naming the parent and both hashes (it used to pin
    the parent as it is now and re-run from it saying "same")."""
    pinned = read_lock(copied / CHILD)["parent"]
    now = change_parent(copied)
    resume(CHILD, epochs=2, quiet=True)
    lock = read_lock(copied / CHILD)
    assert len(lock["revisions"]) == 1  # continued
    assert lock["parent"] == pinned
    with pytest.raises(RunError) as refused:
        reproduce(CHILD)
    assert str(refused.value) == (
        f"cannot reproduce {CHILD}: the run started from {PARENT}, whose weights have changed "
        f"since (sha256 {pinned['weights_sha256'][:12]} then, {now[:12]} now) (--allow-drift "
        "re-runs from it as it is now)"
    )


def test_a_continuation_from_another_folder_pins_the_parent_where_it_was_trained(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run moved, continued from another folder: its parent is read in the folder the
    run was trained in, so the rebuilt lock pins it as it is there (it used to pin null)."""
    run = tmp_path / "moved" / "child"
    shutil.copytree(trained / CHILD, run)
    monkeypatch.chdir(tmp_path)
    pinned = read_lock(run)["parent"]
    assert parent_hashes({"run": PARENT}) == {"weights_sha256": None, "lock_sha256": None}
    resume(run, epochs=2, quiet=True)
    assert read_lock(run)["parent"] == pinned
    assert parent_gone(read_lock(run)) is None


def test_reproduce_from_another_folder_reads_the_parent_where_the_run_was_trained(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:
    """Parent and child trained in one folder with relative paths, the child reproduced
    from another: the re-run starts from the same parent (it used to be refused: "reproduce
    it from <folder>")."""
    monkeypatch.chdir(tmp_path)
    again = tmp_path / "again"
    code, out, err = run_cli("reproduce", str(trained / CHILD), "-o", str(again))
    assert (code, err) == (0, "")
    assert "identical" in out
    pinned = read_lock(trained / CHILD)["parent"]["weights_sha256"]
    read = json.loads((again / "init_from.json").read_text())
    assert read["parent"]["weights_sha256"] == pinned
    assert read["source"] == {"run": str(trained / PARENT)}  # the parent the run read


def test_the_generated_code_reads_the_parent_where_the_run_was_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """INIT_FROM's parent and each keras_application file, relative, is read in the folder
    the run was trained in when it is there; otherwise as given (its reader says it is
    missing, from the current folder)."""
    trained = tmp_path / "trained"
    (trained / PARENT).mkdir(parents=True)
    (trained / "app.h5").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    init_from = {"run": PARENT, "family": "vae"}
    applications = {"encoder": {"mobilenetv2": "app.h5", "other": "absent.h5"}}
    read_where_trained_in(str(trained), {}, init_from, applications)
    assert init_from == {"run": str(trained / PARENT), "family": "vae"}
    assert applications == {
        "encoder": {"mobilenetv2": str(trained / "app.h5"), "other": "absent.h5"}
    }


def test_a_parent_in_neither_folder_is_gone_naming_both(
    copied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = read_lock(copied / CHILD)
    shutil.rmtree(copied / PARENT)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError) as refused:
        reproduce(copied / CHILD)
    assert str(refused.value) == (
        f"cannot reproduce {copied / CHILD}: it was fine-tuned from the run {PARENT} "
        "(model.init_from.run), which is gone: restore that run there (its weights' sha256 "
        f"{lock['parent']['weights_sha256'][:12]} in the lock; a relative path is read in "
        f"{copied}, the folder the run was trained in, else in {tmp_path}, the current "
        "folder), then reproduce again"
    )


def test_pretrained_weights_are_checked_where_the_run_was_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "app.h5").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    pinned = {"weights": "app.h5", "sha256": sha256_file(trained / "app.h5")}
    lock = {"pretrained": {"encoder.mobilenetv2": pinned}, WORKING_DIRECTORY: str(trained)}
    assert pretrained_problem(lock) is None
    (trained / "app.h5").write_bytes(b"other")
    assert "which has changed since" in str(pretrained_problem(lock))


def test_a_lock_with_no_parent_hash_is_refused_in_one_line(copied: Path) -> None:
    """A lock an earlier continuation pinned as null: no TypeError, a line saying so."""
    lock = read_lock(copied / CHILD)
    write_lock(copied / CHILD, {**lock, "parent": {**lock["parent"], "weights_sha256": None}})
    with pytest.raises(RunError) as refused:
        reproduce(CHILD)
    assert str(refused.value) == (
        f"cannot reproduce {CHILD}: the run started from {PARENT}, whose weights' sha256 its "
        "lock does not record, so a change cannot be detected (--allow-drift re-runs from "
        "it as it is now)"
    )


def test_a_parent_pinned_as_null_is_one_line(copied: Path) -> None:
    lock = read_lock(copied / CHILD)
    lock = {**lock, "parent": {**lock["parent"], "weights_sha256": None}}
    assert parent_problem(lock) == (
        f"the run started from {PARENT}, whose weights' sha256 its lock does not record, so "
        "a change cannot be detected"
    )


def test_the_report_lists_the_parent_layers_left_behind(tmp_path: Path) -> None:
    taken = {
        "taken": ["encoder.dense"],
        "fresh": [{"layer": "decoder.dense_1", "why": "shapes differ"}],
        "left_behind": [{"layer": "decoder.dense_2", "why": "this model has no such layer"}],
    }
    (tmp_path / "init_from.json").write_text(json.dumps(taken))
    lock = {"parent": {"run": PARENT, "weights_sha256": "ab" * 32}}
    assert report_lines(tmp_path, lock) == [
        f"started from {PARENT} (abababababab)",
        "layers taken from it: 1",
        "started fresh: decoder.dense_1: shapes differ",
        "left behind in the parent: decoder.dense_2: this model has no such layer",
    ]


def test_build_locked_refuses_a_changed_parent_and_allowed_pins_it_as_it_is(
    copied: Path, run_cli
) -> None:
    old = read_lock(copied / CHILD)["parent"]["weights_sha256"]
    now = change_parent(copied)
    code, _, err = run_cli("build", "--locked", CHILD, "-o", "again")
    assert (code, err) == (
        1,
        f"error: the run started from {PARENT}, whose weights have changed since (sha256 "
        f"{old[:12]} then, {now[:12]} now); restore them, or pass --allow-drift to start "
        "from them as they are now\n",
    )
    assert not (copied / "again" / "spec.lock.json").exists()
    code, _, err = run_cli("build", "--locked", CHILD, "-o", "again", "--allow-drift")
    assert code == 0, err
    assert "building despite drift: the run started from" in err
    assert read_lock(copied / "again")["parent"]["weights_sha256"] == now


def test_build_locked_keeps_an_unchanged_parent_pin(copied: Path, run_cli) -> None:
    code, _, err = run_cli("build", "--locked", CHILD, "-o", "again")
    assert (code, err) == (0, "")
    assert read_lock(copied / "again")["parent"] == read_lock(copied / CHILD)["parent"]


@pytest.mark.slow
def test_the_project_build_locked_writes_trains_from_the_parent_it_checked(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:
    """The reviewer's case: another folder holds other weights at the parent's relative
    path. `build --locked` of the child from there checks (and pins) the parent in the
    folder the child was trained in, and the built project, trained by hand from that
    other folder, reads that very parent, not the one at the same path here."""
    other = tmp_path / "other"
    shutil.copytree(trained / PARENT, other / PARENT)
    other_weights = other / PARENT / "model.weights.h5"
    shutil.copyfile(trained / CHILD / "model.weights.h5", other_weights)
    monkeypatch.chdir(other)
    code, _, err = run_cli("build", "--locked", str(trained / CHILD / "spec.lock.json"), "-o", "bl")
    assert (code, err) == (0, "")
    pinned = read_lock(other / "bl")["parent"]["weights_sha256"]
    assert (
        pinned == sha256_file(trained / PARENT / "model.weights.h5") != sha256_file(other_weights)
    )
    path = os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(other / "bl")])
    command = [sys.executable, "-m", "lineage_child.train", "--epochs", "1", "--run-dir", "direct"]
    done = subprocess.run(
        command, cwd=other, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    read = json.loads((other / "direct" / "init_from.json").read_text())
    assert read["parent"]["weights_sha256"] == pinned
    assert read["source"] == {"run": str(trained / PARENT)}


def test_reproduce_allowing_a_changed_parent_shows_and_pins_the_one_it_read(
    copied: Path,
) -> None:
    old = read_lock(copied / CHILD)["parent"]["weights_sha256"]
    now = change_parent(copied)
    with pytest.warns(UserWarning, match="building despite drift: the run started from"):
        again = reproduce(CHILD, allow_drift=True)
    row = next(r for r in again.rows if r.name == "parent weights sha256")
    assert (row.original, row.reproduced, row.same) == (old, now, False)
    assert read_lock(again.run_dir)["parent"]["weights_sha256"] == now
    read = json.loads((again.run_dir / "init_from.json").read_text())["parent"]
    assert read["weights_sha256"] == now
