"""Shared building blocks of the spec language: the strict base model and validated scalars."""

from __future__ import annotations

import keyword
import sys
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_-]*$"

# Modules a generated project imports: a project named like one would shadow it.
RESERVED_NAMES = frozenset(
    {"keras", "tensorflow", "numpy", "gencompile", "tests", "test", "scipy", "typing", "os", "sys"}
)


class StrictModel(BaseModel):
    """Every spec object: unknown keys are errors, values are immutable once validated.

    Strict types: `true` is not the number 1 and `"3"` is not the number 3 (a number may
    still be given as an integer: `learning_rate: 1`).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False, strict=True
    )


def python_name(name: str) -> str:
    """The Python identifier a spec name becomes (`vae-digits` -> `vae_digits`)."""
    return name.replace("-", "_")


def _check_identifier(value: str) -> str:
    pyname = python_name(value)
    if keyword.iskeyword(pyname) or keyword.issoftkeyword(pyname):
        raise ValueError(f"'{value}' is a Python keyword and cannot name generated code")
    if pyname in RESERVED_NAMES or pyname in sys.stdlib_module_names:
        raise ValueError(f"'{value}' would shadow the module {pyname} that generated code imports")
    return value


# Names inside a spec (layers, keys): they reach generated code only as string literals.
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, min_length=1, max_length=64)]
# The spec's name becomes the generated package: it must be importable and shadow nothing.
ProjectName = Annotated[Identifier, AfterValidator(_check_identifier)]
# Sizes and counts fit in int32, which every shape, index and counter in TensorFlow holds;
# what memory cannot hold is refused by the compiler (parameters, activations).
MAX_INT = 2**31 - 1
PositiveInt = Annotated[int, Field(gt=0, le=MAX_INT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_INT)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, lt=1)]
Seed = Annotated[int, Field(ge=0, lt=2**31)]


def _list_as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# A fixed-length tuple written as a YAML list (strict validation takes only tuples).
AsTuple = BeforeValidator(_list_as_tuple)

Activation = Literal[
    "relu",
    "gelu",
    "silu",
    "swish",
    "elu",
    "selu",
    "leaky_relu",
    "relu6",
    "mish",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "softplus",
    "softsign",
    "softmax",
    "exponential",
    "linear",
]


class FieldError(ValueError):
    """A cross-field check's error that names the field at fault, so it is located there."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
