"""Runs: build a spec into a run directory, train it, and use a finished run.

A run directory is a generated project plus what training wrote into it:

    runs/<name>/<YYYYmmdd-HHMMSS>-<hash>/
      README.md  pyproject.toml  spec.yaml  spec.lock.json  <package>/  tests/
      checkpoints/  history.csv  metrics.json  model.weights.h5  model.keras
      samples.png  curves.png  report.md

TensorFlow is imported only when generated code is (`import_generated`).
"""

from __future__ import annotations

import copy
import csv
import importlib
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
from gencompile.lockfile import build_locked, read_lock, verify_files
from gencompile.report import read_json, write_report
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
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = root / loaded.spec.name / f"{stamp}-{spec_sha256[:8]}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def verified_lock(run_dir: Path) -> dict[str, Any]:
    """The lock of a run whose lock and generated files are as gencompile wrote them."""
    lock = read_lock(run_dir)
    verify_files(Path(run_dir), lock)
    return lock


def import_generated(run_dir: Path, package: str, module: str = "train") -> ModuleType:
    """Import `<package>.<module>` from a generated project, fresh each time."""
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        del sys.modules[name]
    path = str(Path(run_dir).resolve())
    sys.path.insert(0, path)
    try:
        return importlib.import_module(f"{package}.{module}")
    finally:
        sys.path.remove(path)


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
    spec_sha = sha256_text(loaded.spec.model_dump_json())
    check_memory(lower(loaded))  # before anything is written and before TensorFlow starts
    directory = Path(run_dir) if run_dir else new_run_dir(Path(runs_root), loaded, spec_sha)
    built = build(loaded, directory, allow_custom_code=allow_custom_code)
    return _run(directory, built.plan.package, built.lock, quiet)


def resume(run_dir: Path | str, quiet: bool = False) -> TrainResult:
    """Continue an interrupted run from its newest whole checkpoint, in place."""
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir)
    return _run(run_dir, python_name(lock["name"]), lock, quiet, "--resume")


def _run(directory: Path, package: str, lock: dict, quiet: bool, *flags: str) -> TrainResult:
    """Train a built run directory; record the data fingerprint in its lock; report."""
    module = import_generated(directory, package)
    argv = ["--run-dir", str(directory), *flags] + (["--quiet"] if quiet else [])
    metrics = module.main(argv)
    record = json.loads((directory / "metrics.json").read_text())
    write_lock(directory, dict(lock, data_fingerprint=record.get("data_fingerprint")))
    write_report(directory)
    return TrainResult(directory, metrics, record)


def load_trained_model(run_dir: Path | str, check_weights: bool = True) -> tuple[Any, ModuleType]:
    """The trained model of a verified run and its generated train module.

    With `check_weights`, weights that differ from those recorded when training finished
    (a changed or corrupt model.weights.h5) are refused.
    """
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir)
    module = import_generated(run_dir, python_name(lock["name"]))
    from gencompile.runtime.repro import weights_sha256
    from gencompile.runtime.training import load_weights

    model = module.build_model()
    load_weights(model, run_dir)
    recorded = read_record(run_dir).get("weights_sha256")
    if check_weights and recorded is not None and weights_sha256(model) != recorded:
        raise RunError(
            f"{run_dir / 'model.weights.h5'} holds other weights than training recorded "
            "(changed or corrupt); `gencompile reproduce` retrains it from the lock"
        )
    return model, module


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
    verified_lock(run_dir)  # refuse a bad run before TensorFlow starts
    if count < 1:
        raise RunError(f"the number of samples must be at least 1, got {count}")
    if out is not None:
        out = writable_output(Path(out), "-o", "samples.npz")
    if isinstance(labels, Sequence) and len(labels) != count:
        raise RunError(f"give one label per sample: {len(labels)} labels for {count} samples")
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.runtime.training import save_picture, write_text_samples

    model, module = load_trained_model(run_dir)
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
    run_dir: Path | str, metrics: list[str] | None = None, inception_weights: str | None = None
) -> dict[str, float]:
    """Compute metrics of a trained run (default: its spec's) and store them in metrics.json.

    `inception_weights`: a local file of InceptionV3 weights for fid, kid and
    inception_score on images (overrides the spec's `evaluation.inception_weights`).
    """
    run_dir = Path(run_dir)
    if metrics:
        checked_metrics(verified_lock(run_dir), metrics)
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data

    model, module = load_trained_model(run_dir)
    config = dict(module.EVALUATION)
    if metrics:
        config["metrics"] = metrics
    if inception_weights:
        config["inception_weights"] = str(inception_weights)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    results = module.evaluate(model, data, config)
    record = read_record(run_dir)
    record["metrics"] = {**record.get("metrics", {}), **results}
    repro.atomic_write_json(run_dir / "metrics.json", record)
    write_report(run_dir)
    return results


@dataclass(frozen=True)
class Comparison:
    name: str
    original: Any
    reproduced: Any

    @property
    def same(self) -> bool:
        return self.original == self.reproduced


@dataclass(frozen=True)
class Reproduction:
    run_dir: Path
    rows: list[Comparison]

    @property
    def identical(self) -> bool:
        return all(row.same for row in self.rows)


def reproduce(
    run_dir: Path | str, out_dir: Path | str | None = None, allow_drift: bool = False
) -> Reproduction:
    """Re-run a finished run from its lock into a new folder; compare weights and metrics."""
    from gencompile.runtime.repro import weights_sha256

    run_dir = Path(run_dir)
    lock = verified_lock(run_dir)
    record = read_record(run_dir)
    if not record:
        raise RunError(f"{run_dir} has not finished training (no metrics.json) to reproduce")
    model, _ = load_trained_model(run_dir, check_weights=False)
    original_weights = weights_sha256(model)  # what the file holds now, not what was noted
    directory = Path(out_dir) if out_dir else _sibling(run_dir, "reproduced")
    built = build_locked(run_dir, directory, allow_drift=allow_drift)
    again = _run(directory, built.plan.package, built.lock, quiet=True)
    rows = [
        Comparison("weights sha256", original_weights, again.record["weights_sha256"]),
        Comparison(
            "data fingerprint", lock.get("data_fingerprint"), again.record["data_fingerprint"]
        ),
    ]
    metrics = sorted(set(record.get("metrics", {})) | set(again.record["metrics"]))
    rows += [
        Comparison(name, record.get("metrics", {}).get(name), again.record["metrics"].get(name))
        for name in metrics
    ]
    return Reproduction(directory, rows)


def _sibling(run_dir: Path, suffix: str) -> Path:
    candidate, n = run_dir.with_name(f"{run_dir.name}-{suffix}"), 1
    while candidate.exists():
        n += 1
        candidate = run_dir.with_name(f"{run_dir.name}-{suffix}-{n}")
    return candidate


@dataclass(frozen=True)
class Imputation:
    path: Path
    rows_filled: int
    cells_filled: int


def impute(run_dir: Path | str, input_csv: Path | str, out_csv: Path | str) -> Imputation:
    """Fill the empty (or NaN) cells of a CSV with a trained mixture's conditional means.

    The header must name the training data's features in their order (a CSV source's
    columns; x0, x1, ... for data without names). Observed cells must be finite numbers and
    are written back exactly as they were read; rows with nothing missing pass through
    unchanged.
    """
    run_dir, input_csv, out_csv = Path(run_dir), Path(input_csv), Path(out_csv)
    lock = verified_lock(run_dir)
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

    model, module = load_trained_model(run_dir)
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
