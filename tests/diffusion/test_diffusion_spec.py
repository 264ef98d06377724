"""The diffusion family's spec and lowering: defaults, the denoisers' structure, the words."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
spec_version: 1
name: diffusion
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [-1.0, 1.0]}
model:
  family: diffusion
"""


def lowered(tmp_path: Path, text: str, overrides: list[str] | None = None):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + text)
    return lower(load_spec(path, overrides or []))


def test_defaults(tmp_path):
    plan = lowered(tmp_path, "  denoiser: {type: unet}\n")
    m = plan.model
    assert plan.family == "diffusion" and plan.networks == (m.denoiser,)
    assert (m.timesteps, m.prediction, m.ema) == (1000, "epsilon", 0.999)
    assert m.schedule == {"type": "cosine", "offset": 0.008, "max_beta": 0.999}
    assert m.sampler == {"type": "ddim", "steps": 50, "eta": 0.0} and m.sampling_steps == 50
    assert m.loss == {"type": "simple"} and m.clip_range == (-1.0, 1.0)
    assert m.data_axes == (1, 2, 3) and m.num_classes is None
    # No likelihood: by default also the data set's offline sample-quality metric.
    assert plan.evaluation["metrics"] == ["denoising_loss", "fd_digits"]
    assert plan.resolved_spec["model"]["denoiser"]["widths"] == [32, 64]


def test_unet_mirrors_its_levels_with_one_skip_per_block(tmp_path):
    spec = "  denoiser: {type: unet, widths: [16, 32], attention: [false, true], blocks: 2}\n"
    denoiser = lowered(tmp_path, spec).model.denoiser
    names = [layer.name for layer in denoiser.layers]
    assert names[:4] == ["time_features", "time_dense_1", "time_dense_2", "stem"]
    assert names[-3:] == ["out_norm", "out_silu", "out_conv"]
    down = [n for n in names if n.startswith("down_")]
    assert down == [
        "down_1_block_1", "down_1_block_2",
        "down_2_block_1", "down_2_attention_1", "down_2_block_2", "down_2_attention_2",
    ]  # fmt: skip
    assert "middle_attention" in names and "downsample_1" in names and "upsample_2" in names
    skips = [s for s in denoiser.steps if s.layer is None]
    concats = [s for s in denoiser.steps if s.layer is not None and "_skip_" in s.layer.name]
    assert len(skips) == len(concats) == 4
    # the skips are consumed in reverse: the last one left is the first one taken
    assert [c.inputs[1] for c in concats] == [s.target for s in reversed(skips)]
    shapes = {layer.name: layer.output_shape for layer in denoiser.layers}
    assert shapes["down_2_block_1"] == (4, 4, 32) and shapes["up_1_block_2"] == (8, 8, 16)
    assert shapes["out_conv"] == (8, 8, 1) and denoiser.outputs == ("prediction",)


def test_conditional_denoisers_take_the_class_with_a_null_class(tmp_path):
    text = (
        "  denoiser: {type: mlp, hidden: [32]}\n"
        "  conditional: {num_classes: 10, guidance_scale: 4.0}\n"
    )
    plan = lowered(tmp_path, text)
    denoiser = plan.model.denoiser
    assert [i.var for i in denoiser.inputs] == ["x", "t", "y"]
    embedding = next(layer for layer in denoiser.layers if layer.name == "class_embedding")
    assert dict(embedding.args)["input_dim"] == 11  # ten classes and the null class
    assert plan.model.guidance_scale == 4.0 and plan.model.label_dropout == 0.1
    assert plan.data["with_labels"] is True
    assert "null class" in plan.loss_in_words and "guidance with scale 4" in plan.extra["sampling"]


def test_mlp_on_images_flattens_and_reshapes(tmp_path):
    denoiser = lowered(tmp_path, "  denoiser: {type: mlp, hidden: [32]}\n").model.denoiser
    table = [(layer.name, layer.output_shape, layer.params) for layer in denoiser.layers]
    assert table == [
        ("time_features", (32,), 0),
        ("flatten", (64,), 0),
        ("with_time", (96,), 0),
        ("dense_1", (32,), 96 * 32 + 32),
        ("prediction", (64,), 32 * 64 + 64),
        ("to_data_shape", (8, 8, 1), 0),
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("  prediction: v\n  loss: {type: min_snr, gamma: 2.0}\n", ["v = sqrt", "Min-SNR-2"]),
        ("  sampler: {type: ddpm}\n  timesteps: 300\n", ["DDPM ancestral", "all 300"]),
        ("  schedule: {type: linear}\n  clip_denoised: false\n", ["linear beta", "(0.0001 to"]),
    ],
)
def test_the_loss_and_sampling_in_words(tmp_path, text, words):
    plan = lowered(tmp_path, "  denoiser: {type: mlp}\n" + text)
    said = plan.loss_in_words + " " + plan.extra["sampling"]
    assert all(w in said for w in words), said
    if "clip_denoised: false" in text:
        assert plan.model.clip_range is None and "clipping" not in said


def test_example_specs_lower():
    families = {}
    for path in sorted((ROOT / "specs").glob("*diffusion*.yaml")):
        plan = lower(load_spec(path))
        families[path.stem] = (plan.family, plan.model.denoiser_type, plan.num_classes)
    assert families == {
        "cdiffusion_digits": ("diffusion", "unet", 10),
        "diffusion_digits": ("diffusion", "unet", None),
        "diffusion_ring8": ("diffusion", "mlp", None),
        "diffusion_swissroll": ("diffusion", "mlp", None),
    }
