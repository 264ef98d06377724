"""Reading spec YAML: a safe loader that remembers where every value came from.

The result is plain data (dicts, lists, scalars) plus `Marks`, a map from a value's path
(`("model", "encoder", "layers", 1, "units")`) to its file, line and column, so every later
error can point at the spec's own text. `extends:` merges a base file below the spec, and
`--set a.b=v` overrides apply on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gencompile.errors import Problem, SpecError

MAX_BYTES = 1_000_000  # a spec is a page of text; anything near this is not one
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 64
MAX_EXTENDS = 8

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    file: str
    line: int | None
    column: int | None


@dataclass
class Marks:
    """Where each path of the merged document was written."""

    marks: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)  # where a mapping key was written

    def locate(self, path: PathKey, at_key: bool = False) -> Mark:
        """The mark of `path` (its key when `at_key`), or of its nearest written ancestor."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if at_key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.marks:
                return self.marks[prefix]
        return Mark("<spec>", None, None)

    def problem(
        self, path: PathKey, message: str, hint: str | None = None, at_key: bool = False
    ) -> Problem:
        mark = self.locate(path, at_key)
        return Problem(format_path(path), message, mark.file, mark.line, mark.column, hint)

    def merged_over(self, base: Marks) -> Marks:
        """These marks where this document wrote a value, `base`'s elsewhere."""
        return Marks({**base.marks, **self.marks}, {**base.keys, **self.keys})

    def drop_under(self, path: PathKey) -> None:
        for table in (self.marks, self.keys):
            for key in [k for k in table if k[: len(path)] == path]:
                del table[key]


def format_path(path: PathKey) -> str:
    """`("model", "layers", 1, "units")` -> `model.layers[1].units`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class RawSpec:
    """A spec document before validation: merged data, marks, and the source text."""

    data: dict[str, Any]
    marks: Marks
    path: Path | None
    text: str


def _problem(file: str, message: str, mark: Any = None, path: str = "") -> SpecError:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return SpecError([Problem(path, message, file, line, column)])


class _Converter:
    """Turns a composed YAML node tree into Python data, recording marks, within limits."""

    def __init__(self, loader: yaml.SafeLoader, file: str):
        self.loader = loader
        self.file = file
        self.nodes = 0
        self.marks: dict[PathKey, Mark] = {}
        self.keys: dict[PathKey, Mark] = {}
        self.problems: list[Problem] = []

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _problem(self.file, f"spec expands to more than {MAX_NODES} values (alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise _problem(
                self.file, f"spec is nested deeper than {MAX_DEPTH} levels", node.start_mark
            )
        self.marks.setdefault(
            path, Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.MappingNode):
            written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            self.loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor) come first
            result: dict[str, Any] = {}
            merged: set[str] = set()  # keys from a merge, which written keys may override
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if id(key_node) not in written:
                    merged.add(key)
                elif key in merged:
                    merged.discard(key)
                    self.marks = {
                        p: m for p, m in self.marks.items() if p[: len(path) + 1] != (*path, key)
                    }
                elif key in result:
                    self.problems.append(
                        Problem(
                            format_path((*path, key)),
                            f"duplicate key '{key}'",
                            self.file,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                        )
                    )
                result[key] = self.convert(value_node, (*path, key))
                self.keys[(*path, key)] = Mark(
                    self.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                )
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)


def parse_yaml(text: str, file: str) -> tuple[Any, Marks]:
    """Safe-load one YAML document, keeping the mark of every value."""
    if len(text.encode()) > MAX_BYTES:
        raise _problem(file, f"spec is larger than {MAX_BYTES} bytes")
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # rejects control characters (ReaderError)
        node = loader.get_single_node()
        if node is None:
            raise _problem(file, "spec is empty")
        converter = _Converter(loader, file)
        data = converter.convert(node, ())
    except yaml.MarkedYAMLError as err:
        raise _problem(file, f"invalid YAML: {err.problem}", err.problem_mark) from None
    except yaml.YAMLError as err:
        raise _problem(file, f"invalid YAML: {err}") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise _problem(file, f"spec is nested deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    if converter.problems:
        raise SpecError(converter.problems)
    return data, Marks(converter.marks, converter.keys)


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in `override` replaces `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem("", "file not found", _display_name(path))]) from None
    except UnicodeDecodeError as err:
        message = f"not UTF-8 text ({err.reason} at byte {err.start})"
        raise SpecError([Problem("", message, _display_name(path))]) from None
    except OSError as err:
        message = f"cannot read: {err.strerror or err}"
        raise SpecError([Problem("", message, _display_name(path))]) from None


def load_document(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Marks]:
    """Load `path`, merging the files named by `extends:` beneath it."""
    path = path.resolve()
    display = _display_name(path)
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise SpecError([Problem("extends", f"extends cycle: {cycle}", display)])
    if len(_chain) > MAX_EXTENDS:
        raise SpecError([Problem("extends", f"more than {MAX_EXTENDS} levels of extends", display)])
    data, marks = parse_yaml(_read(path), display)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "a spec must be a mapping of keys to values", display, 1, 1)])
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, marks
    if not isinstance(base_name, str):
        raise SpecError([marks.problem(("extends",), "must be a relative file path")])
    base_data, base_marks = load_document(path.parent / base_name, (*_chain, path))
    merged = deep_merge(base_data, data)
    return merged, marks.merged_over(base_marks)


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


def parse_override(text: str) -> tuple[PathKey, Any]:
    """`model.encoder.layers[0].units=64` -> (path, 64). Values are parsed as YAML."""
    if "=" not in text:
        raise SpecError([Problem("", f"--set expects key.path=value (got {text!r})", "--set")])
    key, value_text = text.split("=", 1)
    path: list[str | int] = []
    for piece in key.strip().split("."):
        if not piece:
            raise SpecError([Problem(key, f"cannot parse --set path {key!r}", "--set")])
        if piece.isdigit():
            path.append(int(piece))
            continue
        pos = 0
        while pos < len(piece):
            match = _SEGMENT.match(piece, pos)
            if match is None:
                raise SpecError([Problem(key, f"cannot parse --set path {key!r}", "--set")])
            path.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
            pos = match.end()
    if not path:
        raise SpecError([Problem("", f"--set expects key.path=value (got {text!r})", "--set")])
    value, _ = parse_yaml(value_text, "--set") if value_text.strip() else (None, None)
    return tuple(path), value


def apply_override(data: dict[str, Any], marks: Marks, path: PathKey, value: Any) -> None:
    """Set `path` in `data` to `value`, creating mappings on the way."""
    node: Any = data
    set_here = Mark("--set", None, None)
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise SpecError([Problem(format_path(path), f"no list item {part}", "--set")])
            node = node[part]
            continue
        if not isinstance(node, dict):
            where = format_path(path[:depth])
            raise SpecError(
                [
                    Problem(
                        format_path(path), f"cannot set inside {where}, which is a value", "--set"
                    )
                ]
            )
        if part not in node or node[part] is None:
            node[part] = {}  # a new mapping: what the override creates is located at --set
            marks.marks[path[: depth + 1]] = marks.keys[path[: depth + 1]] = set_here
        elif not isinstance(node[part], (dict, list)):
            where = format_path(path[: depth + 1])
            raise SpecError(
                [
                    Problem(
                        format_path(path), f"cannot set inside {where}, which is a value", "--set"
                    )
                ]
            )
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise SpecError([Problem(format_path(path), f"no list item {last}", "--set")])
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        where = format_path(path[:-1])
        raise SpecError(
            [Problem(format_path(path), f"cannot set inside {where}, which is a value", "--set")]
        )
    marks.drop_under(path)
    marks.marks[path] = marks.keys[path] = set_here


def read_spec(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> RawSpec:
    """Load a spec file with its bases and command-line overrides applied."""
    path = Path(path)
    data, marks = load_document(path)
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, marks, key, value)
    return RawSpec(data=data, marks=marks, path=path, text=_read(path))


def read_spec_text(text: str, file: str = "<spec>") -> RawSpec:
    """Load a spec from a string (no `extends:`)."""
    data, marks = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "a spec must be a mapping of keys to values", file, 1, 1)])
    if "extends" in data:
        raise SpecError([marks.problem(("extends",), "extends needs a spec read from a file")])
    return RawSpec(data=data, marks=marks, path=None, text=text)
