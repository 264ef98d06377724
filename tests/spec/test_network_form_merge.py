"""A network's form (`layers:` or the `mlp:` shorthand) is a variant without a `type:` key:
a child spec or a `--set` mapping that gives the other form replaces the base's, dropping
the keys only the base's form takes (`mlp`, `activation`, `dropout`; or `layers`), while
keys both forms take (`freeze`) still merge. A network giving both forms is refused."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
CONV_DECODER = """\
    layers:
      - {type: dense, units: 128, activation: relu}
      - {type: reshape, target_shape: [2, 2, 32]}
      - {type: conv2d_transpose, filters: 16, kernel_size: 3, strides: 2, activation: relu}
      - {type: conv2d_transpose, filters: 16, kernel_size: 3, strides: 2, activation: relu}
"""
DENSE_LAYERS = "[{type: dense, units: 64}]"
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """digits.yaml: mlp encoder and decoder with `activation: relu`; conv.yaml: `layers:`."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "specs" / "vae_digits.yaml", tmp_path / "digits.yaml")
    shutil.copy(ROOT / "specs" / "vae_digits_conv.yaml", tmp_path / "conv.yaml")
    return tmp_path


def test_a_childs_layers_replace_its_bases_mlp_and_build(work: Path, run_cli: Cli) -> None:
    (work / "child.yaml").write_text(
        f"extends: digits.yaml\nname: child\nmodel:\n  decoder:\n{CONV_DECODER}"
    )
    loaded = load_spec("child.yaml")
    decoder = loaded.spec.model.decoder
    assert (decoder.mlp, [layer.type for layer in decoder.layers or []][-1]) == (
        None,
        "conv2d_transpose",
    )
    assert "activation" not in decoder.model_fields_set
    assert ("model", "decoder", "mlp") not in loaded.marks.marks
    assert loaded.spec.model.encoder.mlp == [256, 128]  # the other network is the base's
    code, _, err = run_cli("build", "child.yaml", "-o", "out")
    assert (code, err) == (0, "")
    assert "layers.Conv2DTranspose(" in (work / "out" / "child" / "model.py").read_text()
    built = yaml.safe_load((work / "out" / "spec.yaml").read_text())["model"]["decoder"]
    assert list(built) == ["layers"]


@pytest.mark.parametrize(
    "override",
    [
        f"model.decoder={{layers: {DENSE_LAYERS}}}",
        f"model.decoder={{mlp: null, layers: {DENSE_LAYERS}}}",
        f"model.decoder.layers={DENSE_LAYERS}",
    ],
)
def test_a_set_of_layers_replaces_the_specs_mlp(work: Path, override: str) -> None:
    loaded = load_spec("digits.yaml", [override])
    decoder = loaded.spec.model.decoder
    assert (decoder.mlp, [layer.type for layer in decoder.layers or []]) == (None, ["dense"])
    assert ("model", "decoder", "activation") not in loaded.marks.marks
    assert loaded.marks.locate(("model", "decoder", "layers")).file == "--set"


def test_a_childs_mlp_replaces_its_bases_layers_and_common_keys_merge(work: Path) -> None:
    (work / "child.yaml").write_text(
        "extends: conv.yaml\nmodel:\n  decoder: {mlp: [64], activation: gelu}\n"
    )
    decoder = load_spec("child.yaml").spec.model.decoder
    assert (decoder.layers, decoder.mlp, decoder.activation) == (None, [64], "gelu")
    by_set = load_spec("conv.yaml", ["model.decoder={mlp: [64], activation: gelu}"])
    assert by_set.spec.model.decoder == decoder
    # freeze belongs to both forms: the base's stays
    frozen = load_spec("conv.yaml", ["model.decoder.freeze=true", "model.decoder={mlp: [64]}"])
    assert (frozen.spec.model.decoder.freeze, frozen.spec.model.decoder.mlp) == (True, [64])


def test_a_network_giving_both_forms_is_refused_in_the_childs_file(work: Path) -> None:
    (work / "child.yaml").write_text(
        f"extends: digits.yaml\nmodel:\n  decoder:\n    mlp: [64]\n{CONV_DECODER}"
    )
    with pytest.raises(SpecError) as info:
        load_spec("child.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.path, problem.through) == (
        "child.yaml",
        "model.decoder.mlp",
        None,
    )
    assert "give exactly one of `layers:` or `mlp:`, not both" in problem.message
    both = f"model.decoder={{mlp: [64], layers: {DENSE_LAYERS}}}"
    with pytest.raises(SpecError) as info:
        load_spec("digits.yaml", [both])
    assert [(p.file, p.path) for p in info.value.problems] == [("--set", "model.decoder.mlp")]


def test_a_childs_shorthand_key_over_a_layers_base_is_refused_where_the_child_wrote_it(
    work: Path,
) -> None:
    (work / "child.yaml").write_text("extends: conv.yaml\nmodel:\n  decoder: {activation: gelu}\n")
    with pytest.raises(SpecError) as info:
        load_spec("child.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.path, problem.line) == (
        "child.yaml",
        "model.decoder.activation",
        3,
    )
