"""Writing a generated project: render every file, check it, write it, lock it."""

from __future__ import annotations

import itertools
import json
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TypedDict

from gencompile._version import __version__
from gencompile.compiler.emit import check_python, render
from gencompile.compiler.families import REGISTRY
from gencompile.compiler.family import Family
from gencompile.compiler.lower import lower
from gencompile.compiler.plan import LayerPlan, ProjectPlan
from gencompile.errors import RunError, SpecError
from gencompile.files import atomic_write_files, atomic_write_text, sha256_file
from gencompile.lock_format import (
    LOCK_CHECKSUM,
    LOCK_VERSION,
    PINNED,
    canonical_json,
    installed_versions,
    lock_checksum,
    sha256_text,
    training_record,
)
from gencompile.provenance import parent_link, pretrained_link
from gencompile.run_status import not_training
from gencompile.spec import LoadedSpec


class RenderContext(TypedDict):
    """What every template of a project reads."""

    plan: ProjectPlan[object]
    version: str
    spec_sha256: str
    requirements: list[str]
    parameter_words: str
    latent_pictures: tuple[str, ...]  # drawn for the report at the end of training


@dataclass(frozen=True)
class BuildResult:
    directory: Path
    plan: ProjectPlan[object]
    lock: dict[str, Any]


def requirements(versions: dict[str, str | None]) -> list[str]:
    pins = [f"gencompile=={__version__}"]
    pins += [f"{name}=={versions[name]}" for name in PINNED if versions.get(name)]
    return pins


def total_params(plan: ProjectPlan[object]) -> int:
    """Networks' weights; a model without networks (a mixture) counts its own parameters,
    and a family with weights outside its networks (a flow) states its total in extra."""
    stated = plan.extra.get("total_params")
    if stated:
        return stated
    if plan.networks:
        return sum(n.params for n in plan.networks)
    own: int = getattr(plan.model, "num_params", 0)  # a family plan's field, when it has one
    return own


def parameter_words(plan: ProjectPlan[object]) -> str:
    """The model's parameters as the model card and explain say them: the trained ones,
    and the EMA copy the model also holds and saves (what Keras' count_params() counts)."""
    total = total_params(plan)
    name, copy = plan.extra.get("ema_copy"), plan.ema_copy_params
    if not name:
        return f"{total:,}"
    untrained = plan.untrained_params
    held = f" and {untrained:,} not trained (frozen or state)" if untrained else ""
    return (
        f"{total - untrained:,} trained{held}, plus an EMA copy of the {name} ({copy:,}): "
        f"{total + copy:,} in the model"
    )


def render_project(
    loaded: LoadedSpec,
    plan: ProjectPlan[object],
    families: Mapping[str, Family[Any, Any]] = REGISTRY,
) -> dict[str, str]:
    """Relative path -> text of every generated file (the lock excepted)."""
    family = families[plan.family]
    own_templates = (family.template_dir,) if family.template_dir else ()
    context: RenderContext = {
        "plan": plan,
        "version": __version__,
        "spec_sha256": sha256_text(loaded.text),
        "requirements": requirements(installed_versions()),
        "parameter_words": parameter_words(plan),
        "latent_pictures": (
            family.capabilities.latent_pictures
            if plan.output.get("report", {}).get("latent_pictures", True)
            else ()
        ),
    }
    package = plan.package
    files = {
        f"{package}/__init__.py": render("project/__init__.py.j2", **context),
        f"{package}/model.py": render(family.template, own_templates, **context),
        f"{package}/train.py": render("project/train.py.j2", **context),
        "tests/test_model.py": render("project/test_model.py.j2", **context),
        "README.md": render("project/README.md.j2", **context),
        "pyproject.toml": render("project/pyproject.toml.j2", **context),
        "spec.yaml": loaded.text,
        # Data files a family generates beside its code (a text model's vocabulary.json).
        **{f"{package}/{name}": text for name, text in plan.extra.get("files", {}).items()},
    }
    for path, text in files.items():
        if path.endswith(".py"):
            check_python(text, path)
    return files


def make_lock(
    loaded: LoadedSpec, plan: ProjectPlan[object], files: dict[str, str]
) -> dict[str, Any]:
    resolved = plan.resolved_spec
    return {
        "lock_version": LOCK_VERSION,
        "name": plan.name,
        "family": plan.family,
        "seed": plan.seed,
        "spec_sha256": sha256_text(loaded.text),
        "spec_source": loaded.text,
        "resolved_spec": resolved,
        "resolved_spec_sha256": sha256_text(canonical_json(resolved)),
        "files": {path: sha256_text(text) for path, text in sorted(files.items())},
        "versions": installed_versions(),
        "platform": platform.platform(),
        "data_fingerprint": None,
        "data_statistics": None,
        # A fine-tuned run's parent, pinned by hashes (only then: other locks stay as they were).
        **({"parent": parent} if (parent := parent_link(plan.init_from)) else {}),
        # keras_application weights files, pinned like a parent (only when there are any).
        **({"pretrained": pinned} if (pinned := pretrained_link(plan.application_weights)) else {}),
    }


def custom_layers(plan: ProjectPlan[object]) -> list[LayerPlan]:
    """Every custom layer of a plan, wrapped ones included: each imports user code."""
    found = []
    for network in plan.networks:
        pending = list(network.layers)
        while pending:
            layer = pending.pop(0)
            found.append(layer)
            pending.extend(value for _, value in layer.args if isinstance(value, LayerPlan))
    return [layer for layer in found if layer.kind == "custom"]


def refuse_custom_code(loaded: LoadedSpec, plan: ProjectPlan[object]) -> None:
    """Refuse a spec whose generated code would import user code, before writing anything."""
    problems = [
        loaded.marks.problem(
            layer.source or ("model",),
            f"custom layer {layer.name} imports {_custom_ref(plan, layer)}: custom layers run "
            "code from outside the spec and are refused by default",
            "pass --allow-custom-code if you trust it",
        )
        for layer in custom_layers(plan)
    ]
    if plan.custom_imports and not problems:  # an import without its layer: refuse it too
        problems = [loaded.marks.problem(("model",), "the model imports custom code", None)]
    if problems:
        raise SpecError(problems)


def _custom_ref(plan: ProjectPlan[object], layer: LayerPlan) -> str:
    """`module:Class` of a custom layer, from the import its alias names."""
    refs = [f"{module}:{cls}" for module, cls, alias in plan.custom_imports if alias == layer.cls]
    return refs[0] if refs else layer.cls


def write_lock(directory: Path, lock: dict[str, Any]) -> dict[str, Any]:
    """Write `lock` with its checksum recomputed (any field may have changed); return it."""
    sealed = {**lock, LOCK_CHECKSUM: lock_checksum(lock)}
    atomic_write_text(
        directory / "spec.lock.json", json.dumps(sealed, indent=2, sort_keys=True) + "\n"
    )
    return sealed


def check_output_folder(directory: Path, plan: ProjectPlan[object], files: dict[str, str]) -> None:
    """Refuse to write over anything that gencompile did not write for this project.

    An empty or new folder takes the project. A folder holding an earlier build of the same
    project (its lock names it) is rebuilt, but only files that lock lists are replaced, and
    only as that build wrote them: a listed file whose bytes differ from the lock's hash was
    edited, and anything else there is the user's. Every other folder is refused (`--force`
    writes, moving the edited files aside).
    """
    if directory.exists() and not directory.is_dir():
        raise RunError(f"{directory} is a file, not a folder: give -o a folder to build into")
    if not directory.exists() or not any(directory.iterdir()):
        return
    try:
        previous = json.loads((directory / "spec.lock.json").read_text())
        ours = set(previous["files"]) if previous.get("name") == plan.name else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        ours = None
    if ours is None:
        raise RunError(
            f"{directory} is not empty and holds no earlier build of {plan.name}; building "
            "there could overwrite your files: choose an empty folder, or pass --force"
        )
    theirs = sorted(p for p in files if p not in ours and (directory / p).exists())
    if theirs:
        raise RunError(
            f"{directory} holds {', '.join(theirs)}, which the earlier build did not write; "
            "move them, choose an empty folder, or pass --force"
        )
    edited = edited_files(directory, files)
    if edited:
        names = ", ".join(str(directory / p) for p in edited)
        raise RunError(
            f"{names}: edited since the earlier build (spec.lock.json's hash differs), and "
            "rebuilding would overwrite the edits: move the edited files away, or pass "
            f"--force to move them aside into {directory / STALE_FOLDER}-<time>/"
        )


def edited_files(directory: Path, files: dict[str, str]) -> list[str]:
    """The files of `files` that an earlier build's lock lists and that were changed since:
    their bytes differ from the lock's hash, and from what this build writes (an edit the
    rebuild writes again, like a project's spec.yaml built from itself, loses nothing)."""
    previous = _earlier_lock(directory)
    hashes = previous.get("files") if previous else None
    if not isinstance(hashes, dict):
        return []
    edited = []
    for path, text in sorted(files.items()):
        target = directory / path
        if path not in hashes or not target.is_file():
            continue
        current = sha256_file(target)
        if current not in (hashes[path], sha256_text(text)):
            edited.append(path)
    return edited


# What training writes into a project or run folder beside the generated files: all of it
# belongs to the code it was trained with.
TRAINED_OUTPUTS = (
    "model.weights.h5",
    "model.keras",
    "saved_model",
    "checkpoints",
    "progress",
    "history.csv",
    "metrics.json",
    "samples.png",
    "samples.npz",
    "samples.txt",
    "curves.png",
    "latent",
    "tensorboard",
    "report.md",
    "report.html",
    "status.json",
)
# Pinned by the build for the training to come (`make_lock`): a parent's and pretrained
# application weights' hashes, as the training that followed read them.
STARTED_FROM = ("parent", "pretrained")
STALE_FOLDER = "stale"  # `stale-<UTC time>/`: where --force moves another spec's outputs


def stale_outputs(directory: Path, plan: ProjectPlan[object], files: dict[str, str]) -> list[str]:
    """What training wrote into `directory` for other code than this build's: another spec
    (its resolved spec differs), another project, or other generated code. An earlier
    build of the same spec keeps its outputs (none is stale)."""
    present = [name for name in TRAINED_OUTPUTS if (directory / name).exists()]
    if not present:
        return []
    previous = _earlier_lock(directory)
    return [] if previous and _built_alike(previous, plan, files) else present


def kept_training(
    directory: Path, plan: ProjectPlan[object], files: dict[str, str]
) -> dict[str, Any]:
    """What training recorded in the lock of an earlier build of the same spec whose trained
    outputs the rebuild keeps (data fingerprint, fitted preprocessing, ...), and the pins of
    what it started from (`STARTED_FROM`): the rebuilt lock must still describe those
    outputs, or `reproduce`, `evaluate` and `sample` lose it (and a parent changed since
    would be pinned as it is now)."""
    if not any((directory / name).exists() for name in TRAINED_OUTPUTS):
        return {}
    previous = _earlier_lock(directory)
    if not previous or not _built_alike(previous, plan, files):
        return {}
    pins = {key: previous[key] for key in STARTED_FROM if previous.get(key) is not None}
    return {**training_record(previous), **pins}


def _earlier_lock(directory: Path) -> dict[str, Any] | None:
    """The lock an earlier build left in `directory` (None: none, or unreadable)."""
    try:
        previous = json.loads((directory / "spec.lock.json").read_text())
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) else None


def _built_alike(
    previous: dict[str, Any], plan: ProjectPlan[object], files: dict[str, str]
) -> bool:
    """Whether an earlier build's lock is of the same project, resolved spec and code."""
    try:
        return bool(
            previous["name"] == plan.name
            and previous["resolved_spec_sha256"] == sha256_text(canonical_json(plan.resolved_spec))
            and {p: h for p, h in previous["files"].items() if p.endswith(".py")}
            == {p: sha256_text(t) for p, t in files.items() if p.endswith(".py")}
        )
    except (TypeError, KeyError, AttributeError):
        return False


def refuse_stale_outputs(directory: Path, stale: list[str]) -> NoReturn:
    """Refuse to rebuild a folder over what training wrote for another spec: its weights
    would no longer load into the rebuilt model, and its metrics would describe another."""
    raise RunError(
        f"{directory} holds what training wrote for another spec or code ({_names(stale)}), "
        "which the rebuilt project could not use: build into another folder with -o, or "
        f"pass --force to move them aside into {directory / STALE_FOLDER}-<time>/"
    )


def move_aside(
    directory: Path,
    stale: list[str],
    what: str = "what training wrote for the earlier spec",
    then: str = "train the rebuilt project anew",
) -> Path:
    """Move `stale` outputs (paths relative to `directory`) into a new
    `stale-<UTC time>[-n]/` folder of `directory`, saying so on stderr; return that folder."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        aside = directory / f"{STALE_FOLDER}-{stamp}{f'-{n}' if n else ''}"
        try:
            aside.mkdir()
            break
        except FileExistsError:
            continue
    for name in stale:
        (aside / name).parent.mkdir(parents=True, exist_ok=True)  # a generated file's package
        (directory / name).rename(aside / name)
    print(
        f"note: moved {what} ({_names(stale)}) aside into {aside}; {then}",
        file=sys.stderr,
        flush=True,
    )
    return aside


def _names(outputs: list[str]) -> str:
    """`model.weights.h5, checkpoints/, ...`: folders with a slash."""
    return ", ".join(f"{name}/" if "." not in name else name for name in outputs)


def build(
    loaded: LoadedSpec,
    out_dir: Path | str,
    allow_custom_code: bool = False,
    force: bool = False,
    families: Mapping[str, Family[Any, Any]] = REGISTRY,
) -> BuildResult:
    """Generate the project of `loaded` into `out_dir` (created if needed).

    Refuses a folder that holds anything but an earlier build of the same project, or
    one that holds what training wrote for another spec, unless `force` (which moves
    those outputs aside into `stale-<time>/`). A rebuild of the same spec keeps its trained
    outputs and what training recorded in the lock. `families` is the registry to look the
    spec's family up in.
    """
    plan = lower(loaded, families)
    if not allow_custom_code:
        refuse_custom_code(loaded, plan)
    files = render_project(loaded, plan, families)
    directory = Path(out_dir)
    # A run folder being trained is never rebuilt (--force included): the training would
    # go on writing weights and a lock for the code the build replaced.
    with not_training(directory, then=f"build into {directory} again"):
        return _write_project(loaded, plan, files, directory, force)


def _write_project(
    loaded: LoadedSpec,
    plan: ProjectPlan[object],
    files: dict[str, str],
    directory: Path,
    force: bool,
) -> BuildResult:
    """`build`'s writing, once no training holds `directory`."""
    if not force:
        check_output_folder(directory, plan, files)
    stale = stale_outputs(directory, plan, files) if directory.is_dir() else []
    if stale and not force:
        refuse_stale_outputs(directory, stale)
    if stale:
        move_aside(directory, stale)
    edited = edited_files(directory, files) if force and directory.is_dir() else []
    if edited:  # refused above without --force
        move_aside(directory, edited, "the generated files you edited", "compare them there")
    kept = kept_training(directory, plan, files) if directory.is_dir() else {}
    atomic_write_files(
        {directory / relative: text.encode("utf-8") for relative, text in files.items()}
    )
    lock = write_lock(directory, {**make_lock(loaded, plan, files), **kept})
    return BuildResult(directory, plan, lock)
