"""A run's generated package, imported safely: only from a verified run, only the lock's own
package, compiled from its verified source, never shadowing a module something else imported.

TensorFlow is imported only when generated code is, and generated code only from a verified
run; a run whose spec has custom layers (user code) is refused unless the caller passes
`allow_custom_code=True` (`--allow-custom-code`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from gencompile.data_paths import WORKING_DIRECTORY, read_where_trained_in
from gencompile.errors import RunError, quoted
from gencompile.files import read_json
from gencompile.lockfile import read_lock, refuse_custom_code, verify_files
from gencompile.run_status import (
    STATUS_NAME,
    epochs_phrase,
    finish_without_training,
    read_status,
    trained_to_the_end,
)
from gencompile.spec.base import python_name


def verified_lock(run_dir: Path, allow_custom_code: bool = False) -> dict[str, Any]:
    """The lock of a run whose lock and generated files are as gencompile wrote them, and
    whose code imports no user code unless `allow_custom_code`."""
    lock = read_lock(run_dir)
    verify_files(Path(run_dir), lock)
    refuse_custom_code(run_dir, lock, allow_custom_code)
    return lock


# Generated packages this process imported (name -> package module): a fresh import
# replaces only these, never a module of the same name that something else imported.
_GENERATED: dict[str, ModuleType] = {}


class _SourceOnly(importlib.machinery.SourceFileLoader):
    """Compiles a module from its source every time, never from a .pyc beside it: a .pyc is
    trusted on the source's mtime and size alone, so a stale or planted one would run code
    other than the verified source (and none is written into the run folder)."""

    def get_code(self, fullname: str) -> Any:
        return self.source_to_code(self.get_data(self.path), self.path)


class _GeneratedFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of generated packages in their project folder alone."""

    def __init__(self) -> None:
        self.roots: dict[str, Path] = {}  # package -> its folder in the run being imported

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, rest = fullname.partition(".")
        root = self.roots.get(package)
        if root is None or "." in rest:  # not ours, or deeper than a generated package goes
            return None
        source = root / f"{rest}.py" if rest else root / "__init__.py"
        if not source.is_file():
            return None
        where = {} if rest else {"submodule_search_locations": [str(root)]}
        loader = _SourceOnly(fullname, str(source))
        return importlib.util.spec_from_file_location(fullname, source, loader=loader, **where)


_FINDER = _GeneratedFinder()


def import_generated(
    run_dir: Path | str, package: str, module: str = "train", allow_custom_code: bool = False
) -> ModuleType:
    """Import `<package>.<module>` from a verified generated project, fresh each time.

    Only the lock's own package is imported, from the project's folder: the folder is not
    put on sys.path, so no other file in it can stand in for an installed module.
    """
    run_dir = Path(run_dir).resolve()
    lock = verified_lock(run_dir, allow_custom_code)
    expected = python_name(lock["name"])
    if package != expected:
        raise RunError(f"{run_dir} holds the generated package {expected}, not {package!r}")
    if f"{package}/{module}.py" not in lock["files"]:
        raise RunError(f"{run_dir} has no generated module {package}.{module}")
    root = run_dir / package
    _release(package, root)
    _FINDER.roots[package] = root
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    try:
        _GENERATED[package] = importlib.import_module(package)
        imported = importlib.import_module(f"{package}.{module}")
        if lock.get(WORKING_DIRECTORY):
            _read_where_trained(imported, lock[WORKING_DIRECTORY])
        return imported
    except ImportError as err:  # e.g. a custom layer's module that is not installed
        _release(package, root)
        raise RunError(f"importing {package}.{module} from {run_dir} failed: {err}") from err
    except BaseException:
        _release(package, root)
        raise


def _read_where_trained(module: ModuleType, trained: str) -> None:
    """The paths of a run's generated train module read where the run was trained first
    (`read_where_trained_in`), so that the run is used (resumed, reproduced) from any
    folder, as `reproduce` checks them."""
    if isinstance(getattr(module, "DATA", None), dict):
        read_where_trained_in(
            trained,
            module.DATA,
            getattr(module, "INIT_FROM", None),
            getattr(module, "APPLICATION_WEIGHTS", None),
        )


def _release(package: str, root: Path) -> None:
    """Forget the generated `package` this process imported, so the next import is fresh;
    refuse to shadow a module of that name that gencompile did not import."""
    current, ours = sys.modules.get(package), _GENERATED.get(package)
    if current is not None and current is not ours:
        raise RunError(
            f"a module named {package} is already imported from "
            f"{getattr(current, '__file__', None) or 'elsewhere'}; gencompile will not "
            "replace it with generated code"
        )
    _FINDER.roots.pop(package, None)  # so that find_spec sees what else is installed
    if current is None:
        installed = importlib.util.find_spec(package)  # top-level: finds, never imports
        origin = installed.origin if installed else None
        # A bare folder of that name (a namespace package, no origin) holds no code.
        if origin not in (None, "namespace") and not _inside(origin, root):
            raise RunError(
                f"the generated package {package} would shadow the installed module "
                f"{package} ({origin}); rename the spec"
            )
    _GENERATED.pop(package, None)
    if ours is not None:
        ours_root = Path(ours.__spec__.origin).parent if ours.__spec__ else root
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            if _inside(getattr(sys.modules[name].__spec__, "origin", None), ours_root):
                del sys.modules[name]


def forget_generated(package: str, folder: Path) -> None:
    """Forget the generated `package` if this process imported it from `folder`, a
    project about to be removed (a finished continuation's pending project)."""
    ours = _GENERATED.get(package)
    origin = getattr(getattr(ours, "__spec__", None), "origin", None)
    if ours is not None and sys.modules.get(package) is ours and _inside(origin, folder):
        _release(package, Path(folder) / package)


def _inside(origin: str | None, root: Path) -> bool:
    return origin is not None and Path(origin).resolve().is_relative_to(root.resolve())


def load_trained_model(
    run_dir: Path | str, check_weights: bool = True, allow_custom_code: bool = False
) -> tuple[Any, ModuleType]:
    """The trained model of a verified run and its generated train module.

    With `check_weights`, weights that differ from those recorded when training finished
    (a changed or corrupt model.weights.h5) are refused.
    """
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)
    refuse_unfinished(run_dir)
    module = import_generated(
        run_dir, python_name(lock["name"]), allow_custom_code=allow_custom_code
    )
    from gencompile.runtime.repro import weights_sha256
    from gencompile.runtime.training import OtherArchitecture, load_weights, set_precision

    set_precision(module.TRAINING)  # compute as training did (mixed precision or not)
    model = module.build_model()
    try:
        load_weights(model, run_dir)
    except OtherArchitecture:  # its checkpoints are of that other model too
        raise
    except RunError as error:  # missing or unreadable: maybe a checkpoint has them
        raise RunError(f"{error}{restore_advice(run_dir, lock)}") from error.__cause__
    recorded = read_record(run_dir).get("weights_sha256")
    if check_weights and recorded is not None and weights_sha256(model) != recorded:
        raise RunError(
            f"{run_dir / 'model.weights.h5'} holds other weights than training recorded "
            f"(changed or corrupt){restore_advice(run_dir, lock)}; `gencompile reproduce` "
            "retrains it from the lock"
        )
    return model, module


def restore_advice(run_dir: Path, lock: dict[str, Any]) -> str:
    """Advice to run `gencompile train --resume RUN`, when the run's final weights can be
    written again from a checkpoint: it trained every epoch it was planned for (not stopped
    early, where the final weights may be an earlier epoch's) and kept the last one's
    checkpoint. Otherwise the empty string."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    try:
        trained = read_record(run_dir).get("epochs")
        planned = lock["resolved_spec"]["training"]["epochs"]
    except (RunError, KeyError, TypeError):  # an unreadable metrics.json: no advice
        return ""
    if not trained or trained != planned or newest_epoch(run_dir / "checkpoints") != trained:
        return ""
    return (
        f"; `gencompile train --resume {quoted(run_dir)}` writes it again from the checkpoint of "
        f"its last epoch ({trained})"
    )


def refuse_unfinished(run_dir: Path) -> None:
    """A run that is still training, failed or was interrupted has no final weights, unless
    what stopped was a continuation: the run then keeps its finished training, used as it
    was (and said so in one line on stderr)."""
    status = read_status(run_dir)
    if status in (None, "finished"):
        return
    kept = kept_finished(run_dir)
    if kept is not None and status in ("interrupted", "failed"):
        print(f"note: {kept_note(run_dir, kept, status)}", file=sys.stderr, flush=True)
        return
    advice = {
        "running": "wait until it finishes",
        "interrupted": f"finish it with `gencompile train --resume {quoted(run_dir)}`",
        "failed": failed_advice(run_dir),
    }.get(status, f"{run_dir / STATUS_NAME} is not one gencompile wrote; train again")
    raise RunError(f"{run_dir} has not finished training (status: {status}): {advice}")


def failed_advice(run_dir: Path) -> str:
    """How to go on with a failed run: one that failed after its last planned epoch (its
    evaluation, its final files) is finished by a resume that trains no epoch again."""
    trained = trained_to_the_end(run_dir)
    if trained is None:
        return f"see {run_dir / STATUS_NAME} for the error, then fix it and train again"
    return (
        f"it {trained.said}, but its evaluation or final files "
        f"failed (see {run_dir / STATUS_NAME} for the error): once that is fixed, "
        f"{finish_without_training(run_dir)}"
    )


def kept_finished(run_dir: Path) -> dict[str, Any] | None:
    """The finished revision a run keeps while a continuation of it has not finished
    (status.json's `finished_revision`: its epochs and lock), if the run's lock and
    metrics.json are still that revision's; else None."""
    record = read_json(Path(run_dir) / STATUS_NAME)
    kept = record.get("finished_revision")
    if not isinstance(kept, dict):
        return None
    try:
        lock_sha = read_lock(run_dir).get("lock_sha256")
        epochs = read_record(run_dir).get("epochs")
    except RunError:
        return None
    if lock_sha != kept.get("lock_sha256") or epochs != kept.get("epochs"):
        return None  # a continuation that stopped after it replaced them: not usable
    return {**kept, "continuation": record.get("continuation") or {}}


def kept_note(run_dir: Path, kept: dict[str, Any], status: str) -> str:
    """`RUN: a continuation to N epochs was interrupted at epoch k; ...` in one line."""
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    target = kept["continuation"].get("epochs", "more")
    epoch = newest_epoch(Path(run_dir) / "checkpoints")
    how = (
        f"was interrupted at epoch {epoch}"
        if status == "interrupted"
        else f"failed (see {STATUS_NAME}; its newest checkpoint is of epoch {epoch})"
    )
    return (
        f"{run_dir}: a continuation to {target} epochs {how}; using its finished training "
        f"of {epochs_phrase(kept['epochs'])} (continue with "
        f"`gencompile train --resume {quoted(run_dir)}`, "
        f"or give it up with `gencompile train --resume {quoted(run_dir)} --discard-continuation`)"
    )


def read_record(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run ({} before training finished)."""
    return read_json(Path(run_dir) / "metrics.json")


def trained_fingerprint(run_dir: Path, lock: dict[str, Any]) -> str | None:
    """The fingerprint of the data a run trained on: its lock's or, for a project trained
    by hand (its `python -m PACKAGE.train` writes metrics.json, never the lock), the one
    its training wrote into metrics.json; None before training finished."""
    found = lock.get("data_fingerprint") or read_record(run_dir).get("data_fingerprint")
    return None if found is None else str(found)
