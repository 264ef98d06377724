"""`gencompile sample`: draw from a trained run into a picture, arrays, rows or text.

Arrays are drawn in chunks and streamed into the .npz or .csv, so memory does not grow with the
number of samples.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.datafiles import format_bytes
from gencompile.errors import RunError, UsageRefusal
from gencompile.generated import load_trained_model, verified_lock
from gencompile.interrupts import kept_interrupts
from gencompile.outputs import writable_output
from gencompile.sample_files import (
    write_csv_stream,
    write_image_folder,
    write_npz_stream,
    write_parquet_stream,
)
from gencompile.sample_options import check_seed, model_options

# File types of drawn arrays and rows (a folder, written `-o DIR/`, holds one PNG each).
SAMPLE_SUFFIXES = (".png", ".npz", ".csv", ".parquet")

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
    seed: int | None = None,
    balanced: bool = False,
    **sampling: Any,
) -> Path:
    """Draw `count` samples from a trained run: a PNG picture, an NPZ of arrays, a CSV or
    Parquet table of rows, a folder of PNG files (`out` ends with a slash or is an existing
    folder), or for a language model a text file of continuations of `prompt`.

    `sampling`: the sample-time options of the run's family (`gencompile.sample_options`):
    temperature, truncation, top_k, top_p, length, sampler, steps, eta, guidance.
    `labels`: one class for every sample, or one per sample; `balanced`: equal counts of
    every class (conditional models; by default they cycle through the classes). The
    labels are saved with arrays and rows, and name the class folders of images. `seed`
    (default: the run's) fixes the draws: the same seed gives the same bytes. Arrays are
    drawn in chunks and streamed into the file, so memory does not grow with `count`;
    `progress(done, count)` follows each chunk.
    """
    run_dir = Path(run_dir)
    lock = verified_lock(run_dir, allow_custom_code)  # refuse a bad run before TensorFlow starts
    if count < 1:
        raise UsageRefusal(f"the number of samples must be at least 1, got {count}")
    check_seed(seed)
    folder = out is not None and is_folder_output(out)
    if folder:
        out = writable_folder(Path(out))
    elif out is not None:
        out = writable_output(Path(out), "-o", "samples.npz", run_dir=run_dir)
    if isinstance(labels, Sequence) and len(labels) != count:
        raise UsageRefusal(f"give one label per sample: {len(labels)} labels for {count} samples")
    if balanced and labels is not None:
        raise UsageRefusal("give either --label or --balanced, not both")
    family = lock["family"]
    if family != "autoregressive" and (prompt is not None or "length" in sampling):
        raise UsageRefusal(f"{run_dir} is not a language model: it takes no --prompt or --length")
    if prompt is not None:
        _check_prompt(run_dir, lock, prompt)  # before TensorFlow starts
    if out is not None and _vocabulary_file(lock) is not None:  # text, whatever the data shape
        _check_text_output(Path(out), folder)
    options = model_options(family, lock, sampling, run_dir)  # refusals before TensorFlow
    if out is not None and not folder and family != "autoregressive":
        _check_sample_output(Path(out), count)
    statistics = lock.get("data_statistics")
    if out is not None and statistics is not None:  # the data's kind is known: refuse now
        shape = tuple(statistics["element_shape"])
        _check_data_output(Path(out), folder, statistics["kind"], shape, run_dir)
    from gencompile.runtime.contract import LanguageModel, TakesSamplingOptions

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    text = isinstance(model, LanguageModel)
    if out is None:  # the default, in the current folder: maybe the run's own (`cd RUN`)
        default = Path("samples.txt" if text else "samples.png")
        out = writable_output(default, "-o", default.name, run_dir=run_dir)
    out = Path(out)
    _seed_drawing(model, module.SEED, seed)
    if text:  # a language model: samples are text
        from gencompile.runtime.training import write_text_samples

        _check_text_output(out, folder)
        if balanced:
            raise UsageRefusal(f"{run_dir} is not a conditional model: it takes no --balanced")
        return write_text_samples(model.sample_text(count, prompt, **sampling), out)
    if prompt is not None or "length" in sampling:
        raise UsageRefusal(f"{run_dir} is not a language model: it takes no --prompt or --length")
    if not folder:
        _check_sample_output(out, count)
    takes = model.sampling_options if isinstance(model, TakesSamplingOptions) else ()
    older = sorted(set(options) - set(takes))
    if older:
        raise RunError(
            f"{run_dir} was built by an older gencompile whose generated sample() takes no "
            f"{older[0]}; train it again to use this option"
        )
    classes = _class_labels(model, module, run_dir, count, labels, balanced)
    data = _drawing_data(module, statistics, out, folder)
    _check_data_output(out, folder, data.preprocessor.kind, data.element_shape, run_dir)
    with kept_interrupts() as check:  # Ctrl-C stops the drawing, however late it is seen
        chunks = _sample_chunks(model, data, count, classes, options, progress, check)
        if folder:
            names = _class_folder_names(model, classes)
            file_range = image_file_range(module.DATA["source"], statistics, data)
            return write_image_folder(out, chunks, count, file_range, classes, names)
        return _write_samples(out, count, data, chunks, classes, module)


def _check_prompt(run_dir: Path, lock: dict[str, Any], prompt: str) -> None:
    """Refuse a prompt the run's vocabulary cannot spell: its unknown characters (words)
    would become `<unk>` and the samples would start with replacement characters."""
    import json

    from gencompile.text import Tokenizer, unknown_prompt_message

    found = _vocabulary_file(lock)
    if found is None:
        return
    try:
        tokenizer = Tokenizer.from_dict(json.loads((run_dir / found).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunError(f"{run_dir / found}: cannot read the vocabulary ({error})") from None
    message = unknown_prompt_message(tokenizer, prompt)
    if message is not None:
        raise UsageRefusal(f"--prompt: {message}")


def _vocabulary_file(lock: dict[str, Any]) -> str | None:
    """The run's `<package>/vocabulary.json`, which every language model has; or None."""
    found = [f for f in lock.get("files", {}) if f.endswith("/vocabulary.json")]
    return found[0] if found else None


def _check_text_output(out: Path, folder: bool) -> None:
    """A language model writes text: any other output is refused with the one that works
    (its windows of token ids are no table or image to advise)."""
    if folder or out.suffix != ".txt":
        shown = f"{out}/" if folder else str(out)
        raise UsageRefusal(f"a language model writes text samples: use a .txt file, not {shown}")


def _seed_drawing(model: Any, run_seed: int, seed: int | None) -> None:
    """Global RNGs seeded with `seed` and the model's own generators moved by as much from
    the run's seed: no `seed`, or the run's own, draws exactly what training drew."""
    from gencompile.runtime import repro

    chosen = run_seed if seed is None else int(seed)
    repro.set_seed(chosen)
    shift_seed_states(model, chosen - int(run_seed))


def shift_seed_states(model: Any, by: int) -> None:
    """Move the seed of each of the model's own generators by `by` (their draws follow from
    the seed alone; TensorFlow's global seed plays no part, `gencompile serve` leaves it)."""
    from gencompile.runtime.evaluation import seed_states

    for variable in seed_states(model):
        state = np.asarray(variable.numpy()).copy()
        state[0] += by
        variable.assign(state)


def _class_labels(
    model: Any,
    module: Any,
    run_dir: Path,
    count: int,
    labels: Sequence[int] | int | None,
    balanced: bool,
) -> np.ndarray | None:
    """One class per sample for a conditional model (None for another): the given ones,
    equal counts of each (`balanced`, grouped by class), or cycling through the classes."""
    if not module.DATA["with_labels"]:
        if labels is not None or balanced:
            option = "--balanced" if balanced else "--label"
            raise UsageRefusal(f"{run_dir} is not a conditional model: it takes no {option}")
        return None
    import importlib

    classes = int(importlib.import_module(type(model).__module__).NUM_CLASSES)
    if balanced:
        if count % classes:
            raise UsageRefusal(
                f"--balanced draws equal counts of the {classes} classes: -n must be a "
                f"multiple of {classes} (got {count}; try -n {count + classes - count % classes})"
            )
        return np.repeat(np.arange(classes, dtype=np.int32), count // classes)
    if labels is None:
        return np.arange(count, dtype=np.int32) % classes
    chosen = np.asarray(labels if isinstance(labels, Sequence) else [labels] * count, np.int64)
    bad = chosen[(chosen < 0) | (chosen >= classes)]
    if bad.size:
        raise UsageRefusal(f"--label {int(bad[0])}: {run_dir} knows classes 0..{classes - 1}")
    return chosen.astype(np.int32)


def _write_samples(
    out: Path, count: int, data: Any, chunks: Any, classes: np.ndarray | None, module: Any
) -> Path:
    dtype = data.preprocessor.output_dtype  # float64 only for features float32 rounds
    size = dtype.itemsize
    if out.suffix == ".npz":
        _check_disk(out, count * size * int(np.prod(data.element_shape)))
        shape = (count, *data.element_shape)
        return write_npz_stream(out, "samples", shape, chunks, classes, dtype)
    if out.suffix in (".csv", ".parquet"):
        from gencompile.runtime.pipeline import feature_names

        names = feature_names(module.DATA["source"], data.element_shape)
        if out.suffix == ".parquet":
            _check_disk(out, count * size * (len(names) + 1))
            return write_parquet_stream(out, names, chunks, classes, dtype)
        _check_disk(out, count * 4 * size * int(np.prod(data.element_shape)))
        return write_csv_stream(out, names, chunks, classes, dtype)
    return _save_picture(np.concatenate(list(chunks)), out, data)


@dataclass(frozen=True)
class RecordedData:
    """What drawing needs of the training data, rebuilt from the preprocessing statistics
    the lock recorded when training finished: no data set to load (digits: scikit-learn)."""

    preprocessor: Any  # runtime.preprocessing.Preprocessor
    value_range: tuple[float, float] | None  # of images in data units, when known

    @property
    def element_shape(self) -> tuple[int, ...]:
        return tuple(self.preprocessor.element_shape)


def _drawing_data(
    module: Any, statistics: dict[str, Any] | None, out: Path, folder: bool = False
) -> Any:
    """The lock's statistics when they suffice: always for arrays and rows, and for
    pictures and image folders of images min-max scaled (their value range is the
    scale's, mapped back). A scatter plot shows held-out data beside the samples, and
    older locks have no statistics: then the data is loaded, as training did."""
    if statistics is not None:
        from gencompile.runtime.preprocessing import Preprocessor

        recorded = RecordedData(Preprocessor.from_dict(statistics), _image_range(statistics))
        arrays = not folder and out.suffix in (".npz", ".csv", ".parquet")
        if arrays or recorded.value_range is not None:
            return recorded
    from gencompile.runtime.data import load_data

    return load_data(module.DATA, seed=module.SEED)


def _image_range(statistics: dict[str, Any]) -> tuple[float, float] | None:
    """The training images' value range in data units: the inverse of `scale` when the
    map is min-max scaling alone (standardizing moves the ends; no scale records none)."""
    scale = statistics.get("scale")
    if statistics.get("kind") != "image" or scale is None or statistics.get("standardize"):
        return None
    center, factor, offset = (float(statistics[k]) for k in ("center", "factor", "offset"))
    low, high = ((float(end) - offset) / factor + center for end in scale)
    return low, high


def _save_picture(samples: np.ndarray, out: Path, data: Any) -> Path:
    from gencompile.runtime import pictures
    from gencompile.runtime.training import save_picture

    if isinstance(data, RecordedData):
        return pictures.save_samples(samples, out, "image", value_range=data.value_range)
    return save_picture(samples, out, data)


def _check_sample_output(out: Path, count: int) -> None:
    """Refuse, before drawing anything, a file type or a picture that cannot hold the samples."""
    if out.suffix not in SAMPLE_SUFFIXES:
        raise UsageRefusal(
            f"cannot write samples as {out.suffix or 'no suffix'}: use .png, .npz, .csv or "
            f".parquet, or a folder of images (-o {out.with_suffix('')}/)"
        )
    if out.suffix == ".png" and count > MAX_PICTURE_SAMPLES:
        raise UsageRefusal(
            f"a picture shows at most {MAX_PICTURE_SAMPLES:,} samples, not {count:,}; "
            f"write them as arrays instead: -o {out.with_suffix('.npz')}"
        )


def _sample_chunks(
    model: Any,
    data: Any,
    count: int,
    labels: np.ndarray | None,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
    check: Callable[[], None] = lambda: None,
) -> Iterator[np.ndarray]:
    """Samples in data units (`Preprocessor.inverse`: float64 for features float32
    rounds), drawn chunk by chunk (one chunk when `count` is small); the sample-time
    `options` go to the model's own (compiled or batched) sampling code. `check` is
    called before each chunk (`kept_interrupts`: a Ctrl-C a library lost stops here)."""
    values = max(1, int(np.prod(data.element_shape)))
    size = max(1, min(SAMPLE_CHUNK, SAMPLE_CHUNK_BYTES // (4 * values)))
    for start in range(0, count, size):
        check()
        stop = min(count, start + size)
        if labels is None:
            drawn = model.sample(stop - start, **options)
        else:
            drawn = model.sample(stop - start, labels=labels[start:stop], **options)
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below
            units = data.preprocessor.inverse(np.asarray(drawn, dtype=np.float32))
        _check_finite_samples(units, start, options)
        yield units
        if progress is not None:
            progress(stop, count)


def _check_finite_samples(units: np.ndarray, start: int, options: dict[str, Any]) -> None:
    """A sample that came out NaN or infinite is no sample: stop before it is written (the
    file is written under a temporary name, so nothing is left behind). The sample-time
    options given are named first: they, not the model, may have made the draws overflow."""
    bad = np.argwhere(~np.isfinite(units.reshape(len(units), -1)))
    if not bad.size:
        return
    first = start + int(bad[0][0])
    given = _overflow_advice(options)
    advice = (
        "draw with " + ", or ".join(given)
        if given
        else "the model gives non-finite values: check the run's training metrics "
        "(history.csv) and train it again"
    )
    raise RunError(
        f"sample {first} is not a finite number (the model overflowed); nothing was written: "
        + advice
    )


# The model's sample-time keyword arguments that scale its draws, and their options.
_SCALING_OPTIONS = {
    "temperature": "--temperature",
    "truncation": "--truncation",
    "guidance_scale": "--guidance",
}


def _overflow_advice(options: dict[str, Any]) -> list[str]:
    """What to draw with instead of each sample-time option given that can make the
    draws overflow (the model's keyword arguments: `sample_options.model_options`)."""
    advice = [
        f"a lower {flag} than {options[key]:g}"
        for key, flag in _SCALING_OPTIONS.items()
        if key in options
    ]
    if "sampler" in options:  # --sampler, --steps or --eta changed the spec's
        advice.append("the spec's own sampler (no --sampler, --steps or --eta)")
    return advice


def _check_disk(out: Path, size: int) -> None:
    """Refuse a file that cannot fit on its disk (with room to spare for the file system)."""
    free = shutil.disk_usage(out.parent).free
    if size + (1 << 20) > free:
        raise RunError(
            f"{out} would take {format_bytes(size)}, but its disk has only "
            f"{format_bytes(free)} free; draw fewer samples (-n) or write elsewhere"
        )


def is_folder_output(out: Path | str) -> bool:
    """`-o DIR/` (a trailing slash) or an existing folder: one image file per sample. An
    existing folder named like a sample file (`out.npz`) is a mistake, not a target."""
    text = os.fspath(out)
    if text.endswith(("/", os.sep)):
        return True
    return Path(text).is_dir() and Path(text).suffix not in SAMPLE_SUFFIXES


def writable_folder(folder: Path) -> Path:
    """Refuse a folder of samples that exists with files in it, or cannot be made."""
    if folder.exists() and not folder.is_dir():
        raise RunError(f"-o {folder}/: {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise RunError(
            f"-o {folder}/ already holds files; give a new or empty folder, so the samples "
            "are not mixed with others"
        )
    parent = folder.resolve().parent
    if not parent.is_dir():
        raise RunError(f"-o {folder}/: the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunError(f"-o {folder}/: the folder {parent} is not writable")
    return folder


def _check_data_output(
    out: Path, folder: bool, kind: str, shape: tuple[int, ...], run_dir: Path
) -> None:
    """Refuse an image folder of rows, and a Parquet table of images, with what to use."""
    shape = tuple(int(d) for d in shape)
    if folder and kind != "image":
        raise UsageRefusal(
            f"-o {out}/ writes one image file per sample, but {run_dir} draws {kind} rows of "
            f"{int(np.prod(shape))} values; write a table instead: -o samples.parquet "
            "(or .csv, .npz)"
        )
    if out.suffix == ".parquet" and kind == "image":
        raise UsageRefusal(
            f"a .parquet file holds a table, but {run_dir} draws images {shape}; write one "
            "PNG per sample into a folder (-o samples/), arrays (-o samples.npz) or one "
            "column per pixel (-o samples.csv)"
        )
    if folder and shape[-1] not in (1, 3):
        raise UsageRefusal(
            f"-o {out}/: images of {shape[-1]} channels cannot be PNG files (1 or 3); "
            "write them as arrays: -o samples.npz"
        )


# Sources whose examples are 8-bit images: their pixels are the data's own values.
def _pixel_source(source: dict[str, Any]) -> bool:
    kind = source.get("type")
    if kind == "tfrecord":
        return ((source.get("features") or {}).get("x") or {}).get("type") == "image"
    return kind in ("images", "keras")


def image_file_range(
    source: dict[str, Any], statistics: dict[str, Any] | None, data: Any
) -> tuple[float, float]:
    """What black (0) and white (255) of an image file stand for in the data's units: the
    one map `sample -o DIR/` writes PNG files with and `score`/`latent` read them back with.
    An image folder's, a keras data set's or tfrecord images' pixels are the data's own
    values (0..255); other images (the digits' 0..16, arrays) span the training images'
    value range, recorded in the lock when it can be, else read from the training split."""
    if _pixel_source(source):
        return 0.0, 255.0
    recorded = _image_range(statistics) if statistics is not None else None
    return recorded if recorded is not None else _value_range(data)


def _value_range(data: Any) -> tuple[float, float]:
    """The training images' value range in data units (what maps to black and white)."""
    if isinstance(data, RecordedData) and data.value_range is not None:
        return data.value_range
    from gencompile.runtime.splits import head
    from gencompile.runtime.training import RANGE_EXAMPLES

    raw = data.preprocessor.inverse(head(data.x_train, RANGE_EXAMPLES))
    return float(raw.min()), float(raw.max())


def _class_folder_names(model: Any, classes: np.ndarray | None) -> list[str] | None:
    """Class folder names: the labels, zero-padded so that both their sorted order (what
    `keras.utils.image_dataset_from_directory` numbers them by) and their order by value
    (gencompile's, `datafiles.class_order`) are the classes' order: folder 02 holds the
    class of the training folder 2 of 0..10."""
    if classes is None:
        return None
    import importlib

    count = int(importlib.import_module(type(model).__module__).NUM_CLASSES)
    width = len(str(count - 1))
    return [f"{k:0{width}d}" for k in range(count)]
