"""The autoregressive family's spec strings (the sampling prompt, the text file's path)
reach generated code only as string literals: the differential check of
tests/compiler/test_emit_safety.py, for these fields."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project, sha256_text
from gencompile.spec import load_spec_text
from gencompile.spec.loader import dump_yaml

HOSTILE = [
    '"""; import os; os.system(\'x\') #',
    "'); import os; os.system('x'); ('",
    "\\",
    "line 1\nimport os\nos.system('x')",
    "{{ plan }}",
    "{% if true %}x{% endif %}",
    "a\u2028import os\u2029b",
    "\u202e; import os #\u202c",
    'f\'{__import__("os").system("x")}\'',
    "é ñ 漢字 😀",
]
PLACEHOLDER = "placeholder"


def spec(prompt: str, path: Path) -> str:
    document: dict[str, Any] = {
        "spec_version": 1,
        "name": "fuzz-lm",
        "data": {"source": {"type": "text", "path": str(path)}, "batch_size": 8},
        "model": {
            "family": "autoregressive",
            "tokenizer": {"type": "byte"},  # spells any prompt (validate refuses one a
            "context_length": 8,  # char vocabulary cannot): the literals are under test
            "network": {"type": "gru", "units": 8},
            "sampling": {"prompt": prompt},
        },
    }
    return dump_yaml(document)  # a prompt such as "1e5" stays a string


def python(text: str) -> dict[str, ast.AST]:
    loaded = load_spec_text(text)
    files = render_project(loaded, lower(loaded))
    digest = sha256_text(loaded.text)[:16]
    return {
        p: ast.parse(t.replace(digest, "0" * 16)) for p, t in files.items() if p.endswith(".py")
    }


class Swap(ast.NodeTransformer):
    def __init__(self, swaps: dict[str, str]):
        self.swaps, self.count = swaps, 0

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and node.value in self.swaps:
            self.count += 1
            return ast.copy_location(ast.Constant(self.swaps[node.value]), node)
        return node


@pytest.mark.parametrize("value", HOSTILE)
def test_prompt_and_text_path_are_only_string_constants(tmp_path: Path, value: str) -> None:
    corpus = "some text to model, long enough for a few windows of tokens\n" * 4
    plain = tmp_path / "plain" / "corpus.txt"
    plain.parent.mkdir()
    plain.write_text(corpus, encoding="utf-8")
    folder = tmp_path / value.replace("/", "_").replace("\x00", "_")
    folder.mkdir()
    hostile_path = folder / "corpus.txt"
    hostile_path.write_text(corpus, encoding="utf-8")
    baseline = python(spec(PLACEHOLDER, plain))
    hostile = python(spec(value, hostile_path))
    swaps = {value: PLACEHOLDER, str(hostile_path): str(plain)}
    found = 0
    for path, tree in hostile.items():
        swapper = Swap(swaps)
        assert ast.dump(swapper.visit(tree)) == ast.dump(baseline[path]), path
        found += swapper.count
    assert found == 2  # SAMPLING["prompt"] in model.py, DATA["source"]["path"] in train.py
