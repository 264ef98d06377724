"""`shapes2d`: small grey images of a shape at a known position and scale.

A toy with known generative factors, for disentanglement metrics (`mig`), in the spirit of
dSprites: each image shows one shape (square, ellipse, heart or triangle) with its centre
on an 8 x 8 grid of positions and one of 4 scales. Every factor is drawn independently and
uniformly from its grid with the seed, so the factors are independent by construction. The
images are drawn in NumPy with 2 x 2 supersampling (grey edges), one array operation per
shape: no loop over examples, no download.
"""

from __future__ import annotations

import numpy as np

SIZE = 24  # pixels on each side (`compiler.data_shapes` states the same shape)
SHAPES = ("square", "ellipse", "heart", "triangle")
FACTOR_NAMES = ("shape", "scale", "x", "y")
SCALES = np.array([2.5, 3.5, 4.5, 5.5])  # half-width of the shape, in pixels
POSITIONS = 8  # centres per axis
# Centres 1.5 pixels apart keep the largest shape (half-width 5.5) inside; on half pixels,
# as the scales, so that the 2 x 2 sub-pixels draw a square's edges exactly where they are.
CENTRES = 7.0 + 1.5 * np.arange(POSITIONS)
FACTOR_SIZES = (len(SHAPES), len(SCALES), POSITIONS, POSITIONS)
SUPERSAMPLING = 2  # sub-pixels per pixel side


def factors(n_samples: int, seed: int) -> np.ndarray:
    """(n_samples, 4) int32 factor indices (shape, scale, x, y), each uniform on its grid."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, FACTOR_SIZES, size=(n_samples, len(FACTOR_SIZES))).astype(np.int32)


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the point (u, v) of the shape's own frame (unit half-width, v upwards) is
    inside the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":  # wider than tall, so that it differs from a disc
        return u**2 + (v / 0.6) ** 2 <= 1.0
    if shape == "heart":  # (x^2 + y^2 - 1)^3 = x^2 y^3, scaled to about unit half-width
        x, y = u * 1.15, v * 1.15 + 0.15
        return (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0
    # triangle pointing up: apex (0, 1), base from (-1, -0.8) to (1, -0.8)
    return (v >= -0.8) & (v <= 1.0 - 1.8 * np.abs(u))


def render(codes: np.ndarray) -> np.ndarray:
    """(N, SIZE, SIZE, 1) float32 images in [0, 1] of factor indices `codes` (N, 4)."""
    fine = SIZE * SUPERSAMPLING
    # Sub-pixel centres in pixel units; the image's v axis points up.
    grid = (np.arange(fine) + 0.5) / SUPERSAMPLING
    px, py = grid[None, None, :], (SIZE - grid)[None, :, None]
    images = np.zeros((len(codes), SIZE, SIZE), np.float32)
    for index, shape in enumerate(SHAPES):  # one vectorised pass per shape
        rows = np.flatnonzero(codes[:, 0] == index)
        if rows.size == 0:
            continue
        scale = SCALES[codes[rows, 1]][:, None, None]
        cx = CENTRES[codes[rows, 2]][:, None, None]
        cy = CENTRES[codes[rows, 3]][:, None, None]
        mask = _inside(shape, (px - cx) / scale, (py - cy) / scale).astype(np.float32)
        # Average each pixel's sub-pixels: grey edges.
        blocks = mask.reshape(rows.size, SIZE, SUPERSAMPLING, SIZE, SUPERSAMPLING)
        images[rows] = blocks.mean(axis=(2, 4))
    return images[..., None]


def shapes2d(n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, shape labels, factor indices) of `n_samples` examples drawn with `seed`."""
    codes = factors(n_samples, seed)
    return render(codes), codes[:, 0].copy(), codes
