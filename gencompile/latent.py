"""`gencompile latent RUN <action>`: walk a trained model's latent space.

interpolate, traverse, reconstruct, arithmetic and map, each written as a picture (.png)
or as arrays (.npz) in the training data's units. What a code is depends on the family
(`runtime/latent.py`); an action a family cannot do is refused, saying why, before
TensorFlow starts. Examples come from the run's held-out split (by index) or from a file
read as `score --input` reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.errors import RunError
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import atomic_file, writable_output

# A picture's value range and its grey background come from this many held-out examples.
PICTURE_REFERENCE = 2000

ACTIONS = ("interpolate", "traverse", "reconstruct", "arithmetic", "map")

NO_LATENT = (
    "an autoregressive model has no latent space: it generates each value (token, pixel) "
    "from the values before it, and no code describes a whole example, so there is "
    "nothing to {action}"
)
NO_ENCODER = (
    "a GAN has no encoder: nothing maps an example to its z, so there are no codes of "
    "examples to {action}; interpolate and traverse work on random draws of z (--random)"
)
DISCRETE = (
    "a Gaussian mixture has no continuous code to {action}: its latent is the component k "
    "of each example; use `map` (held-out data coloured by the most responsible "
    "component) or `interpolate --from K --to L` (a path between component means)"
)
NOISE = (
    "a diffusion model's code is its starting noise x_T, one value per data value, with no "
    "axes or clusters that mean something, so there is no {action}; interpolate "
    "(--random, or between examples with a deterministic DDIM sampler) and reconstruct "
    "(DDIM inversion) work"
)
REFUSED: dict[str, dict[str, str]] = {
    "autoregressive": dict.fromkeys(ACTIONS, NO_LATENT),
    "gan": dict.fromkeys(("reconstruct", "arithmetic", "map"), NO_ENCODER),
    "mixture": dict.fromkeys(("traverse", "reconstruct", "arithmetic"), DISCRETE),
    "diffusion": dict.fromkeys(("traverse", "arithmetic", "map"), NOISE),
}


@dataclass(frozen=True)
class LatentResult:
    path: Path
    description: str  # what was written, in words


@dataclass
class Opened:
    """A trained run, its held-out data and its latent space."""

    run_dir: Path
    family: str
    model: Any
    data: Any  # runtime.pipeline.DataBundle
    space: Any  # runtime.latent.LatentSpace
    classes: int | None  # a conditional model's number of classes
    seed: int

    def units(self, x: np.ndarray) -> np.ndarray:
        """Examples in the training data's units (the preprocessing undone)."""
        flat = np.asarray(x, np.float32).reshape(-1, *self.data.element_shape)
        return np.asarray(self.data.preprocessor.inverse(flat), np.float32).reshape(x.shape)


def refuse(family: str, action: str, run_dir: Path) -> None:
    """Stop, saying why, when `family` has no meaning for `action`."""
    if action not in ACTIONS:
        raise RunError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    why = REFUSED.get(family, {}).get(action)
    if why is not None:
        raise RunError(f"cannot {action} {run_dir}: " + why.format(action=action))


def _open(
    run_dir: Path, action: str, out: Path, allow_custom_code: bool, encodes: bool = True
) -> Opened:
    """The run opened for `action` (`encodes`: it maps examples to codes), once the lock
    says the family can do it."""
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    family = lock["family"]
    refuse(family, action, run_dir)
    if family == "diffusion" and encodes:
        _refuse_stochastic_sampler(lock["resolved_spec"]["model"]["sampler"], action, run_dir)
    if out.suffix not in (".png", ".npz"):
        raise RunError(f"-o {out}: write a picture (.png) or arrays (.npz)")
    writable_output(out, "-o", f"{action}.png")
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.table_input import check_training_data

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    check_training_data(data.fingerprint, lock, run_dir)
    conditional = bool(module.DATA["with_labels"])
    classes = None
    if conditional:
        from gencompile.scoring import _model_classes

        classes = _model_classes(model)
    space = _space(family, model, data, lock)
    return Opened(run_dir, family, model, data, space, classes, int(module.SEED))


def _refuse_stochastic_sampler(sampler: dict[str, Any], action: str, run_dir: Path) -> None:
    """DDIM inversion runs the deterministic sampler backwards; a sampler that adds noise at
    each step has no inverse, so no noise maps back to an example."""
    if sampler["type"] == "ddim" and float(sampler.get("eta", 0.0)) == 0.0:
        return
    used = sampler["type"] + (f" with eta {sampler['eta']}" if sampler["type"] == "ddim" else "")
    raise RunError(
        f"cannot {action} examples with {run_dir}: its sampler ({used}) adds noise at each "
        "step, so it has no inverse mapping an example to its noise; DDIM inversion needs "
        "model.sampler: {type: ddim, eta: 0}. Interpolate between random draws instead "
        "(--random)"
    )


def _space(family: str, model: Any, data: Any, lock: dict[str, Any]) -> Any:
    from gencompile.runtime import latent

    shape = tuple(data.element_shape)
    if family == "vae":
        return latent.VaeSpace(model, shape)
    if family == "flow":
        return latent.FlowSpace(model, shape)
    if family == "mixture":
        return latent.MixtureSpace(model, shape)
    model_spec = lock["resolved_spec"]["model"]
    if family == "gan":
        prior = model_spec.get("prior") or {"type": "normal"}
        centre = (
            (float(prior["low"]) + float(prior["high"])) / 2 if prior["type"] == "uniform" else 0.0
        )
        return latent.GanSpace(model, shape, np.full(int(model_spec["latent_dim"]), centre))
    guidance = float((model_spec.get("conditional") or {}).get("guidance_scale", 0.0))
    return latent.DiffusionSpace(model, shape, guidance)


# ------------------------------------------------------------------ choosing examples


def held_out_indices(text: str, count: int, option: str) -> np.ndarray:
    """`3` or `3,5,7`: indices of the held-out split, checked."""
    indices = np.array([int(part) for part in text.split(",")], np.int64)
    bad = indices[(indices < 0) | (indices >= count)]
    if count == 0:
        raise RunError(f"{option} {text}: the run has no held-out split (validation_split: 0)")
    if bad.size:
        raise RunError(f"{option} {int(bad[0])}: the held-out split has examples 0..{count - 1}")
    return indices


def _is_indices(text: str) -> bool:
    return re.fullmatch(r"\d+(,\d+)*", text.strip()) is not None


def examples(opened: Opened, text: str, option: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples (model units) and their labels: held-out indices, or a file in data units."""
    data = opened.data
    if _is_indices(text):
        chosen = held_out_indices(text, len(data.x_val), option)
        x = np.asarray(data.x_val[chosen])  # a streamed split reads only these rows
        return x, None if data.y_val is None else np.asarray(data.y_val)[chosen]
    from gencompile.scoring import _prepared, read_input

    path = Path(text)
    return _prepared(read_input(path), data, path, opened.classes)


def _first(opened: Opened, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    data = opened.data
    if len(data.x_val) == 0:
        raise RunError(f"{opened.run_dir} has no held-out split (validation_split: 0)")
    count = min(count, len(data.x_val))
    y = None if data.y_val is None else np.asarray(data.y_val)[:count]
    return np.asarray(data.x_val[:count]), y


def _decode_labels(
    opened: Opened, label: int | None, given: np.ndarray | None, rows: int
) -> np.ndarray | None:
    """The classes a conditional model decodes with (None for another model)."""
    if opened.classes is None:
        if label is not None:
            raise RunError(f"{opened.run_dir} is not a conditional model: it takes no --label")
        return None
    if label is not None:
        if not 0 <= label < opened.classes:
            raise RunError(
                f"--label {label}: {opened.run_dir} knows classes 0..{opened.classes - 1}"
            )
        return np.full(rows, label, np.int32)
    if given is not None:
        return np.asarray(given, np.int32)[:rows]
    return (np.arange(rows) % opened.classes).astype(np.int32)


def _decode_grid(opened: Opened, codes: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Codes (R, S, D) decoded in one batch (row r with label r) -> (R, S, *shape), in units."""
    rows, steps = codes.shape[:2]
    flat_labels = None if labels is None else np.repeat(labels, steps)
    decoded = opened.space.decode(codes.reshape(rows * steps, -1), flat_labels)
    return opened.units(decoded).reshape(rows, steps, *opened.data.element_shape)


# ------------------------------------------------------------------ the actions


def interpolate(
    run_dir: Path | str,
    out: Path | str,
    start: str | None = None,
    end: str | None = None,
    random: bool = False,
    count: int = 1,
    seed: int | None = None,
    path: str = "linear",
    steps: int = 8,
    label: int | None = None,
    allow_custom_code: bool = False,
) -> LatentResult:
    """Paths through the latent space, decoded: between examples (`start`, `end`: held-out
    indices such as "3" or "3,5", or files), between `count` pairs of random draws, or for
    a mixture between component means (`start`, `end`: component indices)."""
    from gencompile.runtime.latent import PATHS

    run_dir, out = Path(run_dir), Path(out)
    if path not in PATHS:
        raise RunError(f"--path {path}: choose linear or slerp")
    if steps < 2:
        raise RunError(f"--steps {steps}: a path needs at least 2 steps (its two ends)")
    if random == (start is not None or end is not None):
        raise RunError("give the ends: --from A --to B (examples), or --random (random draws)")
    if not random and (start is None or end is None):
        raise RunError("an interpolation needs both ends: --from A --to B")
    lock = verified_lock(Path(run_dir), allow_custom_code)
    if lock["family"] == "gan" and not random:
        raise RunError(
            f"cannot interpolate between examples of {run_dir}: "
            + NO_ENCODER.format(action="interpolate")
        )
    if lock["family"] == "mixture" and random:
        raise RunError(
            f"cannot interpolate random draws of {run_dir}: "
            + DISCRETE.format(action="interpolate between random draws of")
        )
    opened = _open(run_dir, "interpolate", out, allow_custom_code, encodes=not random)
    a, b, labels, ends, inputs = _ends(opened, start, end, random, count, seed, label)
    codes = PATHS[path](a, b, steps)
    samples = _decode_grid(opened, codes, labels)
    t = np.linspace(0.0, 1.0, steps).astype(np.float32)
    what = f"{path} interpolation in {opened.space.what}, {ends}, {steps} steps"
    arrays = {"codes": codes, "samples": samples, "t": t}
    if labels is not None:
        arrays["labels"] = labels
    rows = [f"path {r}" for r in range(len(codes))]
    columns = [f"{v:.2f}" for v in t]
    shown = samples
    if inputs is not None and opened.data.kind == "image":  # the examples themselves at the ends
        ends_in_units = opened.units(inputs)
        shown = np.concatenate([ends_in_units[:, :1], samples, ends_in_units[:, 1:]], axis=1)
        columns = ["from", *columns, "to"]
        what += " (first and last columns: the examples)"
    return _write(opened, out, arrays, shown, what, rows, columns)


def _ends(
    opened: Opened,
    start: str | None,
    end: str | None,
    random: bool,
    count: int,
    seed: int | None,
    label: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str, np.ndarray | None]:
    """Start and end codes (R, D), decoding labels, the ends in words, and the examples at
    the ends (R, 2, *shape; None for draws and component means)."""
    space = opened.space
    if random:
        if count < 1:
            raise RunError(f"-n {count}: draw at least one pair")
        chosen = opened.seed if seed is None else int(seed)
        drawn = space.draw(2 * count, chosen)
        labels = _decode_labels(opened, label, None, count)
        words = f"between random draws (seed {chosen})"
        return drawn[:count], drawn[count:], labels, words, None
    if opened.family == "mixture":
        means = space.means()
        a = held_out_indices(str(start), len(means), "--from")
        b = held_out_indices(str(end), len(means), "--to")
        a, b = np.broadcast_arrays(a, b)
        return means[a], means[b], None, f"between component means {start} and {end}", None
    xa, ya = examples(opened, str(start), "--from")
    xb, yb = examples(opened, str(end), "--to")
    if len(xa) != len(xb) and 1 not in (len(xa), len(xb)):
        raise RunError(f"--from gives {len(xa)} examples and --to {len(xb)}: give as many, or one")
    za, zb = space.encode(xa, ya), space.encode(xb, yb)
    za, zb = np.broadcast_arrays(za, zb) if len(za) != len(zb) else (za, zb)
    rows = len(za)
    if ya is not None and len(ya) != rows:
        ya = np.broadcast_to(ya, (rows,))
    labels = _decode_labels(opened, label, ya, rows)
    shape = (rows, *xa.shape[1:])
    inputs = np.stack([np.broadcast_to(xa, shape), np.broadcast_to(xb, shape)], axis=1)
    return np.array(za), np.array(zb), labels, f"from {start} to {end}", inputs


def traverse(
    run_dir: Path | str,
    out: Path | str,
    dims: list[int] | None = None,
    value_range: tuple[float, float] = (-3.0, 3.0),
    steps: int = 7,
    example: int | None = None,
    label: int | None = None,
    allow_custom_code: bool = False,
) -> LatentResult:
    """One row per latent dimension: the code `example` (a held-out index; default the
    prior's centre) with that one dimension set to `steps` values across `value_range`."""
    from gencompile.runtime.latent import traversal_grid

    run_dir, out = Path(run_dir), Path(out)
    if steps < 2:
        raise RunError(f"--steps {steps}: a traversal needs at least 2 values")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise RunError(f"--range {low:g} {high:g}: the first value must be below the second")
    if example is not None and verified_lock(run_dir, allow_custom_code)["family"] == "gan":
        raise RunError(
            f"cannot traverse around an example of {run_dir}: "
            + NO_ENCODER.format(action="traverse around")
        )
    opened = _open(run_dir, "traverse", out, allow_custom_code, encodes=example is not None)
    if example is None:
        centre, given, around = opened.space.center(), None, "the prior's centre"
    else:
        x, given = examples(opened, str(example), "--example")
        centre, around = opened.space.encode(x, given)[0], f"the code of held-out example {example}"
    size = centre.size
    chosen = list(range(min(size, 10))) if not dims else list(dims)
    bad = [d for d in chosen if not 0 <= d < size]
    if bad:
        raise RunError(f"--dims {bad[0]}: the latent space has dimensions 0..{size - 1}")
    values = np.linspace(low, high, steps).astype(np.float32)
    codes = traversal_grid(centre, chosen, values)
    labels = _decode_labels(
        opened, label, None if given is None else np.repeat(given, len(chosen)), len(chosen)
    )
    samples = _decode_grid(opened, codes, labels)
    arrays = {
        "codes": codes,
        "samples": samples,
        "dims": np.asarray(chosen, np.int32),
        "values": values,
        "center": centre,
    }
    title = (
        f"traversal of {opened.space.what} around {around}: one row per dimension, "
        f"{steps} values from {low:g} to {high:g}"
    )
    return _write(
        opened,
        out,
        arrays,
        samples,
        title,
        [f"dim {d}" for d in chosen],
        [f"{v:.2g}" for v in values],
    )


def reconstruct(
    run_dir: Path | str, out: Path | str, count: int = 8, allow_custom_code: bool = False
) -> LatentResult:
    """The first `count` held-out examples beside their reconstructions decode(encode(x))."""
    run_dir, out = Path(run_dir), Path(out)
    if count < 1:
        raise RunError(f"-n {count}: reconstruct at least one example")
    opened = _open(run_dir, "reconstruct", out, allow_custom_code, encodes=True)
    x, y = _first(opened, count)
    codes = opened.space.encode(x, y)
    rebuilt = opened.units(opened.space.decode(codes, y))
    inputs = opened.units(x)
    arrays = {
        "inputs": inputs,
        "reconstructions": rebuilt,
        "codes": codes,
        "indices": np.arange(len(x)),
    }
    if y is not None:
        arrays["labels"] = np.asarray(y, np.int32)
    title = (
        f"held-out examples (top) and their reconstructions through {opened.space.what} (bottom)"
    )
    if opened.data.kind == "image":
        grid = np.stack([inputs, rebuilt])
        return _write(opened, out, arrays, grid, title, ["input", "reconstruction"], None)
    pairs = np.stack([inputs, rebuilt], axis=1)  # each example a line from it to its reconstruction
    title = "held-out examples (o) joined to their reconstructions (x)"
    return _write(opened, out, arrays, pairs, title, [f"example {i}" for i in range(len(x))], None)


def arithmetic(
    run_dir: Path | str,
    out: Path | str,
    add: int,
    subtract: int,
    count: int = 8,
    steps: int = 5,
    allow_custom_code: bool = False,
) -> LatentResult:
    """The attribute vector v = mean code of class `add` - mean code of class `subtract`
    (held-out labels), added to the codes of `count` held-out examples of class `subtract`
    in `steps` strengths from 0 (the reconstruction) to 1."""
    run_dir, out = Path(run_dir), Path(out)
    opened = _open(run_dir, "arithmetic", out, allow_custom_code)
    data = opened.data
    if data.y_val is None:
        raise RunError(
            f"cannot do arithmetic with {run_dir}: its data has no labels, and the attribute "
            "vector is a difference of class means (train on labelled data)"
        )
    y = np.asarray(data.y_val)
    for option, value in (("--add", add), ("--subtract", subtract)):
        if not np.any(y == value):
            raise RunError(
                f"{option} {value}: no held-out example has that label "
                f"(labels: {', '.join(map(str, np.unique(y)))})"
            )
    if steps < 2:
        raise RunError(f"--steps {steps}: at least 2 strengths (0 and 1)")
    x_all = np.asarray(data.x_val)
    labels_all = y if opened.classes is not None else None
    codes_all = opened.space.encode(x_all, labels_all)
    vector = codes_all[y == add].mean(axis=0) - codes_all[y == subtract].mean(axis=0)
    chosen = np.flatnonzero(y == subtract)[:count]
    alphas = np.linspace(0.0, 1.0, steps).astype(np.float32)
    codes = codes_all[chosen][:, None, :] + alphas[None, :, None] * vector[None, None, :]
    decode_labels = None if opened.classes is None else y[chosen].astype(np.int32)
    samples = _decode_grid(opened, codes.astype(np.float32), decode_labels)
    inputs = opened.units(x_all[chosen])
    arrays = {"inputs": inputs, "codes": codes.astype(np.float32), "samples": samples,
              "vector": vector.astype(np.float32), "alphas": alphas, "indices": chosen}  # fmt: skip
    title = (
        f"held-out {subtract}s plus alpha x (mean code of {add}s - mean code of {subtract}s), "
        f"alpha from 0 to 1"
    )
    rows = [f"example {i}" for i in chosen]
    if data.kind == "image":
        shown = np.concatenate([inputs[:, None], samples], axis=1)
        return _write(
            opened, out, arrays, shown, title, rows, ["input", *[f"a={a:.2g}" for a in alphas]]
        )
    return _write(opened, out, arrays, samples, title, rows, None)


def latent_map(
    run_dir: Path | str,
    out: Path | str,
    method: str = "pca",
    allow_custom_code: bool = False,
) -> LatentResult:
    """The held-out codes in 2-D coloured by label: the codes themselves when they are 2-D,
    else their PCA or t-SNE (scikit-learn). A mixture maps the held-out data coloured by
    each example's most responsible component."""
    run_dir, out = Path(run_dir), Path(out)
    if method not in ("pca", "tsne"):
        raise RunError(f"--method {method}: choose pca or tsne")
    opened = _open(run_dir, "map", out, allow_custom_code)
    x, y = _first(opened, len(opened.data.x_val))
    codes = opened.space.encode(x, y if opened.classes is not None else None)
    arrays: dict[str, np.ndarray] = {"codes": codes}
    landmarks = None
    if opened.family == "mixture":
        responsibilities = opened.space.responsibilities(x)
        colours, name = responsibilities.argmax(axis=1).astype(np.int32), "component"
        arrays |= {"responsibilities": responsibilities, "components": colours}
        # The data's own space: shown in its units, the means with it.
        codes = opened.units(x).reshape(len(x), -1)
        means = opened.space.means()
        landmarks = opened.units(means.reshape(-1, *opened.data.element_shape))
        landmarks = landmarks.reshape(len(means), -1)
        arrays |= {"codes": codes, "means": landmarks}
        what = "held-out data coloured by the most responsible component (x: component means)"
    else:
        colours, name = (None if y is None else np.asarray(y, np.int32)), "label"
        what = f"held-out codes ({opened.space.what})" + ("" if y is None else " coloured by label")
    if y is not None:
        arrays["labels"] = np.asarray(y, np.int32)
    flat = _two_dims(codes, method, opened.seed, landmarks)
    arrays["points"] = flat.points
    title = f"{what}: {flat.how}"
    axes = flat.axes
    if opened.family == "mixture":
        title = f"{what}: " + flat.how.replace("codes", "data").replace(" themselves", "")
        if codes.shape[1] == 2:
            axes = (opened.data.feature_names[0], opened.data.feature_names[1])
    if out.suffix == ".npz":
        return _save_npz(out, arrays, title)
    from gencompile.runtime.latent_pictures import save_map

    save_map(flat.points, out, title, colours, name, axes, flat.landmarks)
    return LatentResult(out, title)


@dataclass(frozen=True)
class Flat:
    """Codes in 2-D for a map: the points, how they were made, the axes' names, and the
    landmarks (a mixture's component means) placed alike, when the method can place them."""

    points: np.ndarray
    how: str
    axes: tuple[str, str]
    landmarks: np.ndarray | None


def _two_dims(codes: np.ndarray, method: str, seed: int, landmarks: np.ndarray | None) -> Flat:
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


def _write(opened: Opened, out: Path, arrays: dict[str, np.ndarray], shown: np.ndarray,
           title: str, rows: list[str], columns: list[str] | None) -> LatentResult:  # fmt: skip
    """`arrays` as an .npz, or `shown` (R, C, *shape, in data units) as a picture."""
    if out.suffix == ".npz":
        return _save_npz(out, arrays, title)
    from gencompile.runtime import latent_pictures

    data = opened.data
    if data.kind == "image":
        split = data.x_val if len(data.x_val) else data.x_train
        held_out = opened.units(np.asarray(split[:PICTURE_REFERENCE]))
        value_range = (float(held_out.min()), float(held_out.max()))
        latent_pictures.save_image_rows(shown, out, title, rows, value_range, columns)
    else:
        shown_data = np.asarray(data.x_val[:PICTURE_REFERENCE])
        reference = opened.units(shown_data) if len(shown_data) else None
        names = (*data.feature_names[:2], "")[:2] if data.feature_names else ("x0", "x1")
        if int(np.prod(data.element_shape)) > 2:
            title += f" (first 2 of {int(np.prod(data.element_shape))} features)"
        latent_pictures.save_vector_rows(shown, out, title, rows, reference, names)
    return LatentResult(out, title)


def _save_npz(out: Path, arrays: dict[str, np.ndarray], title: str) -> LatentResult:
    with atomic_file(out) as handle:
        np.savez(handle, **arrays)
    return LatentResult(out, f"{title}; arrays: {', '.join(arrays)}")
