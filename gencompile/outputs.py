"""Output files the user names on the command line: checked before any work is done,
written under a temporary name and renamed into place, their errors one line each."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from gencompile.datafiles import describe_mode
from gencompile.errors import RunError
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


def writable_output(
    path: Path,
    option: str,
    example: str,
    inputs: Mapping[str, Path | str | None] | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Refuse an output path that cannot become a file, that is one of the command's
    `inputs` (option -> file; writing it would replace what is being read), or that is a
    file of the run `run_dir` being read (its lock, metrics, weights...), before any work
    is done."""
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
    if run_dir is not None and path.exists() and _inside(path, run_dir):
        raise RunError(
            f"{option} {path} is a file of the run being read ({run_dir}): writing it would "
            f"replace the run's own record; give another output file, e.g. {example}"
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


def _inside(path: Path, folder: Path) -> bool:
    """`path` is in `folder` or below it, whatever their names (relative, symlinked)."""
    return path.resolve().is_relative_to(folder.resolve())
