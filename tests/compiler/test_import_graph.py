"""No import cycle among gencompile's modules: the compiler and the spec, and the whole package.

Imports are read with `ast` from the source, the ones inside functions included: a lazy
import hides a cycle from Python's import machinery, not from the design. Importing
`a.b.c` runs `a/__init__` and `a/b/__init__` first, so those count as imported too, except
for the importing module's own packages, which are loading already when it runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gencompile

PACKAGE = Path(gencompile.__file__).parent
CHECKED = ("gencompile.compiler", "gencompile.spec")


def module_files() -> dict[str, Path]:
    """Dotted name -> source file of every gencompile module (packages by `__init__`)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the file may load."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, base] if base else package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the gencompile modules it imports, with the parent packages that loads."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        own_packages = set(ancestors(module))  # already loading when this module runs
        targets = set()
        for name in imported_names(module, path):
            if name in modules:
                targets |= {name, *(set(ancestors(name)) - own_packages)}
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def find_cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str] | None:
    """A cycle of the graph restricted to `nodes`, as the modules along it; None if none."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"

    def visit(trail: list[str]) -> list[str] | None:
        state[trail[-1]] = "open"
        for nxt in sorted(graph[trail[-1]] & nodes):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt]
            found = None if nxt in state else visit([*trail, nxt])
            if found:
                return found
        state[trail[-1]] = "done"
        return None

    for node in sorted(nodes):
        found = None if node in state else visit([node])
        if found:
            return found
    return None


def test_compiler_and_spec_have_no_import_cycle() -> None:
    graph = import_graph()
    checked = {m for m in graph if m.startswith(CHECKED)}
    assert "gencompile.compiler.lower" in checked and "gencompile.spec.root" in checked
    assert find_cycle(graph, checked) is None


def test_the_graph_sees_imports_inside_functions() -> None:
    """The cycle this test guards against was hidden in a lazy import."""
    graph = import_graph()
    assert "gencompile.compiler.lower" in graph["gencompile.lockfile"]  # inside a function
    assert "gencompile.compiler.families" in graph["gencompile.compiler.lower"]
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(toy, set(toy)) == ["a", "b", "c", "a"]
    assert find_cycle(toy, {"a", "b"}) is None


def test_no_module_of_gencompile_is_in_an_import_cycle() -> None:
    """The runtime, the commands and their support modules too: each layer imports the
    ones below it, never back."""
    graph = import_graph()
    assert find_cycle(graph, set(graph)) is None
