"""A pair field (`scale`, `kernel_size`, ...) or a list with the wrong number of items: one
problem at the value saying what the field must be, never pydantic's wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "specs" / "vae_digits.yaml"


def problems(spec: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(spec, overrides or [])
    return [str(problem) for problem in info.value.problems]


@pytest.mark.parametrize("value", ["[0.0]", "[0.0, 1.0, 2.0]", "[]"])
def test_a_scale_with_another_number_of_items_is_located_at_the_value(
    tmp_path: Path, value: str
) -> None:
    text = DIGITS.read_text().replace("scale: [0.0, 1.0]", f"scale: {value}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "scale:" in row)
    column = text.splitlines()[line - 1].index(value) + 1
    shown = str([float(x) for x in value.strip("[]").split(",") if x])
    assert problems(spec) == [
        f"{spec}:{line}:{column}: data.preprocessing.scale: must be a list of 2 numbers "
        f"(got {shown})"
    ]


@pytest.mark.parametrize("value", ["[3]", "[3, 3, 3]", "[]"])
def test_a_kernel_size_that_is_not_a_pair(value: str) -> None:
    layers = f"model.decoder.layers=[{{type: conv2d, filters: 3, kernel_size: {value}}}]"
    assert problems(DIGITS, [layers]) == [
        "--set: model.decoder.layers[0].kernel_size: must be an integer or a list of 2 "
        f"integers (got {value.replace(' ', '').replace(',', ', ')})"
    ]


def test_an_empty_list_says_how_many_items_it_needs() -> None:
    assert problems(DIGITS, ["model.encoder.mlp=[]"]) == [
        "--set: model.encoder.mlp: must list at least 1 item (got [])"
    ]


def test_no_message_speaks_pydantics_words() -> None:
    for overrides in (
        ["model.encoder.mlp=[]"],
        ["data.preprocessing.scale=[1.0, 2.0, 3.0]"],
        ["model.decoder.layers=[{type: conv2d, filters: 3, kernel_size: [3, 3, 3]}]"],
    ):
        for problem in problems(DIGITS, overrides):
            assert "after validation" not in problem and "is required" not in problem
            assert "Tuple" not in problem and "should have" not in problem
