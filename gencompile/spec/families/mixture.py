"""The `mixture` family: a Gaussian mixture model fitted by EM or by gradient descent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from gencompile.datafiles import held_out_count
from gencompile.spec.base import NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel
from gencompile.spec.evaluation import SAMPLE_METRICS
from gencompile.spec.transfer import InitFrom


class EMAlgorithm(StrictModel):
    """Expectation-maximisation: one EM iteration per epoch over the training data."""

    type: Literal["em"]
    max_iter: PositiveInt = Field(
        100, description="At most this many EM iterations (one per epoch)."
    )
    tol: NonNegativeFloat = Field(
        1.0e-3,
        description="Stop when the mean log-likelihood changes by less than this (nats).",
    )
    init: Literal["kmeans", "random"] = Field(
        "kmeans", description="Initial responsibilities: k-means labels or random weights."
    )
    n_init: Annotated[int, Field(ge=1, le=100)] = Field(
        1,
        description="Run EM from this many starts and keep the one with the highest final "
        "mean log-likelihood, as scikit-learn's n_init (the starts drawn as it draws them "
        "from the seed); training then repeats the winning start's EM.",
    )


class VariationalAlgorithm(StrictModel):
    """Variational Bayesian EM, as scikit-learn's `BayesianGaussianMixture`.

    One iteration per epoch, like EM; the weights get a Dirichlet (process) prior and each
    component a Gaussian-Wishart prior, so unneeded components fade to tiny weights.
    Defaults are scikit-learn's: the prior mean and covariance are the training data's.
    """

    type: Literal["variational"]
    weight_concentration_prior_type: Literal["dirichlet_process", "dirichlet_distribution"] = Field(
        "dirichlet_process",
        description="Prior of the weights: a truncated stick-breaking Dirichlet process "
        "or a Dirichlet distribution.",
    )
    weight_concentration_prior: PositiveFloat | None = Field(
        None,
        description="Concentration of the weights' prior (null: 1 / components). Smaller "
        "values put the mass on fewer components.",
    )
    mean_precision_prior: PositiveFloat = Field(
        1.0, description="Precision of the means' prior, relative to the components' own."
    )
    degrees_of_freedom_prior: PositiveFloat | None = Field(
        None,
        description="Degrees of freedom of the precisions' Wishart prior, above features - 1 "
        "(null: the number of features).",
    )
    covariance_prior: PositiveFloat | list[PositiveFloat] | None = Field(
        None,
        description="The Wishart prior's covariance: null for the training data's (as "
        "scikit-learn), a number c for c times the identity, or one variance per feature.",
    )
    max_iter: PositiveInt = Field(100, description="At most this many iterations (one per epoch).")
    tol: NonNegativeFloat = Field(
        1.0e-3, description="Stop when the lower bound changes by less than this (nats)."
    )
    init: Literal["kmeans", "random"] = Field(
        "kmeans", description="Initial responsibilities: k-means labels or random weights."
    )


class GradientAlgorithm(StrictModel):
    """Maximum likelihood by `training.optimizer` over log-Cholesky precision factors.

    `training.epochs` epochs of minibatch steps on the negative mean log-likelihood. The
    weights are a softmax of free logits and the precision factors have an exponentiated
    diagonal, so every step gives a valid mixture.
    """

    type: Literal["gradient"]
    init: Literal["kmeans", "random"] = Field(
        "kmeans",
        description="Starting point: the parameters of k-means clusters or of random "
        "responsibilities (what EM's first M-step would make of them).",
    )


Algorithm = Annotated[
    EMAlgorithm | VariationalAlgorithm | GradientAlgorithm, Field(discriminator="type")
]


class MixtureModel(StrictModel):
    """Gaussian mixture model."""

    family: Literal["mixture"]
    components: Annotated[int, Field(ge=1, le=4096)] = Field(
        8, description="Number of Gaussian components; at most the training examples."
    )
    covariance: Literal["full", "diag", "spherical", "tied"] = Field(
        "full", description="Shape of each component's covariance, as in scikit-learn."
    )
    algorithm: Algorithm = Field(
        default_factory=lambda: EMAlgorithm(type="em"), description="How the mixture is fitted."
    )
    reg_covar: PositiveFloat = Field(
        1.0e-6, description="Added to the covariances' diagonals, so they stay invertible."
    )
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    @property
    def closed_form(self) -> bool:
        """Fitted by EM or variational EM, whose updates need no optimizer."""
        return self.algorithm.type in ("em", "variational")

    def unused_training(self) -> dict[str, tuple[str, str]]:
        """The `training.<key>` settings this mixture does not use, each with the message
        and hint that refuse it when set: (variational) EM re-estimates the parameters in
        closed form from every batch, and no algorithm has kernels to regularize."""
        unused = {
            "regularization": (
                "has no effect on this mixture: a mixture has no layer kernels to penalise",
                "remove training.regularization",
            )
        }
        if self.closed_form:
            name = "EM" if self.algorithm.type == "em" else "variational EM"
            closed = f"{name} re-estimates the parameters in closed form, with no optimizer"
            unused["optimizer"] = (
                f"has no effect on this mixture: {closed} (nor gradient clipping)",
                "remove training.optimizer, or use algorithm: {type: gradient} to fit by an "
                "optimizer",
            )
            unused["schedule"] = (
                f"has no effect on this mixture: {closed} or learning rate",
                "remove training.schedule",
            )
            unused["optimizers"] = (
                f"this mixture's algorithm ({self.algorithm.type}) fits it in closed form, "
                "with no optimizer",
                "remove training.optimizers",
            )
            # A subset of the batches per iteration is another algorithm, whose likelihood
            # need not rise: tol would never stop it.
            unused["steps_per_epoch"] = (
                f"{name} accumulates every batch of the training split per iteration (one "
                "epoch); fewer steps would re-estimate the mixture from a different part of "
                "the data each time",
                "remove training.steps_per_epoch, or use algorithm: {type: gradient} to fit "
                "by minibatches",
            )
        return unused

    metrics_available: ClassVar[tuple[str, ...]] = (
        "nll",
        "bits_per_dim",
        "bic",
        "aic",
        *SAMPLE_METRICS,
    )
    metrics_default: ClassVar[tuple[str, ...]] = ("nll", "bic", "aic")
    trackers: ClassVar[tuple[str, ...]] = ("loss", "log_likelihood")

    def default_metrics(self, data: Any) -> list[str]:
        """NLL, BIC and AIC; the NLL alone for a variational mixture (`check_criteria`)."""
        if self.algorithm.type == "variational":
            return [m for m in self.metrics_default if m not in CRITERIA]
        return list(self.metrics_default)

    # The variational bound is logged by a callback at each epoch's end: never validated.
    training_only_trackers: ClassVar[tuple[str, ...]] = ("lower_bound",)

    def optional_trackers(self) -> tuple[str, ...]:
        """Logs only some models of the family write: a Bayesian mixture's variational bound,
        a mixture fitted by gradient descent's gradient norm."""
        return {"variational": ("lower_bound",), "gradient": ("grad_norm",)}.get(
            self.algorithm.type, ()
        )


Found = Iterator[tuple[tuple[str | int, ...], str, str | None]]


CRITERIA = ("bic", "aic")  # information criteria of a maximum-likelihood fit


def check_mixture(spec: Any) -> Found:
    """The mixture's own cross-field checks."""
    if spec.model.family != "mixture":
        return
    yield from check_components(spec)
    yield from check_criteria(spec)


def check_criteria(spec: Any) -> Found:
    """bic and aic penalise a maximum-likelihood fit by its free parameters. A variational
    mixture is no such fit, and has no such count: it switches components off by their
    posterior weights, so counting every offered one overstates it, and scikit-learn's
    BayesianGaussianMixture defines no bic or aic to follow."""
    if spec.model.algorithm.type != "variational":
        return
    for i, metric in enumerate(spec.evaluation.metrics or ()):
        if metric in CRITERIA:
            yield (
                ("evaluation", "metrics", i),
                f"{metric} counts the free parameters of a maximum-likelihood fit, but a "
                "variational mixture switches components off through its posterior weights, "
                "so it has no such count (scikit-learn's BayesianGaussianMixture has no "
                f"{metric} either)",
                f"remove {metric}: compare mixtures by their held-out nll, or variational "
                "fits by the lower_bound that history.csv logs",
            )


def check_components(spec: Any) -> Found:
    """Each component needs a training example to start from (k-means, scikit-learn);
    file data is checked when it is read."""
    count = spec.data.example_count()
    if count is None:
        return
    held = held_out_count(count, spec.data.validation_split)
    training, components = count - held, spec.model.components
    if 0 < training < components:  # none at all: the runtime's split says so
        split = f", {held} held out by data.validation_split" if held else ""
        yield (
            ("model", "components"),
            f"{components} components need at least {components} training examples, but "
            f"the data leaves {training} ({count} examples{split})",
            f"use at most {training} components, or more data",
        )
