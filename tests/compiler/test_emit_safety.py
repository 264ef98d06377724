"""Safety of generated code: spec strings reach Python source only as string literals.

DESIGN.md ("Safety of generated code") promises that a spec cannot inject code: values
reach templates through filters that emit Python literals, identifiers are validated, and
every generated file must parse. These tests check the promise from the outside.

Differential check. Every string field that reaches generated code is filled once with a
hostile value and once with a harmless placeholder. Both projects are rendered, every
generated `.py` is parsed with `ast`, and in the hostile tree each `ast.Constant` whose
value is exactly the hostile string is swapped for the placeholder. The two trees must
then be identical (`ast.dump`): the hostile text changed nothing but the value of string
constants -- no name, attribute, call, import, statement or docstring is derived from it.
The imports of each file are also compared with a fixed list, and the number of constants
holding the hostile value is checked, so the value is known to arrive intact.

Fields covered: `description`, layer `name`s, `data.source` strings (npz `path`, `key`,
`labels`; csv `path`, `columns`, `label_column`; images `dir`), custom layer `args`
(built with `allow_custom_code=True`), `evaluation.metrics` and
`training.early_stopping.monitor` (closed sets: anything else must be refused), and the
spec `name`. Hand-written hostile values (triple quotes, backslashes, newlines, jinja
syntax, `${}`, U+2028, NUL, bidi overrides, ...) run in every field; hypothesis adds
generated ones. `GENCOMPILE_FUZZ_EXAMPLES` (default 20) sets examples per fuzz test.

The filters themselves (`literal`, `ident`, `docstring`, `toml`) have unit and property
tests at the end. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import ast
import csv
import io
import keyword
import math
import os
import re
import sys
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gencompile.compiler import emit
from gencompile.compiler.emit import EmitError, docstring, from_import, ident, literal, toml
from gencompile.compiler.lower import lower
from gencompile.compiler.project import build, render_project, sha256_text
from gencompile.errors import SpecError
from gencompile.markdown import markdown_text
from gencompile.spec import load_spec_text
from gencompile.spec.base import RESERVED_NAMES, python_name
from gencompile.spec.evaluation import HELDOUT_METRICS, SAMPLE_METRICS
from gencompile.spec.loader import dump_yaml, parse_yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

EXAMPLES = int(os.environ.get("GENCOMPILE_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PACKAGE = "fuzz"

# -- hostile values ------------------------------------------------------------------------

HOSTILE = [
    '"""; import os; os.system(\'x\') #',
    "'''; import os; os.system('x') #",
    '"); import os; os.system("x"); ("',
    "'); import os; os.system('x'); ('",
    "\\",
    "ends with a backslash \\",
    "\\'; import os #",
    '\\"; import os #',
    "\\N{BULLET} \\x41 \\u0041 \\n",
    "line 1\nimport os\nos.system('x')",
    "\r\nimport os\r\n",
    "\n    return os.system('x')\n",
    "{{ plan }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% if true %}x{% endif %}",
    "{# unterminated jinja comment",
    "{% raw %}",
    "${HOME}",
    "$(rm -rf /)",
    "`id`",
    "a\u2028import os\u2029b",
    "\x85import os",
    "\x0b\x0c",
    "\x00",
    "a\x00b",
    "\u202e; import os #\u202c",  # right-to-left override ("Trojan Source")
    "\ufeff",
    "# a comment",
    "\t",
    " leading and trailing ",
    'f\'{__import__("os").system("x")}\'',
    "__import__('os').system('x')",
    "é ñ 漢字 😀 \U0010fffd",
    "]}) ; import os ; ({[",
    "-- x: ['y']\n- !!python/object:os.system x",
]
FRAGMENTS = [
    '"""',
    "'''",
    '"',
    "'",
    "\\",
    "\n",
    "\r",
    "\u2028",
    "\x85",
    "\x00",
    "\t",
    "#",
    ";",
    " import os",
    "os.system('x')",
    "{{",
    "}}",
    "{%",
    "%}",
    "${",
    "}",
    ")",
    "(",
    "]",
    ",",
    ":",
    "\\N{BULLET}",
    "\\x41",
    "\u202e",
    "é",
    "😀",
    "f'",
    "x",
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("".join),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=24),
)

# -- specs and projects ----------------------------------------------------------------------


def base_spec() -> dict[str, Any]:
    return {
        "spec_version": 1,
        "name": PACKAGE,
        "description": "placeholder description",
        "data": {
            "source": {"type": "builtin", "name": "moons"},
            "preprocessing": {"standardize": True},
        },
        "model": {
            "family": "vae",
            "latent_dim": 2,
            "encoder": {"mlp": [8]},
            "decoder": {"mlp": [8]},
            "likelihood": {"type": "gaussian"},
        },
        "training": {"epochs": 1},
    }


def to_yaml(spec: dict[str, Any]) -> str:
    text = dump_yaml(spec)  # strings YAML 1.2 reads as numbers ("1e5") are quoted
    assert parse_yaml(text, "t")[0] == spec, "the YAML transport itself must round-trip"
    return text


def python_files(loaded, allow_custom_code: bool = False, out: Path | None = None):
    """(.py texts with the spec hash blanked, all files, plan) of `loaded`: rendered, or
    built into `out` and read back."""
    if out is None:
        plan = lower(loaded)
        files = render_project(loaded, plan)
    else:
        result = build(loaded, out, allow_custom_code=allow_custom_code)
        plan = result.plan
        files = {p: (out / p).read_text(encoding="utf-8") for p in result.lock["files"]}
    digest = sha256_text(loaded.text)[:16]
    python = {p: t.replace(digest, "0" * 16) for p, t in files.items() if p.endswith(".py")}
    return python, files, plan


def render(spec: dict[str, Any], allow_custom_code: bool = False, out: Path | None = None):
    return python_files(load_spec_text(to_yaml(spec)), allow_custom_code, out)


MODEL_IMPORTS = {
    "from __future__ import annotations",
    "import keras",
    "import tensorflow as tf",
    "from keras import layers",
    "from keras import ops",
    "from gencompile.runtime import check_version",
    "from gencompile.runtime import distributions",
    "from gencompile.runtime import losses",
    "from gencompile.runtime import replicas",  # tracks means over examples
}
# Imported only when needed (KL warm-up, kernel penalties, runtime layers).
OPTIONAL_IMPORTS = {
    "from gencompile.runtime.callbacks import KLWarmup",
    "from keras import regularizers",
    "from gencompile.runtime import layers as gencompile_layers",
}
EXPECTED_IMPORTS = {
    f"{PACKAGE}/model.py": MODEL_IMPORTS,
    f"{PACKAGE}/train.py": {
        "from __future__ import annotations",
        "import sys",  # run as a script: the project root on sys.path
        "from pathlib import Path",
        "from gencompile.runtime import report_pictures",  # the report's latent pictures
        "from gencompile.runtime import repro",
        "from gencompile.runtime import training",
        "from gencompile.data_paths import read_where_trained_in",
        "from gencompile.data_paths import trained_folder",
        "from gencompile.runtime.data import load_data",
        "from gencompile.runtime.vae import evaluate",
        "from .model import SEED",
        "from .model import build_model",
    },
    f"{PACKAGE}/__init__.py": {
        "from gencompile.runtime import quiet",
        "from .model import build_model",
    },
    "tests/test_model.py": {
        "import numpy as np",
        "import tensorflow as tf",
        f"from {PACKAGE}.model import DATA_SHAPE",
        f"from {PACKAGE}.model import NUM_CLASSES",
        f"from {PACKAGE}.model import build_model",
    },
}


def imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.add(f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for a in node.names:
                alias = f" as {a.asname}" if a.asname else ""
                found.add(f"from {module} import {a.name}{alias}")
    return found


def identifiers(tree: ast.AST) -> set[str]:
    """Every name the code binds or reads: what an injection would have to change."""
    names = set()
    for node in ast.walk(tree):
        for attr in ("id", "attr", "name", "asname", "arg", "module"):
            value = getattr(node, attr, None)
            if isinstance(value, str):
                names.add(value)
    return names


def string_constants(tree: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


class Baseline:
    """The placeholder project, parsed once: what every hostile project must equal."""

    def __init__(self, python: dict[str, str]):
        assert set(python) == set(EXPECTED_IMPORTS)
        self.trees = {path: ast.parse(text, filename=path) for path, text in python.items()}
        self.dumps = {path: ast.dump(tree) for path, tree in self.trees.items()}
        self.imports = {path: imports(tree) for path, tree in self.trees.items()}
        self.identifiers = {path: identifiers(tree) for path, tree in self.trees.items()}
        self.constants = {c for tree in self.trees.values() for c in string_constants(tree)}

    def collides(self, hostile: list[str], placeholders: list[str]) -> bool:
        """Whether hostile values repeat or equal a constant of the placeholder project."""
        return len(set(hostile)) < len(hostile) or bool(
            set(hostile) & (self.constants | set(placeholders))
        )


class _Swap(ast.NodeTransformer):
    def __init__(self, swaps: dict[str, str]):
        self.swaps = swaps
        self.counts = dict.fromkeys(swaps, 0)

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and node.value in self.swaps:
            self.counts[node.value] += 1
            return ast.copy_location(ast.Constant(self.swaps[node.value]), node)
        return node


def assert_only_literals(
    hostile: dict[str, str],
    baseline: Baseline,
    swaps: dict[str, str],
    extra_imports: frozenset[str] = frozenset(),
) -> dict[str, dict[str, int]]:
    """The differential check (module docstring); returns file -> value -> constant count."""
    assert set(hostile) == set(baseline.trees)
    counts = {}
    for path, text in hostile.items():
        # No invisible or control characters: repr() escapes them (no "Trojan Source").
        assert all(c == "\n" or c.isprintable() for c in text), path
        tree = ast.parse(text, filename=path)
        compile(tree, path, "exec", dont_inherit=True)  # what the parser lets through
        found = imports(tree)
        allowed = EXPECTED_IMPORTS[path] | OPTIONAL_IMPORTS | extra_imports
        assert EXPECTED_IMPORTS[path] <= found <= allowed, path
        assert found == baseline.imports[path], path
        assert identifiers(tree) == baseline.identifiers[path], path
        assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)), path
        swapper = _Swap(swaps)
        swapped = swapper.visit(tree)
        assert ast.dump(swapped) == baseline.dumps[path], (
            f"{path}: the hostile value changed more than string constants"
        )
        counts[path] = swapper.counts
    return counts


def total(counts: dict[str, dict[str, int]], value: str) -> int:
    return sum(per_file[value] for per_file in counts.values())


# -- description, image folder and custom layer arguments ------------------------------------

PH = "placeholder"
CUSTOM_IMPORT = "from fuzzpkg.layers import FuzzLayer as custom_fuzzpkg_layers_FuzzLayer"


def custom_spec(text: str) -> dict[str, Any]:
    """`text` as the description, the image folder and two custom layer arguments."""
    spec = base_spec()
    spec["description"] = text
    spec["data"]["source"] = {"type": "images", "dir": text, "size": [8, 8]}
    spec["model"]["encoder"] = {
        "layers": [
            {
                "type": "custom",
                "ref": "fuzzpkg.layers:FuzzLayer",
                "args": {"text": text, "items": [text, 1, None, True, 2.5], "plain": "ok"},
                "output_shape": [8],
            }
        ]
    }
    return spec


@pytest.fixture(scope="module")
def custom_baseline() -> Baseline:
    return Baseline(render(custom_spec(PH))[0])


def check_custom(baseline: Baseline, text: str) -> None:
    spec = custom_spec(text)
    # The description's limit; and no file name holds a NUL, so the image folder is refused.
    if len(text) > 2000 or "\0" in text:
        with pytest.raises(SpecError):
            render(spec)
        return
    hostile, files, plan = render(spec)
    counts = assert_only_literals(hostile, baseline, {text: PH}, frozenset({CUSTOM_IMPORT}))
    assert counts[f"{PACKAGE}/train.py"][text] == 1  # DATA["source"]["dir"]
    assert counts[f"{PACKAGE}/model.py"][text] == 2  # FuzzLayer(items=[...], text=...)
    assert total(counts, text) == 3  # the description reaches no Python code
    assert plan.resolved_spec["description"] == text
    # The model card's prose: Markdown, escaped so that it renders as the text itself, with
    # no control character (a NUL would make README.md read as a binary file).
    assert markdown_text(text) in files["README.md"]
    assert not any(unicodedata.category(c) == "Cc" for c in files["README.md"] if c != "\n")


def test_control_characters_show_as_their_pictures_in_markdown() -> None:
    assert markdown_text("a\x00b\x1bc\x7fd\x9fe\u2028f") == "a\u2400b\u241bc\u2421d\ufffde f"


@pytest.mark.parametrize("text", HOSTILE)
def test_hand_written_hostile_description_image_dir_and_custom_args(custom_baseline, text):
    assert not custom_baseline.collides([text], [PH])
    check_custom(custom_baseline, text)


@FUZZ
@given(text=HOSTILE_TEXT)
def test_fuzzed_description_image_dir_and_custom_args(custom_baseline, text):
    assume(not custom_baseline.collides([text], [PH]))
    check_custom(custom_baseline, text)


def test_empty_strings_are_refused_or_literal():
    with pytest.raises(SpecError):  # an image folder needs a name
        render(custom_spec(""))
    spec = custom_spec("")
    spec["data"]["source"]["dir"] = "images"
    tree = ast.parse(render(spec)[0][f"{PACKAGE}/model.py"])
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [ast.literal_eval(k.value) for c in calls for k in c.keywords if k.arg == "text"] == [""]


def test_build_with_custom_code_writes_only_parseable_files(tmp_path):
    value = HOSTILE[0] + HOSTILE[9] + "\u2028\u202e"  # no NUL: the value is also a folder
    result = build(load_spec_text(to_yaml(custom_spec(value))), tmp_path, allow_custom_code=True)
    trees = {
        relative: ast.parse((tmp_path / relative).read_text(encoding="utf-8"))
        for relative in result.lock["files"]
        if relative.endswith(".py")
    }
    assert value in string_constants(trees[f"{PACKAGE}/train.py"])  # the image folder
    assert string_constants(trees[f"{PACKAGE}/model.py"]).count(value) == 2  # custom args
    assert result.lock["resolved_spec"]["description"] == value


# -- files: npz path, key and labels; csv path and columns -----------------------------------


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("files")


def npz_bytes(key: str) -> bytes | None:
    """An npz holding one (5, 3) array under `key`, or None if a zip cannot name it so."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, archive.open(f"{key}.npy", "w") as member:
        np.lib.format.write_array(member, np.zeros((5, 3), dtype=np.float32))
    if f"{key}.npy" not in zipfile.ZipFile(io.BytesIO(buffer.getvalue())).namelist():
        return None
    return buffer.getvalue()


def npz_spec(path: str, key: str, labels: str) -> dict[str, Any]:
    spec = base_spec()
    spec["data"]["source"] = {"type": "npz", "path": path, "key": key, "labels": labels}
    return spec


@pytest.fixture(scope="module")
def npz_baseline(files_dir) -> Baseline:
    (files_dir / PH).write_bytes(npz_bytes(PH))
    return Baseline(render(npz_spec(str(files_dir / PH), PH, PH))[0])


def is_file_name(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\x00" not in name
        and len(name.encode()) <= 200
    )


def check_npz(files_dir: Path, baseline: Baseline, text: str) -> None:
    """`text` as the npz file's name, its array's key and the labels' key."""
    path = files_dir / text
    content = npz_bytes(text)
    spec = npz_spec(str(path), text, text)
    if content is None:  # a zip cannot hold this key: the build must say so, located
        path.write_bytes(npz_bytes("other"))
        with pytest.raises(SpecError, match="no array"):
            render(spec)
        return
    path.write_bytes(content)
    hostile = render(spec)[0]
    swaps = {str(path): str(files_dir / PH), text: PH}
    counts = assert_only_literals(hostile, baseline, swaps)
    train = counts[f"{PACKAGE}/train.py"]
    assert train[str(path)] == 1 and train[text] == 2  # DATA["source"]: path, key, labels


@pytest.mark.parametrize("text", [h for h in HOSTILE if is_file_name(h)])
def test_hand_written_hostile_npz_path_key_and_labels(files_dir, npz_baseline, text):
    assert not npz_baseline.collides([text, str(files_dir / text)], [PH])
    check_npz(files_dir, npz_baseline, text)


@FUZZ
@given(text=HOSTILE_TEXT.filter(is_file_name))
def test_fuzzed_npz_path_key_and_labels(files_dir, npz_baseline, text):
    assume(not npz_baseline.collides([text, str(files_dir / text)], [PH, str(files_dir / PH)]))
    check_npz(files_dir, npz_baseline, text)


@pytest.mark.parametrize("path", ["", "missing.npz", "a\x00b.npz", "/nonexistent/\n/x.npz"])
def test_unreadable_npz_paths_are_spec_errors(path):
    with pytest.raises(SpecError):
        render(npz_spec(path, "x", "y"))


def csv_spec(path: str, columns: list[str], label: str) -> dict[str, Any]:
    spec = base_spec()
    spec["data"]["source"] = {
        "type": "csv",
        "path": path,
        "columns": columns,
        "label_column": label,
    }
    return spec


def write_csv(path: Path, header: list[str]) -> bool:
    """Write a header and two rows; False if the csv module cannot round-trip the header."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerow(range(len(header)))
    writer.writerow(range(len(header)))
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), []) == header


CSV_COLUMNS = [h for h in HOSTILE if "\x00" not in h]
CSV_PH = [f"col_{i}" for i in range(len(CSV_COLUMNS))] + ["label_ph"]


@pytest.fixture(scope="module")
def csv_baseline(files_dir) -> Baseline:
    path = files_dir / "placeholder.csv"
    write_csv(path, CSV_PH)
    return Baseline(render(csv_spec(str(path), CSV_PH[:-1], CSV_PH[-1]))[0])


def check_csv(files_dir: Path, baseline: Baseline, names: list[str], fuzz: bool) -> None:
    """`names` as the csv's feature columns and (the last one) its label column."""
    path = files_dir / "hostile.csv"
    written = write_csv(path, names)
    if fuzz:
        assume(written)  # a header the csv module itself cannot round-trip
    else:
        assert written
    hostile = render(csv_spec(str(path), names[:-1], names[-1]))[0]
    swaps = dict(zip(names, CSV_PH, strict=True))
    swaps[str(path)] = str(files_dir / "placeholder.csv")
    counts = assert_only_literals(hostile, baseline, swaps)
    assert all(counts[f"{PACKAGE}/train.py"][v] == 1 for v in swaps)


def test_hand_written_hostile_csv_columns(files_dir, csv_baseline):
    names = [*CSV_COLUMNS, "label\n'''\"\"\""]
    assert not csv_baseline.collides(names, CSV_PH)
    check_csv(files_dir, csv_baseline, names, fuzz=False)


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 5))
@given(
    names=st.lists(
        # A file's leading U+FEFF is its byte-order mark (read as the encoding's, not a name's)
        HOSTILE_TEXT.filter(lambda c: "\x00" not in c and not c.startswith("\ufeff")),
        min_size=len(CSV_PH),
        max_size=len(CSV_PH),
        unique=True,
    )
)
def test_fuzzed_csv_columns(files_dir, csv_baseline, names):
    assume(not csv_baseline.collides(names, CSV_PH))
    check_csv(files_dir, csv_baseline, names, fuzz=True)


# -- layer names ----------------------------------------------------------------------------

LAYER_NAME = st.from_regex(r"\A[a-z][a-z0-9_-]{0,20}\Z")


def named_spec(names: list[str]) -> dict[str, Any]:
    spec = base_spec()
    spec["model"]["encoder"] = {
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu", "name": names[0]},
            {"type": "dropout", "rate": 0.1, "name": names[1]},
        ]
    }
    spec["model"]["decoder"] = {"layers": [{"type": "dense", "units": 8, "name": names[2]}]}
    return spec


@pytest.fixture(scope="module")
def names_baseline() -> Baseline:
    return Baseline(render(named_spec(["name-a", "name-b", "name-c"]))[0])


@FUZZ
@given(names=st.lists(LAYER_NAME, min_size=3, max_size=3, unique=True))
@example(names=["dense-1", "x_2", "h"])
@example(names=["import", "os", "class"])
def test_fuzzed_layer_names_within_the_identifier_pattern(names_baseline, names):
    """Layer names (keywords and module names included) reach code only as `name="..."`."""
    spec = named_spec(names)
    swaps = dict(zip(names, ["name-a", "name-b", "name-c"], strict=True))
    assume(not names_baseline.collides(names, list(swaps.values())))
    counts = assert_only_literals(render(spec)[0], names_baseline, swaps)
    assert all(counts[f"{PACKAGE}/model.py"][n] == 1 for n in names)  # name="..."


HOSTILE_NAMES = [
    'x"); import os #',
    "x'",
    "Dense",
    "1layer",
    "_private",
    "-dash",
    "a b",
    "a.b",
    "os.system(",
    "layer\n",
    "layer\nimport os",
    "\nlayer",
    "é",
    "",
    "a" * 65,
    "{{ x }}",
    "a\u2028",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_layer_names_are_refused_by_validation(name):
    with pytest.raises(SpecError):
        load_spec_text(to_yaml(named_spec([name, "b", "c"])))


@settings(max_examples=max(EXAMPLES * 5, 50), deadline=None)
@given(name=st.one_of(HOSTILE_TEXT, LAYER_NAME))
def test_only_names_matching_the_pattern_validate(name):
    """Validation is the gate: whatever passes is a plain lower-case identifier."""
    assume(name not in ("second", "third"))
    try:
        load_spec_text(to_yaml(named_spec([name, "second", "third"])))
    except SpecError:
        accepted = False
    else:
        accepted = True
    assert accepted == bool(re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", name))
    if accepted:
        assert python_name(name).isidentifier()


def refused_project_name(name: str) -> bool:
    """The spec's name becomes a package: no keyword, no module it could shadow."""
    pyname = python_name(name)
    return (
        keyword.iskeyword(pyname)
        or keyword.issoftkeyword(pyname)
        or pyname in RESERVED_NAMES
        or pyname in sys.stdlib_module_names
    )


@settings(max_examples=max(EXAMPLES * 5, 50), deadline=None)
@given(name=st.one_of(HOSTILE_TEXT, LAYER_NAME, st.sampled_from(HOSTILE_NAMES)))
def test_only_spec_names_matching_the_pattern_validate(name):
    spec = base_spec()
    spec["name"] = name
    try:
        load_spec_text(to_yaml(spec))
    except SpecError:
        accepted = False
    else:
        accepted = True
    expected = bool(re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", name)) and not refused_project_name(name)
    assert accepted == expected


@FUZZ
@given(name=LAYER_NAME)
def test_fuzzed_spec_names_give_importable_packages(name):
    spec = base_spec()
    spec["name"] = name
    if refused_project_name(name):
        with pytest.raises(SpecError):
            load_spec_text(to_yaml(spec))
        return
    package = python_name(name)
    files = render(spec)[1]
    assert f"{package}/model.py" in files and package.isidentifier()
    for path, text in files.items():
        if path.endswith(".py"):
            ast.parse(text, filename=path)
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["name"] == package
    model = ast.parse(files[f"{package}/model.py"])
    decorators = [
        d for n in ast.walk(model) if isinstance(n, ast.ClassDef) for d in n.decorator_list
    ]
    assert [ast.literal_eval(k.value) for d in decorators for k in d.keywords] == [package]


# -- closed sets: metrics and the early-stopping monitor -------------------------------------

METRICS = ("elbo", "iwae_nll", "bits_per_dim")
# Real metrics the base spec (a VAE on the moons) also accepts: Hypothesis mines string
# constants from the code under test, so it can draw these names too.
SAMPLE_METRICS_FOR_VECTORS = ("kid", "precision_recall", "energy_distance")
MONITORS = ("loss", "reconstruction", "kl", "grad_norm", "val_loss", "val_reconstruction", "val_kl")


@settings(max_examples=max(EXAMPLES * 5, 50), deadline=None)
@given(metric=st.one_of(HOSTILE_TEXT, st.sampled_from(METRICS)))
@example(metric="precision_recall")
@example(metric="fd_digits")
@example(metric="tstr")
def test_metrics_outside_the_family_list_are_refused(metric):
    spec = base_spec()
    spec["evaluation"] = {"metrics": ["elbo", metric]}
    if metric in METRICS + SAMPLE_METRICS_FOR_VECTORS:
        load_spec_text(to_yaml(spec))
    elif metric in SAMPLE_METRICS + HELDOUT_METRICS:  # real, but not for this model or data
        with pytest.raises(SpecError):
            load_spec_text(to_yaml(spec))
    else:
        with pytest.raises(SpecError, match="not available"):
            load_spec_text(to_yaml(spec))


@settings(max_examples=max(EXAMPLES * 5, 50), deadline=None)
@given(monitor=st.one_of(HOSTILE_TEXT, st.sampled_from(MONITORS)))
def test_monitors_outside_the_logged_metrics_are_refused(monitor):
    spec = base_spec()
    # mode given: a log of no better side (grad_norm) needs it; this is about the names
    spec["training"]["early_stopping"] = {"monitor": monitor, "mode": "min"}
    if monitor in MONITORS:
        load_spec_text(to_yaml(spec))
    else:
        with pytest.raises(SpecError, match="not a logged metric"):
            load_spec_text(to_yaml(spec))


def test_accepted_metrics_and_monitor_are_constants_of_the_config_literals():
    spec = base_spec()
    spec["evaluation"] = {"metrics": list(METRICS)}
    spec["training"]["early_stopping"] = {"monitor": "val_kl"}
    tree = ast.parse(render(spec)[0][f"{PACKAGE}/train.py"])
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.isupper()
        and node.targets[0].id != "PROJECT_DIR"
    }
    assert assigned["EVALUATION"]["metrics"] == list(METRICS)
    assert assigned["TRAINING"]["early_stopping"]["monitor"] == "val_kl"


# -- infinite numbers: refused by validation, not by emission ---------------------------------


@pytest.mark.parametrize(
    "path", [("training", "optimizer", "learning_rate"), ("model", "losses", "kl", "weight")]
)
def test_infinite_numbers_are_spec_errors(path):
    spec = base_spec()
    spec["training"]["optimizer"] = {"type": "adam"}
    spec["model"]["losses"] = {"kl": {}}
    node = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = math.inf
    with pytest.raises(SpecError):
        render(spec)


# -- the filters ------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 from True, -0.0 from 0.0 and tuples from lists."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


LITERAL_NODES = (ast.Expression, ast.Constant, ast.Tuple, ast.List, ast.Dict, ast.Load)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=24,
)


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
@example(value=(1e-5, -0.0, 0.0, 1e300, 5e-324, -1.5))
@example(value=((1,), [(2,)], {"a": (3, [4.0, {"b": None}])}))
@example(value={"'": '"', '"""': "'''", "\\": "\n"})
@example(value=["\x00", "\u2028", "\ud800", "\U0010ffff", "\u202e"])
def test_literal_round_trips_through_literal_eval(value):
    text = literal(value)
    assert same(ast.literal_eval(text), value)
    for node in ast.walk(ast.parse(text, mode="eval")):
        if isinstance(node, ast.UnaryOp):  # negative numbers: -1, -0.0
            assert isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
        else:
            assert isinstance(node, (*LITERAL_NODES, ast.USub)), ast.dump(node)


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, [1.0, math.nan], {"a": (math.inf,)}],
    ids=["nan", "inf", "-inf", "nan-in-list", "inf-in-dict"],
)
def test_literal_refuses_non_finite_numbers(value):
    with pytest.raises(EmitError, match="non-finite"):
        literal(value)


class Sneaky:
    def __repr__(self) -> str:
        return "__import__('os').system('x')"


@pytest.mark.parametrize(
    "value",
    [Sneaky(), object(), {1, 2}, b"bytes", 1j, np.int64(3), np.float32(1.5), [Sneaky()], len],
    ids=[
        "repr-object",
        "object",
        "set",
        "bytes",
        "complex",
        "np-int",
        "np-float32",
        "nested",
        "func",
    ],
)
def test_literal_refuses_other_types(value):
    with pytest.raises(EmitError, match="refusing to emit"):
        literal(value)


def test_literal_strings_use_double_quotes_when_they_can():
    assert literal("relu") == '"relu"'
    assert literal("it's") == '"it\'s"'
    assert literal('say "hi"') == "'say \"hi\"'"
    assert ast.literal_eval(literal("both ' and \"")) == "both ' and \""
    assert literal((1,)) == "(1,)" and literal(()) == "()"


@pytest.mark.parametrize(
    "value", ["x", "_x", "custom_Cls", "layers.Dense", "os.path", "build_encoder", "Z9"]
)
def test_ident_accepts_identifiers_and_dotted_names(value):
    assert ident(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "a b",
        "class",
        "import",
        "None",
        "True",
        "lambda",
        "a.class",
        "os.system(",
        "os.system('x')",
        "1abc",
        "a-b",
        "a.",
        ".a",
        "a..b",
        "é",
        "a;b",
        "a\nb",
        "\na",
        "a\r",
        "a\u2028",
        "{{ x }}",
        "x=1",
    ],
)
def test_ident_refuses_everything_else(value):
    with pytest.raises(EmitError, match="identifier"):
        ident(value)


@pytest.mark.parametrize("value", ["abc\n", "os.path\n", "custom_Cls\n"])
def test_ident_refuses_a_trailing_newline(value):
    with pytest.raises(EmitError):
        ident(value)


def test_from_import_sorts_the_names_and_wraps_a_long_line_as_ruff_format_does():
    assert from_import(["replicas", "loss_scaling", "check_version"], "gencompile.runtime") == (
        "from gencompile.runtime import check_version, loss_scaling, replicas"
    )
    names = ["vamp_prior", "replicas", "posteriors", "loss_scaling", "distributions", "a_b"]
    wrapped = from_import([*names, "check_version"], "gencompile.runtime")
    assert wrapped.splitlines()[0] == "from gencompile.runtime import ("
    assert wrapped.splitlines()[1:3] == ["    a_b,", "    check_version,"]
    assert wrapped.endswith("    vamp_prior,\n)")
    assert ast.parse(wrapped).body[0].names[-1].name == "vamp_prior"


@pytest.mark.parametrize("name", ["os; import sys", "a\n", "import"])
def test_from_import_refuses_what_is_not_an_identifier(name):
    with pytest.raises(EmitError, match="identifier"):
        from_import(["replicas", name], "gencompile.runtime")


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    assert isinstance(node, ast.Attribute), ast.dump(node)
    return f"{dotted(node.value)}.{node.attr}"


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=12), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,10}", fullmatch=True)
    )
)
def test_ident_returns_only_names_and_attribute_chains(text):
    assume(not text.endswith("\n"))  # see test_ident_refuses_a_trailing_newline
    try:
        result = ident(text)
    except EmitError:
        return
    assert result == text
    assert dotted(ast.parse(text, mode="eval").body) == text


DOCSTRING_CASES = [
    '"""',
    'x"""; import os; """',
    'ends with a quote"',
    '"starts with a quote',
    "back\\slash",
    "ends with a backslash\\",
    "\\N{BULLET}",
    "'''",
    "\x00",
    "\u202e",
    "line\nbreak",
    "a\u2028b",
    "",
    "   ",
    "{{ x }}",
]


def check_docstring(text: str) -> None:
    emitted = docstring(text)
    function = f"def f():\n    {emitted}\n    return 1\n"
    tree = ast.parse(function)
    (func,) = tree.body
    assert len(func.body) == 2 and isinstance(func.body[1], ast.Return)
    assert ast.get_docstring(func, clean=False) == " ".join(text.split())
    assert "\n" not in emitted


@pytest.mark.parametrize("text", DOCSTRING_CASES + HOSTILE)
def test_docstring_never_breaks_out(text):
    check_docstring(text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS)).map("".join)))
def test_fuzzed_docstring_never_breaks_out(text):
    check_docstring(text)


def check_wrapped_docstring(text: str) -> None:
    """As a builder function's docstring: wrapped at 100 columns after a 4-space indent."""
    emitted = docstring(text, 4)
    function = f"def f():\n    {emitted}\n    return 1\n"
    tree = ast.parse(function)
    (func,) = tree.body
    assert len(func.body) == 2 and isinstance(func.body[1], ast.Return)
    assert ast.get_docstring(func).split() == text.split()
    if emitted.startswith('"""'):  # not repr'd: every line fits, unless a word alone cannot
        lines = function.splitlines()[1:-1]
        assert all(len(line) <= 100 or " " not in line.strip() for line in lines)


@pytest.mark.parametrize("text", DOCSTRING_CASES + HOSTILE + ["word " * 60, "x" * 120 + " y"])
def test_wrapped_docstring_never_breaks_out_and_fits(text):
    check_wrapped_docstring(text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.sampled_from([*FRAGMENTS, " "])).map("".join)))
def test_fuzzed_wrapped_docstring_never_breaks_out(text):
    check_wrapped_docstring(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", max_codepoint=0xFFFF)))
@example(text='"\\\n\t\x00\x1f\u2028')
@example(text="'''\"\"\"")
def test_toml_round_trips_through_tomllib(text):
    assert tomllib.loads(f"value = {toml(text)}\n")["value"] == text


def test_toml_handles_characters_beyond_the_bmp():
    assert tomllib.loads(f"value = {toml('😀')}\n")["value"] == "😀"


@pytest.mark.parametrize("code", [*range(0x09), *range(0x0A, 0x20), 0x7F])
def test_toml_escapes_control_characters(code):
    """TOML basic strings forbid raw U+0000-U+001F (tab excepted) and U+007F."""
    emitted = toml(chr(code))
    assert chr(code) not in emitted
    assert tomllib.loads(f"v = {emitted}")["v"] == chr(code)


# `pretty` lays out the config dicts of train.py; `wrap` the prose of the module docstring.


@pytest.fixture(scope="module")
def pretty():
    return emit.pretty


@pytest.fixture(scope="module")
def wrap():
    return emit.wrap


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
@example(value={"key": [("x" * 40, -0.0, 1e-5)] * 4, "nested": {"a": list(range(40))}})
@example(value=[("a" * 120,)])
def test_pretty_round_trips_at_module_level(pretty, value):
    text = pretty(value)
    tree = ast.parse(f"VALUE = {text}\n")
    assert same(ast.literal_eval(tree.body[0].value), value)
    if len(literal(value)) <= 80:
        assert text == literal(value)


VISIBLE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\\").filter(
        lambda c: c.isprintable() or c.isspace()
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(VISIBLE_TEXT, st.lists(st.sampled_from(['"', "'", " ", "\n", "x"])).map("".join))
)
def test_wrap_is_safe_inside_the_module_docstring(wrap, text):
    """As the template uses it: a paragraph of the module docstring, quotes on their own line."""
    try:
        wrapped = wrap(text)
    except EmitError:
        assert '"""' in text
        return
    source = f'"""Title.\n\n{wrapped}\n"""\n'
    assert all(c == "\n" or c.isprintable() for c in source)
    assert all(len(line) <= 100 for line in wrapped.splitlines() if " " in line)
    tree = ast.parse(source)
    assert len(tree.body) == 1
    assert ast.get_docstring(tree, clean=False).split() == ["Title.", *text.split()]


@pytest.mark.parametrize("text", ['say """ no', "back\\slash", "\\N{BULLET}"])
def test_wrap_refuses_text_that_could_end_the_docstring(wrap, text):
    with pytest.raises(EmitError):
        wrap(text)


@pytest.mark.parametrize("text", ["\u202e reversed", "escape \x1b[31m", "nul \x00"])
def test_wrap_refuses_or_escapes_invisible_characters(wrap, text):
    try:
        wrapped = wrap(text)
    except EmitError:
        return
    assert all(c == "\n" or c.isprintable() for c in wrapped)


@pytest.mark.parametrize(
    "text", ["two\nlines", "carriage\rreturn", 'say """ no', "back\\slash", "\u202e reversed"]
)
def test_prose_refuses_what_could_end_a_comment_or_a_docstring(text):
    with pytest.raises(EmitError):
        emit.prose(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_prose_stays_inside_a_comment_and_a_docstring(text):
    try:
        line = emit.prose(text)
    except EmitError:
        return
    tree = ast.parse(f'"""Trained with {line}."""\nx = 1  # {line}\n')
    assert ast.get_docstring(tree, clean=False) == f"Trained with {line}."
    assert len(tree.body) == 2


@pytest.mark.parametrize("word", keyword.kwlist)
def test_a_keyword_in_a_custom_layer_is_refused_when_validating(word: str) -> None:
    # Generated code imports the ref's module and class by name and passes args by name:
    # a keyword there would not parse, so the spec is refused, located, before any build.
    for ref, args in (
        (f"{word}.layers:FuzzLayer", {}),
        (f"fuzzpkg.{word}:FuzzLayer", {}),
        (f"fuzzpkg.layers:{word}", {}),
        ("fuzzpkg.layers:FuzzLayer", {word: 1}),
    ):
        spec = custom_spec(PH)
        spec["model"]["encoder"]["layers"][0].update(ref=ref, args=args)
        with pytest.raises(SpecError) as info:
            load_spec_text(to_yaml(spec))
        [problem] = info.value.problems
        assert problem.path.startswith("model.encoder.layers[0]."), str(problem)
        assert "keyword" in problem.message or "must be a lowercase identifier" in problem.message


@pytest.mark.parametrize(
    "ref, args",
    [("fuzzpkg.layers:FuzzLayer", {"match": 1, "type": 2, "case": 3}), ("match.case:type", {})],
    ids=["soft-keyword-args", "soft-keyword-ref"],
)
def test_soft_keywords_in_a_custom_layer_are_names(
    tmp_path: Path, ref: str, args: dict[str, int]
) -> None:
    spec = custom_spec(PH)
    spec["model"]["encoder"]["layers"][0].update(ref=ref, args=args)
    python = render(spec, allow_custom_code=True, out=tmp_path)[0]
    tree = ast.parse(python[f"{PACKAGE}/model.py"])
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert {
        k.arg: ast.literal_eval(k.value) for c in calls for k in c.keywords if k.arg in args
    } == args
