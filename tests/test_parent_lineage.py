"""A fine-tuned run's lock pins the parent weights it actually trained from: a continuation
keeps the pins (more epochs do not start from the parent again), `reproduce` and
`build --locked` refuse a changed parent (one line naming it) and, with --allow-drift,
record and show the parent the re-run read; a parent not in the current folder but in the
one the run was trained in is said so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gencompile.compiler.project import write_lock
from gencompile.errors import RunError
from gencompile.files import sha256_file
from gencompile.lockfile import read_lock
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
    """A copy of the trained folder this test may change, made the current folder."""
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    monkeypatch.chdir(folder)
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


def test_a_continuation_without_the_parent_keeps_its_pin(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent archived (not here), continued from another folder: the pin stays (it
    used to become null for good); `reproduce` names the folder the parent is in."""
    run = tmp_path / "moved" / "child"
    shutil.copytree(trained / CHILD, run)
    monkeypatch.chdir(tmp_path)
    pinned = read_lock(run)["parent"]
    resume(run, epochs=2, quiet=True)
    assert read_lock(run)["parent"] == pinned
    with pytest.raises(RunError) as refused:
        reproduce(run)
    assert str(refused.value) == (
        f"cannot reproduce {run}: it was fine-tuned from the run {PARENT} "
        f"(model.init_from.run), which is in {trained}, the folder the run was trained in, "
        "not in the current folder, which its re-run reads that relative path from: "
        f"reproduce it from {trained}"
    )
    assert not run.with_name("child-reproduced").exists()


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
