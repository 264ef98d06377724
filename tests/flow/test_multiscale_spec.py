"""Multi-scale flows in the spec language: `{type: split}` and `scale: sigmoid`.

No TensorFlow here: validation errors located at the spec line, the plan's parts and flat
latent shape, the prior networks, the arguments written for the runtime, and the loss in
words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]

DIGITS = """\
spec_version: 1
name: multiscale
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: flow
  dequantization: {type: uniform, bins: 17}
  transforms:
"""
COUPLING = "    - {type: affine_coupling, mask: channel, hidden: [8]}\n"


def lowered(transforms: str, head: str = DIGITS):
    return lower(load_spec_text(head + transforms, "spec.yaml"))


def problem(transforms: str, head: str = DIGITS) -> str:
    with pytest.raises(SpecError) as info:
        lowered(transforms, head)
    return str(info.value)


def test_a_split_without_a_squeeze_before_it_is_located_at_its_line():
    message = problem("    - {type: actnorm}\n    - {type: split}\n")
    assert message.startswith("spec.yaml:11:7: model.transforms[1]: a split factors out")
    assert "no squeeze comes before it (shape (8, 8, 1))" in message
    assert "put a {type: squeeze} before it" in message


def test_a_split_of_an_odd_number_of_channels_is_located_at_its_line():
    # 4 channels -> 2 -> 1: the third split has one channel to halve
    message = problem("    - {type: squeeze}\n" + "    - {type: split}\n" * 3)
    assert message.startswith("spec.yaml:13:7: model.transforms[3]: ")
    assert "odd number of them: (4, 4, 1)" in message


def test_a_split_on_vectors_and_beside_a_logistic_base_are_refused():
    moons = DIGITS.replace("name: digits}", "name: moons}").replace(
        "  dequantization: {type: uniform, bins: 17}\n", ""
    )
    assert "split factors out half the channels of images" in problem(
        "    - {type: split}\n", moons
    )
    logistic = DIGITS.replace("  family: flow\n", "  family: flow\n  base: {type: logistic}\n")
    message = problem("    - {type: squeeze}\n    - {type: split}\n", logistic)
    assert message.startswith("spec.yaml:8:")
    assert "model.base.type" in message and "use base: {type: normal}" in message


def test_an_unknown_prior_is_located_with_the_choices():
    with pytest.raises(SpecError) as info:
        load_spec_text(DIGITS + "    - {type: split, prior: {type: laplace}}\n", "spec.yaml")
    message = str(info.value)
    assert message.startswith("spec.yaml:10:")
    assert "learned" in message and "normal" in message


def test_splits_make_a_flat_latent_of_parts_and_one_prior_network_per_learned_split():
    plan = lowered(
        "    - {type: squeeze}\n" + COUPLING + "    - {type: split}\n"
        "    - {type: squeeze}\n" + COUPLING + "    - {type: split, prior: {type: normal}}\n"
    )
    model = plan.model
    assert model.part_shapes == ((4, 4, 2), (2, 2, 4), (2, 2, 4))
    assert model.latent_shape == (64,)  # every dimension of the data, as a flat code
    priors = [n for n in model.conditioners if n.name.startswith("split_prior")]
    assert [n.name for n in priors] == ["split_prior_1"]
    assert priors[0].inputs[0].shape == (4, 4, 2)
    # two zero-initialised 3x3 convolutions, kept 2 channels -> 2 means and 2 log-scales
    assert priors[0].params == 2 * (3 * 3 * 2 * 2 + 2)
    splits = [t for t in model.transforms if t.layer.kind == "split"]
    assert [t.layer.name for t in splits] == ["split_1", "split_2"]
    assert [t.output_shape for t in splits] == [(4, 4, 2), (2, 2, 4)]
    learned, standard = (dict(t.layer.args) for t in splits)
    assert learned["network"].cls == "build_split_prior_1" and standard == {}
    assert splits[0].params == priors[0].params
    assert "at each split half the channels leave f" in plan.loss_in_words
    assert "a learned Gaussian given the half kept, or N(0, I)" in plan.loss_in_words


def test_a_flow_without_splits_keeps_its_image_latent():
    plan = lowered("    - {type: squeeze}\n" + COUPLING)
    assert plan.model.part_shapes == () and plan.model.latent_shape == (4, 4, 4)
    assert "split" not in plan.loss_in_words


def test_sigmoid_scale_is_written_without_a_clamp_and_refuses_one():
    plan = lowered(
        "    - {type: squeeze}\n"
        "    - {type: affine_coupling, mask: channel, hidden: [8], scale: sigmoid}\n"
    )
    args = dict(plan.model.transforms[1].layer.args)
    assert args["scale"] == "sigmoid" and "clamp" not in args
    with pytest.raises(SpecError) as info:
        load_spec_text(
            DIGITS + "    - {type: affine_coupling, scale: sigmoid, clamp: 3.0}\n", "spec.yaml"
        )
    assert str(info.value).startswith("spec.yaml:10:")
    assert "model.transforms[0].clamp: bounds the tanh and soft_clamp scales" in str(info.value)
    spec = load_spec_text(DIGITS + "    - {type: affine_coupling, scale: sigmoid}\n").spec
    assert spec.model.transforms[0].scale == "sigmoid"
    with pytest.raises(SpecError) as info:  # MAF keeps its bounds
        load_spec_text(DIGITS + "    - {type: maf, scale: sigmoid}\n", "spec.yaml")
    assert "model.transforms[0].scale" in str(info.value)


def test_the_example_spec_lowers_to_two_scales():
    plan = lower(load_spec(ROOT / "specs" / "flow_digits_multiscale.yaml"))
    assert plan.model.part_shapes == ((4, 4, 2), (2, 2, 8))
    assert plan.model.counts["split"] == 1 and plan.model.counts["squeeze"] == 2
    scales = {dict(t.layer.args).get("scale") for t in plan.model.transforms}
    assert "sigmoid" in scales


def test_the_resolved_spec_of_a_sigmoid_coupling_loads_again():
    """The lock writes every default out (clamp too): it must validate as it did."""
    from gencompile.spec.loader import dump_yaml

    plan = lower(load_spec(ROOT / "specs" / "flow_digits_multiscale.yaml"))
    again = load_spec_text(dump_yaml(plan.resolved_spec)).spec
    assert again.model.transforms[4].transforms[2].scale == "sigmoid"
