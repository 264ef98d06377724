"""What every family's `evaluate` shares: a fixed random state, and checks before work.

A family's metrics draw random numbers (the ELBO's posterior sample, the samples of the
sample-quality metrics) from the model's `SeedGenerator`s. Their state moves with every
training step and is not saved with the weights, so without care the same weights give one
ELBO at the end of training and another in a later `gencompile evaluate`. `@evaluation`
makes both start from the same state, derived from the model's own seeds (the spec's seed),
and puts the generators back as they were afterwards.

It also resolves InceptionV3's weights first: an evaluation that cannot have real weights
stops in seconds, before any sampling; and a generated train.py asks a family's
`evaluate.check` before training, so that a metric the data cannot give stops the run
before its epochs are spent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np

from gencompile.progress import progress_bar
from gencompile.runtime.metrics.results import Metrics
from gencompile.runtime.metrics.samples import (
    SAMPLE_METRICS,
    check_reference_size,
    with_inception_weights,
)
from gencompile.runtime.metrics.tstr import check_labelled, labelled_sample_metrics

# Evaluation draws from each generator's own seed with its counter moved this far on:
# a stream that training's steps (one count each) never reach.
EVALUATION_COUNTER = 2**30
STATE = "seed_generator_state"

Evaluate = Callable[[keras.Model, Any, dict[str, Any]], Metrics]
Check = Callable[[keras.Model, Any, dict[str, Any]], None]


def seed_states(model: keras.Model) -> list[Any]:
    """The state variables of the model's SeedGenerators, in a fixed order. A state is
    (seed, counter): the seed stays, the counter counts the draws."""
    return [v for v in model.variables if v.name == STATE]


def evaluation_seed(model: keras.Model) -> int:
    """The seed evaluation starts from: the smallest seed of the generators the model itself
    holds (generated models seed them from the spec's seed), 0 for a model without any.
    Generators deeper down (a Dropout's) may be seeded at random, so they do not count."""
    own = [v for v in vars(model).values() if isinstance(v, keras.random.SeedGenerator)]
    return min((int(np.asarray(g.state.numpy())[0]) for g in own), default=0)


@contextmanager
def seeded(model: keras.Model) -> Iterator[int]:
    """Global RNGs seeded and every model generator at (its seed, EVALUATION_COUNTER);
    the generators are restored on exit. Yields the evaluation seed."""
    states = seed_states(model)
    saved = [np.asarray(v.numpy()).copy() for v in states]
    seed = evaluation_seed(model)
    keras.utils.set_random_seed(seed)
    for variable, value in zip(states, saved, strict=True):
        variable.assign(np.array([value[0], EVALUATION_COUNTER], dtype=value.dtype))
    try:
        yield seed
    finally:
        for variable, value in zip(states, saved, strict=True):
            variable.assign(value)


class FamilyEvaluation:
    """A family's `evaluate(model, data, config)`: InceptionV3's weights resolved first (or
    a RunError in seconds), then `compute` from the seeded state, then the metrics of a
    classifier trained on labelled samples (tstr, tstr_augmentation) from that same state,
    so they do not depend on which other metrics were asked for; what each metric was
    computed with is noted in the answer's `computed_with`.

    `check(model, data, config)` makes, before training, the refusals that need only the
    data and the model's structure (a held-out value outside a flow's support, distinct
    values in one categorical bin, labels a metric needs): `compute` makes them again, for
    an evaluation of a run trained earlier, but a generated train.py asks first, so a metric
    the data cannot give stops the run in seconds, not after its epochs."""

    def __init__(self, compute: Evaluate, checks: tuple[Check, ...]) -> None:
        functools.update_wrapper(self, compute)
        self.compute = compute
        self.checks = checks

    def check(self, model: keras.Model, data: Any, config: dict[str, Any]) -> None:
        check_labelled(model, data, config)
        check_reference_size(model, data, config)
        for check in self.checks:
            check(model, data, config)

    def __call__(self, model: keras.Model, data: Any, config: dict[str, Any]) -> Metrics:
        if any(name in SAMPLE_METRICS for name in config["metrics"]):
            config = with_inception_weights(config, data.kind, data.source)
        check_labelled(model, data, config)
        # A bar with the elapsed time for the whole; the long passes add their own below.
        with progress_bar("evaluating " + ", ".join(config["metrics"])), seeded(model) as seed:
            metrics = Metrics().merge(self.compute(model, data, config))
            with seeded(model):
                metrics.merge(labelled_sample_metrics(model, data, config, seed))
        for how in metrics.computed_with.values():
            how["evaluation_seed"] = seed
        return metrics


def evaluation(*checks: Check) -> Callable[[Evaluate], FamilyEvaluation]:
    """`@evaluation(check, ...)` over a family's `compute(model, data, config)`: its
    `FamilyEvaluation`, whose `check` runs `checks` (each `(model, data, config)`)."""
    return lambda compute: FamilyEvaluation(compute, checks)
