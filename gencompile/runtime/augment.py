"""Differentiable augmentation of what a GAN's discriminator sees (small-data GANs).

`diff_augment(x, policy, seed)` is DiffAugment (Zhao et al. 2020): the same family of
random transformations T is applied to real and generated images, in the discriminator's
update and in the generator's, so D never sees an unaugmented image and G's gradient flows
back through T (every operation here is differentiable in x). Each example draws its own
transformation from `seed` (a `keras.random.SeedGenerator`), so a seeded run is repeatable.
Under a distribution strategy, the step's `split` (`replicas.split`) places each replica's
rows of the draws without a collective of their own.

The policy names groups of operations, applied in the policy's order:

    color        brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)
    translation  a shift by up to 1/8 of the height and width (whole pixels), zero padded
    cutout       a square of half the image's side, at a random centre, set to zero

as in the authors' code, which assumes images scaled to [-1, 1] (zero is mid-grey).

With a `probability` p, each operation is applied to each example with probability p
instead of always: the adaptive augmentation of Karras et al. 2020 (ADA), whose p is held
and steered by `AdaptiveProbability`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from gencompile.runtime import replicas

Tensor = tf.Tensor

TRANSLATION_RATIO = 0.125  # largest shift, as a share of the image's side
CUTOUT_RATIO = 0.5  # side of the cut square, as a share of the image's side

__all__ = [
    "OPERATIONS",
    "POLICIES",
    "AdaptiveProbability",
    "brightness",
    "contrast",
    "cut",
    "cutout",
    "diff_augment",
    "saturation",
    "shifted",
    "translation",
]


Split = replicas.BatchSplit | None  # the step's split under a strategy, or None


def _rows(x: Tensor, split: Split) -> Any:
    """What `replicas.draw` places the draws by: the step's split, else x's examples."""
    return tf.shape(x)[0] if split is None else split


def _per_example_uniform(
    x: Tensor, seed: Any, low: float = 0.0, high: float = 1.0, split: Split = None
) -> Tensor:
    """One U(low, high) draw per example, shaped (batch, 1, 1, 1) to broadcast over pixels.

    Under a distribution strategy each replica keeps its rows of one global draw, so the
    augmentation does not depend on the number of replicas."""
    draw = replicas.draw(lambda n: keras.random.uniform([n, 1, 1, 1], seed=seed), _rows(x, split))
    return tf.cast(low + (high - low) * draw, x.dtype)


def _per_example_integers(x: Tensor, seed: Any, low: int, high: int, split: Split = None) -> Tensor:
    """One integer in [low, high) per example, shape (batch,)."""
    return replicas.draw(
        lambda n: keras.random.randint([n], low, high, seed=seed, dtype="int32"), _rows(x, split)
    )


# --------------------------------------------------------------------------- operations


def brightness(x: Tensor, seed: Any, split: Split = None) -> Tensor:
    """x + b, b ~ U(-0.5, 0.5) per example."""
    return x + _per_example_uniform(x, seed, -0.5, 0.5, split)


def saturation(x: Tensor, seed: Any, split: Split = None) -> Tensor:
    """Each pixel's channels pushed from or pulled to their mean by s ~ U(0, 2) per example
    (nothing changes on one channel)."""
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return (x - mean) * _per_example_uniform(x, seed, 0.0, 2.0, split) + mean


def contrast(x: Tensor, seed: Any, split: Split = None) -> Tensor:
    """Each image's values pushed from or pulled to the image's mean by c ~ U(0.5, 1.5)."""
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _per_example_uniform(x, seed, 0.5, 1.5, split) + mean


def shifted(x: Tensor, rows: Tensor, columns: Tensor) -> Tensor:
    """Each image moved down by rows[i] and right by columns[i] pixels, the uncovered
    border zero: out[i, h, w] = x[i, h - rows[i], w - columns[i]] (0 outside the image)."""
    height, width = x.shape[1], x.shape[2]
    pad = max(height, width)  # larger than any shift: every source index is in the padding
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    source_rows = tf.range(height)[None, :] - rows[:, None] + pad  # (batch, height)
    source_columns = tf.range(width)[None, :] - columns[:, None] + pad  # (batch, width)
    x = tf.gather(padded, source_rows, axis=1, batch_dims=1)
    return tf.gather(x, source_columns, axis=2, batch_dims=1)


def translation(x: Tensor, seed: Any, split: Split = None) -> Tensor:
    """A shift by a whole number of pixels in [-s, s] down and right (s = 1/8 of the side,
    rounded), drawn per example, zero padded."""
    height, width = x.shape[1], x.shape[2]
    max_rows = int(height * TRANSLATION_RATIO + 0.5)
    max_columns = int(width * TRANSLATION_RATIO + 0.5)
    rows = _per_example_integers(x, seed, -max_rows, max_rows + 1, split)
    columns = _per_example_integers(x, seed, -max_columns, max_columns + 1, split)
    return shifted(x, rows, columns)


def cut(x: Tensor, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
    """x with rows [top, top + size[0]) x columns [left, left + size[1]) of each image set
    to zero (the part of the square inside the image)."""
    height, width = x.shape[1], x.shape[2]
    row = tf.range(height)[None, :]
    column = tf.range(width)[None, :]
    in_rows = (row >= top[:, None]) & (row < top[:, None] + size[0])  # (batch, height)
    in_columns = (column >= left[:, None]) & (column < left[:, None] + size[1])
    inside = in_rows[:, :, None] & in_columns[:, None, :]  # (batch, height, width)
    return x * tf.cast(~inside, x.dtype)[..., None]


def cutout(x: Tensor, seed: Any, split: Split = None) -> Tensor:
    """A square of half the image's side (rounded) set to zero, its centre drawn per
    example so that it may hang over the border (as in the authors' code)."""
    height, width = x.shape[1], x.shape[2]
    size = (int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5))
    centre_row = _per_example_integers(x, seed, 0, height + 1 - size[0] % 2, split)
    centre_column = _per_example_integers(x, seed, 0, width + 1 - size[1] % 2, split)
    return cut(x, centre_row - size[0] // 2, centre_column - size[1] // 2, size)


Operation = Callable[[Tensor, Any, Split], Tensor]  # (x, seed, split)
OPERATIONS: dict[str, Operation] = {
    "brightness": brightness,
    "saturation": saturation,
    "contrast": contrast,
    "translation": translation,
    "cutout": cutout,
}
# The spec's policy names and the operations each stands for, in order.
POLICIES: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
}


def diff_augment(
    x: Any, policy: Any, seed: Any, probability: Any = None, split: Split = None
) -> Tensor:
    """T(x): the policy's operations on a batch of images (batch, height, width, channels),
    each example with its own random draws from `seed`.

    `probability` None applies every operation (DiffAugment); a value p in [0, 1] applies
    each operation to each example with probability p (ADA). `split` is the step's
    `replicas.split` under a distribution strategy (None: each draw gathers the counts).
    """
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(
            f"diff_augment takes a batch of images (batch, height, width, channels). "
            f"Received: shape={x.shape}"
        )
    for group in policy:
        if group not in POLICIES:
            raise ValueError(
                f"unknown augmentation {group!r}; expected one of {', '.join(POLICIES)}"
            )
        for name in POLICIES[group]:
            augmented = OPERATIONS[name](x, seed, split)
            if probability is None:
                x = augmented
            else:
                chosen = _per_example_uniform(x, seed, split=split) < tf.cast(probability, x.dtype)
                x = tf.where(chosen, augmented, x)
    return x


# --------------------------------------------------------------------------- ADA's p


class AdaptiveProbability(keras.layers.Layer):
    """The augmentation probability p of ADA (Karras et al. 2020) and its controller.

    `update(real_scores)` is called after every discriminator update with D's scores of the
    (augmented) real examples. It accumulates r_t = E[sign(D(x) - threshold)], the share of
    real examples D calls real minus the share it calls generated: near 1 when D has learnt
    the training set by heart. `threshold` is the loss's decision boundary (0 for a logit,
    0.5 for least squares' targets 0 and 1); a Wasserstein critic has none, so ADA does not
    apply to it. Every `interval` updates p moves by sign(r_t - target) x (examples seen
    since the last move) / ramp_images, clipped to [0, 1], and the accumulators restart.
    p and the accumulators are weights of the model, so a checkpoint holds them and a
    resumed run continues exactly.
    """

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        ramp_images: int = 500_000,
        initial_p: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not 0.0 < float(target) < 1.0:
            raise ValueError(f"target must be in (0, 1). Received: target={target}")
        if int(interval) < 1:
            raise ValueError(f"interval must be >= 1. Received: interval={interval}")
        if int(ramp_images) < 1:
            raise ValueError(f"ramp_images must be >= 1. Received: ramp_images={ramp_images}")
        if not 0.0 <= float(initial_p) <= 1.0:
            raise ValueError(f"initial_p must be in [0, 1]. Received: initial_p={initial_p}")
        self.target = float(target)
        self.interval = int(interval)
        self.ramp_images = int(ramp_images)
        self.initial_p = float(initial_p)
        self.threshold = float(threshold)

        def state(name: str, value: float = 0.0) -> keras.Variable:
            return self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(value),
                trainable=False,
                name=name,
            )

        self.probability = state("probability", self.initial_p)
        # sum of sign(D(x) - threshold) since the last move of p
        self.sign_sum = state("sign_sum")
        self.examples = state("examples")  # real examples scored since the last move
        self.updates = state("updates")  # discriminator updates since the last move
        self.built = True

    def update(self, real_scores: Any) -> Tensor:
        """Accumulate sign(D(x) - threshold) of this update's real scores; move p when
        `interval` updates have been seen. Returns p after the update."""
        signs = tf.sign(tf.cast(real_scores, tf.float32) - self.threshold)
        # Every replica sees its share of the batch: the sums are over the global batch (one
        # all-reduce for both).
        batch_signs, batch_examples = replicas.sum_over_replicas(
            [tf.reduce_sum(signs), tf.cast(tf.size(signs), tf.float32)]
        )
        sign_sum = self.sign_sum + batch_signs
        examples = self.examples + batch_examples
        updates = self.updates + 1.0
        due = updates >= self.interval
        r_t = sign_sum / tf.maximum(examples, 1.0)
        step = tf.sign(r_t - self.target) * examples / float(self.ramp_images)
        moved = tf.clip_by_value(self.probability + step, 0.0, 1.0)
        zero = tf.zeros(())
        replicas.assign(
            [self.probability, self.sign_sum, self.examples, self.updates],
            [
                tf.where(due, moved, self.probability),
                tf.where(due, zero, sign_sum),
                tf.where(due, zero, examples),
                tf.where(due, zero, updates),
            ],
        )
        return self.probability

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "target": self.target,
            "interval": self.interval,
            "ramp_images": self.ramp_images,
            "initial_p": self.initial_p,
            "threshold": self.threshold,
        }
