"""model.init_from is checked from files alone when a spec file is validated, before any
run folder exists: a missing run or weights file, a run that did not finish, a run of
another family. Located at the spec's line or at `--set`. No TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]
FINETUNE = ROOT / "specs" / "vae_digits_finetune.yaml"

CHILD = """\
spec_version: 1
name: child
data:
  source: {{type: builtin, name: digits}}
  preprocessing: {{scale: [0.0, 1.0]}}
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [16]}}
  decoder: {{mlp: [16]}}
  likelihood: {{type: bernoulli}}
  init_from: {{{source}}}
"""


def parent_run(folder: Path, family: str = "vae", weights: bool = True) -> Path:
    """A run folder as far as its files go: its lock's family, its weights, its status."""
    folder.mkdir(parents=True)
    lock = {"resolved_spec": {"model": {"family": family}}}
    (folder / "spec.lock.json").write_text(json.dumps(lock))
    (folder / "status.json").write_text(json.dumps({"status": "finished" if weights else "failed"}))
    if weights:
        (folder / "model.weights.h5").write_bytes(b"")
    return folder


def problem_of(spec: Path, overrides: list[str] | None = None) -> tuple[str, str, str | None]:
    with pytest.raises(SpecError) as info:
        load_spec(spec, overrides or [])
    [problem] = info.value.problems
    return str(problem), problem.message, problem.hint


def test_a_missing_run_given_with_set_is_refused_at_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shown, _, hint = problem_of(FINETUNE, ["model.init_from.run=runs/vae-digits/nope"])
    assert shown.startswith("--set: model.init_from.run: runs/vae-digits/nope does not exist")
    assert hint == "name a run folder of `gencompile train` (runs/<name>/<id>)"


def test_problems_in_the_spec_file_are_located_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "child.yaml"
    parent_run(tmp_path / "runs" / "flow", family="flow")
    parent_run(tmp_path / "runs" / "failed", weights=False)
    parent_run(tmp_path / "runs" / "good")
    cases = {
        "run: runs/flow": "child.yaml:12:20: model.init_from.run: runs/flow is a flow run, "
        "and this model is a vae (weights carry over only within a family (start from a "
        "vae run))",
        "run: runs/failed": "child.yaml:12:20: model.init_from.run: runs/failed has no "
        "model.weights.h5 (its training is failed) (name a run folder that finished training)",
        "weights: gone.keras": "child.yaml:12:24: model.init_from.weights: gone.keras does "
        f"not exist (as {tmp_path / 'gone.keras'}: a relative path is read from the current "
        "directory) (name a weights file (.weights.h5 or .keras))",
    }
    for source, expected in cases.items():
        spec.write_text(CHILD.format(source=source))
        assert problem_of(spec)[0] == expected, source
    spec.write_text(CHILD.format(source="run: runs/good"))
    assert load_spec(spec).spec.model.init_from is not None
    # a run's lock (no spec file) is not checked: its parent may have moved since
    load_spec_text(CHILD.format(source="run: runs/elsewhere"))


def test_validate_and_train_refuse_before_any_run_folder(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    nope = "model.init_from.run=runs/vae-digits/nope"
    code, _, err = run_cli("validate", str(FINETUNE), "--set", nope)
    assert code == 2 and "--set: model.init_from.run: runs/vae-digits/nope does not exist" in err
    code, _, err = run_cli("train", str(FINETUNE), "--epochs", "1", "--set", nope)
    assert code == 2 and "runs/vae-digits/nope does not exist" in err
    assert not (tmp_path / "runs").exists()
    # Where a relative path was looked for: a generated project runs from its own root.
    where = f"(as {tmp_path / 'runs/vae-digits/nope'}: a relative path is read from the current"
    assert where in " ".join(err.split())
