"""Emission: plans rendered through jinja2 templates into Python source, safely.

Spec values reach templates only through filters that emit Python literals (`literal`) or
validated identifiers (`ident`); layer constructors are assembled here from a fixed table
of class names plus literal arguments. Every rendered Python file must parse with `ast`.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import jinja2

from gencompile.compiler.plan import LayerPlan, Step
from gencompile.errors import GencompileError

LINE_LENGTH = 100  # generated projects' ruff line length, as in gencompile itself
INDENT = "    "
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class EmitError(GencompileError):
    """A template produced something that is not valid, safe Python: a gencompile bug."""


def templates_dir() -> Path:
    """`templates/` beside the package in a source tree, `gencompile/templates` in a wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "model").is_dir():
            return candidate
    raise EmitError(f"gencompile's templates are missing (looked in {package} and its parent)")


def literal(value: Any) -> str:
    """A Python literal for a validated value; anything else is refused."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EmitError(f"refusing to emit a non-finite number: {value!r}")
        return repr(float(value))
    if isinstance(value, str):
        return _string(str(value))
    if isinstance(value, tuple):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{literal(str(k))}: {literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise EmitError(f"refusing to emit a value of type {type(value).__name__}")


def _string(text: str) -> str:
    """repr(), but double-quoted where that needs no escaping (the style of ruff format)."""
    text_repr = repr(text)
    if text_repr.startswith("'") and '"' not in text:
        return '"' + text_repr[1:-1] + '"'  # the text holds no quote of either kind
    return text_repr


def pretty(value: Any, indent: int = 0) -> str:
    """A literal laid out as ruff format would: one line if it fits, else one item a line."""
    flat = literal(value)
    if len(INDENT * indent) + len(flat) <= LINE_LENGTH - 12 or not isinstance(
        value, (dict, list, tuple)
    ):
        return flat
    inner = INDENT * (indent + 1)
    if isinstance(value, dict):
        items = [f"{literal(str(k))}: {pretty(v, indent + 1)}" for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        items = [pretty(v, indent + 1) for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{opening}\n{body}{INDENT * indent}{closing}"


def ident(value: Any) -> str:
    """A validated Python identifier (or dotted name); anything else is refused."""
    text = str(value)
    if not _DOTTED.match(text) or any(keyword.iskeyword(p) for p in text.split(".")):
        raise EmitError(f"refusing to emit {text!r} as an identifier")
    return text


def wrap(text: str) -> str:
    """Prose for a docstring, wrapped; text that could end the docstring is refused."""
    if '"""' in text or "\\" in text:
        raise EmitError(f"refusing to put {text!r} in a docstring")
    return textwrap.fill(" ".join(text.split()), width=LINE_LENGTH - 4)


def toml(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(str(value))


def docstring(text: str) -> str:
    """A docstring literal; text that could end or escape a triple-quoted string is repr'd."""
    text = " ".join(str(text).split())
    if '"""' in text or "\\" in text or text.endswith('"') or not text.isprintable():
        return literal(text)
    return f'"""{text}"""'


def regularizer(pair: tuple[float, float]) -> str:
    l1, l2 = pair
    if l1 and l2:
        return f"regularizers.L1L2(l1={literal(float(l1))}, l2={literal(float(l2))})"
    if l1:
        return f"regularizers.L1({literal(float(l1))})"
    return f"regularizers.L2({literal(float(l2))})"


def _arguments(layer: LayerPlan) -> list[str]:
    parts: list[str] = []
    for i, (key, value) in enumerate(layer.args):
        text = constructor(value) if isinstance(value, LayerPlan) else literal(value)
        parts.append(text if i < layer.positional else f"{ident(key)}={text}")
    if layer.regularizer is not None:
        parts.append(f"kernel_regularizer={regularizer(layer.regularizer)}")
    parts.append(f"name={literal(layer.name)}")
    return parts


def constructor(layer: LayerPlan) -> str:
    """`layers.Dense(256, activation="relu", name="dense_1")` from a plan."""
    return f"{ident(layer.cls)}({', '.join(_arguments(layer))})"


def statement(step: Step, indent: int = 1) -> str:
    """One statement of a network builder, `h = layers.Dense(...)(h)`, wrapped as ruff would."""
    inputs = [ident(v) for v in step.inputs]
    if step.layer is None:
        return f"{ident(step.target)} = {inputs[0]}"
    call = f"[{', '.join(inputs)}]" if step.packed else ", ".join(inputs)
    call += "".join(f", {ident(k)}={literal(v)}" for k, v in step.call_args)
    head = f"{ident(step.target)} = {ident(step.layer.cls)}("
    arguments = _arguments(step.layer)
    one_line = f"{head}{', '.join(arguments)})({call})"
    if len(INDENT * indent + one_line) <= LINE_LENGTH:
        return one_line
    inner, outer = INDENT * (indent + 1), INDENT * indent
    opening = f"{head}{', '.join(arguments)})("
    if len(INDENT * indent + opening) <= LINE_LENGTH:  # ruff splits the last brackets first
        return f"{opening}\n{inner}{call}\n{outer})"
    joined = f"{inner}{', '.join(arguments)}"
    if len(joined) <= LINE_LENGTH:
        return f"{head}\n{joined}\n{outer})({call})"
    body = "".join(f"{inner}{argument},\n" for argument in arguments)
    return f"{head}\n{body}{outer})({call})"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        literal=literal,
        pretty=pretty,
        ident=ident,
        docstring=docstring,
        toml=toml,
        wrap=wrap,
        statement=statement,
        constructor=constructor,
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def check_python(source: str, filename: str) -> None:
    """Refuse to write a generated Python file that does not parse."""
    try:
        ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise EmitError(f"generated {filename} does not parse: {err}") from err
