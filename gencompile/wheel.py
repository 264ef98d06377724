"""`gencompile wheel`: this gencompile as a wheel, so a generated project installs offline.

A generated project depends on `gencompile==X`, and gencompile is on no package index. Its
own wheel beside the project lets pip resolve that pin without network:
`pip install --no-index --no-build-isolation --find-links wheels/ -e .`

The wheel is packed from the running package itself rather than built by its build backend
(hatchling): that works offline, needs no build tool in the environment, and works as well
when gencompile was itself installed from a wheel (no source tree, no pyproject.toml). It
holds what hatchling's wheel holds: the package, `templates/` and `specs/` inside it, the
metadata and the `gencompile` command.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import zipfile
from importlib import metadata
from pathlib import Path

import gencompile
from gencompile._version import __version__
from gencompile.errors import RunError
from gencompile.files import atomic_write_bytes

TAG = "py3-none-any"
DIST_INFO = f"gencompile-{__version__}.dist-info"
ENTRY_POINTS = "[console_scripts]\ngencompile = gencompile.cli:main\n"


def build_wheel(out_dir: Path | str) -> Path:
    """Write `gencompile-<version>-py3-none-any.whl` into `out_dir` (created); return it."""
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise RunError(f"{directory} is a file, not a folder: give -o a folder for the wheel")
    files = package_files()
    files |= {
        f"{DIST_INFO}/METADATA": _metadata().encode(),
        f"{DIST_INFO}/WHEEL": _wheel_file().encode(),
        f"{DIST_INFO}/entry_points.txt": ENTRY_POINTS.encode(),
    }
    path = directory / f"gencompile-{__version__}-{TAG}.whl"
    atomic_write_bytes(path, _zipped(files))
    return path


def package_files() -> dict[str, bytes]:
    """Path in the wheel -> bytes: gencompile's modules, its templates and example specs."""
    package = Path(gencompile.__file__).parent
    files = {}
    # The links to templates/ and specs/ are followed, as hatchling does.
    for folder, _, names in os.walk(package, followlinks=True):
        if "__pycache__" in Path(folder).parts:
            continue
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix != ".pyc":
                files[f"gencompile/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    return dict(sorted(files.items()))


def _metadata() -> str:
    lines = [
        "Metadata-Version: 2.1",
        "Name: gencompile",
        f"Version: {__version__}",
        "Requires-Python: >=3.10",
    ]
    return "\n".join([*lines, *(f"Requires-Dist: {r}" for r in requirements())]) + "\n"


def requirements() -> list[str]:
    """gencompile's runtime dependencies, as its installed metadata declares them."""
    try:
        installed = metadata.version("gencompile")
        declared = metadata.requires("gencompile") or []
    except metadata.PackageNotFoundError:
        installed, declared = None, []
    if installed != __version__:  # a source tree never installed, or another one's metadata
        raise RunError(
            f"gencompile {__version__} runs here, but the installed metadata is of "
            f"{installed or 'no gencompile'}: install this one with `pip install -e .` first"
        )
    return [r for r in declared if not re.search(r"extra\s*==", r)]


def _wheel_file() -> str:
    return (
        f"Wheel-Version: 1.0\nGenerator: gencompile {__version__}\n"
        f"Root-Is-Purelib: true\nTag: {TAG}\n"
    )


def _zipped(files: dict[str, bytes]) -> bytes:
    """The wheel's bytes: `files` and a RECORD of their sha256 and sizes."""
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    record.append(f"{DIST_INFO}/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in sorted(files.items()):
            wheel.writestr(_entry(name), data)
        wheel.writestr(_entry(f"{DIST_INFO}/RECORD"), "\n".join(record) + "\n")
    return buffer.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    """A fixed date and mode: the same gencompile packs to the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
