"""Anomaly scores: one number per example, higher = less like the training data.

Where a family has a likelihood the score is a negative log-likelihood in nats, in the data's
original units (the affine preprocessing's log-Jacobian added back, as the held-out metrics
do): exact for a flow and a mixture, the IWAE bound for a VAE, exact per image for a
PixelCNN and per token for a language model. A GAN has no likelihood: its score is the
negated discriminator output; a diffusion model's is its denoising loss, stratified over the
timesteps. Every score is computed batch by batch in compiled TensorFlow and is
deterministic.

An example's score depends on its own values alone: where a score is a Monte Carlo estimate
(a VAE's importance samples, a dequantized flow's uniform draws, a diffusion model's noise),
every example is scored with the same fixed draws, so it scores the same alone, anywhere in
a file and in any batch. The held-out metrics instead give each example its own draws (a
more precise mean over the split), so the mean held-out score of those families agrees with
the metric within Monte Carlo error, not bit for bit (over the examples inside the support,
below: the metric computes its formula on every example).

Where the likelihood gives probability zero outside a range of values (its support: a
bernoulli's [0, 1], the levels a categorical, dequantized or pixel model knows, a logit
transform's domain), an example with a value outside it has -log p = +inf: `scored` gives it
+inf rather than the finite number the formula would compute there (a cross-entropy of x
outside [0, 1] goes to -inf; a level outside the bins would be clipped to the nearest one).
A vector's `scale` is fitted on the training split, so a new (or held-out) value beyond a
feature's training range lands outside [0, 1]: such rows score +inf too (`Support.beyond`
names the features, for the messages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime import autoregressive, diffusion, flow, mixture, vae
from gencompile.runtime.distributions import Gaussian, Logistic
from gencompile.runtime.metrics.levels import (
    OFF_LEVEL_TOLERANCE,
    dequantized_levels,
    off_level,
    refuse_merged_levels,
)
from gencompile.runtime.posteriors import repeat_draws
from gencompile.runtime.splits import labelled_batches
from gencompile.runtime.support import (
    BATCH,
    Support,
    flow_support,
    level_support,
    likelihood_support,
)


@dataclass(frozen=True)
class ScoreKind:
    """What a score is: `name` heads its CSV column, `description` says it in words;
    `support` is where the likelihood is positive (None: every finite value)."""

    name: str
    description: str
    support: Support | None = None


Score = Callable[[Any, "np.ndarray | None"], np.ndarray]


def scored(kind: ScoreKind, compute: Score, x: Any, y: np.ndarray | None) -> tuple[
    np.ndarray, np.ndarray
]:  # fmt: skip
    """The scores of `x`, +inf for every example outside the support (its likelihood is 0),
    and which examples those are. The others' scores are `compute`'s, unchanged."""
    values = np.asarray(compute(x, y), np.float64)
    if kind.support is None:
        return values, np.zeros(len(values), bool)
    outside = ~kind.support.rows(x)
    return np.where(outside, np.inf, values), outside


def scorer(model: keras.Model, family: str, data: Any, config: dict[str, Any]) -> tuple[
    ScoreKind, Score
]:  # fmt: skip
    """The family's score of a split or array `x` (preprocessed units) with labels `y`
    (a conditional model's classes; None for another model)."""
    if family == "autoregressive":
        if data.kind == "text":
            return _token_nll(model)
        kind = ScoreKind("nll_nats", "-log p(x), nats per example (exact)")
        return replace(kind, support=score_support(model, family, data)), _image_nll(model)
    makers = {
        "flow": _flow,
        "mixture": _mixture,
        "vae": _vae,
        "gan": _gan,
        "diffusion": _diffusion,
        "vq_vae": _vq_vae,
    }
    kind, compute = makers[family](model, data, config)
    return replace(kind, support=score_support(model, family, data)), compute


def score_support(model: keras.Model, family: str, data: Any) -> Support | None:
    """Where the family's likelihood is positive, in model units (None: everywhere)."""
    if family == "autoregressive":
        return None if data.kind == "text" else _pixel_support(model)
    if family in ("vae", "vq_vae"):
        return likelihood_support(model.likelihood)
    if family == "flow":
        return flow_support(model)
    return None  # a mixture's Gaussians; a GAN's and a diffusion model's scores are no -log p


def _concat(parts: Iterator[np.ndarray]) -> np.ndarray:
    pieces = [np.asarray(p, np.float64).reshape(-1) for p in parts]
    return np.concatenate(pieces) if pieces else np.zeros((0,))


DEQUANTIZED_SCORES = (
    "retrain with model.dequantization: {type: uniform, bins: N} with one bin for each value "
    "of the data (bins - 1 a multiple of the data's levels - 1), or without "
    "model.dequantization for continuous values (the flow's exact density)"
)


def _flow(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    if model.dequantization is not None:
        # Scores of a coarsened copy of continuous data are not its own: refuse them. A
        # served run holds no held-out split (x_val None): the server checks each request.
        if data.x_val is not None:
            refuse_merged_levels(
                dequantized_levels(model.dequantization),
                data.x_val,
                "the scores",
                DEQUANTIZED_SCORES,
            )
        draws = int(config["importance_samples"])
        kind = ScoreKind(
            "nll_bound_nats",
            f"upper bound on -log P(x) of the discrete data, nats per example "
            f"({draws} dequantization draws, the same for every example)",
        )
        return kind, lambda x, y: -_concat(flow.dequantized_shared_noise_batches(model, x, draws))
    shift = data.preprocessor.log_det_jacobian
    kind = ScoreKind("nll_nats", "-log p(x), nats per example in data units (exact)")
    return kind, lambda x, y: -_concat(flow.log_likelihood_batches(model, x)) - shift


# Per family of a model of levels: what was trained on them, the option that set them, and
# what scores values between them (none for a pixel model), for `OffLevel.message`.
LEVEL_MODELS = {
    "flow": (
        "this flow",
        "model.dequantization",
        "score continuous values with a flow trained without model.dequantization",
    ),
    "vae": (
        "this VAE's categorical likelihood",
        "model.likelihood",
        "score continuous values with a VAE trained with model.likelihood: {type: gaussian}",
    ),
    "vq_vae": (
        "this VQ-VAE's categorical likelihood",
        "model.likelihood",
        "score continuous values with a VQ-VAE trained with model.likelihood: {type: gaussian}",
    ),
    "autoregressive": ("this pixel model", "model.network.likelihood", ""),
}


@dataclass(frozen=True)
class OffLevel:
    """A value to score that lies between the levels of a model of levels (`family`'s):
    example `example`'s value `name` is `value`, the levels (at that position) `levels`,
    data units."""

    example: int
    name: str
    value: float
    levels: tuple[float, ...]
    family: str = "flow"

    def message(self, example: str) -> str:
        """One line refusing it; `example` names the example ("examples[0]")."""
        shown = [f"{v:.6g}" for v in self.levels]
        listed = ", ".join(shown if len(shown) <= 4 else [*shown[:2], "...", shown[-1]])
        trained, option, advice = LEVEL_MODELS[self.family]
        return (
            f"{example} {self.name} is {self.value:.6g}: {trained} was trained on the levels "
            f"{listed} ({option}) and would score it as the level it rounds to; give values "
            "on those levels" + (f", or {advice}" if advice else "")
        )


def off_level_value(
    model: keras.Model, family: str, x: np.ndarray, data: Any, tolerance: float | None = None
) -> OffLevel | None:
    """The first value of `x` (model units) that is none of the levels of a model of levels
    (its score's support: a dequantized flow, a categorical likelihood, a pixel model) yet
    rounds to one (`levels.off_level`), judged example by example: the score would be that
    of the level, not the value's. None for another model. `tolerance`: how far from a
    level a value may lie, a share of the levels' spacing (an image file's 8-bit pixels lie
    up to half a pixel away)."""
    support = score_support(model, family, data)
    bins = None if support is None else support.levels
    if bins is None:
        return None
    found = off_level(bins, x, OFF_LEVEL_TOLERANCE if tolerance is None else tolerance)
    if found is None:
        return None
    example, position = found
    rows = np.asarray(x[example : example + 1])
    value = float(data.preprocessor.inverse(rows).reshape(-1)[position])
    grid = np.arange(bins, dtype=np.float32) / np.float32(bins - 1)
    on_grid = np.broadcast_to(grid.reshape(bins, *[1] * (rows.ndim - 1)), (bins, *rows.shape[1:]))
    levels = data.preprocessor.inverse(on_grid).reshape(bins, -1)[:, position]
    name = _value_name(data, position)
    return OffLevel(example, name, value, tuple(float(v) for v in levels), family)


def _value_name(data: Any, position: int) -> str:
    """A value of an example by its place: a feature's name, a pixel's index."""
    names = getattr(data, "feature_names", None)
    if data.kind != "image" and names and position < len(names):
        return f"feature {names[position]}"
    return f"{'pixel' if data.kind == 'image' else 'value'} {position}"


def _mixture(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    shift = data.preprocessor.log_det_jacobian
    kind = ScoreKind("nll_nats", "-log p(x), nats per example in data units (exact)")
    return kind, lambda x, y: -_concat(mixture.log_likelihood_batches(model, x)) - shift


def _bernoulli_note(model: keras.Model) -> str:
    """What a bernoulli likelihood's score is on grey levels (the held-out metrics' caveat)."""
    if getattr(model.likelihood, "name", None) != "bernoulli":
        return ""
    return "; of values other than 0 and 1, a Bernoulli cross-entropy, not a normalised likelihood"


def _vae(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    k = int(config["importance_samples"])
    continuous = isinstance(model.likelihood, (Gaussian, Logistic))
    shift = data.preprocessor.log_det_jacobian if continuous else 0.0
    kind = ScoreKind(
        "iwae_nll_nats",
        f"IWAE bound on -log p(x) ({k} importance samples from the same base draws for "
        f"every example), nats per example"
        + (" in data units" if continuous else "")
        + _bernoulli_note(model),
    )
    return kind, lambda x, y: -_concat(vae.iwae_shared_noise_batches(model, x, y, k)) - shift


def _vq_vae(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    from gencompile.runtime import vq_vae

    shift = vq_vae.units_shift(model, data)
    kind = ScoreKind(
        "nll_bound_nats",
        "-log p(x | codes) - log p(codes): a bound on -log p(x), nats per example"
        + (" in data units" if shift else "")
        + _bernoulli_note(model),
    )
    return kind, lambda x, y: vq_vae.nll_bound_of(model, x) - shift


def _pixel_support(model: keras.Model) -> Support:
    """The PixelCNN's levels. Its rounding is generated code (`to_levels`), which clips, so
    it cannot say whether a value was clipped, and a run already built keeps its own
    model.py: the categorical likelihood's rounding (the same round(x * (LEVELS - 1))) says
    it, and LEVELS is the generated module's constant, as the model reads it."""
    import importlib

    from gencompile.runtime.distributions import Categorical

    levels = int(importlib.import_module(type(model).__module__).LEVELS)
    return level_support("the pixel model", levels, Categorical(levels).rounded)


def _image_nll(model: keras.Model) -> Score:
    return lambda x, y: _concat(autoregressive.image_nll_batches(model, x))


def _token_nll(model: keras.Model) -> tuple[ScoreKind, Score]:
    per_window = tf.function(
        lambda w: tf.reduce_mean(tf.cast(model.token_nll(w, training=False), tf.float64), 1)
    )

    def score(x: Any, y: np.ndarray | None) -> np.ndarray:
        return _concat(per_window(tf.constant(w)).numpy() for w, _ in labelled_batches(x, y, BATCH))

    kind = ScoreKind("nll_nats_per_token", "mean -log p(token | before), nats per token")
    return kind, score


def _gan(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    @tf.function(reduce_retracing=True)
    def negated(xb: tf.Tensor, yb: Any) -> tf.Tensor:
        inputs = [xb, yb] if yb is not None else xb
        scores = tf.cast(model.discriminator(inputs, training=False), tf.float32)
        return -tf.reshape(scores, (tf.shape(xb)[0], -1))[:, 0]

    def score(x: Any, y: np.ndarray | None) -> np.ndarray:
        parts = (
            negated(tf.constant(xb), None if yb is None else tf.constant(yb))
            for xb, yb in labelled_batches(x, y, BATCH)
        )
        return _concat(p.numpy() for p in parts)

    kind = ScoreKind(
        "negative_discriminator_score",
        "minus the discriminator's output (its logit or critic value): not a likelihood, "
        "no units; higher looks less real to it",
    )
    return kind, score


# Noise values an example's diffusion score averages over in each timestep stratum, at
# least: its loss is a mean over its D values, so a low-dimensional example takes several
# draws per stratum (2-D points 32, 8x8 images 1) for a score as steady as an image's.
NOISE_VALUES = 64


def _diffusion(model: keras.Model, data: Any, config: dict[str, Any]) -> tuple[ScoreKind, Score]:
    network = getattr(model, "ema_denoiser", None) or model.denoiser
    timesteps = model.schedule.timesteps
    strata = min(diffusion.EVALUATION_TIMESTEPS, timesteps)
    grid = ((np.arange(strata) + 0.5) * timesteps / strata).astype(np.int32)
    shape = tuple(int(d) for d in data.element_shape)
    draws = max(1, -(-NOISE_VALUES // int(np.prod(shape))))
    # The same noises for every example (see the module's docstring): [strata, draws, ...].
    shared = np.random.default_rng(0).standard_normal((strata, draws, *shape)).astype(np.float32)

    @tf.function(reduce_retracing=True, autograph=False)
    def loss(x0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor, labels: Any) -> tf.Tensor:
        """The mean loss of each example of `x0` over the `draws` noises of one stratum."""
        b = tf.shape(x0)[0]
        rows = tf.concat([[draws * b], tf.shape(x0)[1:]], 0)
        x_rep = repeat_draws(x0, draws)
        eps = tf.reshape(
            tf.broadcast_to(noise[:, None], tf.concat([[draws], tf.shape(x0)], 0)), rows
        )
        y_rep = None if labels is None else repeat_draws(labels, draws)
        per_draw = model.denoising_loss(network, x_rep, tf.fill([draws * b], t), eps, y_rep)
        return tf.reduce_mean(tf.reshape(tf.cast(per_draw, tf.float64), (draws, b)), axis=0)

    # Made tensors once, not for every batch: (timestep, its noises) per stratum.
    strata_tensors = [
        (tf.constant(level, tf.int32), tf.constant(noise))
        for level, noise in zip(grid, shared, strict=True)
    ]

    def score(x: Any, y: np.ndarray | None) -> np.ndarray:
        parts = []
        for rows, yb in labelled_batches(x, y, BATCH):
            x0 = tf.constant(rows)
            labels = None if yb is None else tf.constant(yb, tf.int32)
            total = np.zeros(len(rows))
            for level, noise in strata_tensors:
                total += loss(x0, level, noise, labels).numpy()
            parts.append(total / len(grid))
        return _concat(iter(parts))

    kind = ScoreKind(
        "denoising_loss",
        f"the denoising loss as trained (mean squared error of the prediction target, "
        f"preprocessed units), averaged over {strata} timestep strata with {draws} fixed "
        f"noise draw{'s' if draws > 1 else ''} each, the same for every example",
    )
    return kind, score
