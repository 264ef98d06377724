"""Output files the user names on the command line: checked before any work is done,
written under a temporary name and renamed into place, their errors one line each."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from gencompile.datafiles import describe_mode
from gencompile.errors import RunError, UsageRefusal
from gencompile.files import atomic_open


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """`files.atomic_open`, with a write error (a full disk, no permission) as one line."""
    with writing(path), atomic_open(path) as handle:
        yield handle


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """OSErrors of writing `path` (a full disk, no permission) as one-line RunErrors."""
    try:
        yield
    except OSError as err:
        raise RunError(f"cannot write {path}: {err.strerror or err}") from None


def check_suffix(path: Path, option: str, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output whose extension names a format the command does not write (`what`
    says what it writes and what to give), before any work is done: a file named .npz
    holding CSV text only fails later, in the next tool that reads it."""
    if path.suffix not in suffixes:
        raise UsageRefusal(f"{option} {path}: {what}")


def csv_only(path: Path, command: str) -> None:
    """`check_suffix` for a command that writes one CSV table (score, impute)."""
    example = path.with_suffix(".csv").name
    check_suffix(
        path, "-o", (".csv",), f"{command} writes a CSV table; name it .csv, e.g. {example}"
    )


def writable_output(
    path: Path,
    option: str,
    example: str,
    inputs: Mapping[str, Path | str | None] | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Refuse an output path that cannot become a file, that is one of the command's
    `inputs` (option -> file; writing it would replace what is being read), or that is a
    file of the run `run_dir` being read (`_run_file`: its lock, metrics, weights...),
    before any work is done. Any other file, one the user wrote there too, is replaced."""
    if path.is_dir():
        raise RunError(
            f"{option} {path} is a folder; give a file name inside it, e.g. {path / example}"
        )
    if path.exists() and not path.is_file():
        mode = path.stat().st_mode
        raise RunError(f"{option} {path} is {describe_mode(mode)}; give a regular file name")
    folder = path.parent
    if not folder.exists():
        raise RunError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise RunError(f"{option} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunError(f"{option} {path}: the folder {folder} is not writable")
    kind = _run_file(path, run_dir) if run_dir is not None else None
    if kind:
        raise RunError(
            f"{option} {path} is a file of the run being read ({run_dir}), {kind}: writing "
            f"it would replace the run's own record; give another output file, e.g. {example}"
        )
    for given, source in (inputs or {}).items():
        if source is not None and _same_file(path, Path(source)):
            raise RunError(
                f"{option} {path} is the file given as {given} ({source}): writing it would "
                "replace what is being read; give another output file"
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """The same existing file, whatever its names (a relative path, a symlink, a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one is missing: nothing to overwrite (a missing input is refused later)
        return False


def _run_file(path: Path, run_dir: Path) -> str | None:
    """What the existing file `path` is of the run in `run_dir`, whatever their names
    (relative, symlinked): its lock, a file of its project (as its lock lists them), or
    one its training writes; None for any other file (the user's, an earlier -o)."""
    # Imported here: only an existing file in a run folder needs them.
    from gencompile.compiler.project import STALE_FOLDER, TRAINED_OUTPUTS
    from gencompile.files import read_json
    from gencompile.lockfile import LOCK_NAME
    from gencompile.provenance import INIT_REPORT
    from gencompile.run_status import PRIOR_HISTORY

    if not path.exists() or not path.resolve().is_relative_to(run_dir.resolve()):
        return None
    relative = path.resolve().relative_to(run_dir.resolve()).as_posix()
    top = relative.split("/")[0]
    if relative == LOCK_NAME:
        return "its lock"
    project = read_json(run_dir / LOCK_NAME).get("files") or {}
    if relative in project or any(name.startswith(f"{top}/") for name in project):
        return "a file of its generated project"  # a folder of it too (its package, tests/)
    trained = (*TRAINED_OUTPUTS, PRIOR_HISTORY, INIT_REPORT)
    if top in trained or top.startswith(f"{STALE_FOLDER}-"):  # stale-*/: kept by --force
        return "one its training wrote"
    return None
