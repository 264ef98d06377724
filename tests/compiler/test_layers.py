"""The layer records: one per spec layer type, and the arguments they write (no TensorFlow)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import TypeAdapter

from gencompile.compiler.layers import LAYER_TYPES
from gencompile.compiler.networks import NetworkBuilder
from gencompile.spec.networks import Layer

LAYER = TypeAdapter(Layer)


def spec_layer_types() -> list[str]:
    """The `type:` literal of every class in the spec's layer union."""
    union = typing.get_args(Layer)[0]
    return [
        typing.get_args(cls.model_fields["type"].annotation)[0] for cls in typing.get_args(union)
    ]


def plan(fields: dict[str, Any], shape: tuple[int, ...]) -> Any:
    builder = NetworkBuilder("net", (0.0, 1e-4), lambda *problem: None)
    return builder.from_spec(LAYER.validate_python(fields), shape, ("layers", 0))


def test_every_spec_layer_type_has_exactly_one_record_and_back():
    types = spec_layer_types()
    assert len(types) == len(set(types))
    assert sorted(types) == sorted(LAYER_TYPES)


def test_keras_defaults_are_left_out_and_positional_arguments_kept():
    dense = plan({"type": "dense", "units": 4}, (3,))
    assert (dense.cls, dense.args, dense.positional) == ("layers.Dense", (("units", 4),), 1)
    assert dense.regularizer == (0.0, 1e-4)


def test_conv_padding_is_always_written_since_the_spec_default_is_not_keras():
    conv = plan({"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "valid"}, (8, 8, 1))
    assert conv.args == (("filters", 2), ("kernel_size", 3), ("padding", "valid"))


def test_a_pool_with_stride_one_keeps_it_since_keras_defaults_to_the_pool_size():
    pool = plan({"type": "max_pool2d", "pool_size": 2, "strides": 1}, (8, 8, 1))
    assert pool.args == (("pool_size", 2), ("strides", 1))
    assert pool.output_shape == (7, 7, 1)
    default = plan({"type": "max_pool2d", "pool_size": 2}, (8, 8, 1))
    assert default.args == (("pool_size", 2),)


def test_a_synthesized_head_goes_through_the_same_record():
    builder = NetworkBuilder("net", None, lambda *problem: None)
    head = builder.synth(LAYER.validate_python({"type": "dense", "units": 5, "name": "out"}), (7,))
    assert (head.kind, head.name, head.output_shape, head.params) == ("head", "out", (5,), 40)
    assert head.source is None
    assert "out" in builder.used_names
