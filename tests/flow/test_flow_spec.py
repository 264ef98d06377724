"""The flow family's spec and lowering: defaults, unrolled repeats, alternation, counts, words.

No TensorFlow here: these run on the plan the compiler makes.
"""

from __future__ import annotations

from pathlib import Path

from gencompile.compiler.families.flow import unrolled
from gencompile.compiler.lower import lower
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
spec_version: 1
name: flow
data:
  source: {type: builtin, name: moons}
  preprocessing: {standardize: true}
model:
  family: flow
  transforms:
"""


def lowered(transforms: str, extra: str = ""):
    return lower(load_spec_text(BASE + transforms + extra))


def args(transform) -> dict:
    return dict(transform.layer.args)


def test_defaults():
    plan = lowered("    - {type: affine_coupling}\n")
    spec = load_spec_text(BASE + "    - {type: affine_coupling}\n").spec.model
    assert spec.base.type == "normal" and spec.dequantization is None
    coupling = spec.transforms[0]
    assert (coupling.hidden, coupling.mask, coupling.scale, coupling.clamp) == (
        [128, 128],
        "alternating",
        "tanh",
        2.0,
    )
    assert plan.family == "flow" and plan.evaluation["metrics"] == ["nll", "bits_per_dim"]
    assert plan.model.latent_shape == (2,) and plan.model.bins is None


def test_repeats_unroll_and_copies_alternate():
    plan = lowered(
        "    - {type: affine_coupling, hidden: [8], repeat: 3}\n"
        "    - type: repeat\n"
        "      times: 2\n"
        "      transforms:\n"
        "        - {type: actnorm}\n"
        "        - {type: maf, hidden: [8]}\n"
        "        - {type: permutation}\n"
    )
    kinds = [t.layer.kind for t in plan.model.transforms]
    assert kinds == ["affine_coupling"] * 3 + ["actnorm", "maf", "permutation"] * 2
    names = [t.layer.name for t in plan.model.transforms]
    assert names[:4] == ["coupling_1", "coupling_2", "coupling_3", "actnorm_1"]
    assert len(set(names)) == len(names)
    couplings = [args(t) for t in plan.model.transforms if t.layer.kind == "affine_coupling"]
    assert [c["parity"] for c in couplings] == [0, 1, 0]
    mafs = [args(t) for t in plan.model.transforms if t.layer.kind == "maf"]
    assert [m.get("reverse", False) for m in mafs] == [False, True]
    seeds = [args(t)["seed"] for t in plan.model.transforms if t.layer.kind == "permutation"]
    assert len(set(seeds)) == 2  # each permutation its own
    # the three couplings share one builder; each copy calls it for its own weights
    assert len(plan.model.conditioners) == 1 and plan.networks == plan.model.conditioners
    builders = {args(t)["network"].cls for t in plan.model.transforms if "network" in args(t)}
    assert builders == {"build_conditioner_1"}


def test_parameter_count_covers_every_transform():
    plan = lowered(
        "    - {type: actnorm}\n"
        "    - {type: invertible_dense}\n"
        "    - {type: maf, hidden: [8]}\n"
        "    - {type: affine_coupling, hidden: [8], repeat: 2}\n"
    )
    conditioner = (2 * 8 + 8) + 2 * (8 * 2 + 2)  # body + shift and log_scale heads
    maf = (2 * 8 + 8) + (8 * 4 + 4)
    dense = 2 * 2 * 2 + 2  # its trained LU factors L and U, and log_s
    assert plan.model.num_params == 2 * 2 + dense + maf + 2 * conditioner
    assert plan.extra["total_params"] == plan.model.num_params


def test_list_hidden_is_the_mlp_shorthand():
    listed = lowered("    - {type: affine_coupling, hidden: [8, 4], activation: tanh}\n")
    network = lowered("    - {type: affine_coupling, hidden: {mlp: [8, 4], activation: tanh}}\n")
    assert listed.model.conditioners == network.model.conditioners


def test_example_specs_lower():
    digits = lower(load_spec(ROOT / "specs" / "flow_digits.yaml"))
    assert digits.model.bins == 17 and digits.model.latent_shape == (4, 4, 4)
    assert digits.model.uses_actnorm
    assert "64 log 17 bounds -log P(k)" in digits.loss_in_words
    moons = lower(load_spec(ROOT / "specs" / "flow_moons.yaml"))
    assert [t.layer.kind for t in moons.model.transforms] == ["affine_coupling"] * 6
    maf = lower(load_spec(ROOT / "specs" / "maf_moons.yaml"))
    assert [t.layer.kind for t in maf.model.transforms] == ["actnorm", "maf"] * 5


def test_unrolled_paths_point_at_the_spec_entries():
    transforms = (
        "    - {type: actnorm, repeat: 2}\n"
        "    - {type: repeat, times: 2, transforms: [{type: actnorm}]}\n"
    )
    spec = load_spec_text(BASE + transforms).spec
    paths = [path for _, path in unrolled(spec.model.transforms, ("model", "transforms"))]
    assert paths == [
        ("model", "transforms", 0),
        ("model", "transforms", 0),
        ("model", "transforms", 1, "transforms", 0),
        ("model", "transforms", 1, "transforms", 0),
    ]


def head_initializers(plan) -> dict[str, str]:
    """kernel_initializer of each coupling head (Keras's default glorot_uniform if unset)."""
    heads = [s.layer for s in plan.model.conditioners[0].steps if s.layer.kind == "head"]
    heads = [h for h in heads if h.name in ("shift", "log_scale")]
    return {h.name: dict(h.args).get("kernel_initializer", "glorot_uniform") for h in heads}


IMAGE_BASE = BASE.replace("{type: builtin, name: moons}", "{type: builtin, name: digits}").replace(
    "{standardize: true}", "{scale: [0.0, 1.0]}"
)


def test_head_init_defaults_to_glorot_on_vectors_and_zeros_on_images():
    moons = lowered("    - {type: affine_coupling, hidden: [8]}\n")
    assert head_initializers(moons) == {"shift": "glorot_uniform", "log_scale": "glorot_uniform"}
    identity = lowered("    - {type: affine_coupling, hidden: [8], head_init: zeros}\n")
    assert head_initializers(identity) == {"shift": "zeros", "log_scale": "zeros"}
    conv = "{layers: [{type: conv2d, filters: 4, kernel_size: 3, padding: same}]}"

    def coupling(extra: str) -> str:
        return f"    - {{type: affine_coupling, mask: checkerboard, hidden: {conv}{extra}}}\n"

    images = lower(load_spec_text(IMAGE_BASE + coupling("")))
    assert head_initializers(images) == {"shift": "zeros", "log_scale": "zeros"}
    dense = "    - {type: affine_coupling, mask: checkerboard, hidden: [8]}\n"
    assert head_initializers(lower(load_spec_text(IMAGE_BASE + dense))) == {
        "shift": "zeros",
        "log_scale": "zeros",
    }  # dense heads reshaped to the image: zeros too, as the images' default
    glorot = lower(load_spec_text(IMAGE_BASE + coupling(", head_init: glorot_uniform")))
    assert head_initializers(glorot) == {"shift": "glorot_uniform", "log_scale": "glorot_uniform"}


def test_an_unknown_head_init_is_located_with_the_choices():
    import pytest

    from gencompile.errors import SpecError

    with pytest.raises(SpecError) as info:
        load_spec_text(BASE + "    - {type: affine_coupling, head_init: orthogonal}\n", "spec.yaml")
    assert str(info.value) == (
        "spec.yaml:9:42: model.transforms[0].head_init: must be one of auto, glorot_uniform, "
        "zeros (got 'orthogonal')"
    )
