"""Lowering of the `mixture` family: a Gaussian mixture, no networks.

Three algorithms fit it. EM (`algorithm.type: em`): one epoch is one EM iteration;
`train_step` runs the E-step on each batch and accumulates the sufficient statistics, and
the M-step turns them into new parameters between epochs. So `algorithm.max_iter` is the
number of epochs; `training.epochs`, when the spec (or `--epochs`) sets it, caps it
further. Variational EM (`algorithm.type: variational`, scikit-learn's
BayesianGaussianMixture) runs the same way, its M-step updating a posterior over the
weights, means and precisions, its convergence read on the lower bound. Gradient descent
(`algorithm.type: gradient`): `training.epochs` epochs of `training.optimizer` steps on
the negative mean log-likelihood, over free parameters (logits, means, log-Cholesky
precision factors). Images are modelled as flat vectors (8x8
digits: 64 features); samples are reshaped to the data's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import Capabilities, Family, Refusal, no_networks
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.plan import ExtraPlan, ProjectPlan, Shape
from gencompile.compiler.shapes import size
from gencompile.spec.families.mixture import EMAlgorithm, MixtureModel, VariationalAlgorithm


@dataclass(frozen=True)
class VariationalPlan:
    """The priors of a variational mixture, defaults resolved as scikit-learn resolves them
    (the data-dependent ones, the prior mean and covariance, at the start of training)."""

    process: bool  # a Dirichlet-process prior on the weights, else a Dirichlet distribution
    weight_concentration_prior: float
    mean_precision_prior: float
    degrees_of_freedom_prior: float
    covariance_prior: float | tuple[float, ...] | None  # None: the training data's


@dataclass(frozen=True)
class MixturePlan:
    data_shape: Shape
    features: int  # the data flattened to vectors
    components: int
    covariance: str  # full | diag | spherical | tied
    reg_covar: float
    algorithm: str  # em | variational | gradient
    init: str  # kmeans | random
    max_iter: int | None  # EM and variational
    tol: float | None  # EM and variational
    num_params: int  # free parameters, as in BIC
    n_init: int = 1  # EM: starts tried, the best kept
    variational: VariationalPlan | None = None


def covariance_params(covariance: str, components: int, features: int) -> int:
    """Free parameters of the covariances (scikit-learn's count)."""
    triangle = features * (features + 1) // 2
    return {
        "full": components * triangle,
        "diag": components * features,
        "spherical": components,
        "tied": triangle,
    }[covariance]


def free_params(covariance: str, components: int, features: int) -> int:
    """Mixture weights (they sum to one), means and covariances."""
    means = components * features
    return components - 1 + means + covariance_params(covariance, components, features)


COVARIANCE_WORDS = {
    "full": "a full covariance per component",
    "diag": "a diagonal covariance per component",
    "spherical": "a single variance per component",
    "tied": "one full covariance shared by all components",
}

INIT_WORDS = {"kmeans": "k-means", "random": "random"}

PRIOR_WORDS = {True: "a Dirichlet-process (stick-breaking)", False: "a Dirichlet"}


def check_mixture(low: Lowering, data: DataShape) -> None:
    """The variational priors against the data's number of features, located."""
    algorithm = low.family_model(MixtureModel).algorithm
    if not isinstance(algorithm, VariationalAlgorithm):
        return
    features = size(data.shape)
    where = ("model", "algorithm")
    dof = algorithm.degrees_of_freedom_prior
    if dof is not None and dof <= features - 1:
        low.report(
            (*where, "degrees_of_freedom_prior"),
            f"must be greater than features - 1 = {features - 1} (got {dof:g})",
            f"use at least {features} (scikit-learn's default), or leave it out",
        )
    prior = algorithm.covariance_prior
    if isinstance(prior, list) and len(prior) != features:
        low.report(
            (*where, "covariance_prior"),
            f"has {len(prior)} variances but the data has {features} features",
            "give one variance per feature, a single number, or leave it out",
        )


def variational_plan(
    algorithm: VariationalAlgorithm, components: int, features: int
) -> VariationalPlan:
    """scikit-learn's defaults: concentration 1 / components, features degrees of freedom."""
    prior = algorithm.covariance_prior
    return VariationalPlan(
        process=algorithm.weight_concentration_prior_type == "dirichlet_process",
        weight_concentration_prior=algorithm.weight_concentration_prior or 1.0 / components,
        mean_precision_prior=algorithm.mean_precision_prior,
        degrees_of_freedom_prior=algorithm.degrees_of_freedom_prior or float(features),
        covariance_prior=tuple(prior) if isinstance(prior, list) else prior,
    )


def plan_mixture(
    low: Lowering, data: DataShape, facts: None, networks: tuple[()]
) -> ProjectPlan[MixturePlan]:
    """The mixture's plan; EM caps the epochs at its iterations (see the module's doc)."""
    spec, model = low.spec, low.family_model(MixtureModel)
    algorithm = model.algorithm
    features = size(data.shape)
    training = low.training_config()
    em = algorithm if isinstance(algorithm, EMAlgorithm | VariationalAlgorithm) else None
    if em is not None:
        explicit_epochs = "epochs" in spec.training.model_fields_set
        training["epochs"] = (
            min(training["epochs"], em.max_iter) if explicit_epochs else em.max_iter
        )
    plan = MixturePlan(
        data_shape=data.shape,
        features=features,
        components=model.components,
        covariance=model.covariance,
        reg_covar=model.reg_covar,
        algorithm=algorithm.type,
        init=algorithm.init,
        max_iter=em.max_iter if em else None,
        tol=em.tol if em else None,
        num_params=free_params(model.covariance, model.components, features),
        n_init=algorithm.n_init if isinstance(algorithm, EMAlgorithm) else 1,
        variational=(
            variational_plan(algorithm, model.components, features)
            if isinstance(algorithm, VariationalAlgorithm)
            else None
        ),
    )
    objective = (
        "negative mean expected log-likelihood (scikit-learn's score) of a Bayesian mixture"
        if isinstance(algorithm, VariationalAlgorithm)
        else "negative mean log-likelihood of a mixture"
    )
    mixture_words = (
        f"{objective} of {model.components} Gaussians with "
        f"{COVARIANCE_WORDS[model.covariance]} (plus {model.reg_covar:g} on the diagonal), "
    )
    words, extra = _fitting(em, INIT_WORDS[algorithm.init], training, plan)
    resolved = low.resolved_spec()
    resolved["training"]["epochs"] = training["epochs"]
    return low.project_plan(
        data, plan, (), mixture_words + words, training=training, resolved=resolved, extra=extra
    )


def _fitting(
    em: EMAlgorithm | VariationalAlgorithm | None,
    start: str,
    training: dict[str, Any],
    plan: MixturePlan,
) -> tuple[str, ExtraPlan]:
    """How the mixture is fitted, for the loss's words and (EM) the model card."""
    if isinstance(em, VariationalAlgorithm):
        v = plan.variational
        assert v is not None
        prior = "the data's" if v.covariance_prior is None else "the given"
        words = (
            "its posterior fitted by variational Bayesian EM (scikit-learn's "
            f"BayesianGaussianMixture), which maximises the evidence lower bound, from a {start} "
            f"start, under {PRIOR_WORDS[v.process]} prior on the weights "
            f"(concentration {v.weight_concentration_prior:g}) and a Gaussian-Wishart prior "
            f"on each component (mean precision {v.mean_precision_prior:g}, "
            f"{v.degrees_of_freedom_prior:g} degrees of freedom, {prior} covariance); each "
            "epoch accumulates the expected statistics of every batch, then updates the "
            f"posterior in closed form; at most {training['epochs']} iterations, stopping when "
            f"the lower bound changes by less than {em.tol:g}"
        )
        fitting = (
            f"variational EM from {start}, one iteration per epoch "
            f"(at most {training['epochs']}), tol {em.tol:g} on the lower bound; no optimizer"
        )
        return words, ExtraPlan(fitting=fitting)
    if em is not None:
        best_of = f"the best of {em.n_init} " if em.n_init > 1 else "a "
        starts = f"{start} starts" if em.n_init > 1 else f"{start} start"
        words = (
            f"minimised by EM from {best_of}{starts}: each epoch accumulates the "
            "posterior-weighted statistics of every batch, then re-estimates the parameters in "
            f"closed form; at most {training['epochs']} iterations, stopping when the mean "
            f"log-likelihood changes by less than {em.tol:g}"
        )
        fitting = (
            f"EM from {start}{f' (best of {em.n_init} starts)' if em.n_init > 1 else ''}, "
            "one iteration per epoch "
            f"(at most {training['epochs']}), tol {em.tol:g}; no optimizer"
        )
        return words, ExtraPlan(fitting=fitting)
    optimizer = training["optimizer"]["type"]
    words = (
        f"minimised by {optimizer} over minibatches from a {start} start; the free "
        "parameters are the logits of the weights (softmax), the means, and the "
        "log-Cholesky factors of the precisions (exponentiated diagonal)"
    )
    return words, ExtraPlan()


FAMILY = Family(
    "mixture",
    MixtureModel,
    check_mixture,
    no_networks,
    plan_mixture,
    Capabilities(
        mixed_precision=Refusal("it runs in float64", "set training.mixed_precision: false"),
        latent_pictures=("map",),  # held-out data coloured by the most responsible component
        empty_replica_slices=True,  # sums and masked means over its examples, no convolution
    ),
)
