"""The gencompile spec language: pydantic models, a located YAML loader and checks.

Imports no TensorFlow or Keras, so validating a spec is fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from gencompile.errors import SpecError
from gencompile.spec.checks import run_checks
from gencompile.spec.diagnostics import problems_from_validation
from gencompile.spec.loader import Marks, RawSpec, read_spec, read_spec_text
from gencompile.spec.root import SPEC_VERSION, Spec

__all__ = [
    "SPEC_VERSION",
    "LoadedSpec",
    "Marks",
    "Spec",
    "load_spec",
    "load_spec_text",
    "validate_raw",
]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the marks that locate its values and its source text."""

    spec: Spec
    marks: Marks
    path: Path | None
    text: str


def validate_raw(raw: RawSpec) -> LoadedSpec:
    """Validate merged spec data; raise one SpecError listing every problem."""
    try:
        spec = Spec.model_validate(raw.data)
    except ValidationError as err:
        raise SpecError(problems_from_validation(err, Spec, raw.data, raw.marks)) from None
    problems = run_checks(spec, raw.marks)
    if problems:
        raise SpecError(problems)
    return LoadedSpec(spec=spec, marks=raw.marks, path=raw.path, text=raw.text)


def load_spec(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """Read, merge (`extends:`, `--set`) and validate a spec file."""
    return validate_raw(read_spec(path, overrides))


def load_spec_text(text: str, file: str = "<spec>") -> LoadedSpec:
    return validate_raw(read_spec_text(text, file))
