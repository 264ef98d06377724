"""Training from a parent run: weights taken by name, frozen weights kept bit for bit,
mismatches located at the spec line of init_from (or left fresh with strict: false)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.files import sha256_file
from gencompile.report import compare_runs
from gencompile.reproduction import reproduce
from gencompile.runs import train

SPEC = """\
spec_version: 1
name: {name}
data:
  source: {{type: builtin, name: digits, classes: {classes}}}
  preprocessing: {{scale: [0.0, 1.0]}}
  batch_size: 128
model:
  family: vae
  latent_dim: 2
  encoder:
    layers: [{{type: dense, units: 16, activation: relu}}, {{type: batch_norm}}]
{freeze}
  decoder:
    layers:
      - {{type: dense, units: {units}{trainable}}}
      - {{type: batch_norm}}
{init_from}
training: {{epochs: 1}}
evaluation: {{metrics: [elbo]}}
output: {{samples: {{count: 4}}}}
"""


def write_spec(folder: Path, name: str, init_from: str = "", **fields: str) -> Path:
    values = {"classes": "[0, 1, 2, 3, 4]", "freeze": "", "units": "16", "trainable": ""}
    values.update(fields)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, init_from=init_from, **values))
    return path


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("transfer")
    run = folder / "parent"
    train(write_spec(folder, "tl-parent"), run_dir=run, quiet=True)
    return run


def arrays(run: Path) -> dict[str, np.ndarray]:
    """The model's arrays in a run's weights (or a checkpoint's), by their path."""
    found: dict[str, np.ndarray] = {}
    path = run if run.suffix == ".h5" else run / "model.weights.h5"
    with h5py.File(path, "r") as weights:
        weights.visititems(
            lambda name, item: (
                found.__setitem__(name, item[()])
                if isinstance(item, h5py.Dataset) and not name.startswith("optimizer")
                else None
            )
        )
    return found


def test_frozen_weights_stay_bit_identical_and_the_rest_trains(parent: Path) -> None:
    folder = parent.parent
    spec = write_spec(
        folder,
        "tl-frozen",
        f"  init_from: {{run: {parent}}}",
        classes="[5, 6, 7, 8, 9]",
        freeze="    freeze: true",
        trainable=", trainable: false",
    )
    child = folder / "frozen"
    train(spec, run_dir=child, quiet=True)
    before, after = arrays(parent), arrays(child)
    frozen = [k for k in after if k.startswith("encoder/") or k.startswith("decoder/layers/dense/")]
    # The encoder's dense layers and batch norm (its moving statistics too: a frozen
    # batch norm normalises in inference mode), and the decoder's first layer.
    assert len(frozen) == 12
    for key in frozen:
        assert np.array_equal(before[key], after[key]), key
    # The trainable head and the batch norm's statistics moved on from the parent's.
    assert not np.array_equal(
        before["decoder/layers/dense_1/vars/0"], after["decoder/layers/dense_1/vars/0"]
    )
    report = json.loads((child / "init_from.json").read_text())
    assert report["taken"] == [
        "decoder.batch_norm_1",
        "decoder.dense_1",
        "decoder.likelihood_params",
        "encoder.batch_norm_1",
        "encoder.dense_1",
        "encoder.z_mean",
        "encoder.z_log_var",
    ]
    assert report["fresh"] == []
    assert len(report["parent"]["weights_sha256"]) == 64


def test_a_shape_mismatch_is_located_at_init_from_with_both_shapes(parent: Path) -> None:
    """...at init_from's line in the user's spec, not in the run's copy of it."""
    folder = parent.parent
    init_from = f"  init_from: {{run: {parent}}}"
    spec = write_spec(folder, "tl-wider", init_from, units="8")
    with pytest.raises(RunError) as caught:
        train(spec, run_dir=folder / "wider", quiet=True)
    lines = str(caught.value).splitlines()
    where = f"{spec}:17:3: model.init_from"
    assert lines[:3] == [
        f"{where}: decoder.batch_norm_1: the parent's weights have shapes (16,) and (16,) "
        "and (16,) and (16,), this model's (8,) and (8,) and (8,) and (8,)",
        f"{where}: decoder.dense_1: the parent's weights have shapes (2, 16) and (16,), "
        "this model's (2, 8) and (8,)",
        f"{where}: decoder.likelihood_params: the parent's weights have shapes (16, 64) "
        "and (64,), this model's (8, 64) and (64,)",
    ]
    assert "set model.init_from.strict: false" in lines[-1]
    assert not (folder / "wider").exists()  # made by this call, which trained nothing


def test_the_run_folder_train_made_for_a_mismatched_parent_is_removed(parent: Path) -> None:
    folder = parent.parent
    spec = write_spec(folder, "tl-wider-new", f"  init_from: {{run: {parent}}}", units="8")
    runs = folder / "new-runs"
    with pytest.raises(RunError) as caught:
        train(spec, runs_root=runs, quiet=True)
    made = runs / "tl-wider-new"
    assert made.is_dir() and list(made.iterdir()) == []  # no half-built run folder left
    advice = str(caught.value).splitlines()[-1]
    assert advice.startswith("(make these layers match the parent's")
    assert f"nothing was trained: the run folder {made}/" in advice and "was removed)" in advice


def test_a_mismatched_parent_given_with_set_is_located_at_the_override(parent: Path) -> None:
    """The run's copy of the spec has no init_from line at all: the error names the --set
    override that named the parent."""
    folder = parent.parent
    spec = write_spec(folder, "tl-wider-set", units="8")
    with pytest.raises(RunError) as caught:
        train(spec, [f"model.init_from.run={parent}"], run_dir=folder / "wider-set", quiet=True)
    lines = str(caught.value).splitlines()
    where = f"--set model.init_from.run={parent}: model.init_from"
    assert lines[0].startswith(f"{where}: decoder.batch_norm_1: the parent's weights have")
    assert all(line.startswith(where) for line in lines[:-1]) and len(lines) > 2
    assert "set model.init_from.strict: false" in lines[-1]


def test_a_damaged_parent_weights_file_is_named_and_its_run_folder_removed(
    parent: Path,
) -> None:
    """A file HDF5 cannot open (not HDF5, cut short), given as init_from.weights or inside
    init_from.run: named with model.init_from and what to do, and no run folder left."""
    folder = parent.parent / "damaged"
    folder.mkdir()
    (folder / "bad.weights.h5").write_text("garbage\n")
    whole = (parent / "model.weights.h5").read_bytes()
    (folder / "cut.weights.h5").write_bytes(whole[:3000])
    run = folder / "run"
    shutil.copytree(parent, run)
    (run / "model.weights.h5").write_bytes(whole[:3000])
    runs = folder / "runs"
    cases = {
        f"weights={folder / 'bad.weights.h5'}": (
            f"{folder / 'bad.weights.h5'} is not a Keras weights file "
            "(HDF5: file signature not found)",
            "(give a .weights.h5 or .keras file saved by Keras; nothing was trained",
        ),
        f"weights={folder / 'cut.weights.h5'}": (
            f"{folder / 'cut.weights.h5'} is not a Keras weights file (HDF5: truncated file: ",
            "(give a .weights.h5 or .keras file saved by Keras; nothing was trained",
        ),
        f"run={run}": (
            f"{run / 'model.weights.h5'} is not a Keras weights file (HDF5: truncated file: ",
            "(the run's weights are damaged: restore its model.weights.h5 from a copy, or "
            "name another run; nothing was trained",
        ),
    }
    for i, (override, (what, advice)) in enumerate(cases.items()):
        name = f"tl-broken-{i}"  # one package name a process: an imported one stays
        spec = write_spec(folder, name)
        with pytest.raises(RunError) as caught:
            train(spec, [f"model.init_from.{override}"], runs_root=runs, quiet=True)
        key = override.partition("=")[0]
        problem, advice_line = str(caught.value).splitlines()
        assert problem.startswith(
            f"--set model.init_from.{override}: model.init_from.{key}: {what}"
        ), problem
        assert advice_line.startswith(advice) and advice_line.endswith("was removed)")
        assert list((runs / name).iterdir()) == []


def test_with_strict_false_mismatched_layers_start_fresh_and_are_listed(parent: Path) -> None:
    """...in init_from.json and the report; the lock pins the parent, which `compare`
    shows and `reproduce` checks."""
    folder = parent.parent
    own_parent = folder / "own-parent"  # a copy this test may change
    shutil.copytree(parent, own_parent)
    spec = write_spec(
        folder, "tl-loose", f"  init_from: {{run: {own_parent}, strict: false}}", units="8"
    )
    child = folder / "loose"
    train(spec, run_dir=child, quiet=True)
    report = json.loads((child / "init_from.json").read_text())
    assert report["taken"] == [
        "encoder.batch_norm_1",
        "encoder.dense_1",
        "encoder.z_mean",
        "encoder.z_log_var",
    ]
    assert [entry["layer"] for entry in report["fresh"]] == [
        "decoder.batch_norm_1",
        "decoder.dense_1",
        "decoder.likelihood_params",
    ]
    assert "(2, 16) and (16,), this model's (2, 8) and (8,)" in report["fresh"][1]["why"]
    assert "- started fresh: decoder.dense\\_1: the parent's" in (child / "report.md").read_text()
    lock = json.loads((child / "spec.lock.json").read_text())
    weights = sha256_file(own_parent / "model.weights.h5")
    assert lock["parent"] == {
        "run": str(own_parent),
        "weights_sha256": weights,
        "lock_sha256": sha256_file(own_parent / "spec.lock.json"),
    }
    _, link = compare_runs([child]).rows[:2]
    assert link == ("parent", [f"{own_parent} ({weights[:12]})"], "")
    with (own_parent / "model.weights.h5").open("ab") as changed:
        changed.write(b"\0")
    with pytest.raises(RunError, match="whose weights have changed since"):
        reproduce(child)
    shutil.rmtree(own_parent)
    # Gone, the parent's weights are needed: one line that names it and says what to do,
    # and --allow-drift (which cannot help) is neither offered nor taken.
    gone = (
        f"cannot reproduce {child}: it was fine-tuned from the run {own_parent} "
        "(model.init_from.run), which is gone: restore that run there (its weights' sha256 "
        f"{weights[:12]} in the lock), then reproduce again"
    )
    for allow_drift in (False, True):
        with pytest.raises(RunError) as refused:
            reproduce(child, allow_drift=allow_drift)
        assert str(refused.value) == gone
    assert not child.with_name(f"{child.name}-reproduced").exists()


def test_a_generated_project_keeps_what_unfreezes_later_until_then(parent: Path) -> None:
    """Frozen by fine_tune's schedule (learning rate 0), not by Keras: the weights stay for
    the first N epochs and train after. The parent is a `.keras` archive here, read for
    its weights."""
    folder = parent.parent
    spec = write_spec(
        folder,
        "tl-schedule",
        f"  init_from: {{weights: {parent / 'model.keras'}}}",
        classes="[5, 6, 7, 8, 9]",
        freeze="    freeze: true",
    )
    overrides = [
        "training.fine_tune.unfreeze_after_epochs=1",
        "training.epochs=2",
        "training.checkpoint.every_seconds=0",  # a checkpoint after each epoch
    ]
    child = folder / "schedule"
    train(spec, overrides, run_dir=child, quiet=True)
    assert "network.trainable = False" not in (child / "tl_schedule" / "model.py").read_text()
    before = arrays(parent)
    after_one = arrays(child / "checkpoints" / "epoch-0001.weights.h5")
    after_two = arrays(child)
    # Every array of the encoder stays through epoch 1, its batch norm's moving statistics
    # (vars 2 and 3) too: until it unfreezes it runs in inference mode, as a frozen one does.
    moving = (
        "encoder/layers/batch_normalization/vars/2",
        "encoder/layers/batch_normalization/vars/3",
    )
    encoder = [k for k in after_one if k.startswith("encoder/")]
    assert len(encoder) == 10 and all(np.array_equal(before[k], after_one[k]) for k in encoder)
    decoder = "decoder/layers/dense/vars/0"
    assert not np.array_equal(before[decoder], after_one[decoder])
    # Epoch 2, after unfreezing: every array of the encoder moves.
    assert all(not np.array_equal(after_one[k], after_two[k]) for k in encoder)
    assert set(moving) < set(encoder)
    report = json.loads((child / "init_from.json").read_text())
    assert report["source"] == {"weights": str(parent / "model.keras")}
    assert report["parent"] == {"weights_sha256": sha256_file(parent / "model.keras")}


def test_a_gone_parent_weights_file_says_where_to_put_it_back(tmp_path: Path, monkeypatch) -> None:
    from gencompile.provenance import parent_gone, parent_problem

    monkeypatch.chdir(tmp_path)
    lock = {"parent": {"weights": "parent.weights.h5", "weights_sha256": "ab" * 32}}
    gone = (
        "it was fine-tuned from the weights file parent.weights.h5 (model.init_from.weights), "
        "which is gone: put it back there (sha256 abababababab in the lock; paths are "
        "relative to the working directory), then reproduce again"
    )
    assert parent_gone(lock) == parent_problem(lock) == gone
    (tmp_path / "parent.weights.h5").write_bytes(b"other")
    assert parent_gone(lock) is None
    assert "whose weights have changed since (sha256 abababababab then" in str(parent_problem(lock))
