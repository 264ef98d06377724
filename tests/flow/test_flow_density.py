"""Generated flows, trained through the real compiler: a density that integrates to 1.

A flow built from every vector transform (actnorm, affine couplings with both bounds,
reverse and random permutations, LU invertible dense, MAF) is trained briefly on the two
moons. Its learned density, integrated on a grid, is 1 within 2 %; the whole model inverts
exactly; and the held-out `nll` is -mean log p(x) in the data's original units. A tiny
dequantized image flow with a logistic base checks the importance-weighted bound.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from gencompile.generated import load_trained_model
from gencompile.runs import train
from gencompile.runtime.data import load_data
from gencompile.runtime.flow import dequantized_log_likelihood, evaluate, log_likelihood

MOONS = """\
spec_version: 1
name: flow-moons
seed: 3
data:
  source: {type: builtin, name: moons, n_samples: 2000, noise: 0.05}
  validation_split: 0.2
  preprocessing: {standardize: true}
  batch_size: 128
model:
  family: flow
  transforms:
    - {type: actnorm}
    - {type: affine_coupling, hidden: [32, 32], repeat: 2}
    - {type: permutation, order: reverse}
    - {type: invertible_dense}
    - {type: maf, hidden: [32, 32]}
    - {type: permutation}
    - {type: affine_coupling, hidden: [32], scale: soft_clamp, clamp: 3.0}
training:
  epochs: 25
  optimizer: {type: adam, learning_rate: 3.0e-3}
evaluation:
  metrics: [nll, bits_per_dim]
output:
  samples: {count: 256, format: npz}
"""


@pytest.fixture(scope="module")
def trained_moons(tmp_path_factory):
    spec = tmp_path_factory.mktemp("moons") / "spec.yaml"
    spec.write_text(MOONS)
    result = train(spec, run_dir=spec.parent / "run", quiet=True)
    model, module = load_trained_model(result.run_dir)
    data = load_data(module.DATA, seed=module.SEED)
    return result, model, data


def test_learned_density_integrates_to_one(trained_moons):
    result, model, data = trained_moons
    assert result.metrics["nll"] < 1.6  # it learned the moons (N(0, I) on them: ~2.8)
    step = 0.04
    axis = np.arange(-8.0, 8.0, step) + step / 2  # cell centres, standardized units
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    density = np.exp(log_likelihood(model, grid, batch_size=8192))
    assert abs(density.sum() * step * step - 1.0) < 0.02
    # not a trivial density: most of the mass sits near the data
    near = np.exp(log_likelihood(model, data.x_val)).mean()
    assert near > 5 * density.mean()


def test_the_whole_flow_inverts_exactly(trained_moons):
    _, model, data = trained_moons
    x = tf.constant(data.x_val[:200])
    z, _ = model.forward(x)
    np.testing.assert_allclose(model.inverse(z).numpy(), data.x_val[:200], atol=1e-4)
    samples = model.sample(100)
    z, _ = model.forward(samples)
    np.testing.assert_allclose(model.inverse(z).numpy(), samples.numpy(), atol=1e-4)


def test_held_out_nll_is_in_the_data_units(trained_moons):
    result, model, data = trained_moons
    log_p = model.log_prob(tf.constant(data.x_val)).numpy()
    expected = -log_p.mean() - data.preprocessor.log_det_jacobian
    assert result.metrics["nll"] == pytest.approx(expected, abs=1e-4)
    assert result.metrics["bits_per_dim"] == pytest.approx(expected / (2 * math.log(2)), abs=1e-4)
    assert abs(data.preprocessor.log_det_jacobian) > 0.1  # the units matter here


DIGITS = """\
spec_version: 1
name: flow-tiny-digits
seed: 1
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 128
model:
  family: flow
  base: {type: logistic}
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit}
    - {type: actnorm}
    - {type: affine_coupling, mask: checkerboard, hidden: [32], repeat: 2}
    - {type: squeeze}
    - {type: invertible_dense}
    - {type: affine_coupling, mask: channel, hidden: [32]}
training:
  epochs: 3
evaluation:  # none in the run: the test evaluates the bound itself, with these settings
  metrics: []
  importance_samples: 8
output:
  samples: {count: 16}
"""


def test_dequantized_bound_tightens_with_draws_and_samples_are_discrete(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS)
    result = train(spec, run_dir=tmp_path / "run", quiet=True)
    model, module = load_trained_model(result.run_dir)
    data = load_data(module.DATA, seed=module.SEED)
    x = data.x_val[:60]
    one = -dequantized_log_likelihood(model, x, draws=1, seed=0)
    many = -dequantized_log_likelihood(model, x, draws=32, seed=0)
    assert many.mean() < one.mean()  # the importance-weighted bound is tighter
    assert np.all(np.isfinite(many))
    # bits/dim of the metrics is the NLL bound over 64 pixels
    metrics = evaluate(model, data, {"metrics": ["nll", "bits_per_dim"], "importance_samples": 8})
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (64 * math.log(2)))
    assert metrics["nll"] < 64 * math.log(17)  # better than uniform over the 17 levels
    samples = model.sample(16).numpy() * 16
    np.testing.assert_allclose(samples, np.round(samples), atol=1e-4)
    assert samples.min() >= 0 and samples.max() <= 16
