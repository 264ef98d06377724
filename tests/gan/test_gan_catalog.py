"""Each GAN loss and penalty is one record of `gencompile.catalog.gan`: the spec, the
lowering, the template and the runtime all follow from it."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

import gencompile.catalog
from gencompile.catalog.gan import LOSSES, PENALTIES
from gencompile.compiler.emit import prose
from gencompile.runtime import gan
from gencompile.spec.families.gan import GANLoss, GradientPenalty

CATALOG = Path(gencompile.catalog.__file__).parent
STANDARD_LIBRARY = {"__future__", "dataclasses", "typing"}


@pytest.mark.parametrize("module", sorted(CATALOG.glob("*.py")), ids=lambda p: p.name)
def test_the_catalog_imports_the_standard_library_only(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= STANDARD_LIBRARY


def test_the_spec_offers_exactly_the_recorded_losses_and_penalties() -> None:
    assert typing.get_args(GANLoss.model_fields["type"].annotation) == tuple(LOSSES)
    members = typing.get_args(typing.get_args(GradientPenalty)[0])
    tags = {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}
    assert tags == set(PENALTIES)


def test_every_record_has_its_runtime_functions() -> None:
    for name, loss in LOSSES.items():
        assert gan.LOSSES[name] == (
            getattr(gan, loss.discriminator_loss),
            getattr(gan, loss.generator_loss),
        )
    for name, penalty in PENALTIES.items():
        assert gan.PENALTIES[name] is getattr(gan, penalty.function)


def test_every_loss_and_penalty_function_of_the_runtime_has_a_record() -> None:
    named = {f for loss in LOSSES.values() for f in (loss.discriminator_loss, loss.generator_loss)}
    named |= {penalty.function for penalty in PENALTIES.values()}
    functions = {
        name
        for name, value in inspect.getmembers(gan, inspect.isfunction)
        if name.endswith(("_loss", "_penalty")) and not name.startswith("_")
    }
    assert functions == named


def test_label_smoothing_reaches_exactly_the_losses_whose_functions_take_it() -> None:
    for loss in LOSSES.values():
        parameters = inspect.signature(getattr(gan, loss.discriminator_loss)).parameters
        assert ("label_smoothing" in parameters) == loss.has_labels, loss.name


def test_the_words_and_formulas_can_go_into_comments_and_docstrings() -> None:
    for loss in LOSSES.values():
        texts = (loss.title, loss.discriminator_formula, loss.generator_formula)
        for text in (*texts, loss.smoothed_formula or ""):
            assert prose(text) == text
        assert "{real}" in loss.words or not loss.has_labels
    for penalty in PENALTIES.values():
        assert prose(penalty.formula) == penalty.formula
