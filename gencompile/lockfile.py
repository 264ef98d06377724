"""spec.lock.json: read it, check that it and its run are untouched, rebuild from it.

The lock pins a run: the spec's source and its resolved form (every default filled), the
sha256 of every generated file, the seed, the data fingerprint and the versions it was made
with. `lock_sha256` covers every other field, so an edited lock is refused; it is a
checksum, not a signature (anyone can recompute it), so only open runs you trust.
`build_locked` regenerates exactly that project and refuses, unless drift is allowed,
when this machine's versions or data, or the weights its run started from, differ from
the lock's.

Reading a lock never imports what it names: its structure is validated first (a schema),
then its checksums, then whether its spec declares custom code that needs consent.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, Literal, ParamSpec, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from gencompile._version import __version__
from gencompile.data_paths import DATA_FILE_FIELDS, WORKING_DIRECTORY, data_file, trained_in
from gencompile.errors import RunError, SpecError, quoted
from gencompile.files import sha256_file
from gencompile.lock_format import (
    LOCK_CHECKSUM,
    LOCK_VERSION,
    canonical_json,
    installed_versions,
    lock_checksum,
    sha256_text,
)
from gencompile.provenance import parent_gone, parent_problem, pretrained_gone, pretrained_problem
from gencompile.spec import validate_raw
from gencompile.spec.base import ProjectName, python_name
from gencompile.spec.loader import Marks, RawSpec

if TYPE_CHECKING:  # reading and checking a lock needs no compiler; rebuilding does
    from gencompile.compiler.project import BuildResult

LOCK_NAME = "spec.lock.json"
MAX_LOCK_BYTES = 64 * 2**20  # a lock holds a spec and some hashes: far below this
CONSENT = "pass --allow-custom-code if you trust it"

P = ParamSpec("P")
T = TypeVar("T")
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _inside_project(value: str) -> str:
    """A generated file's path: relative, POSIX, and never leaving the project folder."""
    parts = PurePosixPath(value).parts
    if (
        not value
        or "\\" in value
        or "\0" in value
        or PurePosixPath(value).is_absolute()
        or ":" in (parts[0] if parts else "")
        or any(part in ("", ".", "..") for part in value.split("/"))
    ):
        raise ValueError(f"must be a relative path inside the project (got {value!r})")
    if value == LOCK_NAME:
        raise ValueError("the lock does not list itself")
    return value


ProjectFile = Annotated[str, AfterValidator(_inside_project)]


def _absolute(value: str) -> str:
    if not Path(value).is_absolute() or "\0" in value:
        raise ValueError(f"must be an absolute folder (got {value!r})")
    return value


class LockVersions(BaseModel):
    """What a lock was made with (None: not installed then). SciPy and scikit-learn are
    absent from locks written before they were recorded: those are not compared."""

    model_config = ConfigDict(extra="forbid", strict=True)

    python: str
    gencompile: str
    tensorflow: str | None
    keras: str | None
    numpy: str | None
    scipy: str | None = None
    scikit_learn: str | None = Field(None, alias="scikit-learn")


class LockRevision(BaseModel):
    """One continuation of a finished run (`gencompile train --resume RUN --epochs N`): the
    run had `epochs_before` epochs and was trained on to `epochs_after` in total."""

    model_config = ConfigDict(extra="forbid", strict=True)

    revision: Annotated[int, Field(ge=2)]  # the run as first trained is revision 1
    epochs_before: Annotated[int, Field(ge=1)]
    epochs_after: Annotated[int, Field(ge=2)]
    previous_lock_sha256: Sha256  # the lock it replaced
    continued_at: str  # UTC, ISO 8601


class LockModel(BaseModel):
    """The structure of a spec.lock.json that gencompile writes (types checked strictly)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    lock_version: Literal[2]
    name: ProjectName
    family: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    seed: Annotated[int, Field(ge=0, lt=2**31)]
    spec_sha256: Sha256
    spec_source: str
    resolved_spec: dict[str, Any]
    resolved_spec_sha256: Sha256
    files: dict[ProjectFile, Sha256]
    versions: LockVersions
    platform: str
    data_fingerprint: Sha256 | None
    data_statistics: dict[str, Any] | None = None  # the fitted preprocessing, after training
    # model.init_from's run or weights file and their sha256 (gencompile.provenance)
    parent: dict[str, str | None] | None = None
    # keras_application layers' weights files and their sha256, by `network.layer`
    pretrained: dict[str, dict[str, str | None]] | None = None
    # `gencompile train --workers N` trained it: `reproduce` starts as many workers, whose
    # summation order (and so the weights, bit for bit) one process would not repeat.
    workers: Annotated[int, Field(ge=1)] | None = None
    # Continuations of the run, oldest first (absent: trained once, to its epochs).
    revisions: list[LockRevision] | None = None
    # The absolute folder the run was trained from, which its relative data paths were read
    # against (`data_paths.data_file`); absent in older locks (read from the current one).
    working_directory: Annotated[str, AfterValidator(_absolute)] | None = None
    lock_sha256: Sha256


SPEC_SUFFIXES = (".yaml", ".yml")


def read_lock(path: Path | str, locked: bool = False) -> dict[str, Any]:
    """A lock file (or a run/project folder holding one), checked for damage and hand edits.

    `locked`: the path was given to `build --locked`, which wants a lock file or a run
    (its refusal of a spec says so); otherwise a command that wants a run or project.
    """
    given = Path(path)
    if not given.exists():
        raise RunError(f"{given} does not exist")
    if given.is_file() and given.suffix.lower() in SPEC_SUFFIXES:
        raise RunError(spec_given(given, locked))
    if given.is_file() and not locked:  # a command that wants a run, given a file
        folder = f" ({given.parent})" if given.name == LOCK_NAME else ""
        raise RunError(
            f"{given} is a file, not a gencompile run or project folder: give the run's "
            f"folder{folder}"
        )
    path = given / LOCK_NAME if given.is_dir() else given
    if not path.is_file():
        raise RunError(f"{given} is not a gencompile run or project (no {LOCK_NAME})")
    try:
        lock = _parse(path)
    except RunError as error:
        if path is given:  # a file given for a run: say what is wanted, not only the parse
            reason = str(error).removeprefix(f"{path} ")  # "is unreadable or corrupt: ..."
            raise RunError(
                f"{given} is not a gencompile run or project folder, and not a lock file: it "
                f"{reason}; give a run's folder or its {LOCK_NAME}"
            ) from None
        raise RunError(  # nothing else records what the run was: no rebuilding it
            f"{error}: restore it from a copy, or train the spec again"
        ) from None
    _check_version(path, lock)
    _check_structure(path, lock)
    _check_checksums(path, lock)
    _check_consistency(path, lock)
    return lock


def spec_given(given: Path, locked: bool) -> str:
    """What to do with a spec file given where a run, project or lock is wanted."""
    if locked:
        return (
            f"{given} is a spec, but --locked wants a lock file ({LOCK_NAME}) or a run "
            f"holding one: build the spec itself with `gencompile build {quoted(given)}`"
        )
    return (
        f"{given} is a spec, not a run or project: train it with `gencompile train {quoted(given)}`"
    )


def _parse(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_LOCK_BYTES:
            raise RunError(f"{path} is too large to be a lock ({path.stat().st_size} bytes)")
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise RunError(f"{path} is unreadable or corrupt: {err}") from None
    if not isinstance(lock, dict):
        kind = type(lock).__name__
        raise RunError(f"{path} holds a {kind}, not an object: it was not written by gencompile")
    return lock


def _check_version(path: Path, lock: dict[str, Any]) -> None:
    """Old locks get advice, not a list of fields they lack."""
    version = lock.get("lock_version")
    if version == LOCK_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < LOCK_VERSION:
        raise RunError(
            f"{path} is a lock_version {version} lock, written by an older gencompile whose "
            "checksum did not cover every field; rebuild the project (gencompile build) or "
            "retrain it (gencompile train) from its spec.yaml to get a current lock"
        )
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_VERSION:
        raise RunError(
            f"{path} is a lock_version {version} lock, newer than this gencompile reads "
            f"({LOCK_VERSION}); upgrade gencompile"
        )
    raise RunError(
        f"{path} has no valid lock_version (got {version!r}): it was not written by gencompile"
    )


def _check_structure(path: Path, lock: dict[str, Any]) -> None:
    try:
        LockModel.model_validate(lock)
    except ValidationError as err:
        problems = "; ".join(
            f"{_field(error['loc'])}: {_message(error)}" for error in err.errors()[:5]
        )
        raise RunError(f"{path} is malformed: {problems}") from None


def _field(loc: tuple[Any, ...]) -> str:
    """`files['../x']` from pydantic's ('files', '../x', '[key]')."""
    text = str(loc[0]) if loc else "<root>"
    for part in loc[1:]:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else f"[{part!r}]"
    return text


def _message(error: dict[str, Any]) -> str:
    """pydantic's message in the lock's terms: no class names, the value shown once."""
    message = str(error["msg"]).removeprefix("Value error, ").split(" or instance of ")[0]
    if error["type"] in ("missing", "extra_forbidden"):
        return message.lower()
    if error["type"] == "value_error":  # our validators quote the value themselves
        return message
    return f"{message} (got {error['input']!r:.60})"


def _check_checksums(path: Path, lock: dict[str, Any]) -> None:
    """Name the most specific checksum that fails: resolved spec, spec source, whole lock."""
    if sha256_text(canonical_json(lock["resolved_spec"])) != lock["resolved_spec_sha256"]:
        raise RunError(
            f"{path} was edited by hand: its resolved_spec no longer matches "
            "resolved_spec_sha256; rebuild the project from its spec instead"
        )
    if sha256_text(lock["spec_source"]) != lock["spec_sha256"]:
        raise RunError(
            f"{path} was edited by hand: its spec_source no longer matches spec_sha256; "
            "rebuild the project from its spec instead"
        )
    if lock_checksum(lock) != lock[LOCK_CHECKSUM]:
        raise RunError(
            f"{path} was edited by hand: its fields no longer match {LOCK_CHECKSUM}, the "
            "checksum of every field; rebuild the project from its spec instead"
        )


def _check_consistency(path: Path, lock: dict[str, Any]) -> None:
    """The resolved spec is a spec, the summary fields agree with it, and the files that
    are imported are listed (so they are verified first)."""
    resolved = lock["resolved_spec"]
    try:
        spec = validate_raw(RawSpec(resolved, Marks(), None, ""), opened=True).spec
    except SpecError as error:
        raise RunError(
            f"{path} is malformed: its resolved_spec is not a valid spec for gencompile "
            f"{__version__} ({error.problems[0]}); it was written by gencompile "
            f"{lock['versions']['gencompile']}"
        ) from None
    pairs = {"name": spec.name, "seed": spec.seed, "family": spec.model.family}
    for key, value in pairs.items():
        if lock[key] != value:
            raise RunError(
                f"{path} is inconsistent: {key} is {lock[key]!r} but its resolved_spec says "
                f"{value!r}; it was not written by gencompile"
            )
    _check_revisions(path, lock.get("revisions") or [], spec.training.epochs)
    package = python_name(lock["name"])
    needed = [f"{package}/{name}.py" for name in ("__init__", "model", "train")]
    unlisted = [name for name in needed if name not in lock["files"]]
    if unlisted:
        raise RunError(
            f"{path} does not list {', '.join(unlisted)} among its files, so it cannot be "
            "verified before it is imported; it was not written by gencompile"
        )


def _check_revisions(path: Path, revisions: list[dict[str, Any]], epochs: int) -> None:
    """Revisions number 2, 3, ... and chain: each goes on from where the one before ended,
    to more epochs, and the last ends at the resolved spec's epochs."""
    ended = None
    for number, revision in enumerate(revisions, start=2):
        before, after = revision["epochs_before"], revision["epochs_after"]
        if (
            revision["revision"] != number
            or after <= before
            or (ended is not None and before != ended)
        ):
            raise RunError(
                f"{path} is inconsistent: revision {revision['revision']} (epochs {before} "
                f"-> {after}) does not follow the one before; it was not written by gencompile"
            )
        ended = after
    if ended is not None and ended != epochs:
        raise RunError(
            f"{path} is inconsistent: its last revision ends at {ended} epochs but its "
            f"resolved_spec trains {epochs}; it was not written by gencompile"
        )


def where_trained(
    command: Callable[Concatenate[Path | str, P], T],
) -> Callable[Concatenate[Path | str, P], T]:
    """`command(run_dir, ...)` reading the run's relative data paths where it was trained
    (`trained_in` its lock), however many times it lowers its spec; a lock that does not
    read is left for the command to refuse."""

    def run(run_dir: Path | str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            lock: dict[str, Any] | None = read_lock(run_dir)
        except RunError:
            lock = None
        with trained_in(lock):
            return command(run_dir, *args, **kwargs)

    functools.update_wrapper(run, command)  # its name and docstring
    return run


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


def custom_code(resolved: Any, path: str = "") -> list[str]:
    """'model.encoder.layers[1] imports mypkg.layers:Scale' for each custom layer of a
    resolved spec. A plain walk of the data, so nothing is lowered or imported; anything
    shaped like a custom layer counts (refusing too much is the safe side)."""
    found: list[str] = []
    if isinstance(resolved, dict):
        if resolved.get("type") == "custom":
            name = f" ({resolved['name']})" if isinstance(resolved.get("name"), str) else ""
            found.append(f"{path or '<root>'}{name} imports {resolved.get('ref')!s}")
        for key, value in resolved.items():
            found += custom_code(value, f"{path}.{key}" if path else str(key))
    elif isinstance(resolved, list):
        for i, value in enumerate(resolved):
            found += custom_code(value, f"{path}[{i}]")
    return found


def refuse_custom_code(where: Path | str, lock: dict[str, Any], allow: bool) -> None:
    """Refuse, before anything is imported, a lock whose generated code imports user code."""
    layers = custom_code(lock["resolved_spec"])
    if layers and not allow:
        raise RunError(
            f"{where} runs custom code: the custom layer {'; '.join(layers)}; custom layers "
            f"run code from outside the spec and are refused by default ({CONSENT})"
        )


def version_drift(lock: dict[str, Any]) -> list[str]:
    """How this machine's versions differ from the lock's (empty: none). Only what the lock
    records is compared: an older lock without SciPy's or scikit-learn's is not drift."""
    installed = installed_versions()
    return [
        f"{name} {locked} in the lock, {installed.get(name)} installed"
        for name, locked in sorted(lock["versions"].items())
        if installed.get(name) != locked
    ]


def data_drift(
    lock: dict[str, Any], recorded: str | None = None, whose: str = "the lock's"
) -> list[str]:
    """Whether the data as loaded now has the lock's fingerprint (or `recorded`, `whose`
    it is: another record of it), loading the data; a change names the files read."""
    recorded = recorded or lock.get("data_fingerprint")
    if recorded is None:
        return []
    from gencompile.runtime.data import load_data  # TensorFlow: only when data is checked
    from gencompile.runtime.repro import set_seed

    set_seed(lock["seed"])
    config = _data_config(lock)
    current = load_data(config, seed=lock["seed"]).fingerprint
    if current == recorded:
        return []
    return [
        f"the data ({data_read(config['source'], lock)}) changed since the run: its "
        f"fingerprint is {current[:16]}, {whose} {recorded[:16]}"
    ]


def data_read(source: dict[str, Any], lock: dict[str, Any]) -> str:
    """'data.source.path = d.csv, read from /abs/d.csv' (each file field), or the source's
    type and name for data that is no file (a built-in data set)."""
    files = [
        f"data.source.{key} = {value}, read from "
        f"{os.path.abspath(data_file(value, key, lock.get(WORKING_DIRECTORY)))}"
        for key, value in source.items()
        if key in DATA_FILE_FIELDS and isinstance(value, str)
    ]
    return "; ".join(files) or f"{source.get('type')} {source.get('name', '')}".strip()


def _data_config(lock: dict[str, Any]) -> dict[str, Any]:
    """The runtime data config of a lock's resolved spec, as the compiler lowers it, with
    the folder its run was trained in (`runtime.data.located` reads its files there)."""
    from gencompile.compiler.lower import lower

    loaded = validate_raw(RawSpec(lock["resolved_spec"], Marks(), None, ""), opened=True)
    with trained_in(lock):
        config = lower(loaded).data
    if lock.get(WORKING_DIRECTORY):
        config = {**config, WORKING_DIRECTORY: lock[WORKING_DIRECTORY]}
    return config


def started_from_drift(lock: dict[str, Any]) -> list[str]:
    """How the weights the run started from (a fine-tuned run's parent, keras_application
    weights files) differ from the lock's pins, as its training reads them now (relative
    paths where the run was trained first). Gone ones are no drift here: a build needs
    none, and training says what is missing (`reproduce` refuses them first)."""
    found = []
    if parent_gone(lock) is None and (problem := parent_problem(lock)):
        found.append(problem)
    if pretrained_gone(lock) is None and (problem := pretrained_problem(lock)):
        found.append(problem)
    return found


def drift_refusal(
    versions: list[str], data: list[str], anyway: str | None, started: list[str] | None = None
) -> str:
    """Why a lock is not rebuilt, re-run or resumed here, each cause with its own remedy.
    `anyway`: what --allow-drift would do, in the caller's words; None: it does not apply
    (a continuation to more epochs). `started`: `started_from_drift`."""
    allow = anyway is not None
    causes = []
    if data:
        now = ", or pass --allow-drift to run on the data as it is now" if allow else ""
        causes.append(f"{'; '.join(data)}; restore it{now}")
    if started:
        now = ", or pass --allow-drift to start from them as they are now" if allow else ""
        causes.append(f"{'; '.join(started)}; restore them{now}")
    if versions:
        drift = f", or pass --allow-drift {anyway}" if allow else ""
        causes.append(
            f"this machine differs from the lock: {'; '.join(versions)}; install the locked "
            f"versions{drift}"
        )
    return ". ".join(
        cause[:1].upper() + cause[1:] if i else cause for i, cause in enumerate(causes)
    )


def build_locked(
    lock_path: Path | str,
    out_dir: Path | str,
    allow_drift: bool = False,
    allow_custom_code: bool = False,
    force: bool = False,
    anyway: str = "to build anyway",
) -> BuildResult:
    """Regenerate exactly the project a lock pins, into `out_dir`.

    A lock whose spec has custom layers needs `allow_custom_code`, as its spec would.
    `anyway`: what --allow-drift would do, in the caller's words.
    """
    from gencompile.compiler.project import STARTED_FROM, BuildResult, build, write_lock

    lock = read_lock(lock_path, locked=True)
    refuse_custom_code(lock_path, lock, allow_custom_code)
    versions, data, started = version_drift(lock), data_drift(lock), started_from_drift(lock)
    drift = versions + data + started
    if drift and not allow_drift:
        raise RunError(drift_refusal(versions, data, anyway, started))
    for difference in drift:
        warnings.warn(f"building despite drift: {difference}", stacklevel=2)
    raw = RawSpec(lock["resolved_spec"], Marks(), None, lock["spec_source"])
    loaded = validate_raw(raw, opened=True)  # the run's code, as it was built
    with trained_in(lock):  # its data's shape, read where the run read it
        result = build(loaded, out_dir, allow_custom_code=allow_custom_code, force=force)
    differs = sorted(
        path for path, sha in result.lock["files"].items() if lock["files"].get(path) != sha
    )
    if differs and not allow_drift:
        raise RunError(
            f"the rebuilt {', '.join(differs)} differ from the lock's: this gencompile "
            "generates other code; install the locked gencompile or pass --allow-drift"
        )
    # Without drift the project is the locked one: keep its lock (data included).
    kept = (
        lock
        if not (drift or differs)
        else {
            **result.lock,
            "data_fingerprint": None,
            "data_statistics": None,
            # where its relative data paths are still read first
            **{k: lock[k] for k in (WORKING_DIRECTORY,) if lock.get(k)},
            # what its training starts from: the build pinned it as it is now, which only
            # a change allowed above may replace (one not found from here keeps its pin)
            **({} if started else {k: lock[k] for k in STARTED_FROM if k in lock}),
        }
    )
    kept = write_lock(Path(out_dir), kept)
    return BuildResult(result.directory, result.plan, kept)
