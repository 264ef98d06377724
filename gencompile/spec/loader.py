"""Reading spec YAML: a safe loader that remembers where every value came from.

The result is plain data (dicts, lists, scalars) plus `Marks`, a map from a value's path
(`("model", "encoder", "layers", 1, "units")`) to its file, line and column, so every later
error can point at the spec's own text. `extends:` merges a base file below the spec, and
`--set a.b=v` overrides apply on top.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from gencompile.errors import Problem, SpecError

MAX_BYTES = 1_000_000  # a spec is a page of text; anything near this is not one
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 64
MAX_EXTENDS = 8
INT64_MAX = 2**63 - 1  # no spec value needs more; numpy and TensorFlow cannot hold more

PathKey = tuple[str | int, ...]
# What a mapping created by an override starts from, given its path and the document.
StartOf = Callable[[PathKey, dict[str, Any]], dict[str, Any]]


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
    # The file given (its display name) when it extends a base: a problem located in a base
    # says which given spec reached it.
    given: str | None = None

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
        through = self.given if self.given and mark.file not in (self.given, "--set") else None
        where = (mark.file, mark.line, mark.column)
        return Problem(format_path(path), message, *where, hint, through=through)

    def merged_over(self, base: Marks) -> Marks:
        """These marks where this document wrote a value, `base`'s elsewhere."""
        return Marks({**base.marks, **self.marks}, {**base.keys, **self.keys}, self.given)

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
    # Folder trees whose files the spec may name (its own folder, a base given on the
    # command line); empty for a spec that was not read from a file.
    trusted: tuple[Path, ...] = ()


def _problem(file: str, message: str, mark: Any = None, path: str = "") -> SpecError:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return SpecError([Problem(path, message, file, line, column)])


INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
# YAML 1.2 booleans: only true and false. YAML 1.1 also reads yes/no/on/off, so a column
# named `no` (Norway) would become False.
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# YAML 1.2 numbers: `1e-3` is a float (YAML 1.1 reads it as a string) and `010` is ten
# (YAML 1.1 reads it as octal 8); sexagesimal `1:30` stays a string.
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*\.[0-9_]*)(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT_12 = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7][0-7_]*|0x[0-9a-fA-F][0-9a-fA-F_]*)$")


class OutOfRange(yaml.constructor.ConstructorError):
    """An integer literal beyond int64 (or too long to convert at all)."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    # Python refuses to convert strings of over 4300 digits; no int64 needs 64 characters.
    if len(body) <= 64:
        base = {"0o": 8, "0x": 16}.get(body[:2], 10)
        value = sign * int(body[2:] if base != 10 else body, base)
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return value
    shown = text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(body)} digits)"
    raise OutOfRange(
        None, None, f"integer {shown} is out of range (at most {INT64_MAX})", node.start_mark
    )


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers and booleans."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (INT_TAG, FLOAT_TAG, BOOL_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(FLOAT_TAG, _FLOAT_12, list("-+0123456789."))
SpecLoader.add_implicit_resolver(INT_TAG, _INT_12, list("-+0123456789"))
SpecLoader.add_implicit_resolver(BOOL_TAG, _BOOL_12, list("tTfF"))
SpecLoader.add_constructor(INT_TAG, _construct_int)


class SpecDumper(yaml.SafeDumper):
    """Writes YAML that SpecLoader reads back as written: a string that YAML 1.2 reads as a
    number (`1e5`, `0o7`) is quoted, which PyYAML's YAML 1.1 dumper does not do. Strings
    YAML 1.1 reads as booleans (`no`, `on`) stay quoted, for other YAML readers."""


SpecDumper.yaml_implicit_resolvers = {
    k: list(v) for k, v in SpecLoader.yaml_implicit_resolvers.items()
}
SpecDumper.add_implicit_resolver(
    BOOL_TAG,
    next(r for t, r in yaml.SafeLoader.yaml_implicit_resolvers["y"] if t == BOOL_TAG),
    list("yYnNtTfFoO"),
)


def dump_yaml(data: Any) -> str:
    """`data` as spec YAML, in its key order."""
    return yaml.dump(data, Dumper=SpecDumper, sort_keys=False, allow_unicode=False, width=10**6)


class _Converter:
    """Turns a composed YAML node tree into Python data, recording marks, within limits."""

    def __init__(self, loader: SpecLoader, file: str):
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
                try:
                    key = self.loader.construct_object(key_node)
                except ValueError:  # an explicit tag it cannot convert (`? !!int x`)
                    raise _problem(self.file, "cannot read a key", key_node.start_mark) from None
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
        try:
            return self.loader.construct_object(node)
        except OutOfRange as err:  # located at its path, with the other problems
            return self._unreadable(node, path, str(err.problem), "a spec's numbers fit in 64 bits")
        except ValueError:  # an explicit tag on text it cannot convert: `!!int 0x`, `!!float a`
            tag = node.tag.rsplit(":", 1)[-1]
            return self._unreadable(node, path, f"cannot read {node.value[:40]!r} as !!{tag}", None)

    def _unreadable(self, node: yaml.Node, path: PathKey, message: str, hint: str | None) -> None:
        mark = node.start_mark
        where = (self.file, mark.line + 1, mark.column + 1)
        self.problems.append(Problem(format_path(path), message, *where, hint))


def parse_yaml(text: str, file: str) -> tuple[Any, Marks]:
    """Safe-load one YAML document, keeping the mark of every value."""
    if len(text.encode()) > MAX_BYTES:
        raise _problem(file, f"spec is larger than {MAX_BYTES} bytes")
    loader = None
    try:
        loader = SpecLoader(text)  # rejects control characters (ReaderError)
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


# Keys whose value picks a variant: the variant decides which other keys its mapping has
# (docs/spec.md "Every choice is a type: key"). A mapping naming another variant than the one
# below it still merges over it, but the keys it inherits are kept only where the new variant
# takes them (`prune_inherited`): a new optimizer keeps the base's learning_rate, a normal
# prior drops the mixture's components.
VARIANT_KEYS = ("type", "family")
# Where a variant was switched, and the keys its mapping inherited from the old variant.
Inherited = list[tuple[PathKey, list[str]]]
# The keys the variant of the mapping at a path takes (None: not known).
FieldsOf = Callable[[PathKey, dict[str, Any]], set[str] | None]


def switches_variant(base: Any, override: Any) -> bool:
    """Whether mapping `override` names another variant (`type:`, `family:`) than `base`."""
    return any(
        key in base and key in override and base[key] != override[key] for key in VARIANT_KEYS
    )


# A network's two forms (gencompile.spec.networks.Network), each with the keys only it
# takes: typed `layers:`, or the `mlp:` shorthand. The form is a variant without a `type:`
# key: a mapping giving one form over a network of the other replaces that form
# (`replaced_form`), as a new `type:` drops the old variant's keys; keys both forms take
# (`freeze`) still merge.
NETWORK_FORMS: dict[str, tuple[str, ...]] = {
    "layers": ("layers",),
    "mlp": ("mlp", "activation", "dropout"),
}


def replaced_form(base: dict[str, Any], override: dict[str, Any]) -> list[str]:
    """The keys of `base` that `override` drops by giving the other network form (one form,
    not null, while `base` holds the other): those only `base`'s form takes, but for the
    ones `override` itself gives. Giving both forms replaces nothing (validation refuses it)."""
    given = [form for form in NETWORK_FORMS if override.get(form) is not None]
    if len(given) != 1:
        return []
    [old] = [form for form in NETWORK_FORMS if form != given[0]]
    if old not in base:
        return []
    return [key for key in NETWORK_FORMS[old] if key in base and key not in override]


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key (a network form given replaces the other, `replaced_form`);
    anything else in `override` replaces `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        replaced = replaced_form(base, override)
        merged = {key: value for key, value in base.items() if key not in replaced}
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def forms_replaced(base: Any, override: Any, path: PathKey = ()) -> list[PathKey]:
    """The paths of the keys `deep_merge(base, override)` drops with a replaced network form,
    whose marks go with them."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return []
    found = [(*path, key) for key in replaced_form(base, override)]
    for key, value in override.items():
        if key in base:
            found += forms_replaced(base[key], value, (*path, key))
    return found


def inherited_by_switches(base: Any, override: Any, path: PathKey = ()) -> Inherited:
    """Where `deep_merge(base, override)` puts another variant over a mapping: the paths,
    each with the keys the new variant inherits from the old one (those `override` does
    not give)."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return []
    found: Inherited = []
    if switches_variant(base, override):
        found.append((path, [key for key in base if key not in override]))
    for key, value in override.items():
        if key in base:
            found += inherited_by_switches(base[key], value, (*path, key))
    return found


def prune_inherited(
    data: dict[str, Any], marks: Marks, inherited: Inherited, fields_of: FieldsOf | None
) -> None:
    """Drop each inherited key the switched-to variant does not take (all of them where its
    keys are not known), with its marks."""
    for path, keys in inherited:
        node: Any = data
        for part in path:  # a --set may reach into a list item
            if isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        takes = fields_of(path, data) if fields_of is not None else None
        for key in keys:
            if key in node and (takes is None or key not in takes):
                del node[key]
                marks.drop_under((*path, key))


def _file_problem(path: Path, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Problem("", message, display_name(path), hint=hint)])


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_file(path: Path) -> str:
    """The text of a spec file: a regular file of at most MAX_BYTES of UTF-8.

    Checked with `stat` before opening, because opening a FIFO blocks until a writer comes
    and reading /dev/zero never ends; the open itself does not block (O_NONBLOCK), and the
    opened file is checked again in case it was swapped in between.
    """
    not_regular = "give the path of a YAML file"
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _file_problem(path, f"is {_kind_of(mode)}, not a spec file", not_regular)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(descriptor, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise _file_problem(path, f"is {_kind_of(mode)}, not a spec file", not_regular)
            data = handle.read(MAX_BYTES + 1)  # never more, whatever the file claims
    except FileNotFoundError:
        raise _file_problem(path, "file not found") from None
    except ValueError:  # os.stat refuses a NUL character, which no file name holds
        raise _file_problem(path, "a file name cannot hold a NUL character") from None
    except OSError as err:
        raise _file_problem(path, f"cannot read: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        raise _file_problem(path, f"spec is larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _not_utf8(path, data, err) from None


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError) -> SpecError:
    """The decoding error located at the line and column of its first bad byte."""
    line_start = data.rfind(b"\n", 0, err.start) + 1
    # Characters before it on its line: the bytes before err.start are valid UTF-8.
    column = len(data[line_start : err.start].decode("utf-8")) + 1
    line = data.count(b"\n", 0, err.start) + 1
    message = f"not UTF-8 text ({err.reason}: byte 0x{data[err.start]:02x})"
    hint = "save the file as UTF-8"
    return SpecError([Problem("", message, display_name(path), line, column, hint)])


def is_outside(path: Path, folders: tuple[Path, ...]) -> bool:
    """Whether `path` (resolved, symlinks followed) lies outside all of `folders`' trees.

    A path that cannot be resolved (a symlink loop) is left to reading, which fails on it.
    """
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    return not any(resolved.is_relative_to(folder) for folder in folders)


@dataclass(frozen=True)
class _Document:
    data: dict[str, Any]
    marks: Marks
    text: str


_UNSET: Any = object()


def load_document(
    path: Path,
    trusted: tuple[Path, ...] | None = None,
    base: Any = _UNSET,
    fields_of: FieldsOf | None = None,
    _chain: tuple[Path, ...] = (),
) -> _Document:
    """Load `path`, merging the files named by `extends:` beneath it.

    A base named in a file must lie in a `trusted` folder tree (by default the spec's own
    folder). `base` replaces the top file's `extends:`: a path given on the command line,
    relative to the working directory, which may lie anywhere. A variant switched at a
    level keeps the inherited keys it takes (`fields_of`) there, so a key a middle level
    dropped stays dropped when a level above switches back, as the same `--set`s do.
    """
    path = _resolve(path)
    trusted = trusted if trusted is not None else (path.parent,)
    display = display_name(path)
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise SpecError([Problem("extends", f"extends cycle: {cycle}", display)])
    if len(_chain) > MAX_EXTENDS:
        raise SpecError([Problem("extends", f"more than {MAX_EXTENDS} levels of extends", display)])
    text = read_file(path)
    data, marks = parse_yaml(text, display)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "a spec must be a mapping of keys to values", display, 1, 1)])
    base_name = data.pop("extends", None)
    if base is not _UNSET:
        base_path = None if base is None else Path(base)
    elif base_name is None:
        base_path = None
    elif not isinstance(base_name, str) or not base_name or "\0" in base_name:
        raise SpecError([marks.problem(("extends",), "must be a relative file path")])
    else:
        base_path = path.parent / base_name
        if is_outside(base_path, trusted):
            raise SpecError([_outside_tree(marks, base_path, trusted)])
    if base_path is None:
        return _Document(data, marks, text)
    try:
        below = load_document(base_path, trusted, fields_of=fields_of, _chain=(*_chain, path))
    except SpecError as error:
        named_here = base is _UNSET
        raise SpecError(_base_problems(error, marks, display, named_here)) from None
    merged = marks.merged_over(below.marks)
    merged.given = display
    merged_data = deep_merge(below.data, data)
    for dropped in forms_replaced(below.data, data):
        merged.drop_under(dropped)
    prune_inherited(merged_data, merged, inherited_by_switches(below.data, data), fields_of)
    return _Document(merged_data, merged, text)


def _base_problems(error: SpecError, marks: Marks, display: str, named_here: bool) -> list[Problem]:
    """The problems of a base as the spec extending it reports them: the base's file itself
    (missing, unreadable, not a spec) at this spec's `extends:` line (or `--set extends=`),
    a problem inside the base where it is, saying which spec was given."""
    problems = []
    for problem in error.problems:
        if problem.line is None and not problem.path and problem.file not in (display, "--set"):
            message = f"the base {problem.file}: {problem.message}"
            if named_here:
                relative = "a base's path is relative to the folder of the spec naming it"
                hint = relative if problem.message == "file not found" else problem.hint
                problems.append(marks.problem(("extends",), message, hint))
            else:
                problems.append(Problem("extends", message, "--set", hint=problem.hint))
        elif problem.file not in (display, "--set"):
            problems.append(replace(problem, through=display))
        else:
            problems.append(problem)
    return problems


def _resolve(path: Path) -> Path:
    """`path` with symlinks followed; a loop of symlinks is a problem of that file."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise _file_problem(path, "cannot read: a loop of symbolic links") from None


def _outside_tree(marks: Marks, base: Path, trusted: tuple[Path, ...]) -> Problem:
    folders = " or ".join(display_name(folder) for folder in trusted)
    try:
        shown = display_name(base.resolve())
    except (OSError, RuntimeError):  # a symlink loop: show the path as written
        shown = display_name(base)
    return marks.problem(
        ("extends",),
        f"the base {shown} is outside the spec's folder tree ({folders})",
        f"a base from elsewhere is read only when named on the command line: --set extends={shown}",
    )


def display_name(path: Path) -> str:
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
    try:
        value, _ = parse_yaml(value_text, "--set") if value_text.strip() else (None, None)
    except SpecError as err:  # the value's own problems, named by the key it was set to
        where = format_path(tuple(path))
        raise SpecError(
            [
                Problem(where, p.message, "--set", hint=p.hint or _quote_hint(where, p, value_text))
                for p in err.problems
            ]
        ) from None
    return tuple(path), value


def _quote_hint(key: str, problem: Problem, value: str) -> str | None:
    """For a value that is not YAML (text starting with `[`, `{`, `*`, ...): how to give it
    as a string."""
    if not problem.message.startswith("invalid YAML"):
        return None
    quoted = json.dumps(value.strip())  # a JSON string is a YAML double-quoted string
    if "'" in quoted:
        return "to give a string, put it in YAML double quotes inside the shell's quotes"
    return f"to give a string, quote it: --set '{key}={quoted}'"


def apply_override(
    data: dict[str, Any],
    marks: Marks,
    path: PathKey,
    value: Any,
    start_of: StartOf | None = None,
    fields_of: FieldsOf | None = None,
) -> None:
    """Set `path` in `data` to `value`, creating mappings on the way.

    A mapping the spec left out (or null) starts from `start_of(its path, data)`: an
    override of `training.optimizer.learning_rate` changes the default optimizer's rate.
    A mapping value merges into the mapping at `path` as an `extends:` child does: an
    override naming another variant (`type:`, `family:`, alone or in a mapping) keeps the
    old variant's fields only where the new one takes them (`fields_of`), and those
    earlier `--set`s gave; a network form (`layers`, `mlp`, alone or in a mapping) replaces
    the other form (`replaced_form`).
    """
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
            if isinstance(path[depth + 1], int):  # a list left out has no items to set
                where = format_path(path[: depth + 1])
                raise SpecError(
                    [
                        Problem(
                            format_path(path),
                            f"{where} is not set, so it has no item {path[depth + 1]}",
                            "--set",
                            hint=f"set the whole list: --set '{where}=[...]'",
                        )
                    ]
                )
            # a new mapping: what the override creates is located at --set
            node[part] = start_of(path[: depth + 1], data) if start_of else {}
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
    elif not isinstance(node, dict):
        where = format_path(path[:-1])
        raise SpecError(
            [Problem(format_path(path), f"cannot set inside {where}, which is a value", "--set")]
        )
    # A switch of variant or network form prunes the mapping holding it.
    if isinstance(node, dict) and (last in VARIANT_KEYS or last in NETWORK_FORMS):
        _merge_at(data, marks, path[:-1], node, {last: value}, fields_of)
    else:
        old = node.get(last) if isinstance(node, dict) else node[last]
        _merge_at(data, marks, path, old, value, fields_of)


def _merge_at(
    data: dict[str, Any],
    marks: Marks,
    path: PathKey,
    old: Any,
    value: Any,
    fields_of: FieldsOf | None,
) -> None:
    """Merge `value` into `old`, the value at `path` in `data`, by the rules of `extends:`:
    mappings merge (`deep_merge`), a mapping naming another variant keeps only the fields
    of `old` that variant takes. What `value` gives is located at --set; a field an
    earlier --set gave stays when a variant is switched, since the user wrote both.
    """
    inherited = [
        (where, [key for key in keys if not _set_here(marks, (*where, key))])
        for where, keys in inherited_by_switches(old, value, path)
    ]
    _mark_given(marks, path, old, value)
    for dropped in forms_replaced(old, value, path):
        marks.drop_under(dropped)
    merged = deep_merge(old, value)
    if isinstance(old, dict) and isinstance(merged, dict):
        old.clear()  # in place: `data` holds it, and `path` may be the whole document
        old.update(merged)
    else:
        container: Any = data
        for part in path[:-1]:
            container = container[part]
        container[path[-1]] = merged
    prune_inherited(data, marks, inherited, fields_of)


def _mark_given(marks: Marks, path: PathKey, old: Any, value: Any) -> None:
    """Locate at --set what `value` gives at `path`: where it merges into a mapping, each
    of its keys (the mapping and the keys it leaves keep their marks), else all of it."""
    if isinstance(old, dict) and isinstance(value, dict):
        for key, item in value.items():
            _mark_given(marks, (*path, key), old.get(key), item)
        return
    marks.drop_under(path)
    marks.marks[path] = marks.keys[path] = Mark("--set", None, None)


def _set_here(marks: Marks, path: PathKey) -> bool:
    mark = marks.keys.get(path)
    return mark is not None and mark.file == "--set"


def read_spec(
    path: Path | str,
    overrides: list[str] | tuple[str, ...] = (),
    start_of: StartOf | None = None,
    fields_of: FieldsOf | None = None,
) -> RawSpec:
    """Load a spec file with its bases and command-line overrides applied.

    `--set extends=PATH` names the base of the spec from the command line (it may lie
    outside the spec's folder). `start_of(path, data)` gives the content a mapping that an
    override creates starts from (the field's default); empty by default. `fields_of(path,
    data)` the keys of the variant at a path, which a switched variant keeps of the old one's.
    """
    path = Path(path)
    parsed = [parse_override(text) for text in overrides]
    bases = [value for key, value in parsed if key == ("extends",)]
    trusted: tuple[Path, ...] = (_resolve(path).parent,)
    base: Any = _UNSET
    if bases:
        base = bases[-1]
        if base is not None and not (isinstance(base, str) and base and "\0" not in base):
            raise SpecError([Problem("extends", "--set extends= expects a file path", "--set")])
        if base is not None:
            trusted = (*trusted, Path(os.path.abspath(base)).parent)
    document = load_document(path, trusted, base, fields_of)
    for key, value in parsed:
        if key != ("extends",):
            apply_override(document.data, document.marks, key, value, start_of, fields_of)
    own = display_name(path)
    loaded_as = display_name(_resolve(path))  # as the marks name it: symlinks followed
    merged = {m.file for m in document.marks.marks.values()} - {loaded_as, "--set"}
    if not overrides and not merged:
        return RawSpec(document.data, document.marks, path, document.text, trusted)
    # Composed of several sources: the spec a build copies into its project (and its lock)
    # is the one it built, so that `gencompile build spec.yaml` there builds it again.
    text = composed_text(document.data, own, bool(merged), len(parsed))
    return RawSpec(document.data, document.marks, path, text, trusted)


def composed_text(data: dict[str, Any], given: str, bases: bool, overrides: int) -> str:
    """A spec merged from its bases (`extends:`) and `--set` overrides, as one YAML file."""
    how = [*(["its extends: bases merged in"] if bases else [])]
    how += [f"{overrides} --set override(s) applied"] if overrides else []
    header = (
        f"# Composed by gencompile from {json.dumps(given)}:\n"
        f"# {', '.join(how)}; the comments of the original files are not kept.\n"
    )
    return header + dump_yaml(data)  # read back as written: '1e3' stays a string


def read_spec_text(text: str, file: str = "<spec>") -> RawSpec:
    """Load a spec from a string (no `extends:`)."""
    data, marks = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "a spec must be a mapping of keys to values", file, 1, 1)])
    if "extends" in data:
        raise SpecError([marks.problem(("extends",), "extends needs a spec read from a file")])
    return RawSpec(data=data, marks=marks, path=None, text=text)
