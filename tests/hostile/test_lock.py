"""Damaged locks: every command that reads a run's spec.lock.json refuses an edited, old or
malformed one with one line naming the check that failed (exit 1), and writes nothing.

The grid is every such command x every kind of damage: a field edited by hand (the
checksums), a lock rewritten with a valid checksum but inconsistent content, an old or
unknown lock_version, and a structure gencompile never writes (the schema).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gencompile.compiler.project import write_lock
from gencompile.errors import RunError
from gencompile.lockfile import read_lock

SHA = "0" * 64
MODEL = "tiny_vae/model.py"


def edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """A hand edit of the lock: the file's JSON changed, its checksum not."""

    def damage(run: Path) -> None:
        lock = json.loads((run / "spec.lock.json").read_text())
        change(lock)
        (run / "spec.lock.json").write_text(json.dumps(lock, indent=2))

    return damage


def resealed(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    """A lock rewritten with a valid checksum (anyone can compute one) but odd content."""

    def damage(run: Path) -> None:
        lock = json.loads((run / "spec.lock.json").read_text())
        change(lock)
        write_lock(run, lock)

    return damage


def text(content: str | bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "spec.lock.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return damage


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `a.b.c` (or delete it when value is DELETE) in a lock."""

    def change(lock: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = lock
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value

    return change


def rehashed(resolved: dict[str, Any]) -> dict[str, str]:
    from gencompile.compiler.project import canonical_json, sha256_text

    return {"resolved_spec_sha256": sha256_text(canonical_json(resolved))}


DELETE = object()
EDITED = "its fields no longer match lock_sha256"

DAMAGE: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    # A field edited by hand: the most specific checksum that covers it fails.
    "edited-name": (edit(setting("name", "other-vae")), (EDITED,)),
    "edited-family": (edit(setting("family", "gan")), (EDITED,)),
    "edited-seed": (edit(setting("seed", 4)), (EDITED,)),
    "edited-versions": (edit(setting("versions.numpy", "1.0.0")), (EDITED,)),
    "edited-files": (edit(lambda lock: lock["files"].update({MODEL: SHA})), (EDITED,)),
    "edited-platform": (edit(setting("platform", "elsewhere")), (EDITED,)),
    "edited-data-fingerprint": (edit(setting("data_fingerprint", SHA)), (EDITED,)),
    "edited-checksum": (edit(setting("lock_sha256", "f" * 64)), (EDITED,)),
    "edited-spec-source": (
        edit(lambda lock: lock.update(spec_source=lock["spec_source"] + "# more\n")),
        ("its spec_source no longer matches spec_sha256",),
    ),
    "edited-spec-sha256": (
        edit(setting("spec_sha256", SHA)),
        ("its spec_source no longer matches spec_sha256",),
    ),
    "edited-resolved-spec": (
        edit(setting("resolved_spec.data.batch_size", 9)),
        ("its resolved_spec no longer matches resolved_spec_sha256",),
    ),
    "edited-resolved-spec-sha256": (
        edit(setting("resolved_spec_sha256", SHA)),
        ("its resolved_spec no longer matches resolved_spec_sha256",),
    ),
    # Rewritten with a valid checksum, but not what gencompile writes.
    "resealed-other-name": (
        resealed(setting("name", "other-vae")),
        ("is inconsistent: name is 'other-vae' but its resolved_spec says 'tiny-vae'",),
    ),
    "resealed-resolved-spec-not-a-spec": (
        resealed(lambda lock: lock.update(resolved_spec={"model": {}}, **rehashed({"model": {}}))),
        ("malformed: its resolved_spec is not a valid spec for gencompile",),
    ),
    "resealed-unlisted-train": (
        resealed(lambda lock: lock["files"].pop("tiny_vae/train.py")),
        ("does not list tiny_vae/train.py", "cannot be verified before it is imported"),
    ),
    # Versions of the lock format.
    "version-1": (
        edit(lambda lock: (lock.update(lock_version=1), lock.pop("lock_sha256"))),
        ("lock_version 1 lock, written by an older gencompile", "gencompile train"),
    ),
    "version-3": (edit(setting("lock_version", 3)), ("newer than this gencompile",)),
    "version-text": (edit(setting("lock_version", "2")), ("no valid lock_version",)),
    "version-missing": (edit(setting("lock_version", DELETE)), ("no valid lock_version",)),
    # Not a lock at all.
    "a-list": (text("[]"), ("holds a list, not an object",)),
    "not-json": (text("{name: tiny-vae"), ("is unreadable or corrupt",)),
    "empty": (text(""), ("is unreadable or corrupt",)),
    "binary": (text(b"\xff\xfe\x00garbage"), ("is unreadable or corrupt",)),
    "deep-nesting": (text("[" * 100_000), ("is unreadable or corrupt",)),
    # Structure: a field of the wrong type, missing, extra, or out of bounds.
    "files-a-list": (edit(setting("files", [MODEL])), ("malformed: files:", "dictionary")),
    "files-outside": (
        edit(lambda lock: lock["files"].update({"../../x": SHA})),
        ("files['../../x']: must be a relative path inside the project",),
    ),
    "files-absolute": (
        edit(lambda lock: lock["files"].update({"/etc/passwd": SHA})),
        ("files['/etc/passwd']: must be a relative path inside the project",),
    ),
    "files-hash-a-number": (
        edit(lambda lock: lock["files"].update({MODEL: 3})),
        (f"files['{MODEL}']:",),
    ),
    "seed-text": (edit(setting("seed", "3")), ("malformed: seed:", "integer")),
    "seed-bool": (edit(setting("seed", True)), ("malformed: seed:",)),
    "files-missing": (edit(setting("files", DELETE)), ("malformed: files: field required",)),
    "extra-field": (
        edit(setting("run_this", "import os")),
        ("malformed: run_this: extra inputs are not permitted",),
    ),
    "name-json": (
        edit(setting("name", "json")),
        ("malformed: name: 'json' would shadow the module json",),
    ),
    "name-path": (edit(setting("name", "../evil")), ("malformed: name:", "pattern")),
    "name-number": (edit(setting("name", 5)), ("malformed: name:",)),
    "versions-a-list": (edit(setting("versions", [])), ("malformed: versions:",)),
    "versions-missing-keras": (
        edit(setting("versions.keras", DELETE)),
        ("malformed: versions['keras']: field required",),
    ),
    "fingerprint-not-hex": (edit(setting("data_fingerprint", "xyz")), ("data_fingerprint",)),
    "resolved-spec-a-list": (edit(setting("resolved_spec", [])), ("malformed: resolved_spec:",)),
    "spec-source-null": (edit(setting("spec_source", None)), ("malformed: spec_source:",)),
}

COMMANDS = {
    "sample": lambda run: ["sample", run, "-n", "4", "-o", "samples.png"],
    "evaluate": lambda run: ["evaluate", run],
    "reproduce": lambda run: ["reproduce", run, "-o", "out"],
    "train-resume": lambda run: ["train", "--resume", run, "--quiet"],
    "build-locked": lambda run: ["build", "--locked", run / "spec.lock.json", "-o", "out"],
    "impute": lambda run: ["impute", run, "--input", "in.csv", "-o", "out.csv"],
    "compare": lambda run: ["compare", run],
    "eject": lambda run: ["eject", run, "-o", "out"],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_a_damaged_lock(
    command: str, damage: str, vae_copy: Path, hostile, tmp_path: Path
) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,\n")
    spoil, words = DAMAGE[damage]
    spoil(vae_copy)
    json_module = sys.modules["json"]

    outcome = hostile(*COMMANDS[command](vae_copy))

    outcome.assert_refused(1, "spec.lock.json", *words)
    assert len((outcome.out + outcome.err).strip().splitlines()) == 1
    assert sys.modules["json"] is json_module


def test_the_library_raises_a_run_error_for_every_damage(vae_copy: Path, tmp_path: Path):
    """`read_lock` itself: a RunError, never a KeyError or TypeError, for each damage."""
    import shutil

    for name, (spoil, words) in DAMAGE.items():
        run = Path(shutil.copytree(vae_copy, tmp_path / name))
        spoil(run)
        with pytest.raises(RunError) as error:
            read_lock(run)
        assert all(word in str(error.value) for word in words), (name, str(error.value))


def test_an_untouched_lock_reads_back_as_written(trained_vae: Path) -> None:
    lock = read_lock(trained_vae)
    assert lock == json.loads((trained_vae / "spec.lock.json").read_text())
    assert lock["lock_version"] == 2 and len(lock["lock_sha256"]) == 64


def test_training_reseals_the_lock_with_the_data_fingerprint(trained_vae: Path) -> None:
    """`data_fingerprint` is written after training: the checksum covers it too."""
    from gencompile.compiler.project import lock_checksum

    lock = json.loads((trained_vae / "spec.lock.json").read_text())
    assert lock["data_fingerprint"] is not None
    assert lock["lock_sha256"] == lock_checksum(lock)


SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_the_lock_of_every_example_reads_back(spec: Path, tmp_path: Path, example_overrides):
    """The schema accepts every lock gencompile writes, in every family."""
    from gencompile.compiler.project import build
    from gencompile.spec import load_spec

    built = build(load_spec(spec, example_overrides(spec)), tmp_path / "project")
    assert read_lock(tmp_path / "project") == built.lock


@pytest.mark.parametrize(
    ("content", "why"),
    [("", "it is unreadable or corrupt: Expecting value"), ("[]", "it holds a list")],
)
def test_a_file_given_for_a_lock_says_what_is_wanted(
    tmp_path: Path, run_cli, content: str, why: str
) -> None:
    given = tmp_path / "notes.txt"
    given.write_text(content)
    code, _, err = run_cli("build", "--locked", str(given))
    assert code == 1
    assert err.startswith(
        f"error: {given} is not a gencompile run or project folder, and not a lock file: {why}"
    )
    assert err.rstrip().endswith("; give a run's folder or its spec.lock.json")


def test_a_file_given_for_a_run_says_a_run_folder_is_wanted(
    trained_vae: Path, tmp_path: Path, run_cli
) -> None:
    lock = trained_vae / "spec.lock.json"  # valid, but the command wants the run's folder
    code, _, err = run_cli("sample", str(lock), "-o", str(tmp_path / "x.png"))
    assert (code, err.strip()) == (
        1,
        f"error: {lock} is a file, not a gencompile run or project folder: give the run's "
        f"folder ({trained_vae})",
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("")
    code, _, err = run_cli("train", "--resume", str(notes))
    assert code == 1 and err.strip().endswith(
        "is a file, not a gencompile run or project folder: give the run's folder"
    )
