"""The hostile-input corpus for what a spec file and its values can do to the tool.

Three classes, each case asserting the exit code, the one-line message (located at
file:line:col where the spec has a place for it) and that nothing outside the command's
intended output changed:

- hang or unbounded memory: special files as specs or bases (FIFOs block on open,
  /dev/zero never ends, a sparse file claims gigabytes), run in a child with a time limit;
- traceback: numbers Python or TensorFlow cannot hold, sizes memory cannot hold, names
  that shadow installed modules, unwritable schema outputs;
- silent wrong result: values of the wrong type taken as something else (`true` as 1,
  "3" as 3), YAML 1.1 numbers, overrides into defaulted blocks, files outside the spec's
  folder tree, markup in the description.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from gencompile.report import Report, render_html, render_markdown
from gencompile.spec.loader import MAX_BYTES

# A valid tiny VAE; the line and column numbers below refer to this text.
SPEC = """\
spec_version: 1
name: tiny-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0, 1]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
training:
  epochs: 1
evaluation:
  importance_samples: 4
"""
HUGE = "9" * 5000  # Python refuses to convert more than 4300 digits
# A character model of a text file; data.source.path is on line 5, its value at column 30.
TEXT_SPEC = """\
spec_version: 1
name: tiny-text
seed: 3
data:
  source: {type: text, path: PATH}
  validation_split: 0.5
model:
  family: autoregressive
  context_length: 8
  network: {type: lstm, units: 8, embedding_dim: 4}
training:
  epochs: 1
"""
CORPUS = "the quick brown fox jumps over the lazy dog\n" * 20


def edit(old: str, new: str, text: str = SPEC) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


@dataclass(frozen=True)
class Case:
    """`gencompile args...` in a folder holding spec.yaml (`text`) and `files`."""

    args: tuple[str, ...]
    code: int
    words: tuple[str, ...]
    text: str = SPEC
    files: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None


def fifo(name: str) -> Callable[[Path], None]:
    return lambda root: os.mkfifo(root / name)


def sparse(name: str, size: int) -> Callable[[Path], None]:
    """A file beside the working folder (not in it: the harness hashes what it watches)
    that claims `size` bytes and holds none."""

    def make(root: Path) -> None:
        (root.parent / "big").mkdir(exist_ok=True)
        with open(root.parent / "big" / name, "wb") as handle:
            handle.truncate(size)

    return make


def symlink_loop(root: Path) -> None:
    (root / "loop.yaml").symlink_to("other.yaml")
    (root / "other.yaml").symlink_to("loop.yaml")


def prepare(tmp_path: Path, case: Case) -> Path:
    """The working folder of a case, with its files; the harness watches it."""
    root = tmp_path / "work"
    root.mkdir()
    (root / "spec.yaml").write_text(case.text)
    for name, content in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    if case.setup is not None:
        case.setup(root)
    return root


def assert_no_traceback_and_one_line_each(text: str) -> None:
    """Every line of a refusal is a message, not a wrapped fragment of one."""
    for line in text.strip().splitlines():
        assert re.match(r"^(\S+: |error: |\d+ of \d+ spec)", line), line


# -- hang or unbounded memory: a child process with a time limit ------------------------------

DEVICE = "/dev/zero: <root>: is a device, not a spec file (give the path of a YAML file)"
PIPE = "fifo.yaml: <root>: is a named pipe (FIFO), not a spec file"
HANGS = {
    "validate-dev-zero": Case(("validate", "/dev/zero"), 2, (DEVICE,)),
    "explain-dev-zero": Case(("explain", "/dev/zero"), 2, (DEVICE,)),
    "build-dev-zero": Case(("build", "/dev/zero", "-o", "out"), 2, (DEVICE,)),
    "train-dev-zero": Case(("train", "/dev/zero", "--runs-dir", "runs"), 2, (DEVICE,)),
    "validate-dev-urandom": Case(("validate", "/dev/urandom"), 2, ("is a device",)),
    "validate-fifo": Case(("validate", "fifo.yaml"), 2, (PIPE,), setup=fifo("fifo.yaml")),
    "explain-fifo": Case(("explain", "fifo.yaml"), 2, (PIPE,), setup=fifo("fifo.yaml")),
    "build-fifo": Case(("build", "fifo.yaml", "-o", "out"), 2, (PIPE,), setup=fifo("fifo.yaml")),
    "train-fifo": Case(
        ("train", "fifo.yaml", "--runs-dir", "runs"), 2, (PIPE,), setup=fifo("fifo.yaml")
    ),
    "extends-a-fifo": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:1:10: extends: the base " + PIPE.replace(": <root>:", ":"),),
        "extends: fifo.yaml\n" + SPEC,
        setup=fifo("fifo.yaml"),
    ),
    "extends-dev-zero": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:1:10: extends: the base /dev/zero is outside the spec's folder tree",),
        "extends: /dev/zero\n" + SPEC,
    ),
    "set-extends-dev-zero": Case(
        ("validate", "spec.yaml", "--set", "extends=/dev/zero"),
        2,
        ("--set: extends: the base " + DEVICE.replace(": <root>:", ":"),),
    ),
    "set-extends-fifo": Case(
        ("explain", "spec.yaml", "--set", "extends=fifo.yaml"),
        2,
        ("--set: extends: the base " + PIPE.replace(": <root>:", ":"),),
        setup=fifo("fifo.yaml"),
    ),
    "sparse-10-gb-spec": Case(
        ("validate", "../big/huge.yaml"),
        2,
        (f"huge.yaml: <root>: spec is larger than {MAX_BYTES} bytes",),
        setup=sparse("huge.yaml", 10 * 2**30),
    ),
    "sparse-10-gb-base": Case(
        ("validate", "spec.yaml", "--set", "extends=../big/huge.yaml"),
        2,
        ("--set: extends: the base ", f"huge.yaml: spec is larger than {MAX_BYTES} bytes"),
        setup=sparse("huge.yaml", 10 * 2**30),
    ),
    "directory-as-spec": Case(
        ("validate", "folder"),
        2,
        ("folder: <root>: is a directory, not a spec file",),
        setup=lambda root: (root / "folder").mkdir(),
    ),
    "schema-onto-a-fifo": Case(
        ("schema", "-o", "fifo.json"),
        1,  # a file that cannot be written: exit 1, as every -o
        ("error: cannot write fifo.json: it is not a regular file",),
        setup=fifo("fifo.json"),
    ),
}


@pytest.mark.parametrize("case", HANGS.values(), ids=HANGS.keys())
def test_special_files_are_refused_without_hanging(hostile_subprocess, tmp_path, case) -> None:
    work = prepare(tmp_path, case)
    outcome = hostile_subprocess(*case.args, timeout=30, watch=work)
    outcome.assert_refused(case.code, *case.words, allowed=case.allowed)
    assert_no_traceback_and_one_line_each(outcome.err)


# -- traceback: values Python, TensorFlow or memory cannot hold -------------------------------

LATENT_HUGE = edit("latent_dim: 2", f"latent_dim: {HUGE}")
HUGE_INT = "integer 999999999999...999999 (5000 digits) is out of range"
LATENT_AT = "spec.yaml:10:15: model.latent_dim: "
WIDE = edit("encoder: {mlp: [16]}", "encoder: {mlp: [100000000]}")
PARAMETERS = "spec.yaml:11:19: model.encoder.mlp[0]: the model has 6,900,001,140 parameters"


def named(name: str) -> str:
    return edit("name: tiny-vae", f"name: {name}")


def shadow(name: str) -> tuple[str, ...]:
    return (
        f"spec.yaml:2:7: name: '{name}' would shadow the installed module {name}",
        f"(rename the spec, e.g. {name}-model)",
    )


TRACEBACKS = {
    "validate-5000-digits": Case(
        ("validate", "spec.yaml"), 2, (LATENT_AT + HUGE_INT,), LATENT_HUGE
    ),
    "explain-5000-digits": Case(("explain", "spec.yaml"), 2, (LATENT_AT + HUGE_INT,), LATENT_HUGE),
    "build-5000-digits": Case(
        ("build", "spec.yaml", "-o", "out"), 2, (LATENT_AT + HUGE_INT,), LATENT_HUGE
    ),
    "train-5000-digits": Case(
        ("train", "spec.yaml", "--runs-dir", "runs"), 2, (LATENT_AT + HUGE_INT,), LATENT_HUGE
    ),
    "set-5000-digits": Case(
        ("validate", "spec.yaml", "--set", f"model.latent_dim={HUGE}"),
        2,
        ("--set: model.latent_dim: " + HUGE_INT,),
    ),
    "5000-digit-key": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:11:5: <root>: invalid YAML: " + HUGE_INT,),
        edit("latent_dim: 2\n", f"latent_dim: 2\n  ? {HUGE}\n  : 3\n"),
    ),
    "width-beyond-int64": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:11:19: model.encoder.mlp[0]: integer 99999999999999999999999 is out of range",),
        edit("encoder: {mlp: [16]}", "encoder: {mlp: [99999999999999999999999]}"),
    ),
    "width-beyond-int32": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:11:19: model.encoder.mlp[0]: must be <= 2147483647 (got 3000000000)",),
        edit("encoder: {mlp: [16]}", "encoder: {mlp: [3000000000]}"),
    ),
    "validate-width-beyond-memory": Case(("validate", "spec.yaml"), 2, (PARAMETERS,), WIDE),
    "explain-width-beyond-memory": Case(("explain", "spec.yaml"), 2, (PARAMETERS,), WIDE),
    "build-width-beyond-memory": Case(("build", "spec.yaml", "-o", "out"), 2, (PARAMETERS,), WIDE),
    "train-width-int32-max": Case(
        ("train", "spec.yaml", "--runs-dir", "runs"),
        2,
        (
            "spec.yaml:11:19: model.encoder.mlp[0]: the encoder's layer dense_1 outputs "
            "2,147,483,647 values per example",
        ),
        edit("encoder: {mlp: [16]}", "encoder: {mlp: [2147483647]}"),
    ),
    "latent-beyond-memory": Case(
        ("validate", "spec.yaml", "--set", "model.latent_dim=100000000"),
        2,
        ("spec.yaml:11:12: model.encoder: the model has 5,000,002,144 parameters",),
    ),
    "samples-beyond-memory": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:17:16: evaluation.num_samples: 100,000,000 examples of shape (8, 8, 1)",),
        edit("importance_samples: 4", "importance_samples: 4\n  num_samples: 100000000"),
    ),
    "infinite-learning-rate": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:15:42: training.optimizer.learning_rate: must be a finite number (got inf)",),
        edit("epochs: 1", "epochs: 1\n  optimizer: {type: adam, learning_rate: 1e400}"),
    ),
    "name-google": Case(("validate", "spec.yaml"), 2, shadow("google"), named("google")),
    "name-h5py": Case(("validate", "spec.yaml"), 2, shadow("h5py"), named("h5py")),
    "name-rich": Case(("validate", "spec.yaml"), 2, shadow("rich"), named("rich")),
    "name-sklearn": Case(("validate", "spec.yaml"), 2, shadow("sklearn"), named("sklearn")),
    "build-name-h5py": Case(("build", "spec.yaml", "-o", "out"), 2, shadow("h5py"), named("h5py")),
    "train-name-google": Case(
        ("train", "spec.yaml", "--runs-dir", "runs"), 2, shadow("google"), named("google")
    ),
    "explicit-int-tag-on-text": Case(
        ("validate", "spec.yaml"),
        2,
        (LATENT_AT + "cannot read '0x' as !!int",),
        edit("latent_dim: 2", "latent_dim: !!int 0x"),
    ),
    "explicit-float-tag-on-text": Case(
        ("explain", "spec.yaml", "--set", "training.optimizer.learning_rate=!!float fast"),
        2,
        ("--set: training.optimizer.learning_rate: cannot read 'fast' as !!float",),
    ),
    "nul-in-extends": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:1:10: extends: must be a relative file path",),
        'extends: "base\\0.yaml"\n' + SPEC,
    ),
    "nul-in-set-extends": Case(
        ("validate", "spec.yaml", "--set", 'extends="base\\0.yaml"'),
        2,
        ("--set: extends: --set extends= expects a file path",),
    ),
    "nul-in-a-data-path": Case(
        ("build", "spec.yaml", "-o", "out"),
        2,
        ("spec.yaml:5:30: data.source.path: a path cannot hold a NUL character",),
        TEXT_SPEC.replace("PATH", '"corpus\\0.txt"'),
    ),
    "symlink-loop-as-spec": Case(
        ("validate", "loop.yaml"),
        2,
        ("loop.yaml: <root>: cannot read: a loop of symbolic links",),
        setup=symlink_loop,
    ),
    "symlink-loop-as-base": Case(
        ("explain", "spec.yaml"),
        2,
        ("spec.yaml:1:10: extends: the base loop.yaml: cannot read: a loop of symbolic links",),
        "extends: loop.yaml\n" + SPEC,
        setup=symlink_loop,
    ),
    "schema-into-a-missing-folder": Case(
        ("schema", "-o", "missing/dir/schema.json"),
        1,  # a file that cannot be written: exit 1, as every -o
        (
            "error: cannot write missing/dir/schema.json: the folder missing/dir does not exist "
            "(create it first, or omit -o)",
        ),
    ),
    "schema-onto-a-folder": Case(
        ("schema", "-o", "folder"),
        1,  # a file that cannot be written: exit 1, as every -o
        (
            "error: cannot write folder: it is a folder (give a file path, e.g. "
            "folder/gencompile.schema.json)",
        ),
        setup=lambda root: (root / "folder").mkdir(),
    ),
    "schema-under-a-file": Case(
        ("schema", "-o", "spec.yaml/schema.json"),
        1,  # a file that cannot be written: exit 1, as every -o
        ("error: cannot write spec.yaml/schema.json: spec.yaml is not a folder",),
    ),
}


@pytest.mark.parametrize("case", TRACEBACKS.values(), ids=TRACEBACKS.keys())
def test_values_that_used_to_crash_are_located_refusals(hostile, tmp_path, case) -> None:
    work = prepare(tmp_path, case)
    outcome = hostile(*case.args, watch=work)
    outcome.assert_refused(case.code, *case.words, allowed=case.allowed)
    assert_no_traceback_and_one_line_each(outcome.err)


# -- silent wrong results: refused at their place, or read as written ------------------------

OUTSIDE = "spec.yaml:5:30: data.source.path: {} is outside the spec's folder tree"
WRONG = {
    "latent-dim-true": Case(
        ("validate", "spec.yaml"),
        2,
        (LATENT_AT + "must be an integer (got True)",),
        edit("latent_dim: 2", "latent_dim: true"),
    ),
    "epochs-a-string": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:14:11: training.epochs: must be an integer (got '3')",),
        edit("epochs: 1", 'epochs: "3"'),
    ),
    "batch-size-a-float": Case(
        ("explain", "spec.yaml"),
        2,
        ("spec.yaml:7:15: data.batch_size: must be an integer (got 256.0)",),
        edit("batch_size: 256", "batch_size: 256.0"),
    ),
    "standardize-one": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:6:32: data.preprocessing.standardize: must be true or false (got 1)",),
        edit("preprocessing: {scale: [0, 1]}", "preprocessing: {standardize: 1}"),
    ),
    "seed-a-string": Case(
        ("build", "spec.yaml", "-o", "out"),
        2,
        ("spec.yaml:3:7: seed: must be an integer (got '7')",),
        edit("seed: 3", 'seed: "7"'),
    ),
    "learning-rate-quoted": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:15:42: training.optimizer.learning_rate: must be a number (got '1e-3')",),
        edit("epochs: 1", "epochs: 1\n  optimizer: {type: adam, learning_rate: '1e-3'}"),
    ),
    "set-epochs-true": Case(
        ("train", "spec.yaml", "--runs-dir", "runs", "--set", "training.epochs=true"),
        2,
        ("--set: training.epochs: must be an integer (got True)",),
    ),
    "kernel-size-with-a-boolean": Case(
        ("validate", "spec.yaml"),
        2,
        ("spec.yaml:11:", "model.encoder.layers[0].kernel_size[1]: must be an integer (got True)"),
        edit(
            "encoder: {mlp: [16]}",
            "encoder: {layers: [{type: conv2d, filters: 4, kernel_size: [3, true]}]}",
        ),
    ),
    "extends-outside-the-folder": Case(
        ("validate", "sub/spec.yaml"),
        2,
        (
            "sub/spec.yaml:1:10: extends: the base base.yaml is outside the spec's folder tree",
            "--set extends=base.yaml",
        ),
        files={"base.yaml": SPEC, "sub/spec.yaml": "extends: ../base.yaml\nseed: 4\n"},
    ),
    "extends-through-a-symlink": Case(
        ("validate", "sub/spec.yaml"),
        2,
        ("sub/spec.yaml:1:10: extends: the base base.yaml is outside",),
        files={"base.yaml": SPEC, "sub/spec.yaml": "extends: link.yaml\nseed: 4\n"},
        setup=lambda root: (root / "sub" / "link.yaml").symlink_to(root / "base.yaml"),
    ),
    "data-file-etc-passwd": Case(
        ("validate", "spec.yaml"),
        2,
        (OUTSIDE.format("/etc/passwd"), "--set data.source.path=/etc/passwd"),
        TEXT_SPEC.replace("PATH", "/etc/passwd"),
    ),
    "data-file-in-home": Case(
        ("validate", "spec.yaml"),
        2,
        (OUTSIDE.format("~/.ssh/id_rsa"),),
        TEXT_SPEC.replace("PATH", "~/.ssh/id_rsa"),
    ),
    "data-file-through-a-symlink": Case(
        ("build", "spec.yaml", "-o", "out"),
        2,
        (OUTSIDE.format("corpus.txt"),),
        TEXT_SPEC.replace("PATH", "corpus.txt"),
        setup=lambda root: (root / "corpus.txt").symlink_to("/etc/hostname"),
    ),
}


@pytest.mark.parametrize("case", WRONG.values(), ids=WRONG.keys())
def test_values_that_used_to_be_misread_are_refused(hostile, tmp_path, case) -> None:
    work = prepare(tmp_path, case)
    outcome = hostile(*case.args, watch=work)
    outcome.assert_refused(case.code, *case.words, allowed=case.allowed)
    assert_no_traceback_and_one_line_each(outcome.err)


@pytest.mark.parametrize(
    "args, text, shown",
    [
        (
            (),
            edit("epochs: 1", "epochs: 1\n  optimizer: {type: adam, learning_rate: 1e-3}"),
            "learning_rate: 0.001\n",
        ),
        ((), edit("latent_dim: 2", "latent_dim: 010"), "latent_dim: 10\n"),
        (
            ("--set", "training.optimizer.learning_rate=0.01"),
            SPEC,
            "optimizer:\n    learning_rate: 0.01\n",
        ),
        (("--set", "training.optimizer.learning_rate=0.01"), SPEC, "type: adam\n"),
    ],
    ids=["1e-3-is-a-float", "010-is-ten", "set-merges-into-the-default", "default-type-kept"],
)
def test_numbers_and_overrides_are_read_as_written(hostile, tmp_path, args, text, shown) -> None:
    (tmp_path / "spec.yaml").write_text(text)
    outcome = hostile("explain", "spec.yaml", *args)
    assert outcome.code == 0, outcome.err
    assert shown in outcome.out
    assert not outcome.changed


def test_files_outside_the_folder_are_read_when_given_on_the_command_line(
    hostile, tmp_path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "base.yaml").write_text(SPEC)
    (outside / "corpus.txt").write_text(CORPUS)
    work = tmp_path / "work"
    work.mkdir()
    (work / "spec.yaml").write_text("extends: ../elsewhere/base.yaml\nseed: 4\n")
    refused = hostile("validate", "spec.yaml", watch=work)
    refused.assert_refused(
        2,
        f"(a base from elsewhere is read only when named on the command "
        f"line: --set extends={outside / 'base.yaml'})",
    )
    given = hostile("validate", "spec.yaml", "--set", "extends=../elsewhere/base.yaml", watch=work)
    assert given.code == 0, given.err
    (work / "text.yaml").write_text(TEXT_SPEC.replace("PATH", "../elsewhere/corpus.txt"))
    refused = hostile("validate", "text.yaml", watch=work)
    refused.assert_refused(2, "--set data.source.path=../elsewhere/corpus.txt")
    given = hostile(
        "validate", "text.yaml", "--set", "data.source.path=../elsewhere/corpus.txt", watch=work
    )
    assert given.code == 0, given.err


HOSTILE_DESCRIPTION = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) "
    "![track](http://example.invalid/p.png)\n\n# Owned\n| a | b |\n`code` *bold* &lt;"
)


def rendered(markdown: str) -> str:
    """Markdown as a renderer turns it into HTML (CommonMark with tables)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


# The description as a reader must see it: its own characters, in one paragraph.
AS_TEXT = "<p>" + html.escape(" ".join(HOSTILE_DESCRIPTION.split()), quote=False) + "</p>\n"


def test_a_hostile_description_is_shown_as_text_in_the_readme(hostile, tmp_path) -> None:
    text = edit("seed: 3", f"seed: 3\ndescription: {HOSTILE_DESCRIPTION!r}")
    (tmp_path / "spec.yaml").write_text(text.replace("\\n", "\n"))
    outcome = hostile("build", "spec.yaml", "-o", "out")
    assert outcome.code == 0, outcome.err
    assert all(path.startswith("out/") for path in outcome.changed)
    readme = (tmp_path / "out" / "README.md").read_text()
    card = readme.split("\n\n")[1]  # the paragraph under the title
    assert rendered(card) == AS_TEXT
    page = rendered(readme)
    assert (
        "<script" not in page and "<img" not in page and "javascript:" not in page.split("<p>")[0]
    )
    assert "<h1>Owned</h1>" not in page


def test_a_hostile_description_is_shown_as_text_in_the_reports() -> None:
    report = Report(
        title="tiny-vae",
        description=HOSTILE_DESCRIPTION,
        summary="Family vae.",
        metrics={},
        last_epoch={},
        pictures=[],
        text_samples=[],
        spec_lines=["data: text <img src=x onerror=alert(4)>.txt"],
        hashes=[],
        versions="",
    )
    markdown = render_markdown(report)
    assert rendered(markdown.split("\n\n")[1]) == AS_TEXT
    page = rendered(markdown)
    assert "<script" not in page and "<img" not in page and "<h1>Owned</h1>" not in page
    assert "<li>data: text &lt;img src=x onerror=alert(4)&gt;.txt</li>" in page
    page = render_html(report)
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&amp;lt;" in page  # an entity in the text is shown, not decoded


def test_a_generated_package_is_not_a_shadow_after_its_run(hostile, tmp_path) -> None:
    """1e-3 reaches training as a float, and the package a run imported does not make the
    same spec's name 'installed' for the rest of the process."""
    (tmp_path / "spec.yaml").write_text(
        edit(
            "epochs: 1",
            "epochs: 1\n  steps_per_epoch: 2\n  optimizer: {type: adam, learning_rate: 1e-3}",
        ).replace("name: tiny-vae", "name: shadow-check")
    )
    trained = hostile("train", "spec.yaml", "--runs-dir", "runs", "--quiet")
    assert trained.code == 0, trained.err[-2000:]
    again = hostile("validate", "spec.yaml")
    assert again.code == 0, again.err
