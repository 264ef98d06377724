"""A generated multi-scale flow is exact: it inverts, and its log-likelihood is the change of
variables worked out by brute force.

The flow is built (not trained) from a spec on 4x4x1 arrays: a squeeze to 2x2x4, a coupling
with Glow's sigmoid scale, a split under a learned prior, a squeeze of the kept half to
1x1x8, a coupling, and a split under N(0, I). Every weight is randomised, so no prior or
coupling hides behind its zero start. The brute force: the Jacobian of the map from x to
(the final part, the raw factored parts) by autodiff, and each factored part's Gaussian
log-density from scipy.stats given its prior's mean and log-scale.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from gencompile.compiler.lower import lower
from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.runtime import flows
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: multiscale-exact
seed: 2
data:
  source: {{type: npy, path: {path}}}
  validation_split: 0.25
model:
  family: flow
  transforms:
    - {{type: squeeze}}
    - {{type: affine_coupling, mask: channel, scale: sigmoid, hidden: [8]}}
    - {{type: split, prior: {{type: learned}}}}
    - {{type: squeeze}}
    - {{type: affine_coupling, mask: channel, hidden: [8]}}
    - {{type: split, prior: {{type: normal}}}}
training: {{epochs: 1}}
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> keras.Model:
    root = tmp_path_factory.mktemp("multiscale")
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.standard_normal((16, 4, 4, 1)).astype("float32"))
    (root / "spec.yaml").write_text(SPEC.format(path=root / "x.npy"))
    loaded = load_spec(root / "spec.yaml")
    built = build(loaded, root / "run")
    module = import_generated(root / "run", built.plan.package, "model")
    assert module.PARTS == ((2, 2, 2), (1, 1, 4), (1, 1, 4))
    assert module.LATENT_SHAPE == (16,)
    model = module.build_model()
    keras.utils.set_random_seed(1)
    for weight in model.trainable_weights:
        weight.assign(0.3 * rng.standard_normal(weight.shape).astype("float32"))
    return model


def batch(seed: int = 3, count: int = 6) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).standard_normal((count, 4, 4, 1)), tf.float32)


def test_the_example_lowers_with_its_parts(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((8, 4, 4, 1), "float32"))
    (tmp_path / "spec.yaml").write_text(SPEC.format(path=path))
    plan = lower(load_spec(tmp_path / "spec.yaml"))
    assert [t.layer.kind for t in plan.model.transforms].count("split") == 2
    assert plan.model.part_shapes == ((2, 2, 2), (1, 1, 4), (1, 1, 4))


def test_forward_then_inverse_reconstructs_the_input(flow: keras.Model) -> None:
    x = batch()
    z, _ = flow.forward(x)
    assert z.shape == (6, 16)
    np.testing.assert_allclose(flow.inverse(z).numpy(), x.numpy(), atol=1e-5)
    # and the other way round: codes from the base come back through the flow
    z = tf.random.stateless_normal((6, 16), seed=[4, 5])
    np.testing.assert_allclose(flow.forward(flow.inverse(z))[0].numpy(), z.numpy(), atol=1e-5)


def raw_parts(flow: keras.Model, x: tf.Tensor) -> tuple[tf.Tensor, list[tuple[tf.Tensor, ...]]]:
    """x -> (the final part, [(factored part, its prior's mean, log-scale)] per split), the
    factored parts as they leave the flow, not standardised."""
    factored = []
    for transform in flow.transforms:
        if isinstance(transform, flows.Split):
            half = x.shape[-1] // 2
            x, z = x[..., :half], x[..., half:]
            mean, log_scale = transform.prior(x)
            factored.append((z, mean, log_scale))
        else:
            x, _ = transform.forward(x)
    return x, factored


def test_log_likelihood_equals_the_brute_force_change_of_variables(flow: keras.Model) -> None:
    x = batch()
    flat = tf.reshape(x, (6, 16))
    with tf.GradientTape() as tape:
        tape.watch(flat)
        final, factored = raw_parts(flow, tf.reshape(flat, (6, 4, 4, 1)))
        mapped = tf.concat(
            [tf.reshape(final, (6, -1))] + [tf.reshape(z, (6, -1)) for z, *_ in factored], -1
        )
    jacobian = tape.batch_jacobian(mapped, flat).numpy().astype(np.float64)
    log_det = np.linalg.slogdet(jacobian)[1]
    base = stats.norm.logpdf(final.numpy().reshape(6, -1)).sum(-1)
    priors = sum(
        stats.norm.logpdf(z.numpy(), mean.numpy(), np.exp(log_scale.numpy())).reshape(6, -1).sum(-1)
        for z, mean, log_scale in factored
    )
    # the learned prior is not N(0, I) here, so it matters to the sum
    assert np.abs(factored[0][2].numpy()).max() > 0.05
    expected = base + priors + log_det
    np.testing.assert_allclose(flow.log_prob(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_reported_log_det_is_that_of_the_map_to_the_flat_code(flow: keras.Model) -> None:
    x = batch(7)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z, log_det = flow.forward(x)
    jacobian = tape.batch_jacobian(z, x).numpy().reshape(6, 16, 16).astype(np.float64)
    np.testing.assert_allclose(log_det.numpy(), np.linalg.slogdet(jacobian)[1], atol=1e-4)


def test_samples_have_the_data_shape_and_temperature_zero_gives_the_prior_means(
    flow: keras.Model,
) -> None:
    samples = flow.sample(5)
    assert samples.shape == (5, 4, 4, 1) and np.all(np.isfinite(samples.numpy()))
    cold = flow.sample(3, temperature=0.0)
    final, factored = raw_parts(flow, cold)
    np.testing.assert_allclose(final.numpy(), 0.0, atol=1e-5)  # the base's mean
    for z, mean, _ in factored:  # each factored part at its prior's mean
        np.testing.assert_allclose(z.numpy(), mean.numpy(), atol=1e-5)


def test_sigmoid_scale_is_glows_and_its_log_det_is_exact() -> None:
    raw = np.linspace(-6.0, 6.0, 13).astype("float32")
    found = flows.bound_log_scale(raw, "sigmoid", 2.0).numpy()
    np.testing.assert_allclose(found, special.log_expit(raw.astype(np.float64) + 2.0), rtol=1e-5)
    assert found.max() < 0  # a contraction only
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6,))
    h = keras.layers.Dense(8, activation="tanh")(inputs)
    network = keras.Model(inputs, [keras.layers.Dense(6)(h), keras.layers.Dense(6)(h)])
    coupling = flows.AffineCoupling(network, scale="sigmoid")
    flows.build_transforms([coupling], (6,))
    x = tf.constant(np.random.default_rng(1).standard_normal((5, 6)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, log_det = coupling.forward(x)
    jacobian = tape.batch_jacobian(y, x).numpy().astype(np.float64)
    np.testing.assert_allclose(log_det.numpy(), np.linalg.slogdet(jacobian)[1], atol=1e-5)
    np.testing.assert_allclose(coupling.inverse(y).numpy(), x.numpy(), atol=1e-5)


def test_split_rebuilds_from_its_config_and_refuses_odd_channels() -> None:
    kept = keras.Input(shape=(2, 2, 2))
    mean = keras.layers.Conv2D(2, 3, padding="same")(kept)
    log_scale = keras.layers.Conv2D(2, 3, padding="same")(kept)
    split = flows.Split(keras.Model(kept, [mean, log_scale]), name="split_1")
    flows.build_transforms([split], (2, 2, 4))
    clone = flows.Split.from_config(split.get_config())
    flows.build_transforms([clone], (2, 2, 4))
    clone.network.set_weights(split.network.get_weights())
    x = tf.random.stateless_normal((3, 2, 2, 4), seed=[1, 2])
    for a, b in zip(split.forward(x), clone.forward(x), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    standard = flows.Split.from_config(flows.Split(name="split_2").get_config())
    flows.build_transforms([standard], (2, 2, 4))
    kept_half, eps, log_det = standard.forward(x)  # N(0, I): the half as it is, no volume
    np.testing.assert_array_equal(kept_half.numpy(), x.numpy()[..., :2])
    np.testing.assert_array_equal(eps.numpy(), x.numpy()[..., 2:])
    np.testing.assert_array_equal(log_det.numpy(), np.zeros(3))
    with pytest.raises(ValueError, match=r"C even\. Received: input_shape=\(None, 2, 2, 3\)"):
        flows.build_transforms([flows.Split()], (2, 2, 3))
