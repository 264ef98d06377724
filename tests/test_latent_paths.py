"""The latent space's paths and grids (`runtime/latent.py`), on plain arrays."""

from __future__ import annotations

import numpy as np

from gencompile.runtime import latent


def test_linear_path_is_evenly_spaced_and_ends_on_the_codes() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    path = latent.linear_path(a, b, 6)
    assert path.shape == (4, 6, 5) and path.dtype == np.float32
    np.testing.assert_array_equal(path[:, 0], a)
    np.testing.assert_array_equal(path[:, -1], b)
    np.testing.assert_allclose(path[:, 2], a + 0.4 * (b - a), atol=1e-6)


def test_slerp_follows_the_sphere_between_codes_of_one_norm() -> None:
    a = np.array([[3.0, 0.0, 0.0]], np.float32)
    b = np.array([[0.0, 3.0, 0.0]], np.float32)
    path = latent.slerp_path(a, b, 5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=2), 3.0, rtol=1e-6)
    angles = np.degrees(np.arctan2(path[0, :, 1], path[0, :, 0]))
    np.testing.assert_allclose(angles, [0.0, 22.5, 45.0, 67.5, 90.0], atol=1e-4)
    np.testing.assert_array_equal(path[:, 0], a)
    np.testing.assert_array_equal(path[:, -1], b)


def test_slerp_of_parallel_codes_is_the_straight_line() -> None:
    a = np.array([[1.0, 1.0]], np.float32)
    path = latent.slerp_path(a, 2 * a, 3)  # no arc between parallel codes
    np.testing.assert_allclose(path[0], [[1.0, 1.0], [1.5, 1.5], [2.0, 2.0]], atol=1e-6)
    assert np.isfinite(latent.slerp_path(a, -a, 3)).all()  # antiparallel: no NaN


def test_traversal_grid_sets_one_dimension_per_row() -> None:
    center = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    values = np.array([-1.0, 0.0, 1.0], np.float32)
    grid = latent.traversal_grid(center, [3, 1], values)
    assert grid.shape == (2, 3, 4)
    np.testing.assert_array_equal(grid[0, :, 3], values)
    np.testing.assert_array_equal(grid[1, :, 1], values)
    np.testing.assert_array_equal(grid[0][:, [0, 1, 2]], np.tile(center[[0, 1, 2]], (3, 1)))
    np.testing.assert_array_equal(grid[1][:, [0, 2, 3]], np.tile(center[[0, 2, 3]], (3, 1)))
