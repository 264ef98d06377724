"""Runs: build a spec into a run directory, train it, and use a finished run.

A run directory is a generated project plus what training wrote into it:

    runs/<name>/<YYYYmmdd-HHMMSS>-<hash>/
      README.md  pyproject.toml  spec.yaml  spec.lock.json  <package>/  tests/
      checkpoints/  history.csv  metrics.json  model.weights.h5  model.keras
      samples.png  curves.png  report.md

TensorFlow is imported only when generated code is (`import_generated`), and generated
code only from a verified run; a run whose spec has custom layers (user code) is refused
unless the caller passes `allow_custom_code=True` (`--allow-custom-code`).
"""

from __future__ import annotations

import copy
import csv
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import math
import os
import secrets
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np

from gencompile.compiler.lower import lower
from gencompile.compiler.project import build, sha256_text, write_lock
from gencompile.compiler.resources import check_memory
from gencompile.datafiles import describe_mode, format_bytes, read_text_file
from gencompile.errors import RunError, SpecError
from gencompile.files import atomic_write_text
from gencompile.lockfile import build_locked, read_lock, refuse_custom_code, verify_files
from gencompile.report import read_json, write_report
from gencompile.run_status import STATUS_NAME, read_status, recorded
from gencompile.spec import LoadedSpec, load_spec, load_spec_text
from gencompile.spec.base import python_name

DEFAULT_SPEC = "vae_digits.yaml"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    metrics: dict[str, float]
    record: dict[str, Any]


def default_spec_path() -> Path:
    """The embedded default spec: `specs/` in a source tree, `gencompile/specs` in a wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "specs", package.parent / "specs"):
        if (candidate / DEFAULT_SPEC).is_file():
            return candidate / DEFAULT_SPEC
    raise RunError("the embedded default spec is missing; pass a spec file")


def new_run_dir(root: Path, loaded: LoadedSpec, spec_sha256: str) -> Path:
    """A new, empty run folder `root/<name>/<UTC time>-<spec hash>[-n]`, created here.

    Creating it is the claim: `mkdir` fails if another training took the name first (two
    started in the same second), and the next suffix is tried.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return claim_folder(root / loaded.spec.name / f"{stamp}-{spec_sha256[:8]}")


def claim_folder(base: Path) -> Path:
    """Create `base`, or `base-2`, `base-3`, ... whichever is free first; return it."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError(f"{base.parent} holds 10,000 folders named {base.name}-*; clean it up")


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
        return importlib.import_module(f"{package}.{module}")
    except ImportError as err:  # e.g. a custom layer's module that is not installed
        _release(package, root)
        raise RunError(f"importing {package}.{module} from {run_dir} failed: {err}") from err
    except BaseException:
        _release(package, root)
        raise


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


def _inside(origin: str | None, root: Path) -> bool:
    return origin is not None and Path(origin).resolve().is_relative_to(root.resolve())


def train(
    spec: Path | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    epochs: int | None = None,
    runs_root: Path | str = "runs",
    run_dir: Path | str | None = None,
    quiet: bool = False,
    allow_custom_code: bool = False,
) -> TrainResult:
    """Build `spec` into a new run directory and train it there."""
    overrides = list(overrides)
    if epochs is not None:
        overrides.append(f"training.epochs={int(epochs)}")  # recorded in the lock
    loaded = load_spec(spec if spec is not None else default_spec_path(), overrides)
    plan = lower(loaded)
    check_memory(plan)  # before anything is written and before TensorFlow starts
    check_evaluation_weights(plan)
    spec_sha = sha256_text(loaded.spec.model_dump_json())
    directory = Path(run_dir) if run_dir else new_run_dir(Path(runs_root), loaded, spec_sha)
    built = build(loaded, directory, allow_custom_code=allow_custom_code)
    return _run(directory, built.plan.package, built.lock, quiet, allow=allow_custom_code)


def resume(
    run_dir: Path | str, quiet: bool = False, allow_custom_code: bool = False
) -> TrainResult:
    """Continue an interrupted run from its newest whole checkpoint, in place."""
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)
    check_evaluation_weights(locked_plan(lock))
    package = python_name(lock["name"])
    return _run(run_dir, package, lock, quiet, "--resume", allow=allow_custom_code)


# Every metric that can need InceptionV3 (the runtime decides exactly, for the data at hand).
MAY_NEED_INCEPTION = frozenset({"fid", "kid", "inception_score", "precision_recall"})


def locked_plan(lock: dict[str, Any]) -> Any:
    """The plan of a run's locked spec (what its generated code was built from)."""
    return lower(load_spec_text(json.dumps(lock["resolved_spec"]), file="spec.lock.json"))


def check_evaluation_weights(plan: Any) -> None:
    """Metrics are computed after training: when they need InceptionV3's weights and none
    can be had, stop before building and training, not hours later."""
    if not MAY_NEED_INCEPTION & set(plan.evaluation["metrics"]):
        return  # the usual case: no reason to start TensorFlow for the exact check below
    from gencompile.runtime.metrics.samples import with_inception_weights

    with_inception_weights(plan.evaluation, plan.data_kind, plan.data["source"])


def _run(
    directory: Path, package: str, lock: dict, quiet: bool, *flags: str, allow: bool = False
) -> TrainResult:
    """Train a built run directory; record the data fingerprint in its lock; report.

    `allow`: the caller's consent to custom code. status.json says all along whether the
    run is running, finished, failed or interrupted.
    """
    with recorded(directory):
        module = import_generated(directory, package, allow_custom_code=allow)
        argv = ["--run-dir", str(directory), *flags] + (["--quiet"] if quiet else [])
        metrics = module.main(argv)
        record = json.loads((directory / "metrics.json").read_text())
        write_lock(directory, dict(lock, data_fingerprint=record.get("data_fingerprint")))
        write_report(directory)
    return TrainResult(directory, metrics, record)


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
    from gencompile.runtime.training import load_weights, set_precision

    set_precision(module.TRAINING)  # compute as training did (mixed precision or not)
    model = module.build_model()
    load_weights(model, run_dir)
    recorded = read_record(run_dir).get("weights_sha256")
    if check_weights and recorded is not None and weights_sha256(model) != recorded:
        raise RunError(
            f"{run_dir / 'model.weights.h5'} holds other weights than training recorded "
            "(changed or corrupt); `gencompile reproduce` retrains it from the lock"
        )
    return model, module


def refuse_unfinished(run_dir: Path) -> None:
    """A run that is still training, failed or was interrupted has no final weights."""
    status = read_status(run_dir)
    if status in (None, "finished"):
        return
    advice = {
        "running": "wait until it finishes",
        "interrupted": f"finish it with `gencompile train --resume {run_dir}`",
        "failed": f"see {run_dir / STATUS_NAME} for the error, then fix it and train again",
    }.get(status, f"{run_dir / STATUS_NAME} is not one gencompile wrote; train again")
    raise RunError(f"{run_dir} has not finished training (status: {status}): {advice}")


def read_record(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run ({} before training finished)."""
    return read_json(Path(run_dir) / "metrics.json")


# A picture shows at most this many samples (a 100 x 100 grid); more go to an .npz file.
MAX_PICTURE_SAMPLES = 10_000
# Samples are drawn and written in chunks of at most this many (and this many bytes), so
# memory stays flat however many are asked for.
SAMPLE_CHUNK = 4096
SAMPLE_CHUNK_BYTES = 16 << 20


def sample(
    run_dir: Path | str,
    count: int,
    out: Path | str | None,
    labels: Sequence[int] | int | None = None,
    prompt: str | None = None,
    allow_custom_code: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **sampling: Any,
) -> Path:
    """Draw `count` samples from a trained run: a PNG picture or an NPZ of arrays, or for a
    language model a text file of continuations of `prompt` (`sampling`: length,
    temperature, top_k, top_p override the spec's).

    `labels`: one class for every sample, or one per sample (conditional models). Arrays are
    drawn in chunks and streamed into the .npz, so memory does not grow with `count`;
    `progress(done, count)` is called after each chunk.
    """
    run_dir = Path(run_dir)
    verified_lock(run_dir, allow_custom_code)  # refuse a bad run before TensorFlow starts
    if count < 1:
        raise RunError(f"the number of samples must be at least 1, got {count}")
    if out is not None:
        out = writable_output(Path(out), "-o", "samples.npz")
    if isinstance(labels, Sequence) and len(labels) != count:
        raise RunError(f"give one label per sample: {len(labels)} labels for {count} samples")
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.runtime.training import save_picture, write_text_samples

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    text = hasattr(model, "sample_text")
    out = Path(out) if out is not None else Path("samples.txt" if text else "samples.png")
    if text:  # a language model: samples are text
        if out.suffix != ".txt":
            raise RunError(f"a language model writes text samples: use a .txt file, not {out}")
        repro.set_seed(module.SEED)
        texts = model.sample_text(count, prompt, **sampling)
        return write_text_samples(texts, out)
    if prompt is not None or "length" in sampling:
        raise RunError(f"{run_dir} is not a language model: it takes no --prompt or --length")
    if sampling and not hasattr(model, "generate"):
        raise RunError(f"{run_dir} is not an autoregressive model: it takes no {sorted(sampling)}")
    if labels is not None and not module.DATA["with_labels"]:
        raise RunError(f"{run_dir} is not a conditional model: it takes no --label")
    _check_sample_output(out, count)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    chunks = _sample_chunks(model, data, count, labels, sampling, progress)
    if out.suffix == ".npz":
        _check_disk(out, count * 4 * int(np.prod(data.element_shape)))
        return _write_npz_stream(out, "samples", (count, *data.element_shape), chunks)
    return save_picture(np.concatenate(list(chunks)), out, data)


def _check_sample_output(out: Path, count: int) -> None:
    """Refuse, before drawing anything, a file type or a picture that cannot hold the samples."""
    if out.suffix not in (".png", ".npz"):
        raise RunError(f"cannot write samples as {out.suffix or 'no suffix'}: use .png or .npz")
    if out.suffix == ".png" and count > MAX_PICTURE_SAMPLES:
        raise RunError(
            f"a picture shows at most {MAX_PICTURE_SAMPLES:,} samples, not {count:,}; "
            f"write them as arrays instead: -o {out.with_suffix('.npz')}"
        )


def _sample_chunks(
    model: Any,
    data: Any,
    count: int,
    labels: Sequence[int] | int | None,
    sampling: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> Iterator[np.ndarray]:
    """Samples in data units, drawn chunk by chunk (one chunk when `count` is small)."""
    values = max(1, int(np.prod(data.element_shape)))
    size = max(1, min(SAMPLE_CHUNK, SAMPLE_CHUNK_BYTES // (4 * values)))
    for start in range(0, count, size):
        stop = min(count, start + size)
        if labels is None:
            drawn = model.sample(stop - start, **sampling)  # PixelCNN: temperature, top_k..
        elif isinstance(labels, Sequence):
            drawn = model.sample(stop - start, labels=list(labels[start:stop]))
        else:
            drawn = model.sample(stop - start, labels=[int(labels)] * (stop - start))
        yield data.preprocessor.inverse(np.asarray(drawn, dtype=np.float32))
        if progress is not None:
            progress(stop, count)


def _check_disk(out: Path, size: int) -> None:
    """Refuse a file that cannot fit on its disk (with room to spare for the file system)."""
    free = shutil.disk_usage(out.parent).free
    if size + (1 << 20) > free:
        raise RunError(
            f"{out} would take {format_bytes(size)}, but its disk has only "
            f"{format_bytes(free)} free; draw fewer samples (-n) or write elsewhere"
        )


def _write_npz_stream(
    out: Path, name: str, shape: tuple[int, ...], chunks: Iterator[np.ndarray]
) -> Path:
    """An .npz holding one float32 array, written chunk by chunk into the zip (uncompressed,
    as np.savez writes it) under a temporary name, then renamed: never half a file."""
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with (
        _atomic_file(out) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
        archive.open(f"{name}.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_2_0(member, header)
        for chunk in chunks:
            member.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
    return out


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A file written under a temporary name beside `path`, fsynced and renamed into place;
    removed if anything fails (an interrupt included)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with _writing(path), open(temporary, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        with _writing(path):
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """OSErrors of writing `path` (a full disk, no permission) as one-line RunErrors."""
    try:
        yield
    except OSError as err:
        raise RunError(f"cannot write {path}: {err.strerror or err}") from None


def writable_output(path: Path, option: str, example: str) -> Path:
    """Refuse an output path that cannot become a file, before any work is done."""
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
    return path


def checked_metrics(lock: dict[str, Any], metrics: list[str]) -> list[str]:
    """Metric names asked for on the command line, checked as the spec's own list is."""
    resolved = copy.deepcopy(lock["resolved_spec"])
    resolved["evaluation"]["metrics"] = metrics
    try:
        lower(load_spec_text(json.dumps(resolved), file="--metrics"))
    except SpecError as error:
        located = [replace(p, file="--metrics", line=None, column=None) for p in error.problems]
        raise SpecError(located) from None
    return metrics


def evaluate(
    run_dir: Path | str,
    metrics: list[str] | None = None,
    inception_weights: str | None = None,
    allow_custom_code: bool = False,
) -> dict[str, float]:
    """Compute metrics of a trained run (default: its spec's) and store them in metrics.json.

    `inception_weights`: a local file of InceptionV3 weights for fid, kid and
    inception_score on images (overrides the spec's `evaluation.inception_weights`).
    """
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)  # refuse a bad run before TensorFlow starts
    if metrics:
        checked_metrics(lock, metrics)
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.runtime.metrics.samples import with_inception_weights

    asked: dict[str, Any] = {}
    if metrics:
        asked["metrics"] = metrics
    if inception_weights:
        asked["inception_weights"] = str(inception_weights)
    # Before the model and data are loaded: no weights, no work (the family checks again).
    plan = locked_plan(lock)
    with_inception_weights({**plan.evaluation, **asked}, plan.data_kind, plan.data["source"])
    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    config = {**module.EVALUATION, **asked}
    # As training set things up; the family's `evaluate` then starts from a state derived
    # from the seed, so the same weights give the numbers training wrote.
    repro.set_seed(module.SEED, deterministic=module.TRAINING["deterministic"])
    data = load_data(module.DATA, seed=module.SEED)
    results = module.evaluate(model, data, config)
    record = read_record(run_dir)
    record["metrics"] = {**record.get("metrics", {}), **results}
    computed_with = getattr(results, "computed_with", {})
    record["computed_with"] = {**record.get("computed_with", {}), **computed_with}
    repro.atomic_write_json(run_dir / "metrics.json", record)
    write_report(run_dir)
    return results


NOT_AT_TRAINING = "not compared: added later by `gencompile evaluate`, not computed in training"
OTHER_SETTINGS = "not compared: re-evaluated with other settings than training used"


@dataclass(frozen=True)
class Comparison:
    name: str
    original: Any
    reproduced: Any
    skipped: str = ""  # why the row is shown but not compared ("" = compared)

    @property
    def same(self) -> bool:
        return bool(self.skipped) or self.original == self.reproduced


@dataclass(frozen=True)
class Reproduction:
    run_dir: Path
    rows: list[Comparison]

    @property
    def identical(self) -> bool:
        """Weights and every metric both runs computed in training match bit for bit."""
        return all(row.same for row in self.rows)


def metric_rows(original: dict[str, Any], again: dict[str, Any]) -> list[Comparison]:
    """Like with like: the reproduction's training computes the spec's metrics, so those are
    compared. A metric the original gained from a later `evaluate` (or recomputed there with
    other settings: other weights, other sample counts) is listed with the reason instead."""
    before, after = original.get("metrics", {}), again["metrics"]
    how_before, how_after = original.get("computed_with", {}), again.get("computed_with", {})
    rows = []
    for name in sorted(set(before) | set(after)):
        skipped = ""
        if name not in after and name in before:
            skipped = NOT_AT_TRAINING
        elif name in how_before and how_before[name] != how_after.get(name):
            skipped = OTHER_SETTINGS
        rows.append(Comparison(name, before.get(name), after.get(name), skipped))
    return rows


def reproduce(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    allow_drift: bool = False,
    allow_custom_code: bool = False,
) -> Reproduction:
    """Re-run a finished run from its lock into a new folder; compare weights and metrics."""
    from gencompile.runtime.repro import weights_sha256

    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)
    record = read_record(run_dir)
    if not record:
        raise RunError(f"{run_dir} has not finished training (no metrics.json) to reproduce")
    model, _ = load_trained_model(run_dir, False, allow_custom_code)
    original_weights = weights_sha256(model)  # what the file holds now, not what was noted
    check_evaluation_weights(locked_plan(lock))
    if out_dir is not None:
        directory = Path(out_dir)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise RunError(
                f"{directory} exists and is not empty: a reproduction goes into a new folder "
                "(leave out -o to put it beside the run)"
            )
    else:
        directory = claim_folder(run_dir.with_name(f"{run_dir.name}-reproduced"))
    built = build_locked(run_dir, directory, allow_drift, allow_custom_code)
    again = _run(directory, built.plan.package, built.lock, True, allow=allow_custom_code)
    rows = [
        Comparison("weights sha256", original_weights, again.record["weights_sha256"]),
        Comparison(
            "data fingerprint", lock.get("data_fingerprint"), again.record["data_fingerprint"]
        ),
    ]
    return Reproduction(directory, rows + metric_rows(record, again.record))


@dataclass(frozen=True)
class Imputation:
    path: Path
    rows_filled: int
    cells_filled: int


def impute(
    run_dir: Path | str,
    input_csv: Path | str,
    out_csv: Path | str,
    allow_custom_code: bool = False,
) -> Imputation:
    """Fill the empty (or NaN) cells of a CSV with a trained mixture's conditional means.

    The header must name the training data's features in their order (a CSV source's
    columns; x0, x1, ... for data without names). Observed cells must be finite numbers and
    are written back exactly as they were read; rows with nothing missing pass through
    unchanged.
    """
    run_dir, input_csv, out_csv = Path(run_dir), Path(input_csv), Path(out_csv)
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    if lock.get("family") != "mixture":
        raise RunError(
            f"{run_dir} holds a {lock.get('family')} model; only a mixture model can impute"
        )
    writable_output(out_csv, "-o", "imputed.csv")
    header, cells = _read_csv(input_csv)
    values = np.array(
        [[_number(c, i, j, header, input_csv) for j, c in enumerate(row)]
         for i, row in enumerate(cells)],
        dtype="float64",
    ).reshape(len(cells), len(header))  # fmt: skip
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    if not hasattr(model, "impute"):
        raise RunError(f"{run_dir} holds a {lock['family']} model; only a mixture can impute")
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    _check_training_data(data.fingerprint, lock, run_dir)
    _check_header(header, data.feature_names, data.source, input_csv)
    missing = np.isnan(values)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        scaled = data.preprocessor.transform(values.reshape(-1, *data.element_shape))
    _check_scaled(scaled.reshape(values.shape), missing, header, input_csv)
    filled = data.preprocessor.inverse(np.asarray(model.impute(scaled)).reshape(scaled.shape))
    filled = filled.reshape(values.shape)
    rows = [
        [repr(float(filled[i, j])) if missing[i, j] else cell for j, cell in enumerate(row)]
        for i, row in enumerate(cells)
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with _writing(out_csv):
        atomic_write_text(out_csv, buffer.getvalue())
    return Imputation(out_csv, int(missing.any(axis=1).sum()), int(missing.sum()))


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an input CSV: a regular file, read with the data size limit."""
    try:
        text = read_text_file(path, "--input", advice="impute a smaller file, in parts")
    except UnicodeDecodeError as err:
        raise RunError(f"--input {path} is not UTF-8 text: {err}") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise RunError(f"--input {path} is not a readable CSV file: {err}") from None
    if not rows:
        raise RunError(f"--input {path} is empty: it needs a header row and data rows")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if not body:
        raise RunError(
            f"--input {path} has a header but no data rows: nothing to impute; "
            "add rows with empty cells where values are missing"
        )
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise RunError(f"{path}, line {i}: {len(row)} cells, the header has {len(header)}")
    return header, body


def _number(cell: str, row: int, column: int, header: list[str], path: Path) -> float:
    """A cell's value; empty or NaN is missing (NaN); anything else must be a finite number."""
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na"):
        return float("nan")
    where = f"{path}, line {row + 2}, column {column + 1} ({header[column]!r})"
    try:
        value = float(text)
    except ValueError:
        raise RunError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise RunError(
            f"{where}: {cell!r} is not a finite number (it reads as {value}); observed values "
            "must be finite, and an empty cell is one to impute"
        )
    return value


def _check_training_data(found: str, lock: dict[str, Any], run_dir: Path) -> None:
    """The column names and the preprocessing come from the training data: it must be the
    data the run was trained on."""
    recorded = lock.get("data_fingerprint")
    if recorded is not None and recorded != found:
        raise RunError(
            f"the training data of {run_dir} changed since training (its fingerprint differs "
            "from the lock's), so its column names and scaling no longer describe the model; "
            "restore the data, or retrain"
        )


def _check_header(
    header: list[str], expected: tuple[str, ...], source: dict[str, Any], path: Path
) -> None:
    """The input's columns must be the training features, named and ordered alike."""
    if header == list(expected):
        return
    if source.get("type") == "csv":
        need = f"name the training CSV's feature columns in order: {_names(expected)}"
    else:
        need = (
            f"be {_names(expected)}: the training data ({source.get('type')}) has no column "
            f"names, so its features are called x0..x{len(expected) - 1}, in this order"
        )
    if len(header) != len(expected):
        raise RunError(
            f"{path} has {len(header)} columns; the model was trained on {len(expected)} "
            f"features: the header must {need}"
        )
    if sorted(header) == sorted(expected):
        raise RunError(
            f"{path} names the right columns in another order ({_names(header)}); "
            f"the header must {need}"
        )
    column, name = next((j, n) for j, n in enumerate(header) if n != expected[j])
    raise RunError(
        f"{path}, column {column + 1}: {name!r} where the model expects "
        f"{expected[column]!r}; the header must {need}"
    )


def _names(names: Sequence[str], shown: int = 12) -> str:
    text = ",".join(names[:shown])
    return text + (f",... ({len(names)} in all)" if len(names) > shown else "")


def _check_scaled(scaled: np.ndarray, missing: np.ndarray, header: list[str], path: Path) -> None:
    """Observed values so large that the model's float32 preprocessing overflows them."""
    bad = np.argwhere(~np.isfinite(scaled) & ~missing)
    if bad.size:
        row, column = (int(i) for i in bad[0])
        raise RunError(
            f"{path}, line {row + 2}, column {column + 1} ({header[column]!r}): the value is "
            "too large for the model (beyond float32's range once scaled like the training "
            "data); check the units of that column"
        )
