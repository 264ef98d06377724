"""Emission: plans rendered through jinja2 templates into Python source, safely.

Spec values reach templates only through filters that emit Python literals (`literal`) or
validated identifiers (`ident`); layer constructors are assembled here from a fixed table
of class names plus literal arguments. Every rendered Python file must parse with `ast`.
"""

from __future__ import annotations

import functools
import json
import keyword
import math
import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2

from gencompile.compiler.applications import APPLICATION_TABLE
from gencompile.compiler.plan import LayerPlan, Step
from gencompile.errors import GencompileError
from gencompile.markdown import markdown_text
from gencompile.package_data import package_folder
from gencompile.spec.loader import format_path

LINE_LENGTH = 100  # generated projects' ruff line length, as in gencompile itself
INDENT = "    "
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class EmitError(GencompileError):
    """A template produced something that is not valid, safe Python: a gencompile bug."""


def templates_dir() -> Path:
    """gencompile's jinja2 templates (`templates/`, a package resource)."""
    return package_folder("templates")


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


def pretty(value: Any, indent: int = 0, key: int = 0) -> str:
    """A literal laid out as ruff format would: one line if it fits, else one item a line.
    `key`: the width of the dict key and `: ` before it on its line (and its comma after)."""
    flat = literal(value)
    width = len(INDENT * indent) + len(flat)
    fits = width <= LINE_LENGTH - 12 and (not key or width + key + 1 <= LINE_LENGTH)
    if fits or not isinstance(value, (dict, list, tuple)):
        return flat
    inner = INDENT * (indent + 1)
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            name = literal(str(k))
            items.append(f"{name}: {pretty(v, indent + 1, len(name) + 2)}")
        opening, closing = "{", "}"
    else:
        items = [pretty(v, indent + 1) for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{opening}\n{body}{INDENT * indent}{closing}"


def ident(value: Any) -> str:
    """A validated Python identifier (or dotted name); anything else is refused."""
    text = str(value)
    if not _DOTTED.fullmatch(text) or any(keyword.iskeyword(p) for p in text.split(".")):
        raise EmitError(f"refusing to emit {text!r} as an identifier")
    return text


def wrap(text: str) -> str:
    """Prose for a docstring, wrapped; text that could end the docstring is refused."""
    text = " ".join(text.split())
    if '"""' in text or "\\" in text or not text.isprintable():
        raise EmitError(f"refusing to put {text!r} in a docstring")
    return textwrap.fill(text, width=LINE_LENGTH - 4)


def prose(text: str) -> str:
    """One line of the compiler's own words (a formula, a name) for a comment or a
    docstring: a line break, a backslash or a triple quote, which could end either, is
    refused."""
    text = str(text)
    if not text.isprintable() or "\\" in text or '"""' in text:
        raise EmitError(f"refusing to put {text!r} in a comment or docstring")
    return text


def from_import(names: list[str], module: str) -> str:
    """`from <module> import <names>`, the names sorted, wrapped one a line in parentheses as
    `ruff format` would when the line is longer than the line length.

    >>> from_import(["replicas", "check_version"], "gencompile.runtime")
    'from gencompile.runtime import check_version, replicas'
    """
    names = sorted(ident(name) for name in names)
    line = f"from {ident(module)} import {', '.join(names)}"
    if len(line) <= LINE_LENGTH:
        return line
    return f"from {module} import (\n" + "".join(f"{INDENT}{n},\n" for n in names) + ")"


def toml(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    # JSON escapes quotes, backslashes and C0 controls as TOML does; DEL must be escaped too.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def docstring(text: str, indent: int | None = None) -> str:
    """A docstring literal; text that could end or escape a triple-quoted string is repr'd.

    Given `indent` (the columns before the opening quotes), text too long for one line is
    wrapped at spaces to LINE_LENGTH, its further lines indented as the opening quotes.
    """
    text = " ".join(str(text).split())
    if '"""' in text or "\\" in text or text.endswith('"') or not text.isprintable():
        return literal(text)
    if indent is None:
        return f'"""{text}"""'
    # The quotes wrap with the first and the last word, so they count in those lines.
    lines = textwrap.wrap(
        f'"""{text}"""', LINE_LENGTH - indent, break_long_words=False, break_on_hyphens=False
    )
    return ("\n" + " " * indent).join(lines)


def regularizer(pair: tuple[float, float]) -> str:
    l1, l2 = pair
    if l1 and l2:
        return f"regularizers.L1L2(l1={literal(float(l1))}, l2={literal(float(l2))})"
    if l1:
        return f"regularizers.L1({literal(float(l1))})"
    return f"regularizers.L2({literal(float(l2))})"


def _arguments(layer: LayerPlan) -> list[tuple[str, LayerPlan | None]]:
    """Each argument's text, with the wrapped layer for a nested constructor."""
    parts: list[tuple[str, LayerPlan | None]] = []
    for i, (key, value) in enumerate(layer.args):
        nested = value if isinstance(value, LayerPlan) else None
        text = constructor(value) if nested else literal(value)
        prefix = "" if i < layer.positional else f"{ident(key)}="
        parts.append((prefix + text, nested))
    if layer.regularizer is not None:
        parts.append((f"kernel_regularizer={regularizer(layer.regularizer)}", None))
    parts.append((f"name={literal(layer.name)}", None))
    return parts


def constructor(layer: LayerPlan) -> str:
    """`layers.Dense(256, activation="relu", name="dense_1")` from a plan."""
    return f"{ident(layer.cls)}({', '.join(text for text, _ in _arguments(layer))})"


def _fits(indent: int, text: str) -> bool:
    return len(INDENT * indent + text) <= LINE_LENGTH


def _split_constructor(layer: LayerPlan, indent: int) -> str:
    """A constructor whose arguments no longer fit on one line: one line each (nested too)."""
    arguments = _arguments(layer)
    inner = INDENT * (indent + 1)
    joined = ", ".join(text for text, _ in arguments)
    if _fits(indent + 1, joined):
        return f"{ident(layer.cls)}(\n{inner}{joined}\n{INDENT * indent})"
    lines = []
    for text, nested in arguments:
        if nested is not None and not _fits(indent + 1, text + ","):
            text = _split_constructor(nested, indent + 1)
        lines.append(f"{inner}{text},\n")
    return f"{ident(layer.cls)}(\n{''.join(lines)}{INDENT * indent})"


def item(layer: LayerPlan, indent: int = 2) -> str:
    """A constructor as one item of a multi-line list at `indent` (without its comma)."""
    text = constructor(layer)
    if _fits(indent, text + ","):
        return text
    return _split_constructor(layer, indent)


def statement(step: Step, indent: int = 1) -> str:
    """One statement of a network builder, `h = layers.Dense(...)(h)`, wrapped as ruff would."""
    inputs = [ident(v) for v in step.inputs]
    if step.layer is None:
        return f"{ident(step.target)} = {inputs[0]}"
    if step.layer.kind == "keras_application":
        return application_statement(step, indent)
    call = f"[{', '.join(inputs)}]" if step.packed else ", ".join(inputs)
    call += "".join(f", {ident(k)}={literal(v)}" for k, v in step.call_args)
    target = f"{ident(step.target)} = "
    opening = f"{target}{constructor(step.layer)}("
    if _fits(indent, f"{opening}{call})"):
        return f"{opening}{call})"
    if _fits(indent, opening):  # ruff splits the last brackets first
        return f"{opening}\n{INDENT * (indent + 1)}{call}\n{INDENT * indent})"
    return f"{target}{_split_constructor(step.layer, indent)}({call})"


def application_statement(step: Step, indent: int = 1) -> str:
    """A keras.applications body as keras.io's transfer-learning example writes it: its own
    preprocess_input, `base_model = ...`, its freeze, and its call (several lines)."""
    layer = step.layer
    assert layer is not None
    name = ident(layer.cls).split(".")[-1]
    module = ident(APPLICATION_TABLE[name].module)
    target, given = ident(step.target), ident(step.inputs[0])
    frozen_in_keras = ("trainable", False) in layer.args
    plan = replace(layer, args=tuple(a for a in layer.args if a[0] != "trainable"))
    origin = prose(format_path(layer.source)) if layer.source else name
    if layer.pretrained:
        weights = f"# train.py loads its weights from the file given in {origin}.weights."
    else:
        weights = "# Its weights start random (weights: none)."
    lines = [
        f"# {name} from keras.applications, without its classifier (include_top=False).",
        "# It reads pixels in [0, 255] through its own preprocess_input.",
        weights,
        f"{target} = keras.applications.{module}.preprocess_input({given})",
    ]
    opening = f"base_model = {constructor(plan)}"
    if not _fits(indent, opening):
        opening = f"base_model = {_split_constructor(plan, indent)}"
    lines.append(opening)
    if frozen_in_keras:
        lines += [
            "# Frozen (trainable: false): no gradient step changes its weights.",
            "base_model.trainable = False",
        ]
    elif not layer.trainable:
        lines.append("# Frozen by a learning rate of 0 until training.fine_tune unfreezes it.")
    call = f"{target} = base_model({target}"
    if step.call_args:
        lines += [
            "# training=False: its batch-norm layers keep their moving statistics, as Keras",
            "# advises for a pretrained or frozen body (even once it is unfrozen).",
        ]
        call += "".join(f", {ident(k)}={literal(v)}" for k, v in step.call_args)
    lines.append(call + ")")
    return ("\n" + INDENT * indent).join(lines)


_CLOSING = {")": "(", "]": "[", "}": "{"}


def _split_top_level(text: str) -> list[str]:
    """`a, f(b, c), [d, e]` -> ["a", "f(b, c)", "[d, e]"]: commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _opening_of_last(line: str) -> int | None:
    """Index of the bracket that the line's final `)` closes (None if unbalanced)."""
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        if line[i] in _CLOSING:
            depth += 1
        elif line[i] in "([{":
            depth -= 1
            if depth == 0:
                return i
    return None


def wrap_calls(text: str) -> str:
    """Code lines longer than the line length that end in a call, split as `ruff format`
    splits them: the call's arguments on their own line, or one argument a line. For
    template code whose length depends on names; comments and other lines are left alone."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        opening = _opening_of_last(line) if line.endswith(")") else None
        if len(line) <= LINE_LENGTH or stripped.startswith("#") or not opening:
            out.append(line)
            continue
        indent = " " * (len(line) - len(stripped))
        inner = indent + INDENT
        head, body = line[: opening + 1], line[opening + 1 : -1]
        if len(inner + body) <= LINE_LENGTH:
            out.append(f"{head}\n{inner}{body}\n{indent})")
        else:
            items = "".join(f"{inner}{part},\n" for part in _split_top_level(body))
            out.append(f"{head}\n{items}{indent})")
    return "\n".join(out)


@functools.cache
def environment(extra_dirs: tuple[Path, ...] = ()) -> jinja2.Environment:
    """gencompile's templates, then `extra_dirs` (a family's own templates, if any)."""
    folders = [str(folder) for folder in (templates_dir(), *extra_dirs)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
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
        prose=prose,
        docstring=docstring,
        toml=toml,
        from_import=from_import,
        wrap=wrap,
        statement=statement,
        constructor=constructor,
        item=item,
        wrap_calls=wrap_calls,
        markdown=markdown_text,
    )
    return env


def render(template: str, /, extra_dirs: tuple[Path, ...] = (), **context: Any) -> str:
    return environment(extra_dirs).get_template(template).render(**context)


def check_python(source: str, filename: str) -> None:
    """Refuse to write a generated Python file that does not parse."""
    try:
        compile(source, filename, "exec", dont_inherit=True)  # parse + compile-time checks
    except SyntaxError as err:
        raise EmitError(f"generated {filename} does not parse: {err}") from err
