"""Inputs that are not what a command wants: a spec where a run is wanted, a missing
path, a project rebuilt over what training wrote for another spec, weights of another
architecture. Each is one line on stderr that says what is wrong and what to do."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "specs" / "vae_digits.yaml"


@pytest.mark.parametrize(
    "command",
    [("sample", "{spec}", "-n", "4", "-o", "{tmp}/x.png"), ("train", "--resume", "{spec}")],
)
def test_a_spec_where_a_run_is_wanted(run_cli, tmp_path, command) -> None:
    spec = tmp_path / "vae_digits.yaml"
    shutil.copy(DIGITS, spec)
    code, _, err = run_cli(*(part.format(spec=spec, tmp=tmp_path) for part in command))
    assert code == 1
    assert err == (
        f"error: {spec} is a spec, not a run or project: train it with `gencompile train {spec}`\n"
    )


@pytest.mark.parametrize("output", [True, False], ids=["with -o", "default folder"])
def test_build_locked_given_a_spec_says_it_wants_a_lock(
    run_cli, tmp_path, monkeypatch, output: bool
) -> None:
    spec = tmp_path / "vae_digits.yaml"
    shutil.copy(DIGITS, spec)
    monkeypatch.chdir(tmp_path)  # the default folder is build/<name> here
    where = ["-o", str(tmp_path / "lb")] if output else []
    code, _, err = run_cli("build", "--locked", str(spec), *where)
    assert code == 1
    assert err == (
        f"error: {spec} is a spec, but --locked wants a lock file (spec.lock.json) or a run "
        f"holding one: build the spec itself with `gencompile build {spec}`\n"
    )
    assert not (tmp_path / "lb").exists() and not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    "command",
    [
        ("sample", "{run}", "-n", "4", "-o", "{tmp}/x.png"),
        ("evaluate", "{run}"),
        ("train", "--resume", "{run}"),
    ],
)
def test_a_missing_run_does_not_exist(run_cli, tmp_path, command) -> None:
    run = tmp_path / "runs" / "vae-digits" / "nope"
    code, _, err = run_cli(*(part.format(run=run, tmp=tmp_path) for part in command))
    assert (code, err) == (1, f"error: {run} does not exist\n")


TRAINED = {"model.weights.h5": b"weights", "metrics.json": b"{}", "checkpoints/a.h5": b"ckpt"}


def built_and_trained(run_cli, folder: Path, spec: Path) -> None:
    """A project built from `spec`, and (stand-ins for) what training wrote into it."""
    assert run_cli("build", str(spec), "-o", str(folder))[0] == 0
    for name, content in TRAINED.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(content)


def test_rebuilding_with_another_spec_refuses_to_keep_trained_outputs(
    run_cli, tmp_path, tiny_vae_spec
) -> None:
    project = tmp_path / "v"
    built_and_trained(run_cli, project, tiny_vae_spec)
    # The same spec again: its outputs are current, and kept.
    assert run_cli("build", str(tiny_vae_spec), "-o", str(project))[0] == 0
    assert all((project / name).read_bytes() == data for name, data in TRAINED.items())
    model = (project / "tiny_vae" / "model.py").read_text()
    code, out, err = run_cli(
        "build", str(tiny_vae_spec), "-o", str(project), "--set", "model.latent_dim=4"
    )
    assert (code, out) == (1, "")
    assert err == (
        f"error: {project} holds what training wrote for another spec or code "
        "(model.weights.h5, checkpoints/, metrics.json), which the rebuilt project could not "
        f"use: build into another folder with -o, or pass --force to move them aside into "
        f"{project / 'stale'}-<time>/\n"
    )
    # Nothing was changed: the old code and its outputs are as they were.
    assert (project / "tiny_vae" / "model.py").read_text() == model
    assert all((project / name).read_bytes() == data for name, data in TRAINED.items())


def test_rebuilding_a_trained_run_with_its_spec_keeps_what_training_recorded(
    run_cli, tmp_path, tiny_vae_spec, trained_vae
) -> None:
    """The data fingerprint and fitted preprocessing training wrote into the lock describe
    the outputs a rebuild of the same spec keeps: `reproduce` compares them after."""
    from gencompile.lock_format import TRAINING_RECORD
    from gencompile.lockfile import read_lock

    run = tmp_path / "run"
    shutil.copytree(trained_vae, run)
    before = read_lock(run)
    assert before["data_fingerprint"] and before["data_statistics"]
    assert run_cli("build", str(tiny_vae_spec), "-o", str(run))[0] == 0
    after = read_lock(run)  # checksum and files verified
    assert {k: after.get(k) for k in TRAINING_RECORD} == {k: before.get(k) for k in TRAINING_RECORD}


def test_rebuilding_a_trained_fine_tune_keeps_its_parent_pinned_as_trained(
    run_cli, tmp_path, tiny_vae_spec
) -> None:
    """The parent's hash in the lock is what the kept outputs started from: a parent that
    changed since is not pinned as it is now (`reproduce` would not see the change)."""
    import hashlib
    import json

    parent = tmp_path / "parent.weights.h5"
    parent.write_bytes(b"the weights training started from")
    project = tmp_path / "v"
    args = ["build", str(tiny_vae_spec), "-o", str(project)]
    args += ["--set", f"model.init_from.weights={parent}"]
    assert run_cli(*args)[0] == 0
    for name, content in TRAINED.items():
        (project / name).parent.mkdir(exist_ok=True)
        (project / name).write_bytes(content)
    parent.write_bytes(b"other weights")
    assert run_cli(*args)[0] == 0
    pinned = json.loads((project / "spec.lock.json").read_text())["parent"]
    digest = hashlib.sha256(b"the weights training started from").hexdigest()
    assert pinned == {"weights": str(parent), "weights_sha256": digest}


def test_force_moves_another_specs_outputs_aside(run_cli, tmp_path, tiny_vae_spec) -> None:
    project = tmp_path / "v"
    built_and_trained(run_cli, project, tiny_vae_spec)
    args = ["build", str(tiny_vae_spec), "-o", str(project), "--set", "model.latent_dim=4"]
    code, _, err = run_cli(*args, "--force")
    assert code == 0
    [aside] = project.glob("stale-*")
    assert err == (
        "note: moved what training wrote for the earlier spec (model.weights.h5, "
        f"checkpoints/, metrics.json) aside into {aside}; train the rebuilt project anew\n"
    )
    assert not any((project / name).exists() for name in TRAINED)
    assert all((aside / name).read_bytes() == data for name, data in TRAINED.items())
    # The rebuilt project holds no stale outputs now: a rebuild needs no --force.
    assert run_cli(*args)[0] == 0


def test_weights_of_another_architecture_are_one_line(
    run_cli, tmp_path, tiny_vae_spec, trained_vae
) -> None:
    """Weights a project kept from another spec: said so, not "the file may be corrupt",
    and without Keras' warnings of every layer it skipped."""
    project = tmp_path / "other"
    args = ["build", str(tiny_vae_spec), "-o", str(project), "--set", "model.latent_dim=4"]
    assert run_cli(*args)[0] == 0
    for name in ("model.weights.h5", "metrics.json", "status.json"):
        shutil.copy(trained_vae / name, project / name)
    with warnings.catch_warnings():  # every warning shown (the CLI prints them on stderr)
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # numpy's, not ours
        code, _, err = run_cli("sample", str(project), "-n", "4", "-o", str(tmp_path / "x.png"))
    weights = project / "model.weights.h5"
    assert (code, err) == (
        1,
        f"error: cannot load {weights}: the weights were trained for another architecture "
        "(a different spec?) and do not fit this model (A total of 3 objects could not be "
        "loaded): retrain the project, or rebuild it from the spec its weights were trained "
        "with\n",
    )  # and nothing else: no "warning: Skipping variable loading ..." of every layer


def test_unreadable_weights_may_be_corrupt(run_cli, tmp_path, trained_vae) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_vae, run)
    weights = run / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:4000])
    code, _, err = run_cli("sample", str(run), "-n", "4", "-o", str(tmp_path / "x.png"))
    assert code == 1
    assert err.startswith(
        f"error: cannot load {weights}: not a readable HDF5 file; the file may be corrupt"
    )
    assert err.count("\n") == 1
