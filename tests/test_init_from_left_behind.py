"""`init_from` on small Keras models, without training: what the child no longer has of its
parent (layers, networks) is an error with strict: true and listed with strict: false; the
child's networks the parent lacks are listed fresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from gencompile.parent_runs import InitFromError
from gencompile.runtime import init_from


def network(name: str, hidden: list[str]) -> keras.Model:
    """A small MLP whose dense layers carry the given names, then the head `out`."""
    x = inputs = keras.Input((4,))
    for layer in hidden:
        x = keras.layers.Dense(8, name=layer)(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x), name=name)


class Pair(keras.Model):
    """A model holding named networks as attributes, as the generated families do."""

    def __init__(self, networks: dict[str, list[str]]) -> None:
        super().__init__()
        self.names = list(networks)
        for name, hidden in networks.items():
            setattr(self, name, network(name, hidden))

    def call(self, x: Any) -> Any:
        return [getattr(self, name)(x) for name in self.names]


def built(networks: dict[str, list[str]]) -> Pair:
    model = Pair(networks)
    model(np.zeros((1, 4), "float32"))
    return model


def parent_file(tmp_path: Path, networks: dict[str, list[str]]) -> Path:
    path = tmp_path / "parent.weights.h5"
    built(networks).save_weights(path)
    return path


def load(tmp_path: Path, parent: Path, child: Pair, **config: Any) -> dict[str, Any]:
    """Start `child` from `parent`; init_from.json as the run writes it."""
    settings = {"weights": str(parent), "networks": None, "strict": True, "family": "gan"}
    settings.update(config)
    init_from.load_pretrained(child, None, settings, tmp_path / "run", tmp_path / "spec.yaml")
    return json.loads((tmp_path / "run" / "init_from.json").read_text())


def test_a_parent_layer_the_child_lacks_is_refused_with_strict(tmp_path: Path) -> None:
    """The child's `out` would otherwise take weights trained on dense_2's output."""
    parent = parent_file(tmp_path, {"generator": ["dense_1", "dense_2"]})
    child = built({"generator": ["dense_1"]})
    with pytest.raises(InitFromError) as caught:
        load(tmp_path, parent, child)
    message = str(caught.value)
    assert "model.init_from: generator.dense_2: this model's generator has no layer" in message
    assert "(8, 8) and (8,)" in message
    assert "the layers after it would start from weights trained on its output" in message
    assert "strict: false" in message
    assert not (tmp_path / "run" / "init_from.json").exists()


def test_with_strict_false_the_parent_layers_left_behind_are_listed(tmp_path: Path) -> None:
    parent = parent_file(tmp_path, {"generator": ["dense_1", "dense_2"]})
    child = built({"generator": ["dense_1"]})
    report = load(tmp_path, parent, child, strict=False)
    assert report["taken"] == ["generator.dense_1", "generator.out"]
    assert report["fresh"] == []
    assert [entry["layer"] for entry in report["left_behind"]] == ["generator.dense_2"]


def test_a_parent_network_the_child_lacks_is_refused_with_strict(tmp_path: Path) -> None:
    parent = parent_file(tmp_path, {"coupling_1": ["dense"], "coupling_2": ["dense"]})
    child = built({"coupling_1": ["dense"]})
    with pytest.raises(InitFromError) as caught:
        load(tmp_path, parent, child)
    assert "coupling_2: this model has no network 'coupling_2'" in str(caught.value)
    # Named networks take only those: the others are left on purpose.
    report = load(tmp_path, parent, child, networks=["coupling_1"])
    assert report["left_behind"] == []


def test_the_child_networks_the_parent_lacks_are_listed_fresh(tmp_path: Path) -> None:
    """...with strict too: the chosen networks are those both have."""
    parent = parent_file(tmp_path, {"coupling_1": ["dense"]})
    child = built({"coupling_1": ["dense"], "coupling_2": ["dense"]})
    report = load(tmp_path, parent, child)
    assert report["taken"] == ["coupling_1.dense", "coupling_1.out"]
    assert report["fresh"] == [
        {"layer": "coupling_2", "why": "the parent has no network 'coupling_2'"}
    ]
    # A named network's EMA copy that the parent lacks starts fresh too, and says so.
    parent = parent_file(tmp_path, {"generator": ["dense"]})
    child = built({"generator": ["dense"], "ema_generator": ["dense"]})
    report = load(tmp_path, parent, child, networks=["generator"])
    assert [entry["layer"] for entry in report["fresh"]] == ["ema_generator"]
