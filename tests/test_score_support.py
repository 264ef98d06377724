"""Where each family's likelihood is zero (`runtime.scores.Support`): the values that score
+inf rather than a finite number the formula would compute there (units: the model's)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def test_bernoulli_and_categorical_likelihoods_know_the_unit_interval_only() -> None:
    from gencompile.runtime.distributions import Bernoulli, Categorical, Gaussian
    from gencompile.runtime.scores import _likelihood_support

    bernoulli = _likelihood_support(Bernoulli())
    assert bernoulli is not None
    np.testing.assert_array_equal(
        bernoulli.inside(np.array([-1e-3, 0.0, 0.5, 1.0, 1.001, -100.0])),
        [False, True, True, True, False, False],
    )
    categorical = _likelihood_support(Categorical(bins=17))
    assert categorical is not None  # rounds to a level k / 16 without clipping, or not
    values = np.array([-1 / 32 + 1e-3, -0.05, 1.0, 1 + 1 / 32 - 1e-3, 1.05])
    np.testing.assert_array_equal(categorical.inside(values), [True, False, True, True, False])
    assert _likelihood_support(Gaussian()) is None  # a density on the whole real line


def test_a_flows_support_is_its_dequantizations_levels_or_its_logits_domain() -> None:
    from gencompile.runtime import flows
    from gencompile.runtime.scores import _flow_support

    dequantized = SimpleNamespace(dequantization=flows.UniformDequantization(256), transforms=[])
    levels = _flow_support(dequantized)
    assert levels is not None
    np.testing.assert_array_equal(levels.inside(np.array([0.0, 1.0, -0.01, 1.01])), [1, 1, 0, 0])
    logit = SimpleNamespace(dequantization=None, transforms=[flows.Logit(alpha=0.05)])
    domain = _flow_support(logit)
    assert domain is not None  # alpha + (1 - 2 alpha) x in (0, 1): x in (-1/18, 19/18)
    np.testing.assert_array_equal(
        domain.inside(np.array([-0.05, -0.06, 1.05, 1.06, 2.0])), [1, 0, 1, 0, 0]
    )
    assert _flow_support(SimpleNamespace(dequantization=None, transforms=[])) is None


def test_scored_puts_inf_outside_and_leaves_the_rest_bit_identical() -> None:
    from gencompile.runtime.scores import ScoreKind, _unit_interval, scored

    x = np.array([[0.2, 0.3], [-1.0, 0.5], [0.9, 1.0], [0.1, 7.0]], np.float32)
    computed = np.array([1.25, -3788.3, 2.5, -9.0])
    kind = ScoreKind("nll", "test", _unit_interval("a bernoulli likelihood"))
    values, outside = scored(kind, lambda x, y: computed, x, None)
    np.testing.assert_array_equal(outside, [False, True, False, True])
    np.testing.assert_array_equal(values, [1.25, np.inf, 2.5, np.inf])
    plain, none = scored(ScoreKind("nll", "test"), lambda x, y: computed, x, None)
    np.testing.assert_array_equal(plain, computed)
    assert not none.any()


@pytest.mark.parametrize(
    ("held_out", "expected"),
    [([1.0, 2.0, 3.0], 2.98), ([1.0, 2.0, np.inf], np.inf), ([1.0, np.inf, np.inf], np.inf)],
)
def test_a_threshold_among_held_out_examples_outside_the_support(held_out, expected) -> None:
    from gencompile.scoring import _threshold

    assert _threshold(np.array(held_out), 0.99) == pytest.approx(expected)
