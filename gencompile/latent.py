"""`gencompile latent RUN <action>`: walk a trained model's latent space.

interpolate, traverse, reconstruct, arithmetic and map, each written as a picture (.png)
or as arrays (.npz) in the training data's units. What a code is depends on the family
(`runtime/latent.py`); an action a family cannot do is refused, saying why, before
TensorFlow starts. Examples come from the run's held-out split (by index) or from a file
read as `score --input` reads it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gencompile.errors import UsageRefusal
from gencompile.generated import load_trained_model, verified_lock
from gencompile.outputs import check_suffix, writable_output
from gencompile.sample_options import check_seed

if TYPE_CHECKING:  # the runtime imports TensorFlow: only once a run is opened
    from gencompile.runtime.latent_actions import Ends, LatentResult, LatentRun

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
CODES = (
    "{action} is not available for a VQ-VAE yet: its code is a grid of discrete code "
    "indices, without continuous axes to move along; `gencompile sample` draws code grids "
    "from its prior, and the model's own call reconstructs x through its codes"
)
REFUSED: dict[str, dict[str, str]] = {
    "autoregressive": dict.fromkeys(ACTIONS, NO_LATENT),
    "gan": dict.fromkeys(("reconstruct", "arithmetic", "map"), NO_ENCODER),
    "mixture": dict.fromkeys(("traverse", "reconstruct", "arithmetic"), DISCRETE),
    "diffusion": dict.fromkeys(("traverse", "arithmetic", "map"), NOISE),
    "vq_vae": dict.fromkeys(ACTIONS, CODES),
}


def refuse(family: str, action: str, run_dir: Path) -> None:
    """Stop, saying why, when `family` has no meaning for `action`."""
    if action not in ACTIONS:
        raise UsageRefusal(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    why = REFUSED.get(family, {}).get(action)
    if why is not None:
        raise UsageRefusal(f"cannot {action} {run_dir}: " + why.format(action=action))


def _open(
    run_dir: Path,
    action: str,
    out: Path,
    allow_custom_code: bool,
    inputs: dict[str, str | None] | None = None,
) -> LatentRun:
    """The run opened for `action`, once the lock says the family can do it; `inputs`
    (option -> a held-out index or a file) are what `out` must not overwrite."""
    lock = verified_lock(run_dir, allow_custom_code)  # before TensorFlow starts
    family = lock["family"]
    refuse(family, action, run_dir)
    check_suffix(out, "-o", (".png", ".npz"), "write a picture (.png) or arrays (.npz)")
    files = {k: v for k, v in (inputs or {}).items() if v is not None and not _is_indices(str(v))}
    writable_output(out, "-o", f"{action}.png", files, run_dir)
    from gencompile.runtime import repro
    from gencompile.runtime.conditional import model_classes
    from gencompile.runtime.data import load_data
    from gencompile.runtime.latent_actions import LatentRun, space_for
    from gencompile.table_input import check_training_data

    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    repro.set_seed(module.SEED)
    data = load_data(module.DATA, seed=module.SEED)
    check_training_data(data.fingerprint, lock, run_dir)
    classes = model_classes(model) if module.DATA["with_labels"] else None
    model_spec = lock["resolved_spec"]["model"]
    space = space_for(
        family,
        model,
        tuple(data.element_shape),
        gan_center=_gan_center(model_spec) if family == "gan" else None,
        guidance=float((model_spec.get("conditional") or {}).get("guidance_scale", 0.0)),
        sampler=_deterministic_sampler(model_spec) if family == "diffusion" else None,
    )
    return LatentRun(run_dir, family, model, data, space, classes, int(module.SEED), lock)


def _deterministic_sampler(model_spec: dict[str, Any]) -> dict[str, Any] | None:
    """The DDIM config (eta = 0) that maps x_T to examples and back: None when the model's
    own sampler is one; else DDIM over the same schedule, with the spec's DDIM steps or
    `gencompile sample --sampler ddim`'s default. A sampler that adds noise at each step
    has no inverse, so it cannot encode, and its paths would not be smooth."""
    sampler = model_spec["sampler"]
    if sampler["type"] == "ddim" and float(sampler.get("eta", 0.0)) == 0.0:
        return None
    from gencompile.sample_options import sampler_config

    return sampler_config(model_spec, {"sampler": "ddim", "eta": 0.0})


def _gan_center(model_spec: dict[str, Any]) -> np.ndarray:
    """The centre of a GAN's prior on z (the middle of a uniform one), from its spec."""
    prior = model_spec.get("prior") or {"type": "normal"}
    middle = (float(prior["low"]) + float(prior["high"])) / 2 if prior["type"] == "uniform" else 0.0
    return np.full(int(model_spec["latent_dim"]), middle, np.float32)


# ------------------------------------------------------------------ choosing examples


def held_out_indices(text: str, count: int, option: str) -> np.ndarray:
    """`3` or `3,5,7`: indices of the held-out split, checked."""
    if count == 0:
        raise UsageRefusal(f"{option} {text}: the run has no held-out split (validation_split: 0)")
    return _indices(text, count, option, f"the held-out split has examples 0..{count - 1}")


def component_indices(text: str, count: int, option: str) -> np.ndarray:
    """`1` or `0,2`: a mixture's components, whose means its paths run between, checked."""
    if not _is_indices(text):  # a file or a negative number: not a component
        raise UsageRefusal(
            f"{option} {text}: a mixture's paths run between component means; give component "
            f"indices in 0..{count - 1} (such as 0 or 0,2)"
        )
    return _indices(text, count, option, f"the mixture has components 0..{count - 1}")


def _indices(text: str, count: int, option: str, known: str) -> np.ndarray:
    """`3` or `3,5,7`, each below `count` (`known` says which there are)."""
    indices = np.array([int(part) for part in text.split(",")], np.int64)
    bad = indices[(indices < 0) | (indices >= count)]
    if bad.size:
        raise UsageRefusal(f"{option} {int(bad[0])}: {known}")
    return indices


def _is_indices(text: str) -> bool:
    return re.fullmatch(r"\d+(,\d+)*", text.strip()) is not None


def examples(
    opened: LatentRun, text: str, option: str, label: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples (model units) and their labels: held-out indices, or a file in data units
    (a conditional model's file without labels: every example of class `label`)."""
    data = opened.data
    if _is_indices(text):
        from gencompile.runtime.splits import head_positions

        chosen = held_out_indices(text, len(data.x_val), option)
        # Held-out example i: the i-th in loaded data's order, also where streamed shards
        # keep the split in file order; a streamed split reads only these rows.
        chosen = head_positions(data.x_val, int(chosen.max()) + 1)[chosen]
        x = np.asarray(data.x_val[chosen])
        return x, None if data.y_val is None else np.asarray(data.y_val)[chosen]
    from gencompile.scoring import _prepared, read_input

    assert opened.lock is not None  # `_open` keeps the lock it verified
    path = Path(text)
    raw = read_input(path, option, opened.lock)
    if raw.labels is None and label is not None and opened.classes is not None:
        if not 0 <= label < opened.classes:
            raise UsageRefusal(
                f"--label {label}: {opened.run_dir} knows classes 0..{opened.classes - 1}"
            )
        raw = replace(raw, labels=np.full(len(raw.x), label))
    return _prepared(raw, data, path, opened.classes, opened.lock, option, "encodes")


# ------------------------------------------------------------------ the actions
# Each checks its options, opens the run, and calls the one function in
# `runtime/latent_actions.py` that makes its picture (the report's pictures call it too).


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
    run_dir, out = Path(run_dir), Path(out)
    if path not in ("linear", "slerp"):
        raise UsageRefusal(f"--path {path}: choose linear or slerp")
    if steps < 2:
        raise UsageRefusal(f"--steps {steps}: a path needs at least 2 steps (its two ends)")
    check_seed(seed)
    if random == (start is not None or end is not None):
        raise UsageRefusal("give the ends: --from A --to B (examples), or --random (random draws)")
    if not random and (start is None or end is None):
        raise UsageRefusal("an interpolation needs both ends: --from A --to B")
    lock = verified_lock(Path(run_dir), allow_custom_code)
    if lock["family"] == "gan" and not random:
        raise UsageRefusal(
            f"cannot interpolate between examples of {run_dir}: "
            + NO_ENCODER.format(action="interpolate")
        )
    if lock["family"] == "mixture" and random:
        raise UsageRefusal(
            f"cannot interpolate random draws of {run_dir}: "
            + DISCRETE.format(action="interpolate between random draws of")
        )
    given = {"--from": start, "--to": end}
    opened = _open(run_dir, "interpolate", out, allow_custom_code, given)
    ends = _ends(opened, start, end, random, count, seed, label)
    from gencompile.runtime.latent_actions import interpolation

    return interpolation(opened, out, ends, path, steps)


def _ends(
    opened: LatentRun,
    start: str | None,
    end: str | None,
    random: bool,
    count: int,
    seed: int | None,
    label: int | None,
) -> Ends:
    """The ends of the paths the options name."""
    from gencompile.runtime.latent_actions import Ends, decode_labels, example_ends, random_ends

    if random:
        return random_ends(opened, count, opened.seed if seed is None else int(seed), label)
    if opened.family == "mixture":
        means = opened.space.means()
        a = component_indices(str(start), len(means), "--from")
        b = component_indices(str(end), len(means), "--to")
        if len(a) != len(b) and 1 not in (len(a), len(b)):  # as example_ends says it
            raise UsageRefusal(
                f"--from gives {len(a)} components and --to {len(b)}: give as many, or one"
            )
        a, b = np.broadcast_arrays(a, b)
        labels = decode_labels(opened, label, None, len(a))  # refuses --label if unconditional
        return Ends(means[a], means[b], labels, f"between component means {start} and {end}")
    a_examples = examples(opened, str(start), "--from", label)
    b_examples = examples(opened, str(end), "--to", label)
    return example_ends(opened, a_examples, b_examples, f"from {start} to {end}", label)


def traverse(
    run_dir: Path | str,
    out: Path | str,
    dims: list[int] | None = None,
    value_range: tuple[float, float] = (-3.0, 3.0),
    steps: int = 7,
    example: int | str | None = None,
    label: int | None = None,
    allow_custom_code: bool = False,
) -> LatentResult:
    """One row per latent dimension: the code `example` (a held-out index, or a file read
    as interpolate's ends are; default the prior's centre) with that one dimension set to
    `steps` values across `value_range`."""
    run_dir, out = Path(run_dir), Path(out)
    if steps < 2:
        raise UsageRefusal(f"--steps {steps}: a traversal needs at least 2 values")
    low, high = (float(v) for v in value_range)
    if not (np.isfinite(low) and np.isfinite(high)):  # inf would decode to NaN samples
        raise UsageRefusal(f"--range {low:g} {high:g}: give finite numbers, such as -3 3")
    if not high > low:
        raise UsageRefusal(f"--range {low:g} {high:g}: the first value must be below the second")
    if example is not None and verified_lock(run_dir, allow_custom_code)["family"] == "gan":
        raise UsageRefusal(
            f"cannot traverse around an example of {run_dir}: "
            + NO_ENCODER.format(action="traverse around")
        )
    inputs = {"--example": None if example is None else str(example)}
    opened = _open(run_dir, "traverse", out, allow_custom_code, inputs)
    from gencompile.runtime.latent_actions import decode_labels, traversal

    if example is None:
        centre, given, around = opened.space.center(), None, "the prior's centre"
    else:
        x, given = examples(opened, str(example), "--example", label)
        centre, around = opened.space.encode(x, given)[0], traversed(str(example), len(x))
    size = centre.size
    chosen = list(range(min(size, 10))) if not dims else list(dims)
    bad = [d for d in chosen if not 0 <= d < size]
    if bad:
        raise UsageRefusal(f"--dims {bad[0]}: the latent space has dimensions 0..{size - 1}")
    values = np.linspace(low, high, steps).astype(np.float32)
    labels = decode_labels(
        opened, label, None if given is None else np.repeat(given, len(chosen)), len(chosen)
    )
    return traversal(opened, out, centre, around, chosen, values, labels)


def traversed(example: str, count: int) -> str:
    """What a traversal is around: held-out examples' code, or the one of a file's example
    (its first, when it holds several), named by the file.

    >>> traversed("4", 1)
    'the code of held-out example 4'
    >>> traversed("data/one.npz", 1), traversed("two.npz", 2)
    ('the code of the example in one.npz', 'the code of the first example in two.npz')
    """
    if _is_indices(example):
        return f"the code of held-out example {example}"
    which = "the example" if count == 1 else "the first example"
    return f"the code of {which} in {Path(example).name}"


def reconstruct(
    run_dir: Path | str, out: Path | str, count: int = 8, allow_custom_code: bool = False
) -> LatentResult:
    """The first `count` held-out examples beside their reconstructions decode(encode(x))."""
    run_dir, out = Path(run_dir), Path(out)
    if count < 1:
        raise UsageRefusal(f"-n {count}: reconstruct at least one example")
    opened = _open(run_dir, "reconstruct", out, allow_custom_code)
    from gencompile.runtime.latent_actions import reconstruction

    return reconstruction(opened, out, count)


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
    from gencompile.runtime.latent_actions import decode_grid, write

    data = opened.data
    if data.y_val is None:
        raise UsageRefusal(
            f"cannot do arithmetic with {run_dir}: its data has no labels, and the attribute "
            "vector is a difference of class means (train on labelled data)"
        )
    y = np.asarray(data.y_val)
    for option, value in (("--add", add), ("--subtract", subtract)):
        if not np.any(y == value):
            raise UsageRefusal(
                f"{option} {value}: no held-out example has that label "
                f"(labels: {', '.join(map(str, np.unique(y)))})"
            )
    if steps < 2:
        raise UsageRefusal(f"--steps {steps}: at least 2 strengths (0 and 1)")
    x_all = np.asarray(data.x_val)
    labels_all = y if opened.classes is not None else None
    codes_all = opened.space.encode(x_all, labels_all)
    vector = codes_all[y == add].mean(axis=0) - codes_all[y == subtract].mean(axis=0)
    chosen = np.flatnonzero(y == subtract)[:count]
    alphas = np.linspace(0.0, 1.0, steps).astype(np.float32)
    codes = codes_all[chosen][:, None, :] + alphas[None, :, None] * vector[None, None, :]
    decode_labels = None if opened.classes is None else y[chosen].astype(np.int32)
    samples = decode_grid(opened, codes.astype(np.float32), decode_labels)
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
        return write(
            opened, out, arrays, shown, title, rows, ["input", *[f"a={a:.2g}" for a in alphas]]
        )
    return write(opened, out, arrays, samples, title, rows, None)


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
        raise UsageRefusal(f"--method {method}: choose pca or tsne")
    opened = _open(run_dir, "map", out, allow_custom_code)
    from gencompile.runtime import latent_actions

    return latent_actions.latent_map(opened, out, method, len(opened.data.x_val))
