"""spec.lock.json: read it, check that it and its run are untouched, rebuild from it.

The lock pins a run: the spec's source and its resolved form (every default filled), the
sha256 of every generated file, the seed, the data fingerprint and the versions it was made
with. `build_locked` regenerates exactly that project and refuses, unless drift is allowed,
when this machine's versions or data differ from the lock's.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from gencompile.compiler.project import (
    BuildResult,
    build,
    canonical_json,
    installed_versions,
    sha256_text,
    write_lock,
)
from gencompile.errors import RunError
from gencompile.files import sha256_file
from gencompile.spec import validate_raw
from gencompile.spec.loader import Marks, RawSpec

LOCK_NAME = "spec.lock.json"
REQUIRED = ("name", "family", "seed", "resolved_spec", "resolved_spec_sha256", "files", "versions")


def read_lock(path: Path | str) -> dict[str, Any]:
    """A lock file (or a run/project folder holding one), checked for hand edits."""
    given = Path(path)
    path = given / LOCK_NAME if given.is_dir() else given
    if not path.is_file():
        raise RunError(f"{given} is not a gencompile run or project (no {LOCK_NAME})")
    try:
        lock = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path} is unreadable or corrupt: {err}") from None
    missing = [key for key in REQUIRED if not isinstance(lock, dict) or key not in lock]
    if missing:
        raise RunError(f"{path} lacks {', '.join(missing)}; it was not written by gencompile")
    if sha256_text(canonical_json(lock["resolved_spec"])) != lock["resolved_spec_sha256"]:
        raise RunError(
            f"{path} was edited by hand: its resolved_spec no longer matches "
            "resolved_spec_sha256; rebuild the project from its spec instead"
        )
    return lock


def verify_files(directory: Path, lock: dict[str, Any]) -> None:
    """Refuse a project whose generated files differ from the ones its lock recorded."""
    changed = []
    for relative, recorded in sorted(lock["files"].items()):
        path = directory / relative
        if not path.is_file():
            changed.append(f"{relative} is missing")
        elif sha256_file(path) != recorded:
            changed.append(f"{relative} was changed after it was generated")
    if changed:
        raise RunError(
            f"{directory} does not match its {LOCK_NAME}: {'; '.join(changed)}. "
            "Rebuild it with `gencompile build --locked` to get the locked files back"
        )


def version_drift(lock: dict[str, Any]) -> list[str]:
    """How this machine's versions differ from the lock's (empty: none)."""
    installed = installed_versions()
    return [
        f"{name} {locked} in the lock, {installed.get(name)} installed"
        for name, locked in sorted(lock["versions"].items())
        if installed.get(name) != locked
    ]


def data_drift(lock: dict[str, Any]) -> list[str]:
    """Whether the data as loaded now has the lock's fingerprint (loads the data)."""
    recorded = lock.get("data_fingerprint")
    if recorded is None:
        return []
    from gencompile.runtime.data import load_data  # TensorFlow: only when data is checked
    from gencompile.runtime.repro import set_seed

    resolved = lock["resolved_spec"]
    set_seed(lock["seed"])
    config = _data_config(resolved)
    current = load_data(config, seed=lock["seed"]).fingerprint
    if current == recorded:
        return []
    return [f"the data's fingerprint is {current[:16]}..., the lock's {recorded[:16]}..."]


def _data_config(resolved: dict[str, Any]) -> dict[str, Any]:
    """The runtime data config of a resolved spec, as the compiler lowers it."""
    from gencompile.compiler.lower import lower

    loaded = validate_raw(RawSpec(resolved, Marks(), None, ""))
    return lower(loaded).data


def build_locked(
    lock_path: Path | str, out_dir: Path | str, allow_drift: bool = False, force: bool = False
) -> BuildResult:
    """Regenerate exactly the project a lock pins, into `out_dir`."""
    lock = read_lock(lock_path)
    if "spec_source" not in lock:
        raise RunError(f"{lock_path} predates locked rebuilds (no spec_source); rebuild it")
    drift = version_drift(lock) + data_drift(lock)
    if drift and not allow_drift:
        raise RunError(
            "this machine differs from the lock: "
            + "; ".join(drift)
            + ". Install the locked versions, or pass --allow-drift to build anyway"
        )
    for difference in drift:
        warnings.warn(f"building despite drift: {difference}", stacklevel=2)
    loaded = validate_raw(RawSpec(lock["resolved_spec"], Marks(), None, lock["spec_source"]))
    result = build(loaded, out_dir, allow_custom_code=True, force=force)  # code was accepted
    differs = sorted(
        path for path, sha in result.lock["files"].items() if lock["files"].get(path) != sha
    )
    if differs and not allow_drift:
        raise RunError(
            f"the rebuilt {', '.join(differs)} differ from the lock's: this gencompile "
            "generates other code; install the locked gencompile or pass --allow-drift"
        )
    # Without drift the project is the locked one: keep its lock verbatim (data included).
    kept = lock if not (drift or differs) else dict(result.lock, data_fingerprint=None)
    write_lock(Path(out_dir), kept)
    return BuildResult(result.directory, result.plan, kept)
