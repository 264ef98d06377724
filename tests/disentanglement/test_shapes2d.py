"""The shapes2d built-in: deterministic from its seed, factors on their grid, images that
show them, and a spec source whose shape the compiler knows without loading it."""

from __future__ import annotations

import numpy as np
import pytest

from gencompile.compiler.data_shapes import infer_data_shape
from gencompile.runtime import shapes2d
from gencompile.runtime.sources import builtin_factors
from gencompile.spec import load_spec_text

SPEC = """\
spec_version: 1
name: shapes
data:
  source: {type: builtin, name: shapes2d, n_samples: 500}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
"""


def test_same_seed_same_images_other_seed_other_images() -> None:
    a, b, c = (shapes2d.shapes2d(300, seed) for seed in (5, 5, 6))
    for first, second in zip(a, b, strict=True):
        assert np.array_equal(first, second)
    assert not np.array_equal(a[2], c[2])


def test_factors_cover_their_grid_independently_and_the_label_is_the_shape() -> None:
    images, labels, codes = shapes2d.shapes2d(4000, 0)
    assert images.shape == (4000, 24, 24, 1) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert codes.shape == (4000, 4)
    for k, size in enumerate(shapes2d.FACTOR_SIZES):
        counts = np.bincount(codes[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0.6 * 4000 / size  # every value, ~evenly
    assert np.array_equal(labels, codes[:, 0])
    # drawn independently: shape and scale are uncorrelated
    assert abs(np.corrcoef(codes[:, 0], codes[:, 1])[0, 1]) < 0.05


def test_images_show_their_factors() -> None:
    # one square per x position, then per y position, then per scale (the others fixed)
    fixed = np.array([0, 2, 3, 4])
    by_x = np.tile(fixed, (8, 1))
    by_x[:, 2] = np.arange(8)
    by_y = np.tile(fixed, (8, 1))
    by_y[:, 3] = np.arange(8)
    by_scale = np.tile(fixed, (4, 1))
    by_scale[:, 1] = np.arange(4)
    columns = np.arange(24) + 0.5
    rows_up = 24 - (np.arange(24) + 0.5)  # the image's y axis points up

    def centre(images: np.ndarray, axis: int, coordinate: np.ndarray) -> np.ndarray:
        mass = images[..., 0].sum(axis=axis)
        return (mass * coordinate).sum(axis=1) / mass.sum(axis=1)

    np.testing.assert_allclose(centre(shapes2d.render(by_x), 1, columns), shapes2d.CENTRES)
    np.testing.assert_allclose(centre(shapes2d.render(by_y), 2, rows_up), shapes2d.CENTRES)
    # a square of half-width s covers (2 s)^2 pixels
    areas = shapes2d.render(by_scale)[..., 0].sum(axis=(1, 2))
    np.testing.assert_allclose(areas, (2 * shapes2d.SCALES) ** 2)
    # the four shapes at one place and scale are four different pictures
    shapes = shapes2d.render(np.array([[s, 3, 4, 4] for s in range(4)]))
    assert len({image.tobytes() for image in shapes}) == 4
    assert shapes.reshape(4, -1).sum(axis=1).argmax() == 0  # the square covers the most


def test_factors_of_the_source_match_what_the_loader_reads() -> None:
    source = {"type": "builtin", "name": "shapes2d", "n_samples": 200}
    names, codes = builtin_factors(source, 7)
    assert names == ("shape", "scale", "x", "y")
    np.testing.assert_array_equal(codes, shapes2d.shapes2d(200, 7)[2])
    kept = builtin_factors({**source, "classes": [1, 3]}, 7)[1]
    assert set(np.unique(kept[:, 0])) == {1, 3}
    assert builtin_factors({"type": "builtin", "name": "digits"}, 7) is None


def test_the_compiler_knows_the_image_shape() -> None:
    data = load_spec_text(SPEC).spec.data
    shape = infer_data_shape(data)
    assert shape.kind == "image"
    assert shape.shape == (shapes2d.SIZE, shapes2d.SIZE, 1)


def resolved_config(source: dict) -> dict:
    """A data config as the compiler writes it."""
    return {
        "source": source,
        "validation_split": 0.2,
        "preprocessing": {"scale": [0.0, 1.0], "standardize": False},
        "augmentation": [],
        "batch_size": 64,
        "shuffle_buffer": 10000,
        "with_labels": False,
        "drop_remainder": False,
    }


def test_the_held_out_factors_are_those_of_the_held_out_images() -> None:
    from gencompile.runtime.data import load_data

    bundle = load_data(
        resolved_config({"type": "builtin", "name": "shapes2d", "n_samples": 300}), 5
    )
    assert bundle.factor_names == ("shape", "scale", "x", "y")
    assert bundle.factors_val.shape == (60, 4)
    # the images are in [0, 1] already: scaling to [0, 1] leaves them as drawn
    np.testing.assert_array_equal(bundle.x_val, shapes2d.render(bundle.factors_val))
    np.testing.assert_array_equal(bundle.y_val, bundle.factors_val[:, 0])
    digits = load_data(resolved_config({"type": "builtin", "name": "digits"}), 5)
    assert digits.factors_val is None and digits.factor_names == ()


@pytest.mark.parametrize("subset", [{"fraction": 0.5}, {"classes": [0, 2], "fraction": 0.5}])
def test_factors_are_those_of_the_examples_a_fraction_keeps(subset: dict) -> None:
    """data.source.fraction keeps a subset of the examples; their factors are the same
    subset's, row for row (the label is the shape factor), so mig scores the right ones."""
    from gencompile.runtime.data import load_arrays, load_data

    source = {"type": "builtin", "name": "shapes2d", "n_samples": 400, **subset}
    x, y = load_arrays(source, 7)
    _, codes = builtin_factors(source, 7)
    assert len(codes) == len(x) < 400
    np.testing.assert_array_equal(codes[:, 0], y)
    np.testing.assert_array_equal(shapes2d.render(codes), x)
    bundle = load_data(resolved_config(source), 7)
    assert bundle.factors_val is not None
    np.testing.assert_array_equal(bundle.factors_val[:, 0], bundle.y_val)
