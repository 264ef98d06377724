"""The reference of the spec language (docs/spec.md), its field tables rendered from the models.

docs/spec.md is hand-written prose with marked blocks that this module fills:

- `<!-- fields: KEY -->` ... `<!-- end -->`: the fields of a section (KEY in `BLOCKS`), one
  table row per field, then a heading and a table per variant of every `type:` choice in it.
  Everything comes from `Spec.model_json_schema()`, the schema `gencompile schema` writes.
- `<!-- example: FILE [SECTION] -->` ... `<!-- end -->`: a YAML example copied from an
  example spec (FILE relative to the markdown file; SECTION: one top-level key of it).

Text outside the blocks is kept as written. Regenerate with
`python -m gencompile.spec.reference docs/spec.md` (`make docs`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic.json_schema import GenerateJsonSchema

from gencompile.spec.base import IDENTIFIER_PATTERN, MAX_INT, Activation
from gencompile.spec.families import FAMILIES
from gencompile.spec.root import Spec

COMMAND = "python -m gencompile.spec.reference docs/spec.md"
BLOCK = re.compile(r"(<!-- (fields|example): ([^>]*?) -->\n)(.*?)(<!-- end -->)", re.DOTALL)
ACTIVATIONS = list(get_args(Activation))
SCALARS = [{"type": name} for name in ("boolean", "integer", "number", "string", "null")]
MANY = 6  # a choice with more variants links to the first one instead of to each


@dataclass(frozen=True)
class Block:
    """A section's table: the object it shows, its fields' path and its variants' headings."""

    definition: str  # name in the schema's $defs; "" is the whole spec
    path: str
    level: int
    prefix: str = ""  # heading prefix that keeps variant anchors unique (the family)


BLOCKS: dict[str, Block] = {
    "spec": Block("", "", 3),
    "data": Block("DataSpec", "data", 3),
    "networks": Block("Network", "", 3),
    **{f"model.{name}": Block(cls.__name__, "model", 4, name) for name, cls in FAMILIES.items()},
    "training": Block("TrainingSpec", "training", 3),
    "evaluation": Block("EvaluationSpec", "evaluation", 3),
    "output": Block("OutputSpec", "output", 3),
    "sweep": Block("SweepSpec", "sweep", 3),
}
# Objects with a section of their own (the anchor of its hand-written heading): elsewhere a
# field of that type links to the section.
SECTIONS: dict[str, str] = {
    "DataSpec": "data",
    "Network": "networks",
    "TrainingSpec": "training",
    "EvaluationSpec": "evaluation",
    "OutputSpec": "output",
    "SweepSpec": "sweep",
    **{cls.__name__: f"family-{name}" for name, cls in FAMILIES.items()},
}
SECTION_NAMES = {"Network": "network"}  # the link's text, when not its section's anchor


class _FactoryDefaults(GenerateJsonSchema):
    """Also shows what a `default_factory` makes (pydantic leaves such defaults out)."""

    def get_default_value(self, schema: Any) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()
        return super().get_default_value(schema)


# `extends:` is read by the loader (gencompile/spec/loader.py) before the document is
# validated, so the models never see it; the schemas list it beside their fields.
EXTENDS = {
    "type": "string",
    "minLength": 1,
    "title": "Extends",
    "description": "A base spec merged below this one (a path relative to this file's folder): "
    "mappings merge, lists replace, and a mapping naming another `type:` (or `family:`) "
    "keeps only the base's fields the new variant takes. "
    "A spec that extends another gives only what it changes.",
}
PARTIAL = "Partial"  # prefix of the definitions an extending (partial) spec is checked with
WHOLE = "WholeSpec"  # the definition a spec without `extends:` is checked with


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a whole spec, `extends` included, with every default filled in."""
    schema = Spec.model_json_schema(schema_generator=_FactoryDefaults)
    schema["properties"] = {"extends": EXTENDS, **schema["properties"]}
    return schema


def editor_schema() -> dict[str, Any]:
    """The schema `gencompile schema` writes. A spec without `extends:` is checked whole; one
    with it is a partial document, giving only what it changes: every field is optional and
    a mapping may leave out its `type:` (a partial override of the base's variant), while
    unknown keys are still refused. A list replaces the base's, so its items stay whole."""
    whole = spec_schema()
    defs = whole.pop("$defs")
    partial = {f"{PARTIAL}{name}": _partial(node) for name, node in defs.items()}
    return {
        **_partial(whole),
        "$defs": {**defs, **partial, WHOLE: whole},
        "if": {"required": ["extends"]},
        "else": {"$ref": f"#/$defs/{WHOLE}"},
    }


def _partial(node: Any) -> Any:
    """`node` with every field optional and every `type:` choice open to any variant's fields
    (`oneOf` with a discriminator -> `anyOf`); references go to the partial definitions."""
    if isinstance(node, list):
        return [_partial(item) for item in node]
    if not isinstance(node, dict):
        return node
    relaxed: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("required", "discriminator"):
            continue
        if key == "properties":
            relaxed[key] = {name: _partial(field) for name, field in value.items()}
        elif key == "$ref":
            relaxed[key] = value.replace("#/$defs/", f"#/$defs/{PARTIAL}")
        elif key in ("items", "prefixItems", "default", "const", "enum", "examples"):
            relaxed[key] = value  # a list replaces the base's whole; values are values
        else:
            relaxed["anyOf" if key == "oneOf" else key] = _partial(value)
    return relaxed


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading (before numbering repeats)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: str) -> str:
    return f"`{value}`"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _int_type(node: dict[str, Any]) -> str:
    low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
    high = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else None)
    if high == MAX_INT:  # every int fits in int32: said once in the conventions
        high = None
    if low is not None and high is not None:
        return f"int in [{low}, {high}]"
    if low is not None:
        return f"int >= {low}"
    return f"int <= {high}" if high is not None else "int"


def _float_type(node: dict[str, Any]) -> str:
    low = ("[", node["minimum"]) if "minimum" in node else ("(", node.get("exclusiveMinimum"))
    high = ("]", node["maximum"]) if "maximum" in node else (")", node.get("exclusiveMaximum"))
    if low[1] is not None and high[1] is not None:
        return f"float in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
    if low[1] is not None:
        return f"float {'>=' if low[0] == '[' else '>'} {_number(low[1])}"
    if high[1] is not None:
        return f"float {'<=' if high[0] == ']' else '<'} {_number(high[1])}"
    return "float"


def _string_type(node: dict[str, Any]) -> str:
    if node.get("pattern") == IDENTIFIER_PATTERN:
        return "[identifier](#identifiers)"
    if "maxLength" in node:
        return f"string of {node.get('minLength', 0)} to {node['maxLength']} characters"
    return "non-empty string" if node.get("minLength") else "string"


def _size(node: dict[str, Any]) -> str:
    low, high = node.get("minItems"), node.get("maxItems")
    if low is not None and high is not None:
        return f" ({low} to {high} items)"
    if low is not None:
        return f" (at least {low})"
    return f" (at most {high})" if high is not None else ""


def _without_null(node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`X | None` as (X, True); anything else as (node, False)."""
    members = node.get("anyOf", [])
    if {"type": "null"} not in members:
        return node, False
    rest = [member for member in members if member != {"type": "null"}]
    return (rest[0] if len(rest) == 1 else {"anyOf": rest}), True


def _default(field: dict[str, Any], required: bool, discriminator: str | None) -> str:
    if required:
        return "required"
    if "default" not in field:
        return ""
    value = field["default"]
    if isinstance(value, dict) and discriminator:  # a choice shows its tag
        return _code(f"{{{discriminator}: {value[discriminator]}}}")
    if isinstance(value, dict) and value:  # an object: its fields' rows show the rest
        return ""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        return _code(value)
    return _code(json.dumps(value).replace("NaN", "nan"))


class _Renderer:
    """Walks the schema; each variant of a choice is shown once, later references link to it."""

    def __init__(self, schema: dict[str, Any], anchors: dict[str, str]):
        self.schema = schema
        self.defs: dict[str, dict[str, Any]] = schema["$defs"]
        self.anchors = anchors  # definition -> anchor of its heading, shared between passes
        self.anchors.update(SECTIONS)
        self.shown: set[str] = set(SECTIONS)  # sections show themselves

    def block(self, block: Block) -> str:
        node = self.defs[block.definition] if block.definition else self.schema
        rows: list[str] = []
        choices: list[tuple[str, dict[str, Any]]] = []
        self._rows(node, block.path, None, rows, choices)
        parts = [_table(rows)] if rows else []
        for path, choice in choices:
            parts.extend(self._variants(block, path, choice))
        return "\n\n".join(parts)

    def _rows(
        self,
        node: dict[str, Any],
        path: str,
        tag: str | None,
        rows: list[str],
        choices: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Table rows of an object's fields; nested objects are flattened into dotted paths."""
        for name, field in node.get("properties", {}).items():
            if name == tag:  # the variant's heading names it
                continue
            full = f"{path}.{name}" if path else name
            required = name in node.get("required", [])
            inner, _ = _without_null(field)
            nullable = "default" in field and field["default"] is None
            obj = self._object(inner)
            if obj is not None and obj not in SECTIONS:
                self.shown.add(obj)  # documented by the rows below
                description = field.get("description") or self.defs[obj].get("description", "")
                default = "required" if required else ("`null`" if nullable else "")
                rows.append(_row(full, "mapping", default, description))
                self._rows(self.defs[obj], full, None, rows, choices)
                continue
            choice, list_path = self._choice(inner), full
            if choice is None and inner.get("type") == "array":
                choice, list_path = self._choice(inner.get("items", {})), f"{full}[]"
            if choice is None and isinstance(inner.get("additionalProperties"), dict):
                choice, list_path = self._choice(inner["additionalProperties"]), f"{full}.*"
            if choice is not None and self._unshown(choice):
                choices.append((list_path, choice))
            shown = inner if nullable else field  # the default column says null
            key = choice["discriminator"]["propertyName"] if choice else None
            description = field.get("description") or self._docstring(inner)
            rows.append(_row(full, self._type(shown), _default(field, required, key), description))

    def _object(self, node: dict[str, Any]) -> str | None:
        """The definition a field holds when it is one object (not a choice)."""
        name = node.get("$ref", "").rsplit("/", 1)[-1]
        return name if name and "properties" in self.defs[name] else None

    def _docstring(self, node: dict[str, Any]) -> str:
        """A section's own description, for the row that links to it."""
        return self.defs[_ref(node["$ref"])].get("description", "") if "$ref" in node else ""

    def _choice(self, node: dict[str, Any]) -> dict[str, Any] | None:
        return node if "discriminator" in node else None

    def _unshown(self, choice: dict[str, Any]) -> bool:
        return any(name not in self.shown for _, name in self._members(choice))

    def _members(self, choice: dict[str, Any]) -> list[tuple[str, str]]:
        """(tag, definition) of each variant of a choice, in the order the union lists them."""
        key = choice["discriminator"]["propertyName"]
        names = [_ref(member["$ref"]) for member in choice["oneOf"]]
        return [(self.defs[name]["properties"][key]["const"], name) for name in names]

    def _variants(self, block: Block, path: str, choice: dict[str, Any]) -> list[str]:
        """A heading, the docstring and a table per variant not shown before."""
        key = choice["discriminator"]["propertyName"]
        todo = [(tag, name) for tag, name in self._members(choice) if name not in self.shown]
        prefix = f"{block.prefix} " if block.prefix else ""
        headings = {name: f"{prefix}`{path}`: `{key}: {tag}`" for tag, name in todo}
        for name, heading in headings.items():  # before any table: a variant may hold itself
            self.shown.add(name)
            self.anchors[name] = github_anchor(heading)
        parts = []
        for name, heading in headings.items():
            node = self.defs[name]
            parts.append(f"{'#' * block.level} {heading}")
            if node.get("description"):
                parts.append(" ".join(node["description"].split()))
            rows: list[str] = []
            nested: list[tuple[str, dict[str, Any]]] = []
            self._rows(node, path, key, rows, nested)
            parts.append(_table(rows) if rows else "No other fields.")
            for inner_path, inner in nested:
                parts.extend(self._variants(block, inner_path, inner))
        return parts

    def _type(self, node: dict[str, Any]) -> str:
        """A readable type: `int >= 1`, `float in (0, 1)`, `one of: a | b`, `list of ...`."""
        if "discriminator" in node:
            key = node["discriminator"]["propertyName"]
            links = [
                f"[`{tag}`](#{self.anchors.get(name, '')})" for tag, name in self._members(node)
            ]
            if len(links) > MANY:
                first = self.anchors.get(self._members(node)[0][1], "")
                return f"`{key}:` one of the [{len(links)} variants](#{first})"
            return f"`{key}:` one of " + " | ".join(links)
        if "$ref" in node:
            name = _ref(node["$ref"])
            anchor = self.anchors.get(name, "")
            return f"[{SECTION_NAMES.get(name, anchor)}](#{anchor})"
        if "anyOf" in node:
            members = node["anyOf"]
            scalars = all(kind in members for kind in SCALARS)  # said once: "scalar"
            rest = [self._type(m) for m in members if not (scalars and m in SCALARS)]
            return " or ".join(["scalar"] * scalars + rest)
        if "enum" in node:
            if node["enum"] == ACTIVATIONS:
                return "[activation](#activations)"
            return "one of: " + " | ".join(_code(str(value)) for value in node["enum"])
        if "const" in node:
            return _code(str(node["const"]))
        return self._plain_type(node)

    def _plain_type(self, node: dict[str, Any]) -> str:
        kind = node.get("type")
        if kind == "integer":
            return _int_type(node)
        if kind == "number":
            return _float_type(node)
        if kind == "string":
            return _string_type(node)
        if kind == "boolean":
            return "bool"
        if kind == "null":
            return "null"
        if kind == "array" and "prefixItems" in node:
            return "[" + ", ".join(self._type(item) for item in node["prefixItems"]) + "]"
        if kind == "array":
            items = node.get("items", {})
            mappings = "mappings, " if "discriminator" in items else ""
            return f"list of {mappings}{self._type(items)}{_size(node)}"
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            return f"mapping of names to {self._type(node['additionalProperties'])}{_size(node)}"
        if kind == "object" and len(node.get("patternProperties", {})) == 1:
            [(pattern, values)] = node["patternProperties"].items()
            keys = self._type({"type": "string", "pattern": pattern})
            return f"mapping of {keys} to {self._type(values)}"
        return "any value"


def _ref(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _row(path: str, kind: str, default: str, description: str) -> str:
    return f"| `{path}` | {_cell(kind)} | {default} | {_cell(description)} |"


def _table(rows: list[str]) -> str:
    return "\n".join(["| field | type | default | description |", "|---|---|---|---|", *rows])


def _example(argument: str, folder: Path) -> str:
    """A spec file, or one top-level section of it, as a YAML block with a link to the file."""
    name, _, section = argument.partition(" ")
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    if section:
        start = lines.index(f"{section}:")
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "#")),
            len(lines),
        )
        lines = lines[start:end]
    body = "\n".join(lines).strip("\n")
    return f"```yaml\n{body}\n```\n\nFrom [`{Path(name).name}`]({name})."


def _activations() -> str:
    return ", ".join(_code(name) for name in ACTIVATIONS) + "."


def _render_blocks(
    schema: dict[str, Any], keys: list[str], anchors: dict[str, str]
) -> tuple[list[str], set[str]]:
    renderer = _Renderer(schema, anchors)
    texts = [
        _activations() if key == "activations" else renderer.block(BLOCKS[key]) for key in keys
    ]
    return texts, renderer.shown


def fields_blocks(keys: list[str]) -> tuple[dict[str, str], set[str]]:
    """The generated text of each `fields` block, rendered in document order, and the
    definitions they document.

    Two passes: the first finds where each variant is shown, so that a field may link to a
    variant shown further down.
    """
    schema, anchors = spec_schema(), dict[str, str]()
    _render_blocks(schema, keys, anchors)
    texts, shown = _render_blocks(schema, keys, anchors)
    return dict(zip(keys, texts, strict=True)), shown


def fill(text: str, folder: Path) -> str:
    """`text` with every marked block regenerated; prose outside the blocks is kept."""
    keys = [m.group(3).strip() for m in BLOCK.finditer(text) if m.group(2) == "fields"]
    unknown = sorted(set(keys) - set(BLOCKS) - {"activations"})
    missing = sorted(set(BLOCKS) - set(keys))
    if unknown or missing:
        raise ValueError(f"fields blocks unknown: {unknown}, missing: {missing}")
    generated, _ = fields_blocks(keys)

    def replace(match: re.Match[str]) -> str:
        kind, argument = match.group(2), match.group(3).strip()
        body = generated[argument] if kind == "fields" else _example(argument, folder)
        return f"{match.group(1)}\n{body}\n\n{match.group(5)}"

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the field tables of docs/spec.md.")
    parser.add_argument("markdown", type=Path, help="the reference to update, docs/spec.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    args = parser.parse_args(argv)
    text = args.markdown.read_text(encoding="utf-8")
    updated = fill(text, args.markdown.parent)
    if args.check:
        if updated != text:
            print(f"{args.markdown} is out of date: run {COMMAND}", file=sys.stderr)
        return int(updated != text)
    if updated != text:
        args.markdown.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
