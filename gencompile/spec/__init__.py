"""The gencompile spec language: pydantic models, a located YAML loader and checks.

Imports no TensorFlow or Keras, so validating a spec is fast.
"""

from __future__ import annotations

import copy
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gencompile.errors import Problem, SpecError
from gencompile.spec.checks import (
    CHECKS,
    application_weights_files,
    check_init_from_files,
    opened_run_checks,
    run_checks,
)
from gencompile.spec.diagnostics import model_at, problems_from_validation
from gencompile.spec.loader import (
    Marks,
    PathKey,
    RawSpec,
    apply_override,
    display_name,
    is_outside,
    read_spec,
    read_spec_text,
)
from gencompile.spec.root import SPEC_VERSION, Spec
from gencompile.spec.sweep import sweep_problems

__all__ = [
    "SPEC_VERSION",
    "LoadedSpec",
    "Marks",
    "Spec",
    "check_trial",
    "load_spec",
    "load_spec_text",
    "validate_raw",
]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the marks that locate its values and its source text."""

    spec: Spec
    marks: Marks
    path: Path | None
    text: str
    opened: bool = False  # an existing run's locked spec: see validate_raw


def validate_raw(raw: RawSpec, opened: bool = False) -> LoadedSpec:
    """Validate merged spec data; raise one SpecError listing every problem. `opened`: the
    locked spec of an existing run, which need not meet the rules against what a new run
    would train or evaluate badly (`checks.TRAINING_RULES`, `EVALUATION_RULES`): it was
    written before a later rule existed, and it is opened as it trained."""
    try:
        spec = Spec.model_validate(raw.data)
    except ValidationError as err:
        raise SpecError(problems_from_validation(err, Spec, raw.data, raw.marks)) from None
    checks = opened_run_checks() if opened else CHECKS
    problems = run_checks(spec, raw.marks, checks) + check_file_paths(spec, raw)
    if raw.path is not None and not problems:  # a spec file about to be used, not a lock
        problems = [raw.marks.problem(*found) for found in check_init_from_files(spec)]
    if not problems and not opened:  # a sweep's ranges are checked on a sound base spec
        problems = sweep_problems(raw.data, raw.marks, spec.sweep, check_trial)
    if problems:
        raise SpecError(problems)
    return LoadedSpec(spec=spec, marks=raw.marks, path=raw.path, text=raw.text, opened=opened)


def check_trial(data: dict[str, Any], key: PathKey, value: Any) -> None:
    """Validate `data` with the field `key` set to `value` as `--set` sets it (a sweep's
    trial); raises SpecError."""
    apply_override(data, Marks(), key, value, default_mapping, variant_fields)
    validate_raw(RawSpec(data, Marks(), None, ""))


def _file_paths(spec: Spec) -> list[tuple[PathKey, str]]:
    """The files and folders a spec names (relative to the working directory)."""
    source = spec.data.source
    found: list[tuple[PathKey, str]] = [
        (("data", "source", key), getattr(source, key))
        for key in ("path", "dir", "files")
        if isinstance(getattr(source, key, None), str)
    ]
    if spec.evaluation.inception_weights is not None:
        found.append((("evaluation", "inception_weights"), spec.evaluation.inception_weights))
    init_from = getattr(spec.model, "init_from", None)  # a registered family may lack it
    if init_from is not None:
        found.append((("model", "init_from", init_from.key), init_from.path))
    found.extend(application_weights_files(spec))
    return found


def _shards(spec: Spec, raw: RawSpec) -> list[tuple[PathKey, str]]:
    """The files a tfrecord glob inside the spec's tree matches: a shard may be a link to
    elsewhere. A glob pointing outside is refused by itself, without being expanded."""
    source = spec.data.source
    if source.type != "tfrecord" or not raw.trusted:
        return []
    pattern = os.path.expanduser(source.files)
    if "\0" in pattern or is_outside(Path(pattern), raw.trusted):
        return []
    key = ("data", "source", "files")
    return [(key, name) for name in glob.glob(pattern, recursive=True)]


def _exists(key: PathKey, value: str, folder: Path | None = None) -> bool:
    """Whether `value` names something, read from the working directory or, given `folder`,
    from there. A tfrecord glob counts as found: it is never expanded here, where it could
    walk the whole disk (`/**/*`)."""
    if key[-1] == "files":
        return True
    path = Path(value).expanduser()
    return (path if folder is None else folder / path).exists()


def _beside_the_spec(key: PathKey, value: str, raw: RawSpec) -> Path | None:
    """The spec's folder, when `value` is missing from the working directory but names a
    file there: a path written relative to the spec (paths are read from the working
    directory, so that a lock reproduces from wherever it was made)."""
    if raw.path is None or Path(value).expanduser().is_absolute() or _exists(key, value):
        return None
    folder = raw.path.parent
    if not _exists(key, value, folder) or is_outside(folder / value, raw.trusted):
        return None  # a spec must not reach out of its tree that way either
    return folder


def check_file_paths(spec: Spec, raw: RawSpec) -> list[Problem]:
    """A spec file may name files only inside its own folder tree (symlinks followed): a
    spec from elsewhere must not read ~/.ssh or /etc. A path given with --set is the user's
    own choice and may point anywhere."""
    problems = []
    for key, value in _file_paths(spec) + _shards(spec, raw):
        if "\0" in value:  # no file name holds one, and a terminal would swallow it
            problems.append(raw.marks.problem(key, "a path cannot hold a NUL character"))
            continue
        folder = _beside_the_spec(key, value, raw)
        if folder is not None:
            shown = display_name(folder)
            problems.append(
                raw.marks.problem(
                    key,
                    f"{value} is not in the working directory but in the spec's folder, "
                    f"{shown}: paths are relative to the working directory",
                    f"write {display_name(folder / value)}, or run from {shown}/",
                )
            )
            continue
        if not raw.trusted or raw.marks.locate(key).file == "--set":
            continue
        if is_outside(Path(value).expanduser(), raw.trusted):  # as the runtime reads it
            problems.append(_outside(key, value, raw))
    return problems


def _outside(key: PathKey, value: str, raw: RawSpec) -> Problem:
    field = ".".join(str(part) for part in key)
    folders = " or ".join(display_name(folder) for folder in raw.trusted)
    message = (
        f"{value} is outside the spec's folder tree ({folders}; paths are relative to the "
        "working directory)"
    )
    if not _exists(key, value):  # a --set to a missing file would only fail again
        return raw.marks.problem(
            key,
            f"{message}, and there is no such file",
            f"check the path; a file from elsewhere is read when given on the command line: "
            f"--set {field}=PATH",
        )
    return raw.marks.problem(
        key,
        message,
        f"a file from elsewhere is read only when given on the command line: --set {field}={value}",
    )


def default_mapping(path: PathKey, data: dict[str, Any]) -> dict[str, Any]:
    """What the block at `path`, left out of `data`, holds by default, as spec data.

    An override into such a block starts from it: `--set training.optimizer.learning_rate=
    0.01` changes the default Adam's rate instead of creating an optimizer without a type.
    Only the default's own settings are written, so the rest stays a default.
    """
    if len(path) == 3 and path[:2] == ("training", "optimizers"):
        # A network's optimizer left out is training.optimizer: an override starts there.
        training = data.get("training")
        written = training.get("optimizer") if isinstance(training, dict) else None
        if isinstance(written, dict):
            return copy.deepcopy(written)
        return default_mapping(("training", "optimizer"), data)
    parent = model_at(Spec, path[:-1], data)
    key = path[-1]
    field = parent.model_fields.get(key) if parent is not None and isinstance(key, str) else None
    if field is None or field.is_required():
        return {}
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return default.model_dump(mode="json", exclude_unset=True)
    return {}


def variant_fields(path: PathKey, data: dict[str, Any]) -> set[str] | None:
    """The keys the variant of the mapping at `path` takes (its `type:`/`family:` picks
    it): what a switched variant keeps of the old one's fields. None when not known."""
    model = model_at(Spec, path, data)
    if model is None:
        return None
    return {name for name in model.model_fields} | {
        field.alias for field in model.model_fields.values() if field.alias
    }


def load_spec(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> LoadedSpec:
    """Read, merge (`extends:`, `--set`) and validate a spec file."""
    return validate_raw(
        read_spec(path, overrides, start_of=default_mapping, fields_of=variant_fields)
    )


def load_spec_text(text: str, file: str = "<spec>", opened: bool = False) -> LoadedSpec:
    return validate_raw(read_spec_text(text, file), opened)
