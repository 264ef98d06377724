"""A flow's stated parameter count (the model card's "parameters", `explain`'s memory
estimate) is what the built model trains: every transform's own weights (an invertible
dense map's LU factors and log-scales) and one conditioner per coupling copy."""

from __future__ import annotations

import math
from pathlib import Path

from gencompile.compiler.lower import lower
from gencompile.compiler.project import build, total_params
from gencompile.compiler.resources import estimate_memory
from gencompile.generated import import_generated
from gencompile.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def test_flow_digits_states_the_built_models_trainable_weights(tmp_path: Path) -> None:
    built = build(load_spec(REPO / "specs" / "flow_digits.yaml"), tmp_path)
    model = import_generated(tmp_path, built.plan.package, "model").build_model()
    model.build((None, *built.plan.data_shape))
    trained = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert total_params(built.plan) == trained
    assert f"| parameters | {trained:,} |" in (tmp_path / "README.md").read_text("utf-8")
    assert estimate_memory(built.plan).parameters == trained
    # an invertible dense map's fixed permutation and signs are its non-trainable state
    planned = {t.layer.name: t.layer for t in built.plan.model.transforms}
    dense = [layer for layer in model.layers if layer.name.startswith("invertible_dense")]
    assert dense
    for layer in dense:
        state = sum(math.prod(w.shape) for w in layer.non_trainable_weights)
        assert (layer.count_params(), state) == (
            planned[layer.name].params,
            planned[layer.name].state,
        )


def test_each_conditioner_says_how_many_couplings_build_it() -> None:
    plan = lower(load_spec(REPO / "specs" / "flow_digits.yaml"))
    assert [n.copies for n in plan.networks] == [4, 4]
    assert sum(n.copies * n.params for n in plan.networks) < total_params(plan)
