"""`gencompile score`: one anomaly score per example of a file (or of the run's held-out
split), a threshold at a quantile of the held-out scores inside the likelihood's support,
and a flag per example (always 1 outside it).

The input is in the units of the training data, like `impute`'s: the run's preprocessing is
applied here. What a score is depends on the family (`runtime/scores.py`); the CSV names it
in a `score_kind` column and the result describes it in words.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.datafiles import (  # the image files an `images` source reads, as it does
    EIGHT_BIT_ADVICE,
    IMAGE_SUFFIXES,
    eight_bit_image,
)
from gencompile.errors import RunError, UsageRefusal
from gencompile.files import atomic_write_text
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import csv_only, writable_output, writing
from gencompile.table_input import (
    cell_place,
    check_header,
    check_label_column,
    check_training_data,
    number,
    read_csv,
)

TEXT_INPUT = "a language model is scored on its own held-out text windows: use --split heldout"


def _text_source(source: dict[str, Any]) -> bool:
    """A resolved data source of text: a text file or a built-in text language."""
    from gencompile.text import TEXT_BUILTINS

    return source["type"] == "text" or (
        source["type"] == "builtin" and source.get("name") in TEXT_BUILTINS
    )


@dataclass(frozen=True)
class Scores:
    path: Path
    kind: str  # the `score_kind` column
    description: str  # what the score is, in words, with its units
    count: int
    threshold: float
    quantile: float
    flagged: int
    outside: int = 0  # examples outside the likelihood's support: scored +inf, flagged
    support: str = ""  # why a value there has probability 0 (the ScoreKind's support)
    held_out_outside: int = 0  # held-out examples outside it: left out of the threshold
    held_out_count: int = 0
    advice: str = ""  # where the scored examples outside are, and what scores them finitely


@dataclass(frozen=True)
class RawInput:
    """An input file as read: values in data units (an image file's: its 8-bit pixels, to be
    mapped, `pixels`), labels or None, a CSV's header."""

    x: np.ndarray
    labels: np.ndarray | None
    header: list[str] | None
    pixels: bool = False


def score(
    run_dir: Path | str,
    out_csv: Path | str,
    input_file: Path | str | None = None,
    split: str | None = None,
    threshold_quantile: float = 0.99,
    allow_custom_code: bool = False,
) -> Scores:
    """Score every example of `input_file` (or of the held-out split: `split="heldout"`),
    higher = more anomalous; flag those above the `threshold_quantile` of the held-out
    scores. Writes a CSV: index, score, flag, score_kind (and label, when labelled)."""
    run_dir, out_csv = Path(run_dir), Path(out_csv)
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    if (input_file is None) == (split is None):
        raise UsageRefusal("give what to score: either --input FILE or --split heldout")
    if split is not None and split != "heldout":
        raise UsageRefusal(f"--split {split}: only the held-out split is scored (--split heldout)")
    if not 0.0 < threshold_quantile <= 1.0:
        raise UsageRefusal(f"--threshold-quantile must be in (0, 1], got {threshold_quantile}")
    if input_file is not None and _text_source(lock["resolved_spec"]["data"]["source"]):
        raise UsageRefusal(TEXT_INPUT)  # before the file is read: no file format would do
    writable_output(out_csv, "-o", "scores.csv", {"--input": input_file}, run_dir)
    csv_only(out_csv, "score")  # after writable_output: a folder is refused, as a folder
    raw = None if input_file is None else read_input(Path(input_file), lock=lock)
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.runtime.scores import scored, scorer
    from gencompile.runtime.support import outside_advice

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    check_training_data(data.fingerprint, lock, run_dir)
    if len(data.x_val) == 0:
        raise RunError(
            f"{run_dir} has no held-out split (data.validation_split: 0), so no threshold "
            "can be set from held-out scores; retrain with a validation split"
        )
    conditional = bool(module.DATA["with_labels"])
    kind, compute = scorer(model, lock["family"], data, module.EVALUATION)
    held_out, held_out_outside = scored(
        kind, compute, data.x_val, data.y_val if conditional else None
    )
    _check_held_out_finite(held_out, held_out_outside, kind.name)  # a NaN would flag nothing
    support = kind.support.explained(data.preprocessor) if kind.support else ""
    advice = kind.support.advice if kind.support else ""
    threshold = _threshold(held_out, held_out_outside, threshold_quantile, support, advice)
    if raw is None:
        x, values, outside, labels = data.x_val, held_out, held_out_outside, data.y_val
    else:
        from gencompile.runtime.conditional import model_classes

        classes = model_classes(model) if conditional else None
        x, labels = _prepared(raw, data, Path(input_file or ""), classes, lock)
        _check_levels(model, x, data, raw, Path(input_file or ""), lock)
        values, outside = scored(kind, compute, x, labels if conditional else None)
    _check_finite(values, outside, kind.name)
    flags = (values > threshold) | outside  # outside the support: always flagged
    _write_scores(out_csv, values, flags, kind.name, labels)
    return Scores(
        out_csv, kind.name, kind.description, len(values), threshold, threshold_quantile,
        int(flags.sum()), int(outside.sum()), support, int(held_out_outside.sum()),
        len(held_out), outside_advice(kind.support, x, outside, data),
    )  # fmt: skip


def _check_levels(
    model: Any, x: np.ndarray, data: Any, raw: RawInput, path: Path, lock: dict[str, Any]
) -> None:
    """Refuse an example with a value between the levels of a model of levels (a dequantized
    flow, a categorical likelihood, a pixel model), as the server's /score refuses it: it
    would be scored as the level it rounds to."""
    from gencompile.runtime.scores import off_level_value, score_support

    support = score_support(model, lock["family"], data)
    levels = None if support is None else support.levels
    tolerance = _half_pixel(levels, data, lock) if raw.pixels and levels else None
    off = off_level_value(model, lock["family"], x, data, tolerance)
    if off is not None:
        raise RunError(off.message(f"--input {path}: example {off.example}"))


def _half_pixel(levels: int, data: Any, lock: dict[str, Any]) -> float:
    """An image file's 8-bit pixels lie up to half a pixel (1/255 of the file's range) from
    the level they were written from: that half pixel as a share of the spacing of the
    model's `levels`."""
    from gencompile.runtime.metrics.levels import OFF_LEVEL_TOLERANCE
    from gencompile.sampling import image_file_range

    source = lock["resolved_spec"]["data"]["source"]
    low, high = image_file_range(source, lock.get("data_statistics"), data)
    ends = np.stack([np.full(data.element_shape, low), np.full(data.element_shape, high)])
    mapped = np.asarray(data.preprocessor.transform(ends), np.float64)
    spacings = np.max(np.abs(mapped[1] - mapped[0])) * (levels - 1)
    return float(spacings / 255 / 2 + OFF_LEVEL_TOLERANCE)


def _threshold(
    held_out: np.ndarray, outside: np.ndarray, quantile: float, support: str = "", advice: str = ""
) -> float:
    """The quantile of the held-out scores inside the support. Those outside score +inf:
    among them the quantile could be +inf (flagging no example inside) or NaN (numpy's
    interpolation computes a + (inf - a) * 0), so they are left out, as they are always
    flagged anyway. With every one outside there is no threshold to set: refuse."""
    inside = held_out[~outside]
    if inside.size == 0:
        raise RunError(
            f"all {len(held_out)} held-out examples are outside the data's support ({support}), "
            "so no threshold can be set from their scores; the model scores its own held-out "
            "data as impossible: check data.preprocessing against the data's values"
            + (f"; {advice}" if advice else "")
        )
    return float(np.quantile(inside, quantile))


def read_input(path: Path, option: str = "--input", lock: dict[str, Any] | None = None) -> RawInput:
    """An .npy, .npz (`x` or `samples`, and `labels`), .csv (header) or image file;
    `option` is the command-line option that named it, for the errors; a CSV holding the
    run's (`lock`'s) label column is refused, saying so."""
    from gencompile.datafiles import check_file

    check_file(path, option)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with _numpy_file(path, option, "numpy.save"):
            array = np.load(path, allow_pickle=False)
        return RawInput(_numbers(array, path, option), None, None)
    if suffix == ".npz":
        with _numpy_file(path, option, "numpy.savez"):
            return _read_npz(path, option)
    if suffix == ".csv":
        return _read_table(path, lock)
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image

        try:
            with Image.open(path) as image:  # 16-bit pixels as an `images` folder reads them
                advice = f"{EIGHT_BIT_ADVICE}, or give its values as .npy"
                image = eight_bit_image(image, path, advice)
                pixels = np.asarray(image.convert("L" if image.mode in ("L", "1") else "RGB"))
        except OSError as error:  # PIL's UnidentifiedImageError too: not an image, or cut short
            raise RunError(
                f"{option} {path}: not an image file PIL can read ({error}); give a "
                f"{suffix} image, or the values as .npy"
            ) from error
        return RawInput(pixels[None].astype(np.float64), None, None, pixels=True)
    raise RunError(
        f"{option} {path}: cannot read {suffix or 'a file without suffix'}; "
        f"use .npy, .npz, .csv or an image ({', '.join(IMAGE_SUFFIXES)})"
    )


@contextmanager
def _numpy_file(path: Path, option: str, writer: str) -> Iterator[None]:
    """numpy's errors of a file it cannot read as arrays of numbers (not .npy or .npz at all,
    truncated, or Python objects, which are never unpickled) as one line with the fix."""
    try:
        yield
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        text = str(error)
        if "Object arrays" in text:
            reason = "it holds Python objects"
        elif "pickled" in text:  # numpy's guess for a file that is neither .npy nor .npz
            reason = "it starts with neither a numpy header nor a zip archive's"
        else:
            reason = (
                f"numpy cannot read it: {text.splitlines()[0] if text else type(error).__name__}"
            )
        raise RunError(
            f"{option} {path}: not a numeric {path.suffix.lower()} file ({reason}); "
            f"save an array of numbers with {writer}"
        ) from error


def _numbers(array: np.ndarray, path: Path, option: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise RunError(f"{option} {path}: expected numbers, got an array of dtype {array.dtype}")
    if array.ndim == 0 or len(array) == 0:
        raise RunError(f"{option} {path}: holds no examples (shape {array.shape})")
    return array.astype(np.float64)


def _read_npz(path: Path, option: str) -> RawInput:
    with np.load(path, allow_pickle=False) as files:
        names = list(files.files)
        key = next((k for k in ("x", "samples") if k in names), None)
        others = [n for n in names if n != "labels"]
        if key is None and len(others) == 1:
            key = others[0]
        if key is None:
            raise RunError(
                f"{option} {path} holds {', '.join(names) or 'nothing'}: name the examples' "
                "array x (or samples), and their classes labels"
            )
        labels = np.asarray(files["labels"]) if "labels" in names else None
        return RawInput(_numbers(files[key], path, option), labels, None)


def _read_table(path: Path, lock: dict[str, Any] | None) -> RawInput:
    """A CSV whose header names the training features (and optionally a `label` column);
    every cell a finite number (impute fills missing ones first)."""
    header, cells = read_csv(path)
    if lock is not None:
        check_label_column(header, cells, lock, path)  # before its class names fail as numbers
    values = np.array(
        [[number(c, i, j, header, path) for j, c in enumerate(row)]
         for i, row in enumerate(cells)],
        dtype="float64",
    ).reshape(len(cells), len(header))  # fmt: skip
    missing = np.argwhere(np.isnan(values))
    if missing.size:
        row, column = (int(i) for i in missing[0])
        cell = cells[row][column]
        what = "is empty" if not cell.strip() else f"holds {cell!r}, a missing value"
        raise RunError(
            f"{cell_place(path, row, column, header)} {what}: every value is needed to score "
            "a row; fill it first (gencompile impute)"
        )
    if header[-1] == "label":
        return RawInput(values[:, :-1], values[:, -1], header[:-1])
    return RawInput(values, None, header)


def _prepared(
    raw: RawInput,
    data: Any,
    path: Path,
    classes: int | None,
    lock: dict[str, Any],
    option: str = "--input",
    use: str = "scores",
) -> tuple[np.ndarray, np.ndarray | None]:
    """The input in the model's units (an image file's pixels mapped to the data's units,
    then the preprocessing applied), and checked labels; `option` named the file, which
    the command `use`s (scores, encodes) with the labels."""
    if data.kind == "text":
        raise RunError(TEXT_INPUT)
    if raw.pixels and data.kind != "image":
        values = int(np.prod(data.element_shape))
        raise RunError(
            f"{option} {path}: an image file, but the model was trained on rows of {values} "
            "values, not images; give the rows as .npy, .npz or .csv"
        )
    if raw.header is not None:
        check_header(raw.header, data.feature_names, data.source, path)
    shape = tuple(data.element_shape)
    x = raw.x
    if x.shape[1:] != shape and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        x = x.reshape(len(x), *shape)  # flattened rows (a CSV of pixels) or (N, H, W)
    if x.shape[1:] != shape:
        raise RunError(_shape_message(raw.x.shape, shape, path, option))
    if raw.pixels:
        x = _from_image_file(x, data, path, lock)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise RunError(f"{option} {path}: example {bad} holds a value that is not finite")
    with np.errstate(over="ignore", invalid="ignore"):  # float64 in: timestamps keep seconds
        scaled = np.asarray(data.preprocessor.transform(x), np.float32)
    if not np.isfinite(scaled).all():
        raise RunError(f"{option} {path}: values too large for the model once scaled; check units")
    return scaled, _labels(raw.labels, len(x), path, classes, option, use, raw.pixels)


def _shape_message(found: tuple[int, ...], shape: tuple[int, ...], path: Path, option: str) -> str:
    """Why an array is not a batch of examples of `shape`: its first axis counts the
    examples. An array that is exactly one example without that axis is refused too, with
    the fix, rather than guessed at (the same array could be a batch of smaller ones)."""
    values = int(np.prod(shape))
    message = (
        f"{option} {path}: an array of shape {found}, read as {found[0]} example(s) of shape "
        f"{found[1:]}; one example of this model has shape {shape} (or is a row of "
        f"{values} values), and the first axis counts the examples"
    )
    if int(np.prod(found)) == values:
        batched = (1, *found)
        message += f"; a single example needs a leading batch axis: shape {batched} (x[None])"
    return message


def _from_image_file(pixels: np.ndarray, data: Any, path: Path, lock: dict[str, Any]) -> Any:
    """An image file's 8-bit pixels in the data's units: the inverse of the map `gencompile
    sample -o DIR/` writes PNG files with (`sampling.image_file_range`)."""
    from gencompile.runtime.pixels import from_pixels
    from gencompile.sampling import image_file_range

    source = lock["resolved_spec"]["data"]["source"]
    return from_pixels(pixels, image_file_range(source, lock.get("data_statistics"), data))


def _labels(
    labels: np.ndarray | None,
    count: int,
    path: Path,
    classes: int | None,
    option: str,
    use: str = "scores",
    pixels: bool = False,
) -> np.ndarray | None:
    """The input's labels, checked: a conditional model needs them, each below `classes`
    (an image file has none: its class folder is only a name)."""
    if labels is None:
        if classes is not None:
            carried = (
                "an image file carries none (`sample -o DIR/` names a class only by its "
                "folder); give the pixels with their classes as an .npz (arrays `x` and "
                "`labels`)"
                if pixels
                else "give labels (an .npz array `labels`, or a CSV column `label`)"
            )
            raise RunError(
                f"{option} {path}: a conditional model {use} an example with its class; "
                + carried
                + (", or --label K for all of them" if use != "scores" else "")
            )
        return None
    labels = np.asarray(labels, np.float64).reshape(-1)
    top = classes if classes is not None else np.inf
    whole = len(labels) == count and np.all(labels == np.round(labels))
    if not whole or labels.min() < 0 or labels.max() >= top:
        known = f" in 0..{classes - 1}" if classes is not None else " (integers >= 0)"
        raise RunError(f"{option} {path}: labels must be {count} class indices{known}")
    return labels.astype(np.int32)


def _check_finite(values: np.ndarray, outside: np.ndarray, kind: str) -> None:
    """A score that came out NaN or infinite is not a score: stop, do not write it (an
    example `outside` the support scores +inf, honestly)."""
    bad = np.argwhere(~np.isfinite(values) & ~outside)
    if bad.size:
        raise RunError(
            f"the {kind} of example {int(bad[0][0])} is not finite ({values[bad[0][0]]}); the "
            "model gives that example no usable density (check its units against the training "
            "data's)"
        )


def _check_held_out_finite(held_out: np.ndarray, outside: np.ndarray, kind: str) -> None:
    """The threshold is a quantile of the held-out scores: with a NaN or infinite one among
    them it is NaN or infinite too, and flags nothing. Stop instead (but an example outside
    the support scores +inf, honestly)."""
    bad = np.argwhere(~np.isfinite(held_out) & ~outside)
    if bad.size:
        first = int(bad[0][0])
        raise RunError(
            f"the {kind} of held-out example {first} is not finite ({held_out[first]}; "
            f"{len(bad)} of {len(held_out)} held-out examples), so no threshold can be set "
            "from the held-out scores (it would flag nothing); the model gives real examples "
            "no usable density: retrain it (a lower learning_rate or clipnorm; the run's "
            "history.csv shows where it diverged), and check its held-out metrics with "
            "`gencompile evaluate`"
        )


def _write_scores(
    out: Path, values: np.ndarray, flags: np.ndarray, kind: str, labels: np.ndarray | None
) -> None:
    index, flag = np.arange(len(values)).astype(str), flags.astype(int).astype(str)
    columns = np.stack([index, np.char.mod("%.9g", values), flag], axis=1)
    header = "index,score,flag,score_kind"
    rows = [",".join(row) + f",{kind}" for row in columns]
    if labels is not None:
        header += ",label"
        rows = [f"{row},{int(label)}" for row, label in zip(rows, labels, strict=True)]
    buffer = io.StringIO()
    buffer.write(header + "\n" + "\n".join(rows) + "\n")
    with writing(out):
        atomic_write_text(out, buffer.getvalue())
