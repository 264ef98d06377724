"""A continuous density evaluated at the lattice points of data with known discrete levels
(the digits' 17, 8-bit images) is not a probability: its NLL is labelled as a density in
computed_with (and so in the report), and bits_per_dim, which would read as bits of
information, is refused (at validation, and by the runtime for an older lock)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.levels import source_levels
from gencompile.runtime import flow, vae
from gencompile.runtime.distributions import Gaussian
from gencompile.runtime.metrics.results import density_caveat
from gencompile.spec import load_spec_text
from gencompile.spec.checks import evaluated_metrics

DIGITS = {"type": "builtin", "name": "digits"}
MOONS = {"type": "builtin", "name": "moons"}
X = np.array([[0.0, 0.5, 1.0], [0.25, 0.0, 1.0]], np.float32)


def test_levels_known_from_the_source() -> None:
    assert source_levels(DIGITS) == 17
    assert source_levels({"type": "keras", "name": "mnist"}) == 256
    assert source_levels({"type": "images", "path": "x"}) == 256
    assert source_levels({"type": "tfrecord", "features": {"x": {"type": "image"}}}) == 256
    assert source_levels(MOONS) is None
    assert source_levels({"type": "npz", "path": "x.npz"}) is None


class DensityFlow:
    """A flow without dequantization whose log-density is 0 everywhere."""

    dequantization = None
    transforms = ()  # no logit transform first: a density on the whole real line

    def log_prob(self, x):
        return tf.reduce_sum(x, axis=1) * 0.0


def flow_data(source: dict) -> SimpleNamespace:
    return SimpleNamespace(
        x_val=X,
        element_shape=(3,),
        source=source,
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
    )


def test_a_flow_nll_on_digits_without_dequantization_is_labelled_a_density() -> None:
    metrics = flow.likelihood_metrics(DensityFlow(), flow_data(DIGITS), {"metrics": ["nll"]})
    caveat = metrics.computed_with["nll"]["caveat"]
    assert "continuous density at the data's 17 discrete levels" in caveat
    assert "not a probability" in caveat
    moons = flow.likelihood_metrics(DensityFlow(), flow_data(MOONS), {"metrics": ["nll"]})
    assert "caveat" not in moons.computed_with["nll"]


def test_bits_per_dim_of_a_flow_without_dequantization_on_digits_is_refused() -> None:
    config = {"metrics": ["nll", "bits_per_dim"]}
    with pytest.raises(RunError, match="bits_per_dim: the data has discrete levels") as info:
        flow.likelihood_metrics(DensityFlow(), flow_data(DIGITS), config)
    assert "add model.dequantization: {type: uniform, bins: 17}" in str(info.value)
    moons = flow.likelihood_metrics(DensityFlow(), flow_data(MOONS), config)
    assert set(moons) == {"nll", "bits_per_dim"}


class UntouchableGaussianVAE:
    """A gaussian VAE whose networks must not be called: the refusal comes first."""

    likelihood = Gaussian()

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"called model.{name} before refusing")


def test_bits_per_dim_of_a_gaussian_vae_on_digits_is_refused_before_any_work() -> None:
    data = SimpleNamespace(
        x_val=X,
        y_val=None,
        element_shape=(3,),
        source=DIGITS,
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
    )
    config = {"metrics": ["elbo", "bits_per_dim"], "importance_samples": 4}
    with pytest.raises(RunError, match="a gaussian likelihood gives a density") as info:
        vae.likelihood_metrics(UntouchableGaussianVAE(), data, config)
    assert "{type: categorical, bins: 17}" in str(info.value)


def test_density_caveat_only_for_sources_with_levels() -> None:
    assert density_caveat(SimpleNamespace(source=MOONS)) == {}
    assert "17 discrete levels" in density_caveat(SimpleNamespace(source=DIGITS))["caveat"]


FLOW = """\
spec_version: 1
name: flow-digits
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: flow
  transforms:
    - {type: affine_coupling, hidden: [16], mask: checkerboard}
"""


def test_a_flow_on_digits_without_dequantization_reports_nll_alone_by_default() -> None:
    assert evaluated_metrics(load_spec_text(FLOW, "spec.yaml").spec) == ["nll"]
    dequantized = FLOW + "  dequantization: {type: uniform, bins: 17}\n"
    assert evaluated_metrics(load_spec_text(dequantized, "spec.yaml").spec) == [
        "nll",
        "bits_per_dim",
    ]
