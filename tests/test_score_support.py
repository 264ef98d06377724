"""Where each family's likelihood is zero (`runtime.support.Support`): the values that score
+inf rather than a finite number the formula would compute there (units: the model's)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def test_bernoulli_and_categorical_likelihoods_know_the_unit_interval_only() -> None:
    from gencompile.runtime.distributions import Bernoulli, Categorical, Gaussian
    from gencompile.runtime.support import likelihood_support

    bernoulli = likelihood_support(Bernoulli())
    assert bernoulli is not None
    np.testing.assert_array_equal(
        bernoulli.inside(np.array([-1e-3, 0.0, 0.5, 1.0, 1.001, -100.0])),
        [False, True, True, True, False, False],
    )
    categorical = likelihood_support(Categorical(bins=17))
    assert categorical is not None  # rounds to a level k / 16 without clipping, or not
    values = np.array([-1 / 32 + 1e-3, -0.05, 1.0, 1 + 1 / 32 - 1e-3, 1.05])
    np.testing.assert_array_equal(categorical.inside(values), [True, False, True, True, False])
    assert likelihood_support(Gaussian()) is None  # a density on the whole real line


def test_a_categorical_digit_model_knows_pixels_from_minus_a_half_to_sixteen_and_a_half() -> None:
    """The README's example: 17 levels k / 16, so the support is more than [0, 1]: a value
    rounds to a level from -0.5 to 16.5 (data units; half-way values round to even)."""
    from gencompile.runtime.distributions import Categorical
    from gencompile.runtime.support import likelihood_support

    support = likelihood_support(Categorical(bins=17))
    assert support is not None
    pixels = np.array([-0.5, 16.5, -0.4, 16.4, -0.5001, 16.5001, -1.0, 17.0], np.float32)
    np.testing.assert_array_equal(support.inside(pixels / 16), [1, 1, 1, 1, 0, 0, 0, 0])


def test_a_flows_support_is_its_dequantizations_levels_or_its_logits_domain() -> None:
    from gencompile.runtime import flows
    from gencompile.runtime.support import flow_support

    dequantized = SimpleNamespace(dequantization=flows.UniformDequantization(256), transforms=[])
    levels = flow_support(dequantized)
    assert levels is not None
    np.testing.assert_array_equal(levels.inside(np.array([0.0, 1.0, -0.01, 1.01])), [1, 1, 0, 0])
    logit = SimpleNamespace(dequantization=None, transforms=[flows.Logit(alpha=0.05)])
    domain = flow_support(logit)
    assert domain is not None  # alpha + (1 - 2 alpha) x in (0, 1): x in (-1/18, 19/18)
    np.testing.assert_array_equal(
        domain.inside(np.array([-0.05, -0.06, 1.05, 1.06, 2.0])), [1, 0, 1, 0, 0]
    )
    assert flow_support(SimpleNamespace(dequantization=None, transforms=[])) is None


def test_scored_puts_inf_outside_and_leaves_the_rest_bit_identical() -> None:
    from gencompile.runtime.scores import ScoreKind, scored
    from gencompile.runtime.support import unit_interval

    x = np.array([[0.2, 0.3], [-1.0, 0.5], [0.9, 1.0], [0.1, 7.0]], np.float32)
    computed = np.array([1.25, -3788.3, 2.5, -9.0])
    kind = ScoreKind("nll", "test", unit_interval("a bernoulli likelihood"))
    values, outside = scored(kind, lambda x, y: computed, x, None)
    np.testing.assert_array_equal(outside, [False, True, False, True])
    np.testing.assert_array_equal(values, [1.25, np.inf, 2.5, np.inf])
    plain, none = scored(ScoreKind("nll", "test"), lambda x, y: computed, x, None)
    np.testing.assert_array_equal(plain, computed)
    assert not none.any()


@pytest.mark.parametrize(
    ("held_out", "outside", "quantile", "expected"),
    [
        ([1.0, 2.0, 3.0], [0, 0, 0], 0.99, 2.98),  # as before the support: nothing outside
        ([1.0, 2.0, np.inf], [0, 0, 1], 0.99, 1.99),  # the inf left out, not the threshold
        ([1.0, np.inf, np.inf], [0, 1, 1], 0.5, 1.0),
        # numpy's interpolation at an exact index next to an inf gave NaN, then inf (finding 4)
        ([*range(100), np.inf], [0] * 100 + [1], 0.99, 98.01),
    ],
)
def test_the_threshold_is_the_quantile_of_the_held_out_scores_inside_the_support(
    held_out, outside, quantile, expected
) -> None:
    from gencompile.scoring import _threshold

    held_out, outside = np.array(held_out, float), np.array(outside, bool)
    assert _threshold(held_out, outside, quantile) == pytest.approx(expected)
    inside = held_out[~outside]
    assert _threshold(held_out, outside, quantile) == np.quantile(inside, quantile)


def test_no_threshold_when_every_held_out_example_is_outside_the_support() -> None:
    from gencompile.errors import RunError
    from gencompile.scoring import _threshold

    with pytest.raises(RunError, match="all 2 held-out examples are outside") as refused:
        _threshold(np.array([np.inf, np.inf]), np.array([True, True]), 0.99, "why", "a gauss")
    assert "check data.preprocessing" in str(refused.value)


def test_the_levels_support_rounds_as_the_model_does() -> None:
    """The support asks the model's own (unclipped) rounding, so it cannot drift from it."""
    from gencompile.runtime import flows
    from gencompile.runtime.support import flow_support, likelihood_support

    floored = SimpleNamespace(name="categorical", bins=17, rounded=lambda v: np.floor(v * 16))
    support = likelihood_support(floored)
    assert support is not None  # floor: -0.01 is level -1 (outside), 1 + 1/20 level 16
    np.testing.assert_array_equal(support.inside(np.array([-0.01, 1.05, 1.07])), [0, 1, 0])
    quantizer = flows.UniformDequantization(3)
    quantizer.rounded = lambda v: np.floor(v * 2)  # type: ignore[method-assign]
    levels = flow_support(SimpleNamespace(dequantization=quantizer, transforms=[]))
    assert levels is not None
    np.testing.assert_array_equal(levels.inside(np.array([-0.01, 1.2, 1.6])), [0, 1, 0])
