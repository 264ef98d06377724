"""model.init_from, trainable and freeze in the spec and the compiler (no TensorFlow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.plan import ProjectPlan
from gencompile.compiler.project import render_project
from gencompile.errors import SpecError
from gencompile.spec import load_spec_text

SPEC = """\
spec_version: 1
name: tl-vae
data:
  source: {{type: builtin, name: digits}}
  preprocessing: {{scale: [0.0, 1.0]}}
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [16], freeze: true}}
  decoder:
    layers:
      - {{type: dense, units: 16, trainable: false, name: first}}
      - {{type: batch_norm}}
      - {{type: residual, trainable: false, layers: [{{type: dense, units: 16}}]}}
{init_from}
"""


def spec_text(init_from: str = "") -> str:
    return SPEC.format(init_from=init_from)


def rendered(text: str) -> tuple[ProjectPlan[object], dict[str, str]]:
    loaded = load_spec_text(text, "s.yaml")
    plan = lower(loaded)
    return plan, render_project(loaded, plan)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        lower(load_spec_text(text, "spec.yaml"))
    return [str(p) for p in caught.value.problems]


def test_init_from_takes_exactly_one_source() -> None:
    both = problems(spec_text("  init_from: {run: runs/a, weights: b.keras}"))
    assert both == [
        "spec.yaml:15:28: model.init_from.weights: give exactly one of `run:` or `weights:`"
    ]
    assert "give exactly one" in problems(spec_text("  init_from: {strict: false}"))[0]


def test_a_weights_file_is_a_keras_one() -> None:
    [problem] = problems(spec_text("  init_from: {weights: model.h5}"))
    assert problem.startswith("spec.yaml:15:15: model.init_from.weights: a weights file ends")


def test_unknown_networks_are_located_with_a_suggestion() -> None:
    [problem] = problems(spec_text("  init_from: {run: runs/a, networks: [decoder, encodr]}"))
    assert problem == (
        "spec.yaml:15:48: model.init_from.networks[1]: the vae model has no network "
        "'encodr'; it has encoder, decoder (did you mean 'encoder'?)"
    )


def test_the_plan_carries_init_from_to_the_generated_train_py() -> None:
    plan, files = rendered(spec_text("  init_from: {run: runs/a, strict: false}"))
    assert plan.init_from == {
        "run": "runs/a",
        "networks": None,
        "strict": False,
        "family": "vae",
        "own_weights": None,
        "vocabulary": None,
    }
    assert (
        "init_from.load_pretrained(model, data, INIT_FROM, args.run_dir, spec)"
        in files["tl_vae/train.py"]
    )
    assert "init_from" not in rendered(spec_text())[1]["tl_vae/train.py"]


def test_frozen_layers_and_networks_in_generated_code_and_counts() -> None:
    plan, files = rendered(spec_text())
    encoder, decoder = plan.networks
    assert encoder.frozen and encoder.frozen_params == encoder.params
    frozen = {layer.name for layer in decoder.layers if not layer.trainable}
    assert frozen == {"first", "dense_1"}  # the residual block's body is frozen with it
    assert decoder.frozen_params == 16 * 2 + 16 + 16 * 16 + 16
    model = files["tl_vae/model.py"]
    assert 'layers.Dense(16, trainable=False, name="first")' in model
    assert "    network.trainable = False\n" in model.split("def build_decoder")[0]
    assert "network.trainable" not in model.split("def build_decoder")[1]
    assert "frozen layers (trainable=False) are not among them" in model


def test_paths_outside_the_spec_folder_need_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.spec import load_spec

    spec = tmp_path / "specs" / "child.yaml"
    spec.parent.mkdir()
    parent = tmp_path / "runs" / "parent"  # a finished run, as far as its files go
    parent.mkdir(parents=True)
    (parent / "model.weights.h5").write_bytes(b"")
    monkeypatch.chdir(spec.parent)
    spec.write_text(spec_text("  init_from: {run: ../runs/parent}"))
    with pytest.raises(SpecError, match=re.escape("init_from.run: ../runs/parent is outside")):
        load_spec(spec)
    loaded = load_spec(spec, ["model.init_from.run=../runs/parent"])
    assert loaded.spec.model.init_from is not None


def test_fine_tune_names_networks_and_needs_something_frozen() -> None:
    text = SPEC.format(init_from="").replace("freeze: true", "freeze: false")
    text = text.replace("trainable: false", "trainable: true")
    text += (
        "training:\n"
        "  fine_tune: {unfreeze_after_epochs: 2, learning_rate_multipliers: {decodr: 0.1}}\n"
    )
    assert problems(text) == [
        "spec.yaml:17:38: training.fine_tune.unfreeze_after_epochs: nothing is frozen, so "
        "nothing unfreezes (freeze a network (freeze: true) or layers (trainable: false), "
        "or remove it)",
        "spec.yaml:17:77: training.fine_tune.learning_rate_multipliers.decodr: the model has "
        "no network 'decodr'; it has encoder, decoder (did you mean 'decoder'?)",
    ]


def test_what_unfreezes_is_trainable_in_keras_with_a_schedule() -> None:
    text = spec_text() + (
        "training:\n"
        "  fine_tune: {unfreeze_after_epochs: 2, learning_rate_multipliers: {decoder: 0.5}}\n"
    )
    plan, files = rendered(text)
    assert plan.training["fine_tune"] == {
        "unfreeze_after_epochs": 2,
        "learning_rate_multipliers": {"decoder": 0.5},
        "frozen": ["encoder", "decoder.first", "decoder.dense_1"],
    }
    model = files["tl_vae/model.py"]
    assert "16, trainable=False" not in model and "network.trainable" not in model
    assert "# Frozen for the first 2 epochs (training.fine_tune)" in model
    assert plan.networks[0].frozen_params == plan.networks[0].params  # explain: frozen
    assert "fine_tune" not in rendered(spec_text())[0].training


def test_explain_shows_trainable_and_frozen_parameters(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text())
    code, out, _ = run_cli("explain", str(spec))
    assert code == 0
    rows = [line.split("│")[1:-1] for line in out.splitlines() if line.count("│") == 5]
    cells = [[cell.strip() for cell in row] for row in rows]
    # encoder: 64*16+16 + 2*(16*2+2), all frozen; decoder: 320 of its 1,472 frozen, and
    # its batch norm's moving mean and variance (2*16) are state, as Keras counts them
    assert ["trainable", "", "", "0"] in cells and ["frozen", "", "", "1,108"] in cells
    assert ["trainable", "", "", "1,120"] in cells and ["frozen", "", "", "320"] in cells
    assert ["non-trainable state", "", "", "32"] in cells
    assert ["first", "Dense (frozen)", "(batch, 16)", "48"] in cells


def test_a_flow_freezes_its_coupling_networks_without_a_schedule() -> None:
    flow = """\
spec_version: 1
name: tl-flow
data:
  source: {type: builtin, name: moons}
model:
  family: flow
  transforms:
    - {type: affine_coupling, hidden: {mlp: [16], freeze: true}, repeat: 2}
"""
    _, files = rendered(flow)
    assert "    network.trainable = False\n" in files["tl_flow/model.py"]
    [problem] = problems(flow + "training:\n  fine_tune: {unfreeze_after_epochs: 1}\n")
    assert "the flow family has no named networks to unfreeze on a schedule" in problem
