"""Shape inference and parameter counts against real Keras layers (imports TensorFlow).

The only compiler test module that imports Keras, and only inside a module fixture, so
collecting the other compiler tests stays free of TensorFlow. Each layer is constructed
from the very constructor text gencompile emits (`emit.constructor`), called on a
symbolic `keras.Input`, and its output shape and `count_params()` (which includes
non-trainable weights: moving statistics, the spectral-norm vector u) are compared with
`gencompile.compiler.layers.infer`. Whole generated encoders and decoders of `specs/*.yaml`
and the golden fixtures are imported from a built project and compared the same way.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from gencompile.compiler.emit import constructor
from gencompile.compiler.layers import infer, state
from gencompile.compiler.networks import NetworkBuilder
from gencompile.compiler.project import build
from gencompile.spec import load_spec
from gencompile.spec.networks import Layer

REPO = Path(__file__).resolve().parents[2]
SPEC_FILES = (
    sorted((REPO / "specs").glob("*.yaml"))
    + sorted((Path(__file__).parent / "fixtures" / "vae").glob("*.yaml"))
    + sorted((Path(__file__).parent / "fixtures" / "diffusion").glob("*.yaml"))
)
LAYER = TypeAdapter(Layer)


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("keras")


def keras_layer(keras, layer: Any, shape: tuple) -> tuple[Any, Any]:
    """The Keras layer gencompile would emit for `layer`, and its symbolic output."""
    plan = NetworkBuilder("net", None, lambda *a: None).from_spec(layer, shape, ("layer",))
    from gencompile.runtime import layers as gencompile_layers

    # The names the generated model.py imports its layers under.
    namespace = {
        "layers": keras.layers,
        "regularizers": keras.regularizers,
        "gencompile_layers": gencompile_layers,
    }
    made = eval(constructor(plan), namespace)  # trusted: built from literals in this file
    inputs = keras.Input(shape=shape)
    if layer.type == "multi_head_attention":
        return made, made(inputs, inputs)
    return made, made(inputs)


def non_trainable(made: Any) -> int:
    """How many of a Keras layer's or model's parameters are not trainable."""
    return sum(int(math.prod(w.shape)) for w in made.non_trainable_weights)


def check_against_keras(keras, fields: dict[str, Any], shape: tuple) -> None:
    layer = LAYER.validate_python(fields)
    expected_shape, expected_params = infer(layer, shape)
    made, output = keras_layer(keras, layer, shape)
    assert tuple(output.shape[1:]) == expected_shape
    assert made.count_params() == expected_params
    assert non_trainable(made) == state(layer, shape)
    if layer.type not in ("multi_head_attention", "spectral_norm"):
        assert tuple(made.compute_output_shape((None, *shape)))[1:] == expected_shape


CASES = [
    ("dense", {"type": "dense", "units": 16, "activation": "relu"}, (8,)),
    ("dense-no-bias-on-sequence", {"type": "dense", "units": 4, "use_bias": False}, (10, 8)),
    ("conv2d-same-s2", {"type": "conv2d", "filters": 8, "kernel_size": 3, "strides": 2}, (8, 8, 1)),
    (
        "conv2d-same-s3-odd",
        {"type": "conv2d", "filters": 4, "kernel_size": 5, "strides": 3},
        (28, 28, 3),
    ),
    (
        "conv2d-valid-s2",
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "valid"},
        (9, 8, 2),
    ),
    (
        "conv2d-valid-pairs",
        {
            "type": "conv2d",
            "filters": 8,
            "kernel_size": [3, 5],
            "strides": [1, 2],
            "padding": "valid",
        },
        (28, 28, 3),
    ),
    (
        "conv2d-transpose-same",
        {"type": "conv2d_transpose", "filters": 16, "kernel_size": 3, "strides": 2},
        (4, 4, 8),
    ),
    (
        "conv2d-transpose-valid",
        {
            "type": "conv2d_transpose",
            "filters": 16,
            "kernel_size": 3,
            "strides": 2,
            "padding": "valid",
        },
        (4, 5, 8),
    ),
    (
        "conv2d-transpose-valid-k2-s3",
        {
            "type": "conv2d_transpose",
            "filters": 4,
            "kernel_size": 2,
            "strides": 3,
            "padding": "valid",
        },
        (4, 4, 8),
    ),
    (
        "conv1d-valid-dilated",
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "padding": "valid", "dilation_rate": 2},
        (10, 2),
    ),
    (
        "conv1d-same-strided",
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "strides": 2},
        (11, 2),
    ),
    ("max-pool", {"type": "max_pool2d"}, (7, 7, 3)),
    ("max-pool-same", {"type": "max_pool2d", "padding": "same"}, (7, 7, 3)),
    # strides: 1 must reach Keras, whose pool strides default to the pool size.
    ("max-pool-stride-1", {"type": "max_pool2d", "strides": 1}, (7, 7, 3)),
    (
        "avg-pool-pairs",
        {"type": "avg_pool2d", "pool_size": [2, 3], "strides": [2, 1], "padding": "same"},
        (7, 7, 3),
    ),
    ("global-avg-pool", {"type": "global_avg_pool2d"}, (4, 4, 8)),
    (
        "upsampling",
        {"type": "upsampling2d", "size": [2, 3], "interpolation": "bilinear"},
        (4, 4, 3),
    ),
    ("flatten", {"type": "flatten"}, (4, 4, 8)),
    ("reshape", {"type": "reshape", "target_shape": [2, 2, 16]}, (64,)),
    ("embedding", {"type": "embedding", "input_dim": 100, "output_dim": 8}, (12,)),
    ("lstm", {"type": "lstm", "units": 5}, (7, 3)),
    (
        "lstm-sequences",
        {"type": "lstm", "units": 5, "return_sequences": True, "dropout": 0.1},
        (7, 3),
    ),
    ("gru", {"type": "gru", "units": 5}, (7, 3)),
    ("gru-sequences", {"type": "gru", "units": 6, "return_sequences": True}, (7, 3)),
    (
        "multi-head-attention",
        {"type": "multi_head_attention", "num_heads": 2, "key_dim": 4},
        (7, 6),
    ),
    (
        "multi-head-attention-3",
        {"type": "multi_head_attention", "num_heads": 3, "key_dim": 5, "dropout": 0.1},
        (4, 10),
    ),
    ("batch-norm", {"type": "batch_norm"}, (4, 4, 8)),
    ("batch-norm-vector", {"type": "batch_norm", "momentum": 0.9}, (12,)),
    ("layer-norm", {"type": "layer_norm"}, (10, 6)),
    ("group-norm", {"type": "group_norm", "groups": 4}, (4, 4, 8)),
    ("dropout", {"type": "dropout", "rate": 0.5}, (5, 3)),
    ("activation", {"type": "activation", "activation": "gelu"}, (5,)),
    (
        "spectral-norm-dense",
        {"type": "spectral_norm", "layer": {"type": "dense", "units": 5}},
        (3,),
    ),
    (
        "spectral-norm-conv2d",
        {"type": "spectral_norm", "layer": {"type": "conv2d", "filters": 8, "kernel_size": 3}},
        (8, 8, 3),
    ),
    (
        "spectral-norm-conv2d-transpose",
        {
            "type": "spectral_norm",
            "layer": {"type": "conv2d_transpose", "filters": 5, "kernel_size": 3, "strides": 2},
        },
        (4, 4, 3),
    ),
]


@pytest.mark.parametrize(
    ("fields", "shape"),
    [
        pytest.param(
            fields,
            shape,
            id=case_id,
        )
        for case_id, fields, shape in CASES
    ],
)
def test_layer_shape_and_params_match_keras(keras, fields, shape):
    check_against_keras(keras, fields, shape)


def test_every_keras_layer_type_is_compared():
    from gencompile.compiler.layers import LAYER_TYPES

    compared = {fields["type"] for _, fields, _ in CASES}
    # transformer_block's class lives in a runtime module that does not exist yet;
    # custom and residual are not one Keras class; keras_application is compared in
    # tests/transfer/test_keras_application.py (its networks take seconds to build).
    excluded = {"transformer_block", "custom", "residual", "keras_application"}
    assert compared == set(LAYER_TYPES) - excluded


@settings(
    max_examples=int(os.environ.get("GENCOMPILE_FUZZ_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["conv2d", "conv2d_transpose", "max_pool2d", "avg_pool2d"]),
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    strides=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    padding=st.sampled_from(["same", "valid"]),
)
def test_random_convolutions_and_pools_match_keras(keras, kind, size, kernel, strides, padding):
    if kind.endswith("pool2d"):
        fields = {"type": kind, "pool_size": list(kernel), "strides": list(strides)}
    else:
        fields = {"type": kind, "filters": 3, "kernel_size": list(kernel), "strides": list(strides)}
    fields["padding"] = padding
    if (
        padding == "valid"
        and kind != "conv2d_transpose"
        and min(s - k for s, k in zip(size, kernel, strict=True)) < 0
    ):
        return  # refused by shape inference (tested in test_shapes.py)
    check_against_keras(keras, fields, (*size, 2))


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_generated_networks_match_the_plan(keras, spec_file, tmp_path, example_overrides):
    """Build the project, import its model.py, and compare every layer with the plan."""
    from gencompile.generated import import_generated

    result = build(load_spec(spec_file, example_overrides(spec_file)), tmp_path / "project")
    module = import_generated(result.directory, result.plan.package, "model")
    for network in result.plan.networks:
        model = getattr(module, network.builder)()
        assert model.name == network.name
        assert model.count_params() == network.params
        assert non_trainable(model) == network.frozen_params + network.state_params
        for planned in network.layers:
            layer = model.get_layer(planned.name)
            assert tuple(layer.output.shape[1:]) == planned.output_shape, planned.name
            assert layer.count_params() == planned.params, planned.name
            assert non_trainable(layer) == (
                planned.params if not planned.trainable else planned.state
            ), planned.name
        planned_inputs = [(i.var, i.shape) for i in network.inputs]
        assert [(t.name.split(":")[0], tuple(t.shape[1:])) for t in model.inputs] == planned_inputs


EXPLAIN_CASES = {
    "gan-spectral-norm-and-batch-norm": (REPO / "tests/compiler/fixtures/gan/conv.yaml", []),
    "dcgan-small": (REPO / "specs/dcgan_digits_small.yaml", []),
    "vae-batch-norm-frozen-layer": (
        REPO / "specs/vae_digits_conv.yaml",
        [
            "model.encoder={layers: [{type: conv2d, filters: 32, kernel_size: 3, strides: 2}, "
            "{type: batch_norm}, {type: batch_norm, trainable: false}, {type: dense, units: 64}]}"
        ],
    ),
    "vae-frozen-decoder-with-batch-norm": (
        REPO / "tests/compiler/fixtures/vae/conv.yaml",
        [
            "model.decoder={freeze: true, layers: [{type: dense, units: 128}, {type: batch_norm},"
            " {type: reshape, target_shape: [4, 4, 8]}, {type: upsampling2d},"
            " {type: conv2d_transpose, filters: 16, kernel_size: 3}]}"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(EXPLAIN_CASES))
def test_explain_counts_match_keras(keras, case, tmp_path):
    """`gencompile explain`'s trainable / frozen / non-trainable state lines against the
    trainable and non-trainable counts of the networks Keras builds from the project."""
    import re

    from typer.testing import CliRunner

    from gencompile.cli import app
    from gencompile.generated import import_generated

    spec_file, overrides = EXPLAIN_CASES[case]
    sets = [arg for value in overrides for arg in ("--set", value)]
    shown = CliRunner().invoke(app, ["explain", str(spec_file), *sets], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    result = build(load_spec(spec_file, overrides), tmp_path / "project")
    module = import_generated(result.directory, result.plan.package, "model")
    tables = re.split(r"[│┃] layer ", shown.output)[1:]  # one per network, in order
    assert len(tables) == len(result.plan.networks)
    for network, section in zip(result.plan.networks, tables, strict=True):
        model = getattr(module, network.builder)()

        def line(label: str, section: str = section) -> int:
            found = re.search(rf"\b{label}\s*│[\s│]*([\d,]+)", section)
            assert found, (label, section)
            return int(found.group(1).replace(",", ""))

        trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
        assert line("trainable") == trainable == network.trainable_params, network.name
        assert line("frozen") + line("non-trainable state") == non_trainable(model)
        assert line("total") == model.count_params()
