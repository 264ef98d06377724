"""Shape inference and parameter counts, checked against closed forms (no TensorFlow).

`gencompile.compiler.layers.infer` gives the output shape (batch axis excluded) and the
parameter count of one spec layer. Every row of `CASES` states the expected numbers
literally, with the arithmetic in a comment, so a reader can check them by hand; the same
layers are compared with real Keras layers in `test_shapes_vs_keras.py`.
Network-level tests lower whole specs and check the heads the VAE family appends.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from gencompile.compiler.layers import infer
from gencompile.compiler.lower import lower
from gencompile.compiler.shapes import ShapeError
from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text
from gencompile.spec.networks import Layer

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"

LAYER = TypeAdapter(Layer)


def spec_layer(type_: str, **fields: Any) -> Any:
    return LAYER.validate_python({"type": type_, **fields})


# (id, type, fields, input shape, expected output shape, expected parameter count)
CASES: list[tuple[str, str, dict[str, Any], tuple, tuple, int | None]] = [
    ("dense", "dense", {"units": 16}, (8,), (16,), 8 * 16 + 16),
    ("dense-no-bias", "dense", {"units": 16, "use_bias": False}, (8,), (16,), 8 * 16),
    # Dense acts on the last axis of a sequence.
    ("dense-on-sequence", "dense", {"units": 4}, (10, 8), (10, 4), 8 * 4 + 4),
    # conv1d: padding defaults to "same" in the spec (not Keras' "valid").
    ("conv1d-same", "conv1d", {"filters": 4, "kernel_size": 3}, (10, 2), (10, 4), 3 * 2 * 4 + 4),
    (
        "conv1d-valid-strided",
        "conv1d",
        {"filters": 4, "kernel_size": 3, "padding": "valid", "strides": 2},
        (10, 2),
        ((10 - 3) // 2 + 1, 4),
        3 * 2 * 4 + 4,
    ),
    (
        "conv1d-valid-dilated",
        "conv1d",
        {"filters": 4, "kernel_size": 3, "padding": "valid", "dilation_rate": 2},
        (10, 2),
        (10 - (2 * (3 - 1) + 1) + 1, 4),
        3 * 2 * 4 + 4,
    ),
    (
        "conv2d-same-strided",
        "conv2d",
        {"filters": 32, "kernel_size": 3, "strides": 2},
        (8, 8, 1),
        (4, 4, 32),  # ceil(8 / 2)
        3 * 3 * 1 * 32 + 32,
    ),
    (
        "conv2d-valid-strided",
        "conv2d",
        {"filters": 32, "kernel_size": 3, "strides": 2, "padding": "valid"},
        (8, 8, 1),
        (3, 3, 32),  # (8 - 3) // 2 + 1
        3 * 3 * 1 * 32 + 32,
    ),
    (
        "conv2d-same-stride-3",
        "conv2d",
        {"filters": 8, "kernel_size": 5, "strides": 3},
        (28, 28, 3),
        (10, 10, 8),  # ceil(28 / 3)
        5 * 5 * 3 * 8 + 8,
    ),
    (
        "conv2d-pairs-valid",
        "conv2d",
        {"filters": 8, "kernel_size": [3, 5], "strides": [1, 2], "padding": "valid"},
        (28, 28, 3),
        (26, 12, 8),  # (28 - 3) // 1 + 1, (28 - 5) // 2 + 1
        3 * 5 * 3 * 8 + 8,
    ),
    (
        "conv2d-transpose-same",
        "conv2d_transpose",
        {"filters": 16, "kernel_size": 3, "strides": 2},
        (4, 4, 8),
        (8, 8, 16),  # 4 * 2
        3 * 3 * 8 * 16 + 16,
    ),
    (
        "conv2d-transpose-valid",
        "conv2d_transpose",
        {"filters": 16, "kernel_size": 3, "strides": 2, "padding": "valid"},
        (4, 4, 8),
        (9, 9, 16),  # 4 * 2 + max(3 - 2, 0)
        3 * 3 * 8 * 16 + 16,
    ),
    (
        "conv2d-transpose-valid-kernel-below-stride",
        "conv2d_transpose",
        {"filters": 16, "kernel_size": 2, "strides": 3, "padding": "valid"},
        (4, 4, 8),
        (12, 12, 16),  # 4 * 3 + max(2 - 3, 0)
        2 * 2 * 8 * 16 + 16,
    ),
    (
        "conv2d-transpose-valid-pair",
        "conv2d_transpose",
        {"filters": 16, "kernel_size": [3, 1], "padding": "valid"},
        (4, 4, 8),
        (6, 4, 16),  # 4 + 3 - 1, 4 + 1 - 1
        3 * 1 * 8 * 16 + 16,
    ),
    ("upsampling2d", "upsampling2d", {}, (4, 4, 3), (8, 8, 3), 0),
    ("upsampling2d-pair", "upsampling2d", {"size": [2, 3]}, (4, 4, 3), (8, 12, 3), 0),
    ("max-pool-default", "max_pool2d", {}, (7, 7, 3), (3, 3, 3), 0),  # (7 - 2) // 2 + 1
    ("max-pool-same", "max_pool2d", {"padding": "same"}, (7, 7, 3), (4, 4, 3), 0),  # ceil(7/2)
    (
        "max-pool-stride-1",
        "max_pool2d",
        {"pool_size": 3, "strides": 1},
        (7, 7, 3),
        (5, 5, 3),
        0,
    ),
    (
        "avg-pool-pairs-same",
        "avg_pool2d",
        {"pool_size": [2, 3], "strides": [2, 1], "padding": "same"},
        (7, 7, 3),
        (4, 7, 3),  # ceil(7 / 2), ceil(7 / 1)
        0,
    ),
    ("global-avg-pool", "global_avg_pool2d", {}, (4, 4, 8), (8,), 0),
    ("flatten", "flatten", {}, (4, 4, 8), (128,), 0),
    ("reshape", "reshape", {"target_shape": [2, 2, 16]}, (64,), (2, 2, 16), 0),
    ("dropout", "dropout", {"rate": 0.5}, (5, 3), (5, 3), 0),
    ("activation", "activation", {"activation": "tanh"}, (5,), (5,), 0),
    # gamma, beta + moving mean and variance (non-trainable, still counted by Keras).
    ("batch-norm", "batch_norm", {}, (4, 4, 8), (4, 4, 8), 4 * 8),
    ("layer-norm", "layer_norm", {}, (10, 6), (10, 6), 2 * 6),
    ("group-norm", "group_norm", {"groups": 4}, (4, 4, 8), (4, 4, 8), 2 * 8),
    ("embedding", "embedding", {"input_dim": 100, "output_dim": 8}, (12,), (12, 8), 100 * 8),
    # A class id (a family's class head) is one scalar: one vector out.
    ("embedding-of-an-id", "embedding", {"input_dim": 10, "output_dim": 4}, (), (4,), 10 * 4),
    # LSTM: 4 gates, each with kernel (in, u), recurrent kernel (u, u) and a bias (u).
    ("lstm", "lstm", {"units": 5}, (7, 3), (5,), 4 * (3 * 5 + 5 * 5 + 5)),
    (
        "lstm-sequences",
        "lstm",
        {"units": 5, "return_sequences": True},
        (7, 3),
        (7, 5),
        4 * (3 * 5 + 5 * 5 + 5),
    ),
    # GRU (Keras 3, reset_after=True): 3 gates with two biases each.
    ("gru", "gru", {"units": 5}, (7, 3), (5,), 3 * (3 * 5 + 5 * 5 + 2 * 5)),
    # query/key/value: (features, heads, key_dim) + (heads, key_dim) each;
    # output: (heads, key_dim, features) + (features,).
    (
        "multi-head-attention",
        "multi_head_attention",
        {"num_heads": 2, "key_dim": 4},
        (7, 6),
        (7, 6),
        3 * (6 * 2 * 4 + 2 * 4) + 2 * 4 * 6 + 6,
    ),
    (
        "transformer-block",
        "transformer_block",
        {"num_heads": 2, "key_dim": 4, "ff_dim": 16},
        (7, 6),
        (7, 6),
        # attention + two layer norms + feed-forward (6 -> 16 -> 6)
        (3 * (6 * 8 + 8) + 8 * 6 + 6) + 2 * (2 * 6) + (6 * 16 + 16) + (16 * 6 + 6),
    ),
    # Spectral normalisation adds the power iteration's vector u (non-trainable).
    (
        "spectral-norm-dense",
        "spectral_norm",
        {"layer": {"type": "dense", "units": 5}},
        (3,),
        (5,),
        3 * 5 + 5 + 5,
    ),
    (
        "spectral-norm-conv2d",
        "spectral_norm",
        {"layer": {"type": "conv2d", "filters": 8, "kernel_size": 3}},
        (8, 8, 3),
        (8, 8, 8),
        3 * 3 * 3 * 8 + 8 + 8,
    ),
    (
        "spectral-norm-conv2d-transpose",
        "spectral_norm",
        {"layer": {"type": "conv2d_transpose", "filters": 5, "kernel_size": 3, "strides": 2}},
        (4, 4, 3),
        (8, 8, 5),
        3 * 3 * 3 * 5 + 5 + 3,  # u has the kernel's last axis: 3 input channels
    ),
    (
        "residual",
        "residual",
        {
            "layers": [
                {"type": "dense", "units": 6, "activation": "relu"},
                {"type": "dense", "units": 6},
            ]
        },
        (6,),
        (6,),
        2 * (6 * 6 + 6),
    ),
    (
        "custom",
        "custom",
        {"ref": "mypkg.layers:MyLayer", "output_shape": [3, 4]},
        (9,),
        (3, 4),
        None,  # unknown: the compiler cannot count a user layer's weights
    ),
    # MobileNetV2 without its classifier: a 1280-wide map of stride 32 (33 -> 2, 40 -> 2),
    # the grey image read as RGB; counts checked against Keras in tests/transfer.
    (
        "keras-application-map",
        "keras_application",
        {"application": "MobileNetV2", "weights": "none", "pooling": None},
        (33, 40, 1),
        (2, 2, 1280),
        2_257_984,
    ),
    (
        "keras-application-resized",
        "keras_application",
        {"application": "VGG16", "weights": "none", "resize": [64, 48]},
        (8, 8, 3),
        (512,),
        14_714_688,
    ),
]


def _case_params() -> list[Any]:
    return [
        pytest.param(
            *case,
            id=case[0],
        )
        for case in CASES
    ]


@pytest.mark.parametrize(("case_id", "type_", "fields", "shape", "out", "params"), _case_params())
def test_infer_matches_closed_form(case_id, type_, fields, shape, out, params):
    assert infer(spec_layer(type_, **fields), shape) == (out, params)


def test_every_layer_type_has_a_closed_form_case():
    from gencompile.compiler.layers import LAYER_TYPES

    covered = {case[1] for case in CASES}

    assert covered == set(LAYER_TYPES)


# (id, type, fields, input shape, words the message must contain)
SHAPE_ERRORS = [
    ("conv2d-on-vector", "conv2d", {"filters": 4, "kernel_size": 3}, (8,), "an image (h, w, c)"),
    ("conv1d-on-image", "conv1d", {"filters": 4, "kernel_size": 3}, (8, 8, 1), "a sequence"),
    ("lstm-on-image", "lstm", {"units": 4}, (4, 4, 1), "a sequence"),
    ("embedding-on-image", "embedding", {"input_dim": 9, "output_dim": 2}, (4, 4), "flat vector"),
    (
        "kernel-larger-than-input",
        "conv2d",
        {"filters": 4, "kernel_size": 5, "padding": "valid"},
        (4, 4, 1),
        "kernel 5 is larger than the input's size 4",
    ),
    ("pool-larger-than-input", "max_pool2d", {"pool_size": 5}, (4, 4, 1), "larger"),
    ("reshape-size", "reshape", {"target_shape": [3, 3]}, (8,), "preserve the number of values"),
    ("group-norm-channels", "group_norm", {"groups": 3}, (4, 4, 8), "divisible by 3"),
    (
        "application-too-small",
        "keras_application",
        {"application": "ResNet50", "weights": "none"},
        (8, 8, 1),
        "at least 32x32",
    ),
    (
        "residual-changes-shape",
        "residual",
        {"layers": [{"type": "dense", "units": 3}]},
        (6,),
        "must keep its input's shape (6,)",
    ),
]


@pytest.mark.parametrize(
    ("type_", "fields", "shape", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in SHAPE_ERRORS],
)
def test_infer_refuses_shapes_a_layer_cannot_take(type_, fields, shape, words):
    with pytest.raises(ShapeError) as err:
        infer(spec_layer(type_, **fields), shape)
    assert words in str(err.value)


@pytest.mark.parametrize("length", range(1, 12))
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_and_transpose_lengths_follow_the_keras_formulas(length, kernel, stride):
    conv = spec_layer("conv2d", filters=1, kernel_size=kernel, strides=stride, padding="same")
    assert infer(conv, (length, length, 1))[0][:2] == (math.ceil(length / stride),) * 2
    if length >= kernel:
        valid = spec_layer("conv2d", filters=1, kernel_size=kernel, strides=stride, padding="valid")
        assert infer(valid, (length, length, 1))[0][:2] == ((length - kernel) // stride + 1,) * 2
    for padding, expected in (
        ("same", length * stride),
        ("valid", length * stride + max(kernel - stride, 0)),
    ):
        up = spec_layer(
            "conv2d_transpose", filters=1, kernel_size=kernel, strides=stride, padding=padding
        )
        assert infer(up, (length, length, 1))[0][:2] == (expected, expected)


# -- whole networks ---------------------------------------------------------------------------

BASE = """\
spec_version: 1
name: shapes
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 8
  encoder: ENCODER
  decoder: DECODER
  likelihood: LIKELIHOOD
"""


def plan_of(
    encoder: str = "{mlp: [32]}",
    decoder: str = "{mlp: [32]}",
    likelihood: str = "{type: bernoulli}",
    extra: str = "",
):
    text = (
        BASE.replace("ENCODER", encoder)
        .replace("DECODER", decoder)
        .replace("LIKELIHOOD", likelihood)
    )
    return lower(load_spec_text(text + extra))


def table(network) -> list[tuple[str, str, tuple, int | None]]:
    return [(lay.name, lay.cls, lay.output_shape, lay.params) for lay in network.layers]


def test_dense_vae_on_digits_closed_form():
    plan = lower(load_spec(SPECS / "vae_digits.yaml"))
    encoder, decoder = plan.networks
    assert table(encoder) == [
        ("flatten_1", "layers.Flatten", (64,), 0),
        ("dense_1", "layers.Dense", (256,), 64 * 256 + 256),
        ("dense_2", "layers.Dense", (128,), 256 * 128 + 128),
        ("z_mean", "layers.Dense", (8,), 128 * 8 + 8),
        ("z_log_var", "layers.Dense", (8,), 128 * 8 + 8),
    ]
    assert table(decoder) == [
        ("dense_1", "layers.Dense", (128,), 8 * 128 + 128),
        ("dense_2", "layers.Dense", (256,), 128 * 256 + 256),
        ("likelihood_params", "layers.Dense", (64,), 256 * 64 + 64),
        ("to_data_shape", "layers.Reshape", (8, 8, 1), 0),
    ]
    assert encoder.params == 51600 and decoder.params == 50624
    assert plan.model.data_shape == (8, 8, 1)


def test_conv_vae_on_digits_closed_form():
    plan = lower(load_spec(SPECS / "vae_digits_conv.yaml"))
    encoder, decoder = plan.networks
    assert table(encoder) == [
        ("conv2d_1", "layers.Conv2D", (4, 4, 32), 3 * 3 * 1 * 32 + 32),
        ("conv2d_2", "layers.Conv2D", (2, 2, 64), 3 * 3 * 32 * 64 + 64),
        ("flatten_1", "layers.Flatten", (256,), 0),
        ("dense_1", "layers.Dense", (128,), 256 * 128 + 128),
        ("z_mean", "layers.Dense", (8,), 128 * 8 + 8),
        ("z_log_var", "layers.Dense", (8,), 128 * 8 + 8),
    ]
    assert table(decoder) == [
        ("dense_1", "layers.Dense", (256,), 8 * 256 + 256),
        ("reshape_1", "layers.Reshape", (2, 2, 64), 0),
        ("conv2d_transpose_1", "layers.Conv2DTranspose", (4, 4, 64), 3 * 3 * 64 * 64 + 64),
        ("conv2d_transpose_2", "layers.Conv2DTranspose", (8, 8, 32), 3 * 3 * 64 * 32 + 32),
        # an image-shaped body gets a 3x3 conv head; one parameter per pixel: no reshape
        ("likelihood_params", "layers.Conv2D", (8, 8, 1), 3 * 3 * 32 * 1 + 1),
    ]
    assert decoder.outputs == ("params",)
    assert decoder.steps[-1].target == "params"


def test_conditional_networks_take_the_class_one_hot():
    plan = lower(load_spec(SPECS / "cvae_digits.yaml"))
    encoder, decoder = plan.networks
    assert [(i.var, i.shape, i.dtype) for i in encoder.inputs] == [
        ("x", (8, 8, 1), "float32"),
        ("y", (), "int32"),
    ]
    assert [(i.var, i.shape, i.dtype) for i in decoder.inputs] == [
        ("z", (8,), "float32"),
        ("y", (), "int32"),
    ]
    layers = {lay.name: lay for lay in encoder.layers}
    assert layers["class_one_hot"].output_shape == (10,)
    assert layers["with_class"].output_shape == (128 + 10,)
    assert layers["z_mean"].params == (128 + 10) * 8 + 8
    decoder_layers = {lay.name: lay for lay in decoder.layers}
    assert decoder_layers["with_class"].output_shape == (8 + 10,)
    assert decoder_layers["dense_1"].params == (8 + 10) * 128 + 128


def test_mixture_prior_vae_on_moons_gaussian_head_has_two_parameters_per_value():
    plan = lower(load_spec(SPECS / "vae_moons.yaml"))
    encoder, decoder = plan.networks
    assert plan.model.data_shape == (2,)
    assert plan.model.num_params == 2  # mean and log-scale
    assert table(decoder)[-2:] == [
        ("likelihood_params", "layers.Dense", (4,), 64 * 4 + 4),
        ("to_data_shape", "layers.Reshape", (2, 2), 0),
    ]
    assert encoder.params == (2 * 64 + 64) + (64 * 64 + 64) + 2 * (64 * 2 + 2)


def test_image_decoder_with_learned_gaussian_gets_two_channels_and_a_reshape():
    plan = plan_of(
        decoder=(
            "{layers: [{type: dense, units: 128}, {type: reshape, target_shape: [4, 4, 8]},"
            " {type: upsampling2d}]}"
        ),
        likelihood="{type: gaussian}",
    )
    decoder = plan.networks[1]
    assert table(decoder)[-2:] == [
        ("likelihood_params", "layers.Conv2D", (8, 8, 2), 3 * 3 * 8 * 2 + 2),
        ("to_data_shape", "layers.Reshape", (8, 8, 1, 2), 0),
    ]


def test_categorical_likelihood_head_has_one_logit_per_bin():
    plan = plan_of(likelihood="{type: categorical, bins: 17}")
    decoder = plan.networks[1]
    assert table(decoder)[-2:] == [
        ("likelihood_params", "layers.Dense", (64 * 17,), 32 * 64 * 17 + 64 * 17),
        ("to_data_shape", "layers.Reshape", (8, 8, 1, 17), 0),
    ]


def test_dense_first_body_on_images_is_flattened_and_image_body_ends_in_features():
    plan = plan_of(encoder="{layers: [{type: conv2d, filters: 4, kernel_size: 3}]}")
    encoder = plan.networks[0]
    assert table(encoder)[:2] == [
        ("conv2d_1", "layers.Conv2D", (8, 8, 4), 3 * 3 * 1 * 4 + 4),
        ("features", "layers.Flatten", (256,), 0),
    ]
    assert table(plan_of().networks[0])[0] == ("flatten_1", "layers.Flatten", (64,), 0)


def test_network_params_are_the_sum_of_its_layers(example_overrides):
    for path in sorted(SPECS.glob("*.yaml")):
        for network in lower(load_spec(path, example_overrides(path))).networks:
            assert network.params == sum(lay.params or 0 for lay in network.layers)


def test_regularization_reaches_kernels_and_heads_but_not_flatten():
    plan = plan_of(extra="training: {regularization: {l1: 1.0e-4, l2: 1.0e-5}}\n")
    regularized = {lay.name: lay.regularizer for lay in plan.networks[0].layers}
    assert regularized == {
        "flatten_1": None,
        "dense_1": (1e-4, 1e-5),
        "z_mean": (1e-4, 1e-5),
        "z_log_var": (1e-4, 1e-5),
    }


def test_decoder_body_that_cannot_reach_the_data_shape_is_a_located_spec_error():
    decoder = (
        "{layers: [{type: dense, units: 64}, {type: reshape, target_shape: [4, 4, 4]},"
        " {type: conv2d, filters: 4, kernel_size: 3}]}"
    )
    with pytest.raises(SpecError) as err:
        plan_of(decoder=decoder)
    (problem,) = err.value.problems
    assert problem.path == "model.decoder.layers[2]"
    assert "(4, 4, 4)" in problem.message and "(8, 8, 1)" in problem.message
    assert problem.line == 10  # the decoder: line, in flow style


def test_shape_error_in_a_body_is_a_located_spec_error():
    with pytest.raises(SpecError) as err:
        plan_of(encoder="{layers: [{type: flatten}, {type: conv2d, filters: 4, kernel_size: 3}]}")
    (problem,) = err.value.problems
    assert problem.path == "model.encoder.layers[1]"
    assert "conv2d needs an image" in problem.message


def test_conv1d_with_stride_and_dilation_is_refused_before_keras_sees_it():
    encoder = (
        "{layers: [{type: reshape, target_shape: [8, 8]},"
        " {type: conv1d, filters: 4, kernel_size: 3, strides: 2, dilation_rate: 2}]}"
    )
    with pytest.raises(SpecError):
        plan_of(encoder=encoder)
