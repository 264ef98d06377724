"""Families as registered objects: the registry agrees with the spec language, capability
refusals come from one shared check, and a family defined here alone builds a project."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.emit import templates_dir
from gencompile.compiler.families import FAMILIES, REGISTRY
from gencompile.compiler.family import (
    EXPORTS,
    STRATEGIES,
    Capabilities,
    Family,
    Refusal,
    no_checks,
    no_networks,
)
from gencompile.compiler.lower import PASSES, lower
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import ProjectPlan
from gencompile.compiler.project import build
from gencompile.errors import SpecError
from gencompile.spec import LoadedSpec, Spec
from gencompile.spec.base import StrictModel
from gencompile.spec.checks import run_checks
from gencompile.spec.families import FAMILIES as SPEC_MODELS
from gencompile.spec.loader import read_spec_text


def test_the_registry_is_the_spec_languages_families() -> None:
    assert list(REGISTRY) == list(SPEC_MODELS)
    for family in FAMILIES:
        assert family.spec_model is SPEC_MODELS[family.name]
        assert (templates_dir() / family.template).is_file()
        assert family.metrics == tuple(family.spec_model.metrics_available)


def test_capabilities_today() -> None:
    """Every family runs under every strategy; every family exports every format
    (diffusion's SavedModel samples with its compiled sampler)."""
    assert all(f.capabilities.strategies == STRATEGIES for f in FAMILIES)
    assert {f.capabilities.exports for f in FAMILIES} == {EXPORTS}
    refusing = {f.name for f in FAMILIES if f.capabilities.mixed_precision is not None}
    assert refusing == {"mixture", "flow", "autoregressive", "vq_vae"}


# --------------------------------------------------------------------- a toy family


class ConstantModel(StrictModel):
    """Samples are always `value`: the smallest family there is."""

    family: Literal["constant"]
    value: float = 0.5

    metrics_available: ClassVar[tuple[str, ...]] = ()
    metrics_default: ClassVar[tuple[str, ...]] = ()
    trackers: ClassVar[tuple[str, ...]] = ("loss",)


class ConstantSpec(Spec):
    model: ConstantModel  # type: ignore[assignment]  # the toy family alone


@dataclass(frozen=True)
class ConstantPlan:
    value: float


def plan_constant(
    low: Lowering, data: DataShape, facts: None, networks: tuple[()]
) -> ProjectPlan[ConstantPlan]:
    value = low.family_model(ConstantModel).value
    return low.project_plan(data, ConstantPlan(value), (), f"squared distance to {value:g}")


TEMPLATE = '''"""{{ plan.package|ident }}: every sample is {{ plan.model.value|literal }}."""

SEED = {{ plan.seed|literal }}
DATA_SHAPE = {{ plan.data_shape|literal }}
NUM_CLASSES = None


def build_model() -> float:
    return {{ plan.model.value|literal }}
'''

SPEC = """\
spec_version: 1
name: constant-toy
data:
  source: {type: builtin, name: moons}
model:
  family: constant
  value: 0.25
"""


def constant_family(templates: Path, capabilities: Capabilities | None = None) -> Family:
    """The toy family, its template written to `templates` (outside gencompile's own)."""
    (templates / "model").mkdir(parents=True, exist_ok=True)
    (templates / "model" / "constant.py.j2").write_text(TEMPLATE)
    able = capabilities or Capabilities()
    return Family(
        "constant",
        ConstantModel,
        no_checks,
        no_networks,
        plan_constant,
        able,
        template_dir=templates,
    )


def load_constant(text: str) -> LoadedSpec:
    raw = read_spec_text(text, "spec.yaml")
    spec = ConstantSpec.model_validate(raw.data)
    return LoadedSpec(spec=spec, marks=raw.marks, path=None, text=text)


def test_a_family_defined_in_a_test_builds_a_project(tmp_path: Path) -> None:
    family = constant_family(tmp_path / "templates")
    families = {**REGISTRY, family.name: family}
    result = build(load_constant(SPEC), tmp_path / "out", families=families)
    out = result.directory
    assert result.plan.family == "constant" and result.plan.data_shape == (2,)
    python = ["constant_toy/__init__.py", "constant_toy/model.py", "constant_toy/train.py"]
    for relative in [*python, "tests/test_model.py"]:
        ast.parse((out / relative).read_text(), relative)
    assert "return 0.25" in (out / "constant_toy/model.py").read_text()
    assert "squared distance to 0.25" in (out / "README.md").read_text()
    lock = json.loads((out / "spec.lock.json").read_text())
    assert lock["family"] == "constant" and "constant_toy/model.py" in lock["files"]
    assert "constant" not in REGISTRY  # the production registry is left as it was


def test_capability_refusals_are_one_shared_check(tmp_path: Path) -> None:
    refusals = Capabilities(
        strategies=("none",),
        mixed_precision=Refusal("it has no weights", "set training.mixed_precision: false"),
        refused_exports={"saved_model": Refusal("it has no graph", "export keras")},
    )
    family = constant_family(tmp_path, refusals)
    text = SPEC + (
        "training:\n  mixed_precision: true\n  distribution: {strategy: mirrored}\n"
        "output:\n  export: [keras, saved_model]\n"
    )
    with pytest.raises(SpecError) as caught:
        lower(load_constant(text), {"constant": family})
    assert str(caught.value).splitlines() == [
        "spec.yaml:9:20: training.mixed_precision: mixed precision is not available for the "
        "constant family: it has no weights (set training.mixed_precision: false)",
        "spec.yaml:10:28: training.distribution.strategy: the mirrored strategy is not "
        "available for the constant family (use strategy: none)",
        "spec.yaml:12:19: output.export[1]: the saved_model export is not available for the "
        "constant family: it has no graph (export keras)",
    ]


class IdleConstantModel(ConstantModel):
    """A constant that declares the training settings it ignores (as the mixture does)."""

    def unused_training(self) -> dict[str, tuple[str, str]]:
        why = f"has no effect on this constant: a constant {self.value} learns nothing"
        return {
            "optimizer": (why, "remove training.optimizer"),
            "regularization": (why, "remove training.regularization"),
        }


class IdleConstantSpec(Spec):
    model: IdleConstantModel  # type: ignore[assignment]


def test_unused_training_settings_are_refused_only_when_set() -> None:
    def problems(text: str) -> list[str]:
        raw = read_spec_text(text, "spec.yaml")
        return [str(p) for p in run_checks(IdleConstantSpec.model_validate(raw.data), raw.marks)]

    text = SPEC + "training:\n  optimizer: {type: sgd}\n  regularization: {l2: 0.1}\n"
    assert problems(text) == [
        "spec.yaml:9:14: training.optimizer: has no effect on this constant: a constant 0.25 "
        "learns nothing (remove training.optimizer)",
        "spec.yaml:10:19: training.regularization: has no effect on this constant: a constant "
        "0.25 learns nothing (remove training.regularization)",
    ]
    # Left to their defaults, or written as the defaults (a lock's resolved spec writes
    # every default out), they are not refused.
    assert problems(SPEC) == []
    defaults = "training:\n  optimizer: {type: adam, learning_rate: 0.001}\n"
    defaults += "  regularization: {l1: 0, l2: 0}\n"
    assert problems(SPEC + defaults) == []


def test_lowering_is_a_tuple_of_named_passes() -> None:
    assert [run.__name__ for run in PASSES] == [
        "capabilities",
        "data_shape",
        "family_checks",
        "stop_if_problems",
        "networks",
        "stop_if_problems",
        "model_plan",
        "init_from",
        "replica_slices",
        "metric_kinds",
        "sizes",
        "stop_if_problems",
    ]
    assert all(run.__doc__ for run in PASSES)


def test_a_familys_check_problems_stop_before_its_networks(tmp_path: Path) -> None:
    """Problems from the family's check are raised with the capability refusals, and its
    networks (which may assume a sound spec) never run."""

    def check(low: Lowering, data: DataShape) -> None:
        low.report(("model", "value"), f"value must be below 0.1 for {data.shape}", "use 0")

    def networks(low: Lowering, data: DataShape, facts: None) -> tuple[()]:
        raise AssertionError("networks ran on an unsound spec")

    no_weights = Refusal("it has no weights", "set training.mixed_precision: false")
    toy = constant_family(tmp_path, Capabilities(mixed_precision=no_weights))
    family = Family(
        "constant", ConstantModel, check, networks, plan_constant, toy.capabilities, tmp_path
    )
    text = SPEC + "training:\n  mixed_precision: true\n"
    with pytest.raises(SpecError) as caught:
        lower(load_constant(text), {"constant": family})
    assert [line.split(": ", 1)[1] for line in str(caught.value).splitlines()] == [
        "model.value: value must be below 0.1 for (2,) (use 0)",  # in the spec's order
        "training.mixed_precision: mixed precision is not available for the constant family: "
        "it has no weights (set training.mixed_precision: false)",
    ]
