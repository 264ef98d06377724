"""The latent pictures and arrays, made from a model in memory: one function per picture.

`gencompile latent` (a finished run reopened from disk, `gencompile/latent.py`) and the
report's pictures at the end of training (`report_pictures.py`) both call these, so a
picture is made one way whichever path asks for it. Each writes a picture (.png) or its
arrays (.npz) in the training data's units and answers what it wrote, in words;
`plain=True` leaves the words out of the picture (the report prints them as its caption)
and draws it at a fraction of the cost (`latent_pictures.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.errors import RunError, UsageRefusal
from gencompile.files import atomic_open
from gencompile.runtime import splits
from gencompile.runtime.latent import PATHS, LatentSpace, traversal_grid

# A picture's value range and its grey background come from this many held-out examples.
PICTURE_REFERENCE = 2000


@dataclass(frozen=True)
class LatentResult:
    path: Path
    description: str  # what was written, in words


@dataclass
class LatentRun:
    """A trained model in memory, its data and its latent space."""

    run_dir: Path  # named in messages
    family: str
    model: Any
    data: Any  # runtime.pipeline.DataBundle
    space: Any  # runtime.latent.LatentSpace
    classes: int | None  # a conditional model's number of classes
    seed: int
    lock: dict[str, Any] | None = None  # spec.lock.json, when `gencompile latent` opened it

    def units(self, x: np.ndarray) -> np.ndarray:
        """Examples in the training data's units (the preprocessing undone): float32, or
        float64 for features float32 rounds (`Preprocessor.inverse`)."""
        flat = np.asarray(x, np.float32).reshape(-1, *self.data.element_shape)
        return self.data.preprocessor.inverse(flat).reshape(x.shape)


def space_for(
    family: str,
    model: Any,
    shape: tuple[int, ...],
    gan_center: np.ndarray | None = None,
    guidance: float = 0.0,
    sampler: dict[str, Any] | None = None,
) -> LatentSpace:
    """The family's latent space (`gan_center`: the centre of a GAN's prior, which only a
    traversal reads; `guidance`: a diffusion model's guidance scale; `sampler`: the
    deterministic sampler config a diffusion model maps x_T with, if not its own)."""
    from gencompile.runtime import latent

    if family == "vae":
        return latent.VaeSpace(model, shape)
    if family == "flow":
        return latent.FlowSpace(model, shape)
    if family == "mixture":
        return latent.MixtureSpace(model, shape)
    if family == "gan":
        return latent.GanSpace(model, shape, gan_center)
    return latent.DiffusionSpace(model, shape, guidance, sampler)


# ------------------------------------------------------------------ helpers


def first_held_out(run: LatentRun, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The first `count` held-out examples (model units) and their labels: the same
    examples whether the data is loaded or streamed (`splits.head`)."""
    data = run.data
    if len(data.x_val) == 0:
        raise RunError(f"{run.run_dir} has no held-out split (validation_split: 0)")
    positions = splits.head_positions(data.x_val, count)
    y = None if data.y_val is None else np.asarray(data.y_val)[positions]
    return splits.head(data.x_val, count), y


def decode_labels(
    run: LatentRun, label: int | None, given: np.ndarray | None, rows: int
) -> np.ndarray | None:
    """The classes a conditional model decodes with (None for another model)."""
    if run.classes is None:
        if label is not None:
            raise UsageRefusal(f"{run.run_dir} is not a conditional model: it takes no --label")
        return None
    if label is not None:
        if not 0 <= label < run.classes:
            raise UsageRefusal(f"--label {label}: {run.run_dir} knows classes 0..{run.classes - 1}")
        return np.full(rows, label, np.int32)
    if given is not None:
        return np.asarray(given, np.int32)[:rows]
    return (np.arange(rows) % run.classes).astype(np.int32)


def decode_grid(run: LatentRun, codes: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Codes (R, S, D) decoded in one batch (row r with label r) -> (R, S, *shape), in units."""
    rows, steps = codes.shape[:2]
    flat_labels = None if labels is None else np.repeat(labels, steps)
    decoded = run.space.decode(codes.reshape(rows * steps, -1), flat_labels)
    return run.units(decoded).reshape(rows, steps, *run.data.element_shape)


# ------------------------------------------------------------------ ends of a path


@dataclass(frozen=True)
class Ends:
    """Start and end codes (R, D), the labels they decode with, the ends in words, and the
    examples at the ends (R, 2, *shape; None for draws and component means)."""

    start: np.ndarray
    end: np.ndarray
    labels: np.ndarray | None
    words: str
    inputs: np.ndarray | None = None


def random_ends(run: LatentRun, count: int, seed: int, label: int | None = None) -> Ends:
    """`count` pairs of draws from the prior."""
    if count < 1:
        raise UsageRefusal(f"-n {count}: draw at least one pair")
    drawn = run.space.draw(2 * count, seed)
    labels = decode_labels(run, label, None, count)
    return Ends(drawn[:count], drawn[count:], labels, f"between random draws (seed {seed})")


def example_ends(
    run: LatentRun,
    a: tuple[np.ndarray, np.ndarray | None],
    b: tuple[np.ndarray, np.ndarray | None],
    words: str,
    label: int | None = None,
) -> Ends:
    """The codes of examples `a` and `b` (model units, with their labels), as many of each
    or one of either."""
    (xa, ya), (xb, yb) = a, b
    if len(xa) != len(xb) and 1 not in (len(xa), len(xb)):
        raise UsageRefusal(
            f"--from gives {len(xa)} examples and --to {len(xb)}: give as many, or one"
        )
    za, zb = run.space.encode(xa, ya), run.space.encode(xb, yb)
    za, zb = np.broadcast_arrays(za, zb) if len(za) != len(zb) else (za, zb)
    rows = len(za)
    if ya is not None and len(ya) != rows:
        ya = np.broadcast_to(ya, (rows,))
    labels = decode_labels(run, label, ya, rows)
    shape = (rows, *xa.shape[1:])
    inputs = np.stack([np.broadcast_to(xa, shape), np.broadcast_to(xb, shape)], axis=1)
    return Ends(np.array(za), np.array(zb), labels, words, inputs)


# ------------------------------------------------------------------ the pictures


def interpolation(
    run: LatentRun, out: Path, ends: Ends, path: str, steps: int, plain: bool = False
) -> LatentResult:
    """Paths from each start code to its end (`path`: linear or slerp), decoded."""
    codes = PATHS[path](ends.start, ends.end, steps)
    samples = decode_grid(run, codes, ends.labels)
    t = np.linspace(0.0, 1.0, steps).astype(np.float32)
    what = f"{path} interpolation in {run.space.what}, {ends.words}, {steps} steps"
    arrays = {"codes": codes, "samples": samples, "t": t}
    if ends.labels is not None:
        arrays["labels"] = ends.labels
    rows = [f"path {r}" for r in range(len(codes))]
    columns = [f"{v:.2f}" for v in t]
    shown = samples
    if ends.inputs is not None and run.data.kind == "image":  # the examples at the ends
        ends_in_units = run.units(ends.inputs)
        shown = np.concatenate([ends_in_units[:, :1], samples, ends_in_units[:, 1:]], axis=1)
        columns = ["from", *columns, "to"]
        what += " (first and last columns: the examples)"
    return write(run, out, arrays, shown, what, rows, columns, plain)


def traversal(
    run: LatentRun,
    out: Path,
    center: np.ndarray,
    around: str,
    dims: list[int],
    values: np.ndarray,
    labels: np.ndarray | None,
    plain: bool = False,
) -> LatentResult:
    """One row per dimension in `dims`: `center` (described by `around`) with that one
    dimension set to each of `values`, decoded with `labels` (one per row)."""
    codes = traversal_grid(center, dims, values)
    samples = decode_grid(run, codes, labels)
    arrays = {
        "codes": codes,
        "samples": samples,
        "dims": np.asarray(dims, np.int32),
        "values": values,
        "center": center,
    }
    title = (
        f"traversal of {run.space.what} around {around}: one row per dimension, "
        f"{len(values)} values from {values[0]:g} to {values[-1]:g}"
    )
    rows, columns = [f"dim {d}" for d in dims], [f"{v:.2g}" for v in values]
    return write(run, out, arrays, samples, title, rows, columns, plain)


def reconstruction(run: LatentRun, out: Path, count: int, plain: bool = False) -> LatentResult:
    """The first `count` held-out examples beside their reconstructions decode(encode(x))."""
    x, y = first_held_out(run, count)
    codes = run.space.encode(x, y)
    rebuilt = run.units(run.space.decode(codes, y))
    inputs = run.units(x)
    arrays = {
        "inputs": inputs,
        "reconstructions": rebuilt,
        "codes": codes,
        "indices": np.arange(len(x)),
    }
    if y is not None:
        arrays["labels"] = np.asarray(y, np.int32)
    title = f"held-out examples (top) and their reconstructions through {run.space.what} (bottom)"
    if run.data.kind == "image":
        grid = np.stack([inputs, rebuilt])
        return write(run, out, arrays, grid, title, ["input", "reconstruction"], None, plain)
    pairs = np.stack([inputs, rebuilt], axis=1)  # each example a line from it to its reconstruction
    title = "held-out examples (o) joined to their reconstructions (x)"
    rows = [f"example {i}" for i in range(len(x))]
    return write(run, out, arrays, pairs, title, rows, None, plain)


def latent_map(
    run: LatentRun, out: Path, method: str, count: int, plain: bool = False
) -> LatentResult:
    """The first `count` held-out codes in 2-D coloured by label: the codes themselves when
    they are 2-D, else their PCA or t-SNE (scikit-learn). A mixture maps the held-out data
    coloured by each example's most responsible component."""
    x, y = first_held_out(run, count)
    codes = run.space.encode(x, y if run.classes is not None else None)
    arrays: dict[str, np.ndarray] = {"codes": codes}
    landmarks = None
    if run.family == "mixture":
        responsibilities = run.space.responsibilities(x)
        colours, name = responsibilities.argmax(axis=1).astype(np.int32), "component"
        arrays |= {"responsibilities": responsibilities, "components": colours}
        # The data's own space: shown in its units, the means with it.
        codes = run.units(x).reshape(len(x), -1)
        means = run.space.means()
        landmarks = run.units(means.reshape(-1, *run.data.element_shape))
        landmarks = landmarks.reshape(len(means), -1)
        arrays |= {"codes": codes, "means": landmarks}
        what = "held-out data coloured by the most responsible component (x: component means)"
    else:
        colours, name = (None if y is None else np.asarray(y, np.int32)), "label"
        what = f"held-out codes ({run.space.what})" + ("" if y is None else " coloured by label")
    if y is not None:
        arrays["labels"] = np.asarray(y, np.int32)
    flat = two_dims(codes, method, run.seed, landmarks)
    arrays["points"] = flat.points
    title = f"{what}: {flat.how}"
    axes = flat.axes
    if run.family == "mixture":
        title = f"{what}: " + flat.how.replace("codes", "data").replace(" themselves", "")
        if codes.shape[1] == 2:
            axes = (run.data.feature_names[0], run.data.feature_names[1])
    if out.suffix == ".npz":
        return save_npz(out, arrays, title)
    from gencompile.runtime.latent_pictures import save_map

    save_map(flat.points, out, title, colours, name, axes, flat.landmarks, plain)
    return LatentResult(out, title)


@dataclass(frozen=True)
class Flat:
    """Codes in 2-D for a map: the points, how they were made, the axes' names, and the
    landmarks (a mixture's component means) placed alike, when the method can place them."""

    points: np.ndarray
    how: str
    axes: tuple[str, str]
    landmarks: np.ndarray | None


def two_dims(codes: np.ndarray, method: str, seed: int, landmarks: np.ndarray | None) -> Flat:
    """The codes themselves in 2-D (1-D along the x axis), else their PCA or t-SNE."""
    dims = codes.shape[1]
    if dims <= 2:
        pad = (lambda v: np.concatenate([v, np.zeros_like(v)], axis=1)) if dims == 1 else None
        points = codes if pad is None else pad(codes)
        marks = landmarks if pad is None or landmarks is None else pad(landmarks)
        how = "the 2-D codes themselves" if dims == 2 else "1-D codes on the x axis"
        return Flat(points.astype(np.float32), how, ("z0", "z1" if dims == 2 else ""), marks)
    if method == "tsne":  # t-SNE places no new points: no landmarks
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(codes) - 1) / 3)))
        points = TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(codes)
        return Flat(
            points.astype(np.float32), f"t-SNE of {dims}-D codes", ("t-SNE 1", "t-SNE 2"), None
        )
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(codes)
    share = float(pca.explained_variance_ratio_.sum())
    how = f"PCA of {dims}-D codes ({share:.0%} of their variance)"
    marks = None if landmarks is None else pca.transform(landmarks).astype(np.float32)
    return Flat(pca.transform(codes).astype(np.float32), how, ("PC 1", "PC 2"), marks)


# ------------------------------------------------------------------ writing


def write(run: LatentRun, out: Path, arrays: dict[str, np.ndarray], shown: np.ndarray,
          title: str, rows: list[str], columns: list[str] | None,
          plain: bool = False) -> LatentResult:  # fmt: skip
    """`arrays` as an .npz, or `shown` (R, C, *shape, in data units) as a picture."""
    if out.suffix == ".npz":
        return save_npz(out, arrays, title)
    from gencompile.runtime import latent_pictures

    data = run.data
    if data.kind == "image":
        split = data.x_val if len(data.x_val) else data.x_train
        held_out = run.units(splits.head(split, PICTURE_REFERENCE))
        value_range = (float(held_out.min()), float(held_out.max()))
        latent_pictures.save_image_rows(shown, out, title, rows, value_range, columns, plain)
    else:
        shown_data = splits.head(data.x_val, PICTURE_REFERENCE)
        reference = run.units(shown_data) if len(shown_data) else None
        names = (*data.feature_names[:2], "")[:2] if data.feature_names else ("x0", "x1")
        if int(np.prod(data.element_shape)) > 2:
            title += f" (first 2 of {int(np.prod(data.element_shape))} features)"
        latent_pictures.save_vector_rows(shown, out, title, rows, reference, names, plain)
    return LatentResult(out, title)


def save_npz(out: Path, arrays: dict[str, np.ndarray], title: str) -> LatentResult:
    with atomic_open(out) as handle:  # the output was checked writable before
        np.savez(handle, **arrays)
    return LatentResult(out, f"{title}; arrays: {', '.join(arrays)}")
