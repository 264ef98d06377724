"""The spec loader: `extends:`, `--set` overrides, and limits that keep hostile YAML harmless."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec, load_spec_text
from gencompile.spec.loader import MAX_BYTES, MAX_DEPTH, MAX_EXTENDS, parse_override

BASE = """\
spec_version: 1
name: vae-digits
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 64
model:
  family: vae
  latent_dim: 8
  encoder: {mlp: [256, 128], activation: relu}
  decoder:
    mlp: [128, 256]
  likelihood: {type: bernoulli}
training:
  epochs: 60
  optimizer: {type: adam, learning_rate: 1.0e-3}
"""


def line_of(text: str, snippet: str) -> int:
    assert text.count(snippet) == 1, snippet
    return text[: text.index(snippet)].count("\n") + 1


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding base.yaml; file names are shown relative to it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(BASE)
    return tmp_path


def problems(call) -> list:
    with pytest.raises(SpecError) as info:
        call()
    return info.value.problems


# -- extends ----------------------------------------------------------------------------------

CHILD = """\
extends: base.yaml
name: child
model:
  latent_dim: 4
  encoder:
    mlp: [32]
"""


def test_extends_child_overrides_base_and_lists_are_replaced(work: Path) -> None:
    (work / "child.yaml").write_text(CHILD)
    spec = load_spec("child.yaml").spec
    assert spec.name == "child"
    assert spec.model.latent_dim == 4
    assert spec.model.encoder.mlp == [32]  # replaced, not merged item by item
    assert spec.model.encoder.activation == "relu"  # mappings merge: the base's key stays
    assert spec.model.decoder.mlp == [128, 256]  # untouched by the child
    assert spec.data.batch_size == 64
    assert spec.training.epochs == 60


def test_extends_marks_point_into_the_file_that_wrote_the_value(work: Path) -> None:
    (work / "child.yaml").write_text(CHILD)
    marks = load_spec("child.yaml").marks
    child_latent = marks.locate(("model", "latent_dim"))
    assert (child_latent.file, child_latent.line, child_latent.column) == ("child.yaml", 4, 15)
    child_mlp = marks.locate(("model", "encoder", "mlp", 0))
    assert (child_mlp.file, child_mlp.line) == ("child.yaml", 6)
    base_mlp = marks.locate(("model", "decoder", "mlp", 1))
    assert (base_mlp.file, base_mlp.line, base_mlp.column) == (
        "base.yaml",
        line_of(BASE, "    mlp: [128"),
        16,
    )
    base_batch = marks.locate(("data", "batch_size"))
    assert (base_batch.file, base_batch.line) == ("base.yaml", line_of(BASE, "batch_size"))


def test_extends_errors_are_located_in_the_file_that_wrote_the_value(work: Path) -> None:
    # The child's own bad value points into the child; a check failing on a base value (the
    # bernoulli likelihood, once the child standardizes the data) points into the base.
    (work / "child.yaml").write_text(
        "extends: base.yaml\n"
        "data:\n"
        "  preprocessing: {scale: null, standardize: true}\n"
        "model:\n"
        "  latent_dim: 0\n"
    )
    found = problems(lambda: load_spec("child.yaml"))
    assert [(p.file, p.line, p.path) for p in found] == [("child.yaml", 5, "model.latent_dim")]
    (work / "child.yaml").write_text(
        "extends: base.yaml\ndata:\n  preprocessing: {scale: null, standardize: true}\n"
    )
    found = problems(lambda: load_spec("child.yaml"))
    assert [(p.file, p.line, p.column, p.path) for p in found] == [
        ("base.yaml", line_of(BASE, "likelihood:"), 22, "model.likelihood.type")  # at "bernoulli"
    ]


def test_extends_problems_from_both_files_are_reported_together(work: Path) -> None:
    (work / "base.yaml").write_text(BASE.replace("batch_size: 64", "batch_size: 0"))
    (work / "child.yaml").write_text("extends: base.yaml\nseed: -5\n")
    found = problems(lambda: load_spec("child.yaml"))
    assert [(p.file, p.path) for p in found] == [
        ("base.yaml", "data.batch_size"),
        ("child.yaml", "seed"),
    ]


def test_extends_chain_and_relative_paths(work: Path) -> None:
    # Each base is named relative to the file naming it; all stay in the leaf's folder tree.
    (work / "specs" / "family").mkdir(parents=True)
    (work / "specs" / "base.yaml").write_text(BASE)
    (work / "specs" / "family" / "middle.yaml").write_text(
        "extends: ../base.yaml\nmodel:\n  latent_dim: 2\n"
    )
    (work / "specs" / "leaf.yaml").write_text("extends: family/middle.yaml\nname: leaf\n")
    spec = load_spec(work / "specs" / "leaf.yaml").spec
    assert (spec.name, spec.model.latent_dim, spec.model.encoder.mlp) == ("leaf", 2, [256, 128])


def test_extends_outside_the_spec_folder_needs_the_command_line(work: Path) -> None:
    (work / "specs").mkdir()
    (work / "specs" / "leaf.yaml").write_text("extends: ../base.yaml\nname: leaf\n")
    [problem] = problems(lambda: load_spec("specs/leaf.yaml"))
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "specs/leaf.yaml",
        1,
        10,
        "extends",
    )
    assert "outside the spec's folder tree (specs)" in problem.message
    assert problem.hint is not None and "--set extends=base.yaml" in problem.hint
    # Named on the command line (relative to the working directory), the same base is read.
    spec = load_spec("specs/leaf.yaml", ["extends=base.yaml"]).spec
    assert (spec.name, spec.model.latent_dim) == ("leaf", 8)


def test_extends_cycle_is_an_error(work: Path) -> None:
    (work / "one.yaml").write_text("extends: two.yaml\n")
    (work / "two.yaml").write_text("extends: one.yaml\nname: x\n")
    [problem] = problems(lambda: load_spec("one.yaml"))
    assert problem.path == "extends"
    assert "extends cycle: one.yaml -> two.yaml -> one.yaml" in problem.message


def test_extends_itself_is_a_cycle(work: Path) -> None:
    (work / "self.yaml").write_text("extends: self.yaml\n")
    [problem] = problems(lambda: load_spec("self.yaml"))
    assert "extends cycle" in problem.message


def test_extends_too_deep_is_an_error(work: Path) -> None:
    levels = MAX_EXTENDS + 2
    (work / "level0.yaml").write_text(BASE)
    for i in range(1, levels + 1):
        (work / f"level{i}.yaml").write_text(f"extends: level{i - 1}.yaml\n")
    [problem] = problems(lambda: load_spec(f"level{levels}.yaml"))
    assert f"more than {MAX_EXTENDS} levels of extends" in problem.message


def test_extends_missing_base_is_an_error(work: Path) -> None:
    (work / "child.yaml").write_text("extends: nowhere.yaml\nname: child\n")
    [problem] = problems(lambda: load_spec("child.yaml"))
    assert "file not found" in problem.message
    assert "nowhere.yaml" in str(problem)
    # At the extends: line of the spec that names the base, not at the missing file.
    assert str(problem).startswith("child.yaml:1:10: extends: the base nowhere.yaml: file not")
    [problem] = problems(lambda: load_spec("child.yaml", ["extends=gone.yaml"]))
    assert str(problem).startswith("--set: extends: the base gone.yaml: file not found")


def test_a_problem_in_a_base_names_the_spec_given(work: Path) -> None:
    """Two specs extending one bad base give two distinct reports: each names its spec."""
    (work / "base.yaml").write_text(BASE.replace("batch_size: 64", "batch_size: 0"))
    (work / "child.yaml").write_text("extends: base.yaml\nseed: -5\n")
    found = problems(lambda: load_spec("child.yaml"))
    in_base = [str(p) for p in found if p.file == "base.yaml"]
    assert in_base == [
        f"base.yaml:{line_of(BASE, 'batch_size')}:15: data.batch_size: "
        f"{found[0].message} (in child.yaml, through extends:)"
    ]
    assert [p.through for p in found] == ["child.yaml", None]  # the child's own: no note
    assert all(p.through is None for p in problems(lambda: load_spec("base.yaml")))
    (work / "middle.yaml").write_text("extends: base.yaml\n")
    (work / "top.yaml").write_text("extends: middle.yaml\n")
    assert [p.through for p in problems(lambda: load_spec("top.yaml"))] == ["top.yaml"]
    (work / "broken.yaml").write_text("name: [\n")
    (work / "child.yaml").write_text("extends: broken.yaml\n")
    [problem] = problems(lambda: load_spec("child.yaml"))
    assert problem.file == "broken.yaml" and problem.through == "child.yaml"


def test_extends_must_be_a_path(work: Path) -> None:
    (work / "child.yaml").write_text("name: child\nextends: [base.yaml]\n")
    [problem] = problems(lambda: load_spec("child.yaml"))
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "child.yaml",
        2,
        10,
        "extends",
    )
    assert "relative file path" in problem.message


def test_extends_of_a_non_mapping_base(work: Path) -> None:
    (work / "list.yaml").write_text("- 1\n- 2\n")
    (work / "child.yaml").write_text("extends: list.yaml\n")
    [problem] = problems(lambda: load_spec("child.yaml"))
    assert problem.file == "list.yaml"
    assert "must be a mapping" in problem.message


def test_extends_needs_a_file() -> None:
    [problem] = problems(lambda: load_spec_text("extends: base.yaml\nname: x\n", "t.yaml"))
    assert (problem.path, problem.line) == ("extends", 1)
    assert "read from a file" in problem.message


# -- --set overrides ----------------------------------------------------------------------------


def test_set_nested_paths(work: Path) -> None:
    spec = load_spec(
        "base.yaml", ["model.latent_dim=3", "training.optimizer.learning_rate=0.01"]
    ).spec
    assert spec.model.latent_dim == 3
    assert spec.training.optimizer.learning_rate == 0.01


def test_set_creates_missing_mappings(work: Path) -> None:
    spec = load_spec(
        "base.yaml", ["training.early_stopping.patience=3", "model.losses.kl.weight=0.5"]
    ).spec
    assert spec.training.early_stopping.patience == 3
    assert spec.model.losses.kl.weight == 0.5


@pytest.mark.parametrize(
    "override",
    ["model.encoder.mlp[0]=32", "model.encoder.mlp.0=32", " model.encoder.mlp[0] = 32 "],
    ids=["brackets", "dotted-index", "spaces"],
)
def test_set_list_items(work: Path, override: str) -> None:
    assert load_spec("base.yaml", [override]).spec.model.encoder.mlp == [32, 128]


def test_set_list_item_inside_list_item(work: Path) -> None:
    (work / "conv.yaml").write_text(
        BASE.replace(
            "  encoder: {mlp: [256, 128], activation: relu}",
            "  encoder:\n    layers:\n"
            "      - {type: dense, units: 64}\n      - {type: dense, units: 32}",
        )
    )
    spec = load_spec(
        "conv.yaml", ["model.encoder.layers[1].units=7", "model.encoder.layers.0.activation=relu"]
    ).spec
    assert spec.model.encoder.layers[1].units == 7
    assert spec.model.encoder.layers[0].activation == "relu"


@pytest.mark.parametrize(
    "override, get, expected",
    [
        ("model.likelihood={type: gaussian}", lambda s: s.model.likelihood.type, "gaussian"),
        ("model.likelihood={type: gaussian, sigma: 0.5}", lambda s: s.model.likelihood.sigma, 0.5),
        ("model.encoder.mlp=[16, 8, 4]", lambda s: s.model.encoder.mlp, [16, 8, 4]),
        ("training.mixed_precision=true", lambda s: s.training.mixed_precision, True),
        (
            "training.optimizer.learning_rate=2.0e-4",
            lambda s: s.training.optimizer.learning_rate,
            2.0e-4,
        ),
        ("name='quoted-name'", lambda s: s.name, "quoted-name"),
    ],
    ids=["mapping", "mapping-replaces", "list", "bool", "float", "quoted-string"],
)
def test_set_values_are_parsed_as_yaml(work: Path, override: str, get, expected) -> None:
    assert get(load_spec("base.yaml", [override]).spec) == expected


def test_set_mapping_merges_into_the_block_as_extends_does(work: Path) -> None:
    """The given `layers:` replace the spec's `mlp:` form (as in a child spec); setting the
    block to null first gives the layers alone too."""
    layers = "model.encoder={layers: [{type: dense, units: 5}]}"
    assert load_spec("base.yaml", [layers]).spec.model.encoder.mlp is None
    overrides = ["model.encoder=null", layers]
    spec = load_spec("base.yaml", overrides).spec
    assert spec.model.encoder.mlp is None
    assert spec.model.encoder.layers[0].units == 5


def test_set_applies_on_top_of_extends_and_in_order(work: Path) -> None:
    (work / "child.yaml").write_text(CHILD)
    spec = load_spec("child.yaml", ["model.latent_dim=5", "model.latent_dim=6"]).spec
    assert spec.model.latent_dim == 6


def test_set_bad_values_are_located_at_set(work: Path) -> None:
    found = problems(
        lambda: load_spec("base.yaml", ["model.encoder.mlp[1]=-2", "data.batch_size=0"])
    )
    assert [(p.file, p.line, p.path) for p in found] == [
        ("--set", None, "data.batch_size"),
        ("--set", None, "model.encoder.mlp[1]"),
    ]
    assert str(found[0]) == "--set: data.batch_size: must be > 0 (got 0)"


def test_set_values_inside_a_set_mapping_are_located_at_set(work: Path) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", ["model.likelihood={type: gausian}"]))
    assert (problem.file, problem.path) == ("--set", "model.likelihood.type")
    assert problem.hint == "did you mean 'gaussian'?"


def test_set_unknown_key_with_did_you_mean(work: Path) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", ["model.latent_dims=3"]))
    assert (problem.file, problem.path) == ("--set", "model.latent_dims")
    assert problem.hint == "did you mean 'latent_dim'?"


@pytest.mark.parametrize(
    "override, words",
    [
        ("model.latent_dim", ("expects key.path=value",)),
        ("=3", ("cannot parse --set path",)),
        ("model latent=3", ("cannot parse --set path",)),
        ("model.encoder.mlp[x]=3", ("cannot parse --set path",)),
        ("model.encoder.mlp[]=3", ("cannot parse --set path",)),
        ("model.encoder.mlp.-1=3", ("cannot parse --set path",)),
        ("model.encoder.mlp[0]]=3", ("cannot parse --set path",)),
        ("model.encoder.mlp[5]=3", ("no list item 5",)),
        ("model.encoder.mlp[0].units=3", ("cannot set inside model.encoder.mlp[0]",)),
        ("model.latent_dim=[1", ("invalid YAML",)),
        ("model.latent_dim=two", ("must be an integer", "'two'")),
        ("model.latent_dim=", ("must be an integer", "None")),
        pytest.param(
            "model..latent_dim=3",
            ("cannot parse --set path",),
            id="empty-segment",
        ),
        pytest.param(
            "name.first=x",
            ("cannot set inside name, which is a value",),
            id="inside-document-scalar",
        ),
    ],
)
def test_malformed_set_is_a_spec_error(work: Path, override: str, words: tuple[str, ...]) -> None:
    found = problems(lambda: load_spec("base.yaml", [override]))
    assert len(found) == 1, found
    for word in words:
        assert word in found[0].message
    assert found[0].file == "--set"


@pytest.mark.parametrize(
    "override", ["model.encoder.layers[0].units=4", "model.encoder.layers[0]=4"]
)
def test_set_into_a_list_the_spec_leaves_out_says_to_set_the_whole_list(
    work: Path, override: str
) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", [override]))
    assert (problem.file, problem.path) == ("--set", override.split("=")[0])
    assert problem.message == "model.encoder.layers is not set, so it has no item 0"
    assert problem.hint == "set the whole list: --set 'model.encoder.layers=[...]'"


@pytest.mark.parametrize("value", ["[/bold] close the door", "{a", "*x"])
def test_set_value_that_is_not_yaml_says_how_to_quote_a_string(work: Path, value: str) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", [f"description={value}"]))
    assert (problem.file, problem.path) == ("--set", "description")
    assert problem.message.startswith("invalid YAML")
    assert problem.hint == f"""to give a string, quote it: --set 'description="{value}"'"""
    assert load_spec("base.yaml", [f'description="{value}"']).spec.description == value


def test_set_index_into_a_mapping_is_a_spec_error(work: Path) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", ["model.encoder.0=3"]))
    assert problem.file == "--set"


def test_set_unknown_nested_path_is_located_at_set(work: Path) -> None:
    [problem] = problems(lambda: load_spec("base.yaml", ["trainig.epochs.x=3"]))
    assert (problem.file, problem.path) == ("--set", "trainig")
    assert problem.hint == "did you mean 'training'?"


def test_parse_override_paths() -> None:
    assert parse_override("a.b[2].c=1") == (("a", "b", 2, "c"), 1)
    assert parse_override("a.2.c=x") == (("a", 2, "c"), "x")
    assert parse_override("a[0][1]=[1, 2]") == (("a", 0, 1), [1, 2])
    assert parse_override("a-b.c_d=null") == (("a-b", "c_d"), None)
    assert parse_override("a=b=c") == (("a",), "b=c")


# -- hostile or broken files ------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb_is_refused_quickly() -> None:
    start = time.process_time()
    [problem] = problems(lambda: load_spec_text(BILLION_LAUGHS, "lol.yaml"))
    assert time.process_time() - start < 2.0
    assert "alias bomb" in problem.message
    assert problem.file == "lol.yaml"


def test_alias_bomb_in_a_file_is_refused_quickly(work: Path) -> None:
    (work / "lol.yaml").write_text(BILLION_LAUGHS)
    start = time.process_time()
    [problem] = problems(lambda: load_spec("lol.yaml"))
    assert time.process_time() - start < 2.0
    assert "alias bomb" in problem.message


def test_recursive_alias_is_refused() -> None:
    [problem] = problems(lambda: load_spec_text("a: &a [1, *a]\n"))
    assert f"nested deeper than {MAX_DEPTH}" in problem.message


def test_plain_aliases_still_work() -> None:
    text = BASE.replace(
        "  encoder: {mlp: [256, 128], activation: relu}",
        "  encoder: &net {mlp: [64], activation: relu}",
    )
    text = text.replace("  decoder:\n    mlp: [128, 256]\n", "  decoder: *net\n")
    spec = load_spec_text(text).spec
    assert spec.model.decoder == spec.model.encoder


def test_file_too_large_is_refused(work: Path) -> None:
    (work / "big.yaml").write_text(BASE + "description: " + "x" * MAX_BYTES + "\n")
    start = time.process_time()
    [problem] = problems(lambda: load_spec("big.yaml"))
    assert time.process_time() - start < 1.0
    assert f"larger than {MAX_BYTES} bytes" in problem.message
    assert problem.file == "big.yaml"


def test_text_too_large_is_refused() -> None:
    [problem] = problems(lambda: load_spec_text("a: " + "x" * MAX_BYTES))
    assert "larger than" in problem.message


def test_deep_nesting_is_refused() -> None:
    depth = MAX_DEPTH + 10
    [problem] = problems(lambda: load_spec_text("a: " + "[" * depth + "]" * depth, "deep.yaml"))
    assert f"nested deeper than {MAX_DEPTH} levels" in problem.message
    assert (problem.file, problem.line) == ("deep.yaml", 1)


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a: ", "}")], ids=["lists", "mappings"])
def test_very_deep_nesting_is_refused(opener: str, closer: str) -> None:
    depth = 5000
    [problem] = problems(lambda: load_spec_text("a: " + opener * depth + closer * depth))
    assert "nested deeper" in problem.message


def test_non_utf8_file_is_a_spec_error(work: Path) -> None:
    (work / "latin1.yaml").write_bytes(
        BASE.replace("name: vae-digits", "name: vae\ndescription: caf\xe9").encode("latin-1")
    )
    [problem] = problems(lambda: load_spec("latin1.yaml"))
    # "description: caf" is 16 characters of line 3: the bad byte is its 17th column.
    assert (problem.file, problem.line, problem.column) == ("latin1.yaml", 3, 17)
    assert problem.message == "not UTF-8 text (invalid continuation byte: byte 0xe9)"
    assert problem.hint == "save the file as UTF-8"


def test_non_utf8_byte_after_multibyte_characters_is_located_in_characters(work: Path) -> None:
    text = BASE.replace("name: vae-digits", "name: vae\ndescription: éé X")
    (work / "bad.yaml").write_bytes(text.encode("utf-8").replace(b"X", b"\xff"))
    [problem] = problems(lambda: load_spec("bad.yaml"))
    assert (problem.line, problem.column) == (3, 17)  # "description: éé " is 16 characters


def test_utf8_bom_is_accepted(work: Path) -> None:
    (work / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_spec("bom.yaml").spec.name == "vae-digits"


@pytest.mark.parametrize("char", ["\x00", "\x07"], ids=["nul", "bell"])
def test_control_character_is_a_spec_error(work: Path, char: str) -> None:
    (work / "ctrl.yaml").write_text(BASE + f"description: a{char}b\n")
    [problem] = problems(lambda: load_spec("ctrl.yaml"))
    assert problem.file == "ctrl.yaml"
    assert "invalid YAML" in problem.message or "character" in problem.message


def test_missing_file_is_a_spec_error(work: Path) -> None:
    [problem] = problems(lambda: load_spec("nope.yaml"))
    assert Path(problem.file).name == "nope.yaml"
    assert "file not found" in problem.message


@pytest.mark.parametrize(
    "name, content",
    [("nope.yaml", None), ("latin1.yaml", b"name: caf\xe9\n")],
    ids=["missing", "latin1"],
)
def test_unreadable_file_is_named_like_other_problems(
    work: Path, name: str, content: bytes | None
) -> None:
    if content is not None:
        (work / name).write_bytes(content)
    [problem] = problems(lambda: load_spec(name))
    assert problem.file == name


def test_directory_is_a_spec_error(work: Path) -> None:
    (work / "adir").mkdir()
    [problem] = problems(lambda: load_spec("adir"))
    assert problem.message == "is a directory, not a spec file"


def test_several_documents_are_refused() -> None:
    [problem] = problems(lambda: load_spec_text(BASE + "---\nname: other\n", "two.yaml"))
    assert "invalid YAML" in problem.message
    assert problem.line == BASE.count("\n") + 1


def test_python_tags_are_refused() -> None:
    [problem] = problems(lambda: load_spec_text("name: !!python/name:os.system ''\n", "t.yaml"))
    assert (problem.line, problem.column) == (1, 7)
    assert "invalid YAML" in problem.message


def test_duplicate_keys_in_a_base_file(work: Path) -> None:
    (work / "base.yaml").write_text(BASE + "name: again\n")
    (work / "child.yaml").write_text("extends: base.yaml\n")
    [problem] = problems(lambda: load_spec("child.yaml"))
    assert (problem.file, problem.line, problem.path) == ("base.yaml", BASE.count("\n") + 1, "name")
    assert "duplicate key 'name'" in problem.message


def test_non_string_keys_are_reported_as_unknown() -> None:
    found = problems(lambda: load_spec_text(BASE + "1: one\n"))
    assert [p.message for p in found] == ["unknown key '1'"]


def test_yaml_merge_keys() -> None:
    text = BASE.replace(
        "  encoder: {mlp: [256, 128], activation: relu}",
        "  encoder: &net {mlp: [256, 128], activation: relu}",
    ).replace(
        "  decoder:\n    mlp: [128, 256]\n", "  decoder:\n    <<: *net\n    mlp: [128, 256]\n"
    )
    try:
        spec = load_spec_text(text).spec
    except SpecError as err:
        assert "constructor" not in str(err)
        assert "merge" in str(err)
    else:
        assert spec.model.decoder.mlp == [128, 256]
        assert spec.model.decoder.activation == "relu"


# -- what a spec file and its values can do to the loader ---------------------------------------


def test_set_into_a_block_left_to_its_default_starts_from_the_default(work: Path) -> None:
    (work / "plain.yaml").write_text(BASE.replace(BASE[BASE.index("training:") :], ""))
    spec = load_spec("plain.yaml", ["training.optimizer.learning_rate=0.01"]).spec
    assert spec.training.optimizer.type == "adam"
    assert spec.training.optimizer.learning_rate == 0.01
    assert spec.training.optimizer.beta_1 == 0.9
    spec = load_spec("plain.yaml", ["training.early_stopping.patience=3"]).spec
    assert spec.training.early_stopping.patience == 3
    # A block whose default is "none" still needs its kind.
    [problem] = problems(lambda: load_spec("plain.yaml", ["training.schedule.warmup_steps=3"]))
    assert (problem.file, problem.path) == ("--set", "training.schedule")
    assert "`type:`" in problem.message


@pytest.mark.parametrize(
    "text, value",
    [("1e-3", 1e-3), ("1.0e3", 1000.0), ("-2E+2", -200.0), (".5", 0.5), ("010", 10), ("0x1f", 31)],
)
def test_numbers_are_read_as_yaml_1_2(text: str, value: float) -> None:
    # YAML 1.1 (PyYAML's default) reads 1e-3 as a string and 010 as octal 8.
    parsed = parse_override(f"x={text}")[1]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["1:30", "0o_", "0x_", "1.2.3", "0o8", "1e", "_1"])
def test_what_is_not_a_yaml_1_2_number_is_a_string(text: str) -> None:
    assert parse_override(f"x={text}")[1] == text


@pytest.mark.parametrize("digits", [20, 5000])
def test_integers_beyond_int64_are_located_problems(digits: int) -> None:
    text = BASE.replace("latent_dim: 8", "latent_dim: " + "9" * digits)
    [problem] = problems(lambda: load_spec_text(text, "big.yaml"))
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "big.yaml",
        line_of(BASE, "latent_dim"),
        15,
        "model.latent_dim",
    )
    assert "out of range" in problem.message


@pytest.mark.parametrize("name", ["google", "h5py", "rich", "sklearn", "yaml"])
def test_a_name_that_shadows_an_installed_module_is_refused(name: str) -> None:
    text = BASE.replace("name: vae-digits", f"name: {name}")
    [problem] = problems(lambda: load_spec_text(text, "s.yaml"))
    assert (problem.path, problem.line, problem.column) == ("name", 2, 7)
    assert f"shadow the installed module {name}" in problem.message
    assert problem.hint == f"rename the spec, e.g. {name}-model"


def test_the_name_of_a_generated_package_is_not_a_shadow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package gencompile generated (on the path, or imported by an earlier run in this
    # process) is the spec's own; any other package of that name is a shadow.
    import importlib.util
    import sys

    from gencompile.compiler.project import build

    build(load_spec_text(BASE.replace("vae-digits", "shadow-probe")), tmp_path / "built")
    monkeypatch.syspath_prepend(str(tmp_path / "built"))
    assert load_spec_text(BASE.replace("vae-digits", "shadow-probe")).spec.name == "shadow-probe"
    init = tmp_path / "built" / "shadow_probe" / "__init__.py"
    found = importlib.util.spec_from_file_location("shadow_probe", init)
    module = importlib.util.module_from_spec(found)
    monkeypatch.setitem(sys.modules, "shadow_probe", module)  # as after an import
    assert load_spec_text(BASE.replace("vae-digits", "shadow-probe")).spec.name == "shadow-probe"
    init.write_text("")  # no longer gencompile's
    monkeypatch.delitem(sys.modules, "shadow_probe")
    importlib.invalidate_caches()
    [problem] = problems(lambda: load_spec_text(BASE.replace("vae-digits", "shadow-probe")))
    assert "shadow the installed module shadow_probe" in problem.message


TEXT_SPEC = BASE.replace(
    "  source: {type: builtin, name: digits}\n  preprocessing: {scale: [0.0, 1.0]}\n",
    "  source: {type: npy, path: PATH}\n",
).replace("  likelihood: {type: bernoulli}\n", "  likelihood: {type: gaussian}\n")


@pytest.mark.parametrize("where", ["/etc/passwd", "outside.npy", "link.npy"])
def test_data_paths_outside_the_spec_folder_need_the_command_line(work: Path, where: str) -> None:
    (work / "specs").mkdir()
    (work / "outside.npy").write_bytes(b"")
    (work / "specs" / "link.npy").symlink_to(work / "outside.npy")
    value = where if where != "link.npy" else "specs/link.npy"  # relative to the cwd
    (work / "specs" / "s.yaml").write_text(TEXT_SPEC.replace("PATH", value))
    [problem] = problems(lambda: load_spec("specs/s.yaml"))
    assert (problem.file, problem.line, problem.path) == ("specs/s.yaml", 4, "data.source.path")
    assert "outside the spec's folder tree (specs;" in problem.message
    assert problem.hint is not None and f"--set data.source.path={value}" in problem.hint
    spec = load_spec("specs/s.yaml", [f"data.source.path={value}"]).spec
    assert spec.data.source.path == value


@pytest.mark.parametrize("key, value", [("path", "data.npy"), ("path", "sub/x.npy")])
def test_a_path_written_relative_to_the_spec_says_paths_are_relative_to_the_cwd(
    work: Path, key: str, value: str
) -> None:
    (work / "specs" / "sub").mkdir(parents=True)
    (work / "specs" / value).write_bytes(b"")
    (work / "specs" / "s.yaml").write_text(TEXT_SPEC.replace("PATH", value))
    [problem] = problems(lambda: load_spec("specs/s.yaml"))
    assert (problem.file, problem.line, problem.path) == ("specs/s.yaml", 4, "data.source.path")
    assert problem.message == (
        f"{value} is not in the working directory but in the spec's folder, specs: paths are "
        "relative to the working directory"
    )
    assert problem.hint == f"write specs/{value}, or run from specs/"
    # Following the hint: the spec's own folder tree, read from the working directory.
    written = (work / "specs" / "s.yaml").read_text().replace(value, f"specs/{value}")
    (work / "specs" / "s.yaml").write_text(written)
    assert load_spec("specs/s.yaml").spec.data.source.path == f"specs/{value}"


@pytest.mark.parametrize("beside", [False, True])
def test_a_missing_path_outside_the_spec_folder_suggests_no_set(work: Path, beside: bool) -> None:
    (work / "specs").mkdir()
    if beside:  # ../gone.npy from the spec's folder: outside its tree all the same
        (work / "gone.npy").write_bytes(b"")
    (work / "specs" / "s.yaml").write_text(TEXT_SPEC.replace("PATH", "../gone.npy"))
    [problem] = problems(lambda: load_spec("specs/s.yaml"))
    assert problem.path == "data.source.path"
    assert problem.message.endswith("and there is no such file")
    assert problem.hint == (
        "check the path; a file from elsewhere is read when given on the command line: "
        "--set data.source.path=PATH"
    )


def test_data_paths_inside_the_spec_folder_are_read(work: Path) -> None:
    (work / "s.yaml").write_text(TEXT_SPEC.replace("PATH", "data/x.npy"))
    assert load_spec("s.yaml").spec.data.source.path == "data/x.npy"


def test_set_into_a_gan_role_left_out_starts_from_training_optimizer() -> None:
    # dcgan_digits.yaml sets training.optimizer (adam, 2e-4, beta_1 0.5) for both networks.
    spec_path = Path(__file__).resolve().parents[2] / "specs" / "dcgan_digits.yaml"
    spec = load_spec(spec_path, ["training.optimizers.generator.learning_rate=5e-4"]).spec
    generator = spec.training.optimizers.generator
    assert (generator.type, generator.learning_rate, generator.beta_1) == ("adam", 5e-4, 0.5)
    assert spec.training.optimizers.discriminator is None  # still training.optimizer


def test_dumped_strings_that_look_like_yaml_1_2_numbers_read_back_as_strings() -> None:
    from gencompile.spec.loader import dump_yaml, parse_yaml

    data = {"columns": ["1e5", "0o7", "0x1f", "010", "1.", ".5", "yes", "0.0"], "rate": 1e-5}
    assert parse_yaml(dump_yaml(data), "d.yaml")[0] == data


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "Yes", "NO", "On", "y", "n"])
def test_yaml_1_1_booleans_are_strings(text: str) -> None:
    # YAML 1.2 has only true and false; YAML 1.1 (PyYAML's default) reads these as booleans.
    assert parse_override(f"x={text}")[1] == text
    assert parse_override(f"x=[{text}]")[1] == [text]


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("TRUE", True)])
def test_yaml_1_2_booleans_are_booleans(text: str, value: bool) -> None:
    assert parse_override(f"x={text}")[1] is value


def test_csv_columns_named_like_yaml_1_1_booleans_are_column_names(work: Path) -> None:
    (work / "c.csv").write_text("no,se,dk\n1,2,3\n")
    text = TEXT_SPEC.replace(
        "{type: npy, path: PATH}", "{type: csv, path: c.csv, columns: [no, se]}"
    )
    (work / "s.yaml").write_text(text)
    assert load_spec("s.yaml").spec.data.source.columns == ["no", "se"]
    spec = load_spec("s.yaml", ["data.source.columns=[se, no]"]).spec
    assert spec.data.source.columns == ["se", "no"]


@pytest.mark.parametrize("value", ["yes", "off"])
def test_a_boolean_given_as_yes_or_off_says_to_write_true_or_false(value: str) -> None:
    text = BASE.replace("  epochs: 60\n", f"  epochs: 60\n  deterministic: {value}\n")
    [problem] = problems(lambda: load_spec_text(text, "s.yaml"))
    assert (problem.path, problem.line) == ("training.deterministic", line_of(text, "determ"))
    assert problem.message == f"must be true or false (got '{value}')"
    assert problem.hint == "YAML 1.2 reads yes, no, on and off as text: write true or false"


@pytest.mark.parametrize("pattern", ["/**/*.tfrecord", "../**/*.tfrecord", "gone/*.tfrecord"])
def test_a_tfrecord_glob_outside_the_spec_folder_is_never_expanded(
    work: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    import glob

    from gencompile import spec as spec_package

    expand = glob.glob

    def no_walk(name: str, **kwargs: object) -> list[str]:
        assert not name.startswith(("/", "..")), f"expanded {name}: it may walk the whole disk"
        return expand(name, **kwargs)

    monkeypatch.setattr(spec_package.glob, "glob", no_walk)
    (work / "specs").mkdir()
    records = (
        "{type: tfrecord, files: 'PATTERN', features: {x: {type: values, name: x, shape: [2]}}}"
    )
    text = TEXT_SPEC.replace("{type: npy, path: PATH}", records.replace("PATTERN", pattern))
    (work / "specs" / "s.yaml").write_text(text)
    [problem] = problems(lambda: load_spec("specs/s.yaml"))
    assert problem.path == "data.source.files"
    assert "outside the spec's folder tree" in problem.message
