"""The report's pictures of the latent space, drawn at the end of training.

The trained model is still in memory, so each picture is made by the same function
`gencompile latent` calls on a reopened run (`latent_actions.py`), with the report's
settings. Every `gencompile train` runs this, so it is kept cheap: one batch of held-out
data (256 examples at most), PCA (never t-SNE), the networks called eagerly on a few small
arrays (no new `tf.function` to trace). `output: {report: {latent_pictures: false}}` turns it off.

`latent/pictures.json` lists what was drawn with a caption each, and what was not and why,
so the report (which imports no TensorFlow) shows exactly these and says what each shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gencompile.runtime import repro
from gencompile.runtime.conditional import model_classes
from gencompile.runtime.final_files import final_folder
from gencompile.runtime.latent_actions import (
    LatentResult,
    LatentRun,
    decode_labels,
    example_ends,
    first_held_out,
    interpolation,
    latent_map,
    random_ends,
    reconstruction,
    space_for,
    traversal,
)

FOLDER = "latent"  # in the run directory
MANIFEST = "pictures.json"
RECONSTRUCTED = 8  # held-out examples beside their reconstructions
MAPPED = 256  # held-out examples on the map: one batch (a flow's pass over them dominates)
PATHS = 4  # interpolations, one row each
PATH_STEPS = 8
TRAVERSED_DIMS = 8  # the first latent dimensions, one row each
TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 7).astype(np.float32)  # prior standard deviations
NEEDS_HELD_OUT = {"reconstructions", "map"}  # and interpolations between examples


def write_latent_pictures(
    model: Any, data: Any, family: str, pictures: tuple[str, ...], run_dir: Path | str
) -> dict[str, Path]:
    """Draw `pictures` (of reconstructions, map, traversal, interpolations) of the trained
    `model` into `run_dir/latent/`, and list them in `latent/pictures.json` (a pending
    continuation's go beside its project until it finished: `final_files`)."""
    run_dir = final_folder(run_dir)
    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    seed = int(_built_with(model, "SEED", 0))
    space = space_for(family, model, tuple(data.element_shape))
    run = LatentRun(Path(run_dir), family, model, data, space, model_classes(model), seed)
    held_out = len(data.x_val) >= 2  # a path between two examples
    drawn: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for name in pictures:
        if not held_out and (name in NEEDS_HELD_OUT or _encodes_ends(family, name)):
            why = "fewer than 2 held-out examples (data.validation_split)"
            skipped.append({"name": name, "why": why})
            continue
        result = DRAW[name](run, folder / f"{name}.png")
        drawn.append({"name": name, "file": f"{FOLDER}/{name}.png", "caption": result.description})
    _remove_stale(folder, {entry["file"] for entry in drawn})
    repro.atomic_write_json(folder / MANIFEST, {"pictures": drawn, "skipped": skipped})
    return {entry["name"]: Path(run_dir) / entry["file"] for entry in drawn}


def _built_with(model: Any, name: str, default: Any) -> Any:
    """A constant of the generated module the model's class lives in (its SEED)."""
    import importlib

    return getattr(importlib.import_module(type(model).__module__), name, default)


def _encodes_ends(family: str, name: str) -> bool:
    """Interpolations run between held-out examples, except a GAN's (between draws)."""
    return name == "interpolations" and family != "gan"


def _remove_stale(folder: Path, kept: set[str]) -> None:
    """Pictures an earlier drawing listed that this one did not draw (none on a resumed run
    of the same spec; kept for a clear folder whatever happened before)."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return
    earlier = json.loads(manifest.read_text()).get("pictures", [])
    for entry in earlier:
        if entry["file"] not in kept:
            (folder.parent / entry["file"]).unlink(missing_ok=True)


# ------------------------------------------------------------------ one function a picture


def _reconstructions(run: LatentRun, out: Path) -> LatentResult:
    return reconstruction(run, out, RECONSTRUCTED, plain=True)


def _map(run: LatentRun, out: Path) -> LatentResult:
    return latent_map(run, out, "pca", MAPPED, plain=True)


def _traversal(run: LatentRun, out: Path) -> LatentResult:
    center = run.space.center()
    dims = list(range(min(center.size, TRAVERSED_DIMS)))
    labels = decode_labels(run, None, None, len(dims))
    around = "the prior's centre"
    return traversal(run, out, center, around, dims, TRAVERSAL_VALUES, labels, plain=True)


def _interpolations(run: LatentRun, out: Path) -> LatentResult:
    if run.family == "gan":  # no encoder: between draws of z
        ends = random_ends(run, PATHS, run.seed)
        return interpolation(run, out, ends, "linear", PATH_STEPS, plain=True)
    x, y = first_held_out(run, 2 * PATHS)
    rows = len(x) // 2
    a = (x[:rows], None if y is None else y[:rows])
    b = (x[rows : 2 * rows], None if y is None else y[rows : 2 * rows])
    words = f"from held-out examples 0-{rows - 1} to {rows}-{2 * rows - 1}"
    ends = example_ends(run, a, b, words)
    return interpolation(run, out, ends, "linear", PATH_STEPS, plain=True)


DRAW: dict[str, Callable[[LatentRun, Path], LatentResult]] = {
    "reconstructions": _reconstructions,
    "map": _map,
    "traversal": _traversal,
    "interpolations": _interpolations,
}
