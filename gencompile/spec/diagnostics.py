"""Turning pydantic's validation errors into located, plain-spoken problems."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from gencompile.errors import Problem
from gencompile.spec.loader import VARIANT_KEYS, Marks, PathKey, format_path

_QUOTED = re.compile(r"'([^']*)'")


def _folded(name: str) -> str:
    """`Leaky-ReLU` -> `leaky_relu`: Keras, papers and specs spell names with other case
    and separators."""
    return name.casefold().replace("-", "_")


def did_you_mean(value: object, candidates: list[str] | tuple[str, ...]) -> str | None:
    """A 'did you mean' hint naming the closest candidate (in its own spelling), if one is
    close: one spelt the same but for case, `_` and `-` first (`AdamW` -> 'adamw', not
    'adam'; `LeakyReLU` -> 'leaky_relu'), else the closest by difflib on case-folded names.
    The separators stay for difflib: without them a short name nears a long one (`nll`
    would mean `iwae_nll`).

    >>> did_you_mean("LeakyReLU", ["relu", "leaky_relu"])
    "did you mean 'leaky_relu'?"
    """
    named = [str(candidate) for candidate in candidates]
    given = _folded(str(value))
    for candidate in named:
        if _folded(candidate).replace("_", "") == given.replace("_", ""):
            return f"did you mean '{candidate}'?"
    by_folded = {_folded(candidate): candidate for candidate in reversed(named)}
    matches = difflib.get_close_matches(given, list(by_folded), n=1, cutoff=0.6)
    return f"did you mean '{by_folded[matches[0]]}'?" if matches else None


def data_path(loc: tuple[Any, ...], data: Any, absent_key_ok: bool = False) -> PathKey:
    """pydantic's loc in terms of the data: union tags and union member names removed.

    A discriminated union puts its tag right after the field (`source`, `npz`, ...); a plain
    union puts the member's name (`int`, `tuple[...]`, ...). Only a missing or unknown key,
    the last part of the loc, may name something absent from the data.
    """
    path: list[str | int] = []
    node = data
    tag_possible = True  # a tag can only come first at each node
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and tag_possible
            and part in (node.get("type"), node.get("family"))
        ):
            tag_possible = False
            continue
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
            path.append(part)
            tag_possible = True
        elif absent_key_ok and i == len(loc) - 1 and isinstance(node, dict):
            path.append(part)
    return tuple(path)


def _value_at(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _strip_optional(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip_optional(a) for a in typing.get_args(annotation)]
    return [annotation]


def _list_item(annotation: Any) -> Any:
    """`list[X]` (possibly optional) -> X; anything else unchanged."""
    for member in _union_members(annotation):
        if typing.get_origin(member) is list:
            return typing.get_args(member)[0]
    return annotation


def model_at(root: type[BaseModel], path: PathKey, data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `path` of `data`."""
    current: Any = root
    node = data
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            current = _list_item(current)
            continue
        model = _pick_model(current, node)
        if model is None or part not in model.model_fields:
            return None
        current = model.model_fields[part].annotation
        node = node.get(part) if isinstance(node, dict) else None
    return _pick_model(current, node)


def _pick_model(annotation: Any, node: Any) -> type[BaseModel] | None:
    """Resolve unions and lists to the model chosen for `node` (by its `type`/`family` tag)."""
    members = []
    for member in _union_members(annotation):
        if typing.get_origin(member) is list:
            member = _strip_optional(typing.get_args(member)[0])
        members.extend(_union_members(member))
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) <= 1:
        return models[0] if models else None
    for model in models:
        for tag in VARIANT_KEYS:
            field = model.model_fields.get(tag)
            if field is None or not isinstance(node, dict):
                continue
            allowed = typing.get_args(_strip_optional(field.annotation))
            if node.get(tag) in allowed:
                return model
    return None


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: dict[str, Any]) -> tuple[str, list[str]]:
    """A plain message for one pydantic error, and the candidates a did-you-mean may use."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {bound} (got {_got(value)})", []
    if kind == "missing":
        return "is required", []
    if kind == "literal_error":
        options = _QUOTED.findall(ctx.get("expected", ""))
        return f"must be one of {', '.join(options)} (got {_got(value)})", options
    if kind == "union_tag_invalid":
        options = _QUOTED.findall(ctx.get("expected_tags", ""))
        tag = ctx.get("discriminator", "type").strip("'")
        return (
            f"unknown {tag} {_got(ctx.get('tag'))}; expected one of {', '.join(options)}",
            options,
        )
    if kind == "union_tag_not_found":
        tag = ctx.get("discriminator", "type").strip("'")
        return f"needs a `{tag}:` key to say which kind it is", []
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be an integer (got {_got(value)})", []
    if kind in ("float_parsing", "float_type"):
        return f"must be a number (got {_got(value)})", []
    if kind == "finite_number":
        return f"must be a finite number (got {_got(value)})", []
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false (got {_got(value)})", []
    if kind in ("string_type",):
        return f"must be a string (got {_got(value)})", []
    if kind in ("list_type", "tuple_type"):
        return f"must be a list (got {_got(value)})", []
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of keys to values (got {_got(value)})", []
    if kind == "string_pattern_mismatch":
        return (
            f"must be a lowercase identifier matching [a-z][a-z0-9_-]* (got {_got(value)})",
            [],
        )
    if kind == "wrong_length":
        return f"must be {ctx['expected']} (got {_got(value)})", []
    if kind in ("too_short", "too_long"):
        return _length_message(error), []
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])), []
    return f"{error['msg']} (got {_got(value)})", []


def _length_message(error: dict[str, Any]) -> str:
    """A list (or string, mapping) with too few or too many items, in the spec's words."""
    ctx = error.get("ctx") or {}
    short = error["type"] == "too_short"
    bound = ctx.get("min_length") if short else ctx.get("max_length")
    most = "least" if short else "most"
    got = _got(error.get("input"))
    if ctx.get("field_type") in ("List", "Tuple") and isinstance(bound, int):
        return f"must list at {most} {bound} item{'s' if bound != 1 else ''} (got {got})"
    text = str(error["msg"]).replace(" after validation", "")
    return re.sub(r"^\w+ should", "must", text)


# What the items of a fixed-length list are, by the tuple's item type.
ITEM_WORDS = {int: "integers", float: "numbers", str: "strings"}


def _fixed_lists(annotation: Any) -> tuple[list[str], list[int]]:
    """The scalar kinds and the fixed list lengths a field accepts (`int | tuple[int, int]`:
    (["an integer"], [2]))."""
    scalars, lengths = [], []
    for member in _union_members(annotation):
        args = typing.get_args(member)
        if typing.get_origin(member) is tuple and args and Ellipsis not in args:
            lengths.append(len(args))
        elif member in ITEM_WORDS:
            scalars.append(TYPE_ERRORS[f"{member.__name__}_type"])
    return scalars, lengths


def _pair_words(annotation: Any) -> str | None:
    """What a field taking a fixed-length list must be, in words; None for other fields."""
    scalars, lengths = _fixed_lists(annotation)
    if not lengths:
        return None
    tuples = [m for m in _union_members(annotation) if typing.get_origin(m) is tuple]
    item = _strip_optional(typing.get_args(tuples[0])[0])
    lists = f"a list of {lengths[0]} {ITEM_WORDS.get(item, 'items')}"
    return " or ".join([*scalars, lists])


def _field_annotation(root: type[BaseModel], path: PathKey, data: Any) -> Any:
    """The annotation of the field at `path` (a mapping's key), or None."""
    if not path or not isinstance(path[-1], str):
        return None
    model = model_at(root, path[:-1], data)
    field = model.model_fields.get(path[-1]) if model is not None else None
    return field.annotation if field is not None else None


def _wrong_lengths(
    errors: list[dict[str, Any]], root: type[BaseModel], data: Any
) -> list[dict[str, Any]]:
    """A fixed-length list (a pair) with another number of items is one error at the value
    saying what it must be: pydantic reports it as the missing item's "Field required" (too
    few) or "Tuple should have at most ..." (too many)."""
    rewritten = []
    for error in errors:
        loc, kind = tuple(error["loc"]), error["type"]
        if kind == "missing" and loc and isinstance(loc[-1], int):
            loc = loc[:-1]  # the item a short list lacks: the list is at fault
        elif kind != "too_long" or (error.get("ctx") or {}).get("field_type") != "Tuple":
            rewritten.append(error)
            continue
        path = data_path(loc, data)
        expected = _pair_words(_field_annotation(root, path, data))
        if expected is None:
            rewritten.append(error)
            continue
        ctx = {"expected": expected}
        rewritten.append({**error, "type": "wrong_length", "loc": loc, "ctx": ctx})
        rewritten[-1]["input"] = _value_at(data, path)
    return rewritten


# Booleans of YAML 1.1 that the spec's YAML 1.2 reads as strings.
YAML11_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})

TYPE_ERRORS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
    "literal_error": "a known name",
}


def _one_error_per_path(errors: list[dict[str, Any]], data: Any) -> list[dict[str, Any]]:
    """A plain union reports one error per member; keep what the user needs to read.

    Errors about a value's type are dropped where another member explains the problem
    better (e.g. `kernel_size: [3, 0]` is a pair with a zero, not "not an integer"); where
    every member complains about the type, one error lists the types accepted.
    """
    by_path: dict[PathKey, list[dict[str, Any]]] = {}
    for error in errors:
        absent = error["type"] in ("missing", "extra_forbidden")
        by_path.setdefault(data_path(error["loc"], data, absent), []).append(error)
    kept: list[dict[str, Any]] = []
    for path, group in by_path.items():
        deeper = any(p[: len(path)] == path and len(p) > len(path) for p in by_path)
        specific = [e for e in group if e["type"] not in TYPE_ERRORS]
        if specific:
            kept.extend(specific)
        elif deeper:
            continue  # a member matched the type; its own errors are reported below
        elif len(group) > 1:
            kinds = list(dict.fromkeys(TYPE_ERRORS[e["type"]] for e in group))
            merged = dict(group[0], type="union_types", ctx={"kinds": kinds})
            kept.append(merged)
        else:
            kept.extend(group)
    return kept


def _expected_keys(fields: list[str], node: Any) -> str | None:
    """The keys a mapping may have besides its variant's tag; a variant with none says so."""
    if not fields:
        return None
    names = [f for f in fields if f not in VARIANT_KEYS]
    if names:
        return f"expected one of: {', '.join(names)}"
    tags = [f"{tag}: {node[tag]}" for tag in VARIANT_KEYS if isinstance(node, dict) and tag in node]
    return f"{tags[0] if tags else 'this mapping'} takes no other keys"


def problems_from_validation(
    err: ValidationError, root: type[BaseModel], data: Any, marks: Marks
) -> list[Problem]:
    """Every error of one validation, located, with did-you-mean hints."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    details = [dict(error) for error in err.errors(include_url=False)]
    details = _wrong_lengths(details, root, data)
    for error in _one_error_per_path(details, data):
        kind = error["type"]
        path = data_path(error["loc"], data, kind in ("missing", "extra_forbidden"))
        at_key = kind in ("extra_forbidden", "union_tag_invalid", "missing")
        if kind == "extra_forbidden":
            key = path[-1] if path else error["loc"][-1]
            model = model_at(root, path[:-1], data)
            fields = list(model.model_fields) if model else []
            if model is root and not path[:-1]:  # the loader's own key, read before validation
                fields = ["extends", *fields]
            message = f"unknown key '{key}'"
            hint = did_you_mean(key, fields) or _expected_keys(fields, _value_at(data, path[:-1]))
        elif kind == "union_types":
            kinds = error["ctx"]["kinds"]
            expected = ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]
            message, hint = f"must be {expected} (got {_got(error.get('input'))})", None
        else:
            message, options = _message(error)
            given = error.get("input")
            if kind == "union_tag_invalid":
                given = (error.get("ctx") or {}).get("tag")
            hint = did_you_mean(given, options) if options else None
            hint = getattr((error.get("ctx") or {}).get("error"), "hint", None) or hint
            if kind in ("bool_type", "bool_parsing") and str(given).lower() in YAML11_BOOLS:
                hint = "YAML 1.2 reads yes, no, on and off as text: write true or false"
            field = getattr((error.get("ctx") or {}).get("error"), "field", None)
            if field is not None:  # a cross-field check naming the field at fault
                path, at_key = (*path, field), True
        if kind == "union_tag_invalid" and isinstance(_value_at(data, path), dict):
            path = (*path, (error.get("ctx") or {}).get("discriminator", "'type'").strip("'"))
            at_key = False
        if kind == "missing":
            path_for_mark = path[:-1]  # point at the mapping's key that lacks the field
            problem = marks.problem(path_for_mark, message, None, at_key=True)
            problem = Problem(
                format_path(path), problem.message, problem.file, problem.line, problem.column
            )
        else:
            problem = marks.problem(path, message, hint, at_key=at_key)
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            problems.append(problem)
    return problems
