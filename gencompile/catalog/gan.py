"""The GAN's adversarial losses and gradient penalties, one record each.

Adding a loss is one `AdversarialLoss` here plus its two functions in
`gencompile.runtime.gan`; the spec's choices, the lowering's checks and words, the
template's comments and calls and the runtime's `LOSSES` table all follow from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdversarialLoss:
    """A pair (discriminator loss, generator loss) on the discriminator's scores."""

    name: str
    title: str  # names the loss in the generated model's docstring
    words: str  # for explain and the model card; {real} is the real examples' label
    score: str  # what the discriminator's output means under this loss
    discriminator_loss: str  # functions of gencompile.runtime.gan
    generator_loss: str
    discriminator_formula: str  # the generated code's comments
    generator_formula: str
    # The discriminator's formula under one-sided label smoothing; None: no labels to smooth.
    smoothed_formula: str | None
    # Where a score counts as "real": the accuracies' threshold and the centre of ADA's r_t
    # (None: midway between the mean real and fake score for the accuracies, since a
    # Wasserstein critic's scores have no fixed offset; ADA is refused with such a loss).
    accuracy_threshold: float | None
    unbounded_score: bool = False  # a critic value that a sigmoid would distort
    needs_lipschitz: bool = False  # the critic must be kept 1-Lipschitz

    @property
    def has_labels(self) -> bool:
        return self.smoothed_formula is not None


@dataclass(frozen=True)
class GradientPenalty:
    """A penalty on the discriminator's input gradients, added to its loss times a weight."""

    name: str
    title: str
    words: str  # {weight} is the spec's weight, {half} half of it
    function: str  # of gencompile.runtime.gan
    formula: str  # the generated code's comment
    # Penalises at interpolates of real and generated examples: the function also takes
    # the generated batch and a seed.
    on_interpolates: bool
    unbounded_score: bool  # bounded scores would defeat the penalty's target norm
    # Batch normalisation mixes the examples, so a per-example gradient norm is meaningless.
    refuses_batch_norm: bool


_CROSS_ENTROPY = "E[softplus(-D(x))] + E[softplus(D(G(z)))]: real labelled 1, generated 0"
_SMOOTHED_CROSS_ENTROPY = "cross-entropy, real labelled 1 - LABEL_SMOOTHING, generated 0"


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss(
            name="non_saturating",
            title="the non-saturating GAN loss",
            words="the non-saturating GAN loss: the discriminator minimises the cross-entropy "
            "of real (label {real}) against generated (label 0) examples, the generator "
            "minimises -log D(G(z))",
            score="a logit: higher is more real",
            discriminator_loss="non_saturating_discriminator_loss",
            generator_loss="non_saturating_generator_loss",
            discriminator_formula=_CROSS_ENTROPY,
            generator_formula="E[softplus(-D(G(z)))] = -E[log D(G(z))]: samples should look real",
            smoothed_formula=_SMOOTHED_CROSS_ENTROPY,
            accuracy_threshold=0.0,
        ),
        AdversarialLoss(
            name="minimax",
            title="the minimax GAN loss",
            words="the minimax GAN loss: the discriminator minimises the cross-entropy of real "
            "(label {real}) against generated (label 0) examples, the generator minimises "
            "log(1 - D(G(z)))",
            score="a logit: higher is more real",
            discriminator_loss="minimax_discriminator_loss",
            generator_loss="minimax_generator_loss",
            discriminator_formula=_CROSS_ENTROPY,
            generator_formula="-E[softplus(D(G(z)))] = E[log(1 - D(G(z)))]: the minimax objective",
            smoothed_formula=_SMOOTHED_CROSS_ENTROPY,
            accuracy_threshold=0.0,
        ),
        AdversarialLoss(
            name="hinge",
            title="the hinge loss",
            words="the hinge loss: the discriminator minimises max(0, 1 - D(x)) + "
            "max(0, 1 + D(G(z))), the generator minimises -D(G(z))",
            score="a critic value: higher is more real",
            discriminator_loss="hinge_discriminator_loss",
            generator_loss="hinge_generator_loss",
            discriminator_formula="E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]",
            generator_formula="-E[D(G(z))]",
            smoothed_formula=None,
            accuracy_threshold=0.0,
            unbounded_score=True,
        ),
        AdversarialLoss(
            name="least_squares",
            title="the least-squares (LSGAN) loss",
            words="the least-squares loss (LSGAN): the discriminator minimises "
            "(D(x) - {real})^2 / 2 + D(G(z))^2 / 2, the generator minimises (D(G(z)) - 1)^2 / 2",
            score="regressed to 1 for real, 0 for generated examples",
            discriminator_loss="least_squares_discriminator_loss",
            generator_loss="least_squares_generator_loss",
            discriminator_formula="E[(D(x) - 1)^2] / 2 + E[D(G(z))^2] / 2",
            generator_formula="E[(D(G(z)) - 1)^2] / 2",
            smoothed_formula="E[(D(x) - (1 - LABEL_SMOOTHING))^2] / 2 + E[D(G(z))^2] / 2",
            accuracy_threshold=0.5,
        ),
        AdversarialLoss(
            name="wasserstein",
            title="the Wasserstein loss",
            words="the Wasserstein loss: the critic minimises D(G(z)) - D(x), the generator "
            "minimises -D(G(z))",
            score="a critic value: higher is more real",
            discriminator_loss="wasserstein_critic_loss",
            generator_loss="wasserstein_generator_loss",
            discriminator_formula="E[D(G(z))] - E[D(x)]: minus the critic's Wasserstein estimate",
            generator_formula="-E[D(G(z))]",
            smoothed_formula=None,
            accuracy_threshold=None,
            unbounded_score=True,
            needs_lipschitz=True,
        ),
    )
}

PENALTIES: dict[str, GradientPenalty] = {
    penalty.name: penalty
    for penalty in (
        GradientPenalty(
            name="wgan_gp",
            title="WGAN-GP",
            words="{weight:g} x E[(||grad D(x_hat)|| - 1)^2] on random interpolates x_hat of "
            "real and generated examples (WGAN-GP)",
            function="wgan_gp_penalty",
            formula="WGAN-GP: E[(||grad D(x_hat)|| - 1)^2], x_hat between x and G(z) (nested tape)",
            on_interpolates=True,
            unbounded_score=True,
            refuses_batch_norm=True,
        ),
        GradientPenalty(
            name="r1",
            title="R1",
            words="{half:g} x E[||grad D(x)||^2] on real examples (R1 with gamma {weight:g})",
            function="r1_penalty",
            formula="R1: E[||grad D(x)||^2] / 2 on the real examples (nested tape)",
            on_interpolates=False,
            unbounded_score=False,
            refuses_batch_norm=False,
        ),
    )
}

LOSS_NAMES = tuple(LOSSES)
PENALTY_NAMES = tuple(PENALTIES)
