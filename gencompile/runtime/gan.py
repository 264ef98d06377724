"""What generated GANs share: adversarial losses, gradient penalties, the discriminator's
accuracy, a training-health callback and `evaluate` (the generator's moving average is
`gencompile.runtime.ema`).

Each loss and penalty is a record of `gencompile.catalog.gan` (its words, formulas and the
names of its functions here); `LOSSES` and `PENALTIES` resolve those names once, at import.

Discriminator outputs are unbounded scores, one per example: logits for the losses with
real/fake targets (non-saturating, minimax), raw values for least squares, hinge and
Wasserstein. Every loss returns a float32 scalar (a batch mean), so it is correct under
mixed precision, where the networks answer in float16.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy.spatial.distance import cdist

from gencompile.catalog import gan as catalog
from gencompile.runtime import loss_scaling, replicas
from gencompile.runtime.evaluation import evaluation
from gencompile.runtime.metrics.results import Metrics
from gencompile.runtime.metrics.samples import sample_quality

Tensor = tf.Tensor

__all__ = [
    "LOSSES",
    "PENALTIES",
    "ComputedMean",
    "LastValue",
    "TrainingHealth",
    "computed_if",
    "copy_optimizer",
    "discriminator_accuracy",
    "evaluate",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "mean_pairwise_distance",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_discriminator_loss",
    "non_saturating_generator_loss",
    "r1_penalty",
    "scale_about",
    "track_gradient_norm",
    "truncated_normal",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "wgan_gp_penalty",
    "with_loss_scaling",
]


def _f32(scores: Any) -> Tensor:
    return tf.cast(scores, tf.float32)


# --------------------------------------------------------------------------- sample-time latents


def truncated_normal(shape: Any, psi: float, stddev: float, seed: Any) -> Tensor:
    """z ~ N(0, stddev^2) with every coordinate beyond psi standard deviations redrawn (the
    truncation trick, Brock et al. 2019), drawn in one pass: u ~ U(Phi(-psi), Phi(psi)),
    z = stddev Phi^-1(u) has the law of redrawing until |z| <= psi stddev, without a loop.
    """
    if not float(psi) > 0:
        raise ValueError(f"truncation must be > 0. Received: psi={psi!r}")
    # Phi(-psi) = erfc(psi / sqrt(2)) / 2, in float64: exact in the far tail too.
    low = 0.5 * math.erfc(float(psi) / math.sqrt(2.0))
    u = keras.random.uniform(shape, minval=low, maxval=1.0 - low, dtype="float64", seed=seed)
    z = tf.math.ndtri(u)
    # Rounding at the ends could step a hair past the bound: clip it back.
    return tf.cast(tf.clip_by_value(z, -float(psi), float(psi)) * float(stddev), tf.float32)


def scale_about(z: Any, factor: Any, center: float = 0.0) -> Tensor:
    """z moved toward `center` by `factor` (1: unchanged, < 1: closer): a temperature or a
    truncation of a latent draw."""
    return center + factor * (z - center)


# --------------------------------------------------------------------------- losses


def non_saturating_discriminator_loss(
    real_scores: Any, fake_scores: Any, label_smoothing: float = 0.0
) -> Tensor:
    """Sigmoid cross-entropy of real examples (label 1 - s) and generated ones (label 0):
    E[(1 - s) softplus(-D(x)) + s softplus(D(x))] + E[softplus(D(G(z)))], D(.) a logit."""
    real, fake = _f32(real_scores), _f32(fake_scores)
    real_term = tf.nn.softplus(-real)
    if label_smoothing:  # one-sided: only the real examples' label moves
        real_term = (1.0 - label_smoothing) * real_term + label_smoothing * tf.nn.softplus(real)
    return tf.reduce_mean(real_term) + tf.reduce_mean(tf.nn.softplus(fake))


def non_saturating_generator_loss(fake_scores: Any) -> Tensor:
    """-E[log sigmoid(D(G(z)))] = E[softplus(-D(G(z)))]: strong gradients while D wins."""
    return tf.reduce_mean(tf.nn.softplus(-_f32(fake_scores)))


def minimax_discriminator_loss(
    real_scores: Any, fake_scores: Any, label_smoothing: float = 0.0
) -> Tensor:
    """The minimax game's discriminator loss: the same cross-entropy as the non-saturating
    one (Goodfellow et al. 2014)."""
    return non_saturating_discriminator_loss(real_scores, fake_scores, label_smoothing)


def minimax_generator_loss(fake_scores: Any) -> Tensor:
    """E[log(1 - sigmoid(D(G(z))))] = -E[softplus(D(G(z)))], the original minimax objective
    (it saturates when the discriminator rejects the samples confidently)."""
    return -tf.reduce_mean(tf.nn.softplus(_f32(fake_scores)))


def hinge_discriminator_loss(real_scores: Any, fake_scores: Any) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; SN-GAN)."""
    real, fake = _f32(real_scores), _f32(fake_scores)
    return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))


def hinge_generator_loss(fake_scores: Any) -> Tensor:
    """-E[D(G(z))]."""
    return -tf.reduce_mean(_f32(fake_scores))


def least_squares_discriminator_loss(
    real_scores: Any, fake_scores: Any, label_smoothing: float = 0.0
) -> Tensor:
    """E[(D(x) - (1 - s))^2] / 2 + E[D(G(z))^2] / 2 (LSGAN, Mao et al. 2017)."""
    real, fake = _f32(real_scores), _f32(fake_scores)
    target = 1.0 - label_smoothing
    return 0.5 * tf.reduce_mean(tf.square(real - target)) + 0.5 * tf.reduce_mean(tf.square(fake))


def least_squares_generator_loss(fake_scores: Any) -> Tensor:
    """E[(D(G(z)) - 1)^2] / 2."""
    return 0.5 * tf.reduce_mean(tf.square(_f32(fake_scores) - 1.0))


def wasserstein_critic_loss(real_scores: Any, fake_scores: Any) -> Tensor:
    """E[D(G(z))] - E[D(x)]: minus the critic's estimate of the Wasserstein-1 distance."""
    return tf.reduce_mean(_f32(fake_scores)) - tf.reduce_mean(_f32(real_scores))


def wasserstein_generator_loss(fake_scores: Any) -> Tensor:
    """-E[D(G(z))]."""
    return -tf.reduce_mean(_f32(fake_scores))


# name -> (discriminator loss, generator loss): the functions each record names (a record
# naming a function this module lacks fails here, at import).
LOSSES: dict[str, tuple[Callable[..., Tensor], Callable[[Any], Tensor]]] = {
    name: (globals()[loss.discriminator_loss], globals()[loss.generator_loss])
    for name, loss in catalog.LOSSES.items()
}


# --------------------------------------------------------------------------- penalties


def _squared_gradient_norms(discriminator: keras.Model, x: Tensor, labels: Any) -> Tensor:
    """||grad_x D(x)||^2 per example, from a tape nested in the caller's: the caller's tape
    records this gradient computation, so the penalty's own gradient reaches D's weights."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        inputs = x if labels is None else [x, labels]
        scores = _f32(discriminator(inputs, training=True))
    # The gradient of all scores (of their sum) holds every example's own gradient, since
    # each score depends on its own example only.
    grads = tf.cast(tape.gradient(scores, x), tf.float32)
    return tf.reduce_sum(tf.square(grads), axis=list(range(1, grads.shape.rank)))


def wgan_gp_penalty(
    discriminator: keras.Model,
    real: Any,
    fake: Any,
    seed: Any = None,
    labels: Any = None,
    split: replicas.BatchSplit | None = None,
) -> Tensor:
    """E[(||grad D(x_hat)|| - 1)^2] at x_hat = x + u (G(z) - x), u ~ U(0, 1) per example
    (Gulrajani et al. 2017). Multiply by the penalty's weight (10 in the paper).

    Under a strategy, u is this replica's rows of one draw for the global batch, placed
    by the step's `split` (`replicas.split`; None: by a gather of the counts)."""
    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    ones = [1] * (real.shape.rank - 1)
    rows = tf.shape(real)[0] if split is None else split
    u = replicas.draw(lambda n: keras.random.uniform([n, *ones], seed=seed), rows)
    x_hat = real + u * (fake - real)
    norms = tf.sqrt(_squared_gradient_norms(discriminator, x_hat, labels) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def r1_penalty(discriminator: keras.Model, real: Any, labels: Any = None) -> Tensor:
    """E[||grad D(x)||^2] / 2 on real examples (Mescheder et al. 2018): multiplied by the
    weight gamma this is the paper's (gamma / 2) E[||grad D(x)||^2]."""
    real = tf.cast(real, tf.float32)
    return 0.5 * tf.reduce_mean(_squared_gradient_norms(discriminator, real, labels))


def computed_if(apply: Any, penalty: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
    """`penalty(*args, **kwargs)` where `apply` holds, else 0 without computing it: lazy
    regularization (StyleGAN2) pays for the penalty on the updates that use it only. The
    arguments are bound at the call, so a call in a loop reads that pass's tensors."""
    return tf.cond(apply, lambda: penalty(*args, **kwargs), lambda: tf.zeros(()))


# name -> penalty function, as each record of gencompile.catalog.gan names it.
PENALTIES: dict[str, Callable[..., Tensor]] = {
    name: globals()[penalty.function] for name, penalty in catalog.PENALTIES.items()
}


# --------------------------------------------------------------------------- accuracy


def discriminator_accuracy(
    real_scores: Any, fake_scores: Any, threshold: float | None = 0.0
) -> tuple[Tensor, Tensor]:
    """Fractions of real examples scored above `threshold` and of generated ones below it.

    `threshold=None` puts it midway between the mean real and the mean generated score (a
    Wasserstein critic's scores have no fixed offset, so no fixed threshold means anything):
    the global batch's means, under a strategy too, where each replica scores its slice.
    """
    real, fake = _f32(real_scores), _f32(fake_scores)
    if threshold is None:
        # One all-reduce of the slices' sums and counts (none on one replica): a cut from
        # a replica's own means would move with how the batch splits.
        sizes = [tf.cast(tf.size(real), tf.float32), tf.cast(tf.size(fake), tf.float32)]
        totals = replicas.sum_over_replicas(
            tf.stack([tf.reduce_sum(real), sizes[0], tf.reduce_sum(fake), sizes[1]])
        )
        cut = 0.5 * (totals[0] / totals[1] + totals[2] / totals[3])
    else:
        cut = tf.constant(threshold, tf.float32)
    real_accuracy = tf.reduce_mean(tf.cast(real > cut, tf.float32))
    fake_accuracy = tf.reduce_mean(tf.cast(fake < cut, tf.float32))
    return real_accuracy, fake_accuracy


# --------------------------------------------------------------------------- optimizers


def copy_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """A new optimizer with the same settings and a fresh state (a loss-scale wrapper's
    inner optimizer is copied; the copy is not wrapped)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return type(optimizer).from_config(optimizer.get_config())


def with_loss_scaling(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Wrap in a `LossScaleOptimizer` (for mixed precision), as `Model.compile` wraps
    `optimizer`; an already wrapped optimizer is returned as it is."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name="discriminator_loss_scale")


def track_gradient_norm(tracker: keras.metrics.Mean, grads: list[Any], scale: Any) -> None:
    """`loss_scaling.track_gradient_norm`, under the name projects generated before call.
    The oldest of them pass the optimizer itself, whose scale is then read after its
    `apply`."""
    if hasattr(scale, "scale_loss"):
        scale = scale.scale_loss(1.0)
    loss_scaling.track_gradient_norm(tracker, grads, scale)


# --------------------------------------------------------------------------- trackers


class ComputedMean(keras.metrics.Mean):
    """A weighted mean that is NaN, not 0, when nothing was weighed: a lazy penalty that no
    update of the epoch computed has no value (history.csv reads nan, curves leave a gap),
    where Keras' `Mean` would report the 0 of an empty mean."""

    def result(self) -> Tensor:
        return tf.where(self.count > 0, super().result(), math.nan)


class LastValue(keras.metrics.Metric):
    """The value of the last update, not a mean over the epoch: a state of the model (ADA's
    p) is logged as what its weights hold at the end of the epoch."""

    def __init__(self, name: str, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        # Every replica holds the same state: their mean is it.
        self.value = self.add_variable(shape=(), initializer="zeros", aggregation="mean")

    def update_state(self, value: Any) -> None:
        self.value.assign(tf.cast(value, self.dtype))

    def result(self) -> Tensor:
        return tf.identity(self.value)


# --------------------------------------------------------------------------- health


def mean_pairwise_distance(x: np.ndarray, max_rows: int = 512) -> float:
    """Mean Euclidean distance between two different rows among the first `max_rows`
    (examples flattened to vectors)."""
    # Slice before converting: a streamed split reads only the rows it is asked for.
    flat = np.asarray(x[:max_rows], dtype=np.float64).reshape(min(len(x), max_rows), -1)
    if len(flat) < 2:
        return 0.0
    distances = cdist(flat, flat)
    return float(distances.sum() / (len(flat) * (len(flat) - 1)))


class TrainingHealth(keras.callbacks.Callback):
    """Each epoch: log `diversity`, and warn in plain words when a GAN's training goes wrong.

    `diversity` is the mean distance between two samples of a fixed batch (the same z every
    epoch) divided by the same distance between two real examples (`model.data_spread`, set
    by `model.initialize(data)`): about 1 when the samples vary as much as the data, near 0
    when the generator makes nearly the same output for every z (mode collapse).

    Warnings (each once per run) when, for `patience` epochs in a row after the first
    `warmup_steps` generator updates, the discriminator classifies at least `win` of both
    real and generated examples correctly (it wins, and the generator learns little), or
    diversity stays below `collapse`.
    """

    def __init__(
        self,
        num_samples: int = 256,
        seed: int = 1234,
        collapse: float = 0.25,
        win: float = 0.99,
        patience: int = 3,
        warmup_steps: int = 1000,
        warn: Callable[[str], Any] = warnings.warn,
    ):
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2. Received: num_samples={num_samples}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1. Received: patience={patience}")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.collapse = float(collapse)
        self.win = float(win)
        self.patience = int(patience)
        self.warmup_steps = int(warmup_steps)
        self.warn = warn
        self._runs = {"win": 0, "collapse": 0}
        self._warned: set[str] = set()

    def set_model(self, model: keras.Model) -> None:
        # Keras sets the model at every fit; the traced draw is made once per model.
        if getattr(self, "_drawn_model", None) is not model:
            # An int seed: the same z at every call.
            count, seed = self.num_samples, self.seed
            # Without AutoGraph, as Keras traces train_step (converting took most of a trace).
            self._draw = tf.function(lambda: model.sample(count, seed=seed), autograph=False)
            self._drawn_model = model
        super().set_model(model)

    def diversity(self) -> float | None:
        """Diversity of the fixed batch of samples (None before `model.initialize`)."""
        spread = float(keras.ops.convert_to_numpy(self.model.data_spread))
        if not spread > 0:
            return None
        samples = keras.ops.convert_to_numpy(self._draw())
        return mean_pairwise_distance(samples, self.num_samples) / spread

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        diversity = self.diversity()
        if diversity is not None:
            logs["diversity"] = diversity
        real = logs.get("d_real_accuracy")
        fake = logs.get("d_fake_accuracy")
        wins = real is not None and fake is not None and min(real, fake) >= self.win
        collapsed = diversity is not None and diversity < self.collapse
        optimizer = getattr(self.model, "optimizer", None)  # the generator's
        steps = None if optimizer is None else loss_scaling.applied_steps(optimizer)
        if steps is not None and steps < self.warmup_steps:
            return  # a fresh generator's samples are alike: no verdict yet
        for kind, now in (("win", wins), ("collapse", collapsed)):
            self._runs[kind] = self._runs[kind] + 1 if now else 0
            if self._runs[kind] >= self.patience and kind not in self._warned:
                self._warned.add(kind)
                self.warn(self._message(kind, epoch + 1, real, fake, diversity))

    def _message(
        self,
        kind: str,
        epoch: int,
        real: float | None,
        fake: float | None,
        diversity: float | None,
    ) -> str:
        if kind == "win":
            return (
                f"epoch {epoch}: the discriminator tells real from generated examples almost "
                f"perfectly ({float(real):.1%} of real and {float(fake):.1%} of generated ones "
                f"classified correctly, {self.patience} epochs in a row), so the generator "
                "learns little from it. Try a lower discriminator learning rate, "
                "label_smoothing: 0.1, a gradient penalty ({type: r1}), spectral_norm: true, "
                "or a larger generator."
            )
        averaged = hasattr(self.model, "ema_generator")
        return (
            f"epoch {epoch}: the generated samples are far less varied than the data "
            f"(diversity {float(diversity):.2f}, where 1.0 means as varied as the data, "
            f"{self.patience} epochs in a row): the generator may be making the same few "
            "outputs for every z (mode collapse). Try a gradient penalty ({type: r1} or "
            "{type: wgan_gp}) or a larger penalty weight, spectral_norm: true, a larger batch "
            "or a lower learning rate" + ("." if averaged else ", or ema: 0.999.")
        )


# --------------------------------------------------------------------------- evaluation


@evaluation()
def evaluate(model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
    """A GAN has no likelihood: its metrics are the sample-quality metrics every family
    shares (mode coverage, energy distance, Frechet distances...), drawn from the EMA
    generator when there is one (`model.sample`)."""
    return sample_quality(model, data, config)
