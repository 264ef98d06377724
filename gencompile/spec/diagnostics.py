"""Turning pydantic's validation errors into located, plain-spoken problems."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from gencompile.errors import Problem
from gencompile.spec.loader import Marks, PathKey

_QUOTED = re.compile(r"'([^']*)'")


def did_you_mean(value: object, candidates: list[str] | tuple[str, ...]) -> str | None:
    """A 'did you mean' hint naming the closest candidate, if one is close."""
    matches = difflib.get_close_matches(str(value), list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """pydantic's loc without union tags: follow the segments that exist in the data."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in (node.get("type"), node.get("family")):
            continue  # a discriminated union's tag
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif isinstance(node, (dict, list)) and not _is_tag(part):
            path.append(part)  # a missing key: still part of the path
            node = None
    return tuple(path)


def _value_at(data: Any, path: PathKey) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _strip_optional(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip_optional(a) for a in typing.get_args(annotation)]
    return [annotation]


def model_at(root: type[BaseModel], path: PathKey, data: Any) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `path` of `data`."""
    current: Any = root
    node = data
    for part in path:
        current = _pick_model(current, node)
        if current is None:
            return None
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
        node = node.get(part) if isinstance(node, dict) else None
        # list[X] -> X, the next part being an index
        members = _union_members(current)
        for member in members:
            if typing.get_origin(member) is list:
                current = typing.get_args(member)[0]
                break
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
        for tag in ("type", "family"):
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
    if kind in ("too_short", "too_long"):
        return error["msg"].replace("Value should", "must").replace("List should", "must"), []
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])), []
    return f"{error['msg']} (got {_got(value)})", []


def problems_from_validation(
    err: ValidationError, root: type[BaseModel], data: Any, marks: Marks
) -> list[Problem]:
    """Every error of one validation, located, with did-you-mean hints."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in err.errors(include_url=False):
        path = data_path(error["loc"], data)
        if error["type"] == "extra_forbidden":
            key = path[-1] if path else error["loc"][-1]
            model = model_at(root, path[:-1], data)
            fields = list(model.model_fields) if model else []
            message = f"unknown key '{key}'"
            hint = did_you_mean(key, fields)
            if hint is None and fields:
                names = [f for f in fields if f not in ("type", "family")]
                hint = f"expected one of: {', '.join(names)}"
        else:
            message, options = _message(error)
            given = error.get("input")
            if error["type"] == "union_tag_invalid":
                given = (error.get("ctx") or {}).get("tag")
            hint = did_you_mean(given, options) if options else None
        at_key = error["type"] in ("extra_forbidden", "union_tag_invalid")
        if error["type"] == "union_tag_invalid" and isinstance(_value_at(data, path), dict):
            path = (*path, (error.get("ctx") or {}).get("discriminator", "'type'").strip("'"))
            at_key = False
        problem = marks.problem(path, message, hint, at_key=at_key)
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            problems.append(problem)
    return problems
