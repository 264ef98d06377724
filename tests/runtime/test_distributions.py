"""Reference checks of the runtime's distributions and KL terms against scipy / numpy.

Values are compared with independent computations (scipy.stats, closed forms written out in
numpy), not with a second copy of the same formula.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from gencompile.runtime.distributions import (
    LOG_2PI,
    Bernoulli,
    Categorical,
    Gaussian,
    Likelihood,
    Logistic,
    MixtureOfGaussiansPrior,
    StandardNormalPrior,
    diag_normal_log_prob,
    make_likelihood,
    make_prior,
    reparameterize,
)
from gencompile.runtime.losses import (
    free_bits_kl,
    gaussian_kl,
    monte_carlo_kl,
)
from gencompile.runtime.replicas import scale_to_global_batch

RTOL = 1e-4
ATOL = 1e-4
X_SHAPE = (4, 3, 5, 2)  # [B, H, W, C]: log_prob must sum over every non-batch axis


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _per_example(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1).sum(axis=1)


def _np_softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


# --------------------------------------------------------------------------------------
# Diagonal normal helpers
# --------------------------------------------------------------------------------------


def test_log_2pi() -> None:
    assert np.log(2 * np.pi) == pytest.approx(LOG_2PI)


def test_diag_normal_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    z, mean = _f32(rng.normal(size=(6, 3))), _f32(rng.normal(size=(6, 3)))
    log_var = _f32(rng.uniform(-2, 1, size=(6, 3)))
    got = diag_normal_log_prob(z, mean, log_var).numpy()
    want = [
        stats.multivariate_normal(mean[i], np.diag(np.exp(log_var[i]))).logpdf(z[i])
        for i in range(6)
    ]
    assert got.shape == (6,)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_reparameterize_moments_seeding_and_gradient() -> None:
    n = 20000
    mean = tf.constant(np.tile([[1.5, -2.0]], (n, 1)), tf.float32)
    log_var = tf.constant(np.tile(np.log([[0.25, 4.0]]), (n, 1)), tf.float32)
    z = reparameterize(mean, log_var, seed=keras.random.SeedGenerator(3)).numpy()
    assert z.shape == (n, 2) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), [1.5, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)
    again = reparameterize(mean, log_var, seed=keras.random.SeedGenerator(3)).numpy()
    np.testing.assert_array_equal(z, again)

    m, lv = tf.Variable(mean[:4]), tf.Variable(log_var[:4])
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(reparameterize(m, lv, seed=keras.random.SeedGenerator(0)))
    grad_m, grad_lv = tape.gradient(out, [m, lv])
    np.testing.assert_allclose(grad_m.numpy(), np.ones((4, 2)))
    assert np.all(np.isfinite(grad_lv.numpy())) and np.any(grad_lv.numpy() != 0)


# --------------------------------------------------------------------------------------
# Observation likelihoods: log_prob against scipy
# --------------------------------------------------------------------------------------


def test_bernoulli_log_prob_binary_matches_scipy(rng: np.random.Generator) -> None:
    x = _f32(rng.integers(0, 2, size=X_SHAPE))
    logits = _f32(rng.normal(scale=3.0, size=X_SHAPE))
    p = special.expit(logits.astype(np.float64))
    got = Bernoulli().log_prob(x, logits).numpy()
    explicit = _per_example(x * np.log(p) + (1 - x) * np.log1p(-p))
    via_scipy = _per_example(stats.bernoulli.logpmf(x, p))
    assert got.shape == (X_SHAPE[0],)
    np.testing.assert_allclose(got, explicit, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got, via_scipy, rtol=RTOL, atol=ATOL)


def test_bernoulli_non_binary_is_negative_cross_entropy(rng: np.random.Generator) -> None:
    x = _f32(rng.uniform(size=X_SHAPE))
    logits = _f32(rng.normal(size=X_SHAPE))
    p = special.expit(logits.astype(np.float64))
    want = _per_example(x * np.log(p) + (1 - x) * np.log1p(-p))
    np.testing.assert_allclose(Bernoulli().log_prob(x, logits).numpy(), want, rtol=RTOL, atol=ATOL)


def test_bernoulli_is_stable_for_extreme_logits() -> None:
    x = _f32([[0.0, 1.0, 1.0, 0.0]])
    logits = _f32([[200.0, -200.0, 200.0, -200.0]])
    # Exact answer: -200 - 200 + ~0 + ~0. Sigmoid-then-log would give -inf.
    np.testing.assert_allclose(Bernoulli().log_prob(x, logits).numpy(), [-400.0], rtol=1e-6)


def test_gaussian_learned_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    x = _f32(rng.normal(size=X_SHAPE))
    params = _f32(rng.normal(size=(*X_SHAPE, 2)))
    lik = Gaussian(sigma="learned")
    assert lik.num_params == 2
    scale = _np_softplus(params[..., 1].astype(np.float64)) + 1e-3
    want = _per_example(stats.norm.logpdf(x, loc=params[..., 0], scale=scale))
    np.testing.assert_allclose(lik.log_prob(x, params).numpy(), want, rtol=RTOL, atol=ATOL)


def test_gaussian_min_scale_is_a_floor() -> None:
    lik = Gaussian(sigma="learned", min_scale=0.1)
    x = np.zeros((1, 3), np.float32)
    params = np.stack([np.zeros((1, 3)), np.full((1, 3), -1e4)], axis=-1).astype(np.float32)
    want = 3 * stats.norm.logpdf(0.0, scale=0.1)
    np.testing.assert_allclose(lik.log_prob(x, params).numpy(), [want], rtol=1e-5)


def test_gaussian_fixed_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    x = _f32(rng.normal(size=X_SHAPE))
    loc = _f32(rng.normal(size=X_SHAPE))
    lik = Gaussian(sigma=0.3)
    assert lik.num_params == 1
    want = _per_example(stats.norm.logpdf(x, loc=loc, scale=0.3))
    np.testing.assert_allclose(lik.log_prob(x, loc).numpy(), want, rtol=RTOL, atol=ATOL)


def test_categorical_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    bins = 16
    idx = rng.integers(0, bins, size=X_SHAPE)
    x = _f32(idx / (bins - 1))
    logits = _f32(rng.normal(scale=2.0, size=(*X_SHAPE, bins)))
    lik = Categorical(bins=bins)
    assert lik.num_params == bins
    log_p = special.log_softmax(logits.astype(np.float64), axis=-1)
    picked = np.take_along_axis(log_p, idx[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(
        lik.log_prob(x, logits).numpy(), _per_example(picked), rtol=RTOL, atol=ATOL
    )


def test_categorical_rounds_to_nearest_bin() -> None:
    lik = Categorical(bins=3)  # classes at 0, 0.5, 1
    logits = _f32(np.log([[[0.2, 0.3, 0.5]] * 4]))
    x = _f32([[0.2, 0.3, 0.9, 1.0]])  # -> classes 0, 1, 2, 2
    np.testing.assert_allclose(
        lik.log_prob(x, logits).numpy(), [np.log([0.2, 0.3, 0.5, 0.5]).sum()], rtol=1e-5
    )


def test_logistic_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    x = _f32(rng.normal(size=X_SHAPE))
    params = np.stack([rng.normal(size=X_SHAPE), rng.uniform(-3, 1, size=X_SHAPE)], axis=-1).astype(
        np.float32
    )
    want = _per_example(stats.logistic.logpdf(x, loc=params[..., 0], scale=np.exp(params[..., 1])))
    np.testing.assert_allclose(Logistic().log_prob(x, params).numpy(), want, rtol=RTOL, atol=ATOL)


def test_logistic_clips_log_scale_and_is_stable() -> None:
    x = _f32([[0.0, 50.0]])
    params = _f32([[[0.0, -20.0], [0.0, 0.0]]])
    want = stats.logistic.logpdf(0.0, scale=np.exp(-7.0)) + stats.logistic.logpdf(50.0)
    got = Logistic().log_prob(x, params).numpy()
    np.testing.assert_allclose(got, [want], rtol=1e-5)


# --------------------------------------------------------------------------------------
# Observation likelihoods: mean() and sample()
# --------------------------------------------------------------------------------------


def test_likelihood_means(rng: np.random.Generator) -> None:
    logits = _f32(rng.normal(size=(2, 3)))
    np.testing.assert_allclose(Bernoulli().mean(logits).numpy(), special.expit(logits), atol=1e-6)

    gp = _f32(rng.normal(size=(2, 3, 2)))
    np.testing.assert_allclose(Gaussian().mean(gp).numpy(), gp[..., 0])
    np.testing.assert_allclose(Gaussian(sigma=0.5).mean(gp[..., 0]).numpy(), gp[..., 0])
    np.testing.assert_allclose(Logistic().mean(gp).numpy(), gp[..., 0])

    cl = _f32(rng.normal(size=(2, 3, 5)))
    want = (special.softmax(cl, axis=-1) * np.linspace(0, 1, 5)).sum(-1)
    np.testing.assert_allclose(Categorical(bins=5).mean(cl).numpy(), want, atol=1e-6)


def test_gaussian_fixed_sample_moments() -> None:
    loc = np.full((500, 40), 2.0, np.float32)
    s = Gaussian(sigma=0.1).sample(loc, keras.random.SeedGenerator(1)).numpy()
    assert s.shape == loc.shape and s.dtype == np.float32
    assert s.mean() == pytest.approx(2.0, abs=0.005)
    assert s.std() == pytest.approx(0.1, rel=0.03)


def test_gaussian_learned_sample_moments() -> None:
    raw = np.log(np.expm1(0.5))  # softplus(raw) = 0.5
    params = np.stack([np.full((500, 40), -1.0), np.full((500, 40), raw)], axis=-1)
    s = Gaussian(min_scale=0.0).sample(_f32(params), keras.random.SeedGenerator(2)).numpy()
    assert s.shape == (500, 40)
    assert s.mean() == pytest.approx(-1.0, abs=0.01)
    assert s.std() == pytest.approx(0.5, rel=0.03)


def test_bernoulli_sample_moments() -> None:
    p = np.array([0.1, 0.5, 0.9])
    logits = _f32(np.tile(special.logit(p), (8000, 1)))
    s = Bernoulli().sample(logits, keras.random.SeedGenerator(3)).numpy()
    assert s.shape == (8000, 3) and set(np.unique(s)) <= {0.0, 1.0}
    np.testing.assert_allclose(s.mean(0), p, atol=0.02)


def test_categorical_sample_values_and_moments() -> None:
    probs = np.array([0.5, 0.0, 0.2, 0.3])
    logits = _f32(np.tile(np.log(probs + 1e-12), (4000, 2, 1)))
    s = Categorical(bins=4).sample(logits, keras.random.SeedGenerator(4)).numpy()
    assert s.shape == (4000, 2)
    assert set(np.round(np.unique(s) * 3).astype(int)) <= {0, 2, 3}
    assert s.mean() == pytest.approx((probs * np.linspace(0, 1, 4)).sum(), abs=0.02)


def test_logistic_sample_moments() -> None:
    params = np.stack([np.full((400, 50), 1.0), np.full((400, 50), np.log(0.2))], axis=-1)
    s = Logistic().sample(_f32(params), keras.random.SeedGenerator(5)).numpy()
    assert s.shape == (400, 50)
    assert s.mean() == pytest.approx(1.0, abs=0.01)
    assert s.std() == pytest.approx(stats.logistic.std(scale=0.2), rel=0.03)


# --------------------------------------------------------------------------------------
# make_likelihood and configs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "cls", "num_params"),
    [
        ({"type": "bernoulli"}, Bernoulli, 1),
        ({"type": "gaussian", "sigma": "learned"}, Gaussian, 2),
        ({"type": "gaussian", "sigma": 0.1}, Gaussian, 1),
        ({"type": "categorical", "bins": 256}, Categorical, 256),
        ({"type": "logistic"}, Logistic, 2),
    ],
)
def test_make_likelihood(config: dict, cls: type[Likelihood], num_params: int) -> None:
    lik = make_likelihood(config)
    assert type(lik) is cls and lik.num_params == num_params
    assert type(lik).from_config(lik.get_config()) == lik
    assert make_likelihood({"type": config["type"], **lik.get_config()}) == lik


def test_make_likelihood_rejects_unknown_type_and_bad_args() -> None:
    with pytest.raises(ValueError, match="poisson"):
        make_likelihood({"type": "poisson"})
    with pytest.raises(ValueError, match="bins"):
        make_likelihood({"type": "bernoulli", "bins": 3})
    with pytest.raises(ValueError, match="sigma"):
        make_likelihood({"type": "gaussian", "sigma": -1.0})
    with pytest.raises(ValueError, match="bins"):
        make_likelihood({"type": "categorical", "bins": 1})


# --------------------------------------------------------------------------------------
# Priors
# --------------------------------------------------------------------------------------


def test_standard_normal_prior_matches_scipy(rng: np.random.Generator) -> None:
    prior = StandardNormalPrior(latent_dim=3)
    z = _f32(rng.normal(scale=2.0, size=(7, 3)))
    want = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z)
    np.testing.assert_allclose(prior.log_prob(z).numpy(), want, rtol=RTOL, atol=ATOL)
    s = prior.sample(5000, keras.random.SeedGenerator(0)).numpy()
    assert s.shape == (5000, 3)
    np.testing.assert_allclose(s.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(s.std(0), 1.0, rtol=0.04)
    assert StandardNormalPrior.analytic_kl is True and not prior.trainable_weights


def _set_mixture_weights(prior: MixtureOfGaussiansPrior, rng: np.random.Generator) -> None:
    k, d = prior.components, prior.latent_dim
    prior.means.assign(_f32(rng.normal(scale=3.0, size=(k, d))))
    prior.log_vars.assign(_f32(rng.uniform(-1.5, 0.5, size=(k, d))))
    prior.logits.assign(_f32(rng.normal(size=(k,))))


def test_mixture_prior_log_prob_matches_scipy(rng: np.random.Generator) -> None:
    prior = MixtureOfGaussiansPrior(latent_dim=2, components=4)
    _set_mixture_weights(prior, rng)
    means, log_vars = prior.means.numpy(), prior.log_vars.numpy()
    log_w = special.log_softmax(prior.logits.numpy().astype(np.float64))
    z = _f32(rng.normal(scale=3.0, size=(9, 2)))
    comps = np.stack(
        [
            log_w[k] + stats.multivariate_normal(means[k], np.diag(np.exp(log_vars[k]))).logpdf(z)
            for k in range(4)
        ],
        axis=-1,
    )
    want = special.logsumexp(comps, axis=-1)
    np.testing.assert_allclose(prior.log_prob(z).numpy(), want, rtol=RTOL, atol=ATOL)


def test_mixture_prior_weights_init_and_tracking() -> None:
    prior = MixtureOfGaussiansPrior(latent_dim=3, components=5)
    assert MixtureOfGaussiansPrior.analytic_kl is False
    names = sorted(w.path.split("/")[-1] for w in prior.trainable_weights)
    assert names == ["log_vars", "logits", "means"]
    assert prior.means.shape == (5, 3) and prior.logits.shape == (5,)
    np.testing.assert_array_equal(prior.log_vars.numpy(), 0.0)
    np.testing.assert_array_equal(prior.logits.numpy(), 0.0)
    assert np.std(prior.means.numpy()) > 0.3  # random normal, not zeros
    same = MixtureOfGaussiansPrior(latent_dim=3, components=5)
    other = MixtureOfGaussiansPrior(latent_dim=3, components=5, seed=1)
    np.testing.assert_array_equal(prior.means.numpy(), same.means.numpy())
    assert not np.array_equal(prior.means.numpy(), other.means.numpy())

    # Tracked by an enclosing model, and gradients reach every prior weight.
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, prior(inputs))
    assert len(model.trainable_weights) == 3
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(prior.log_prob(tf.ones((4, 3))))
    grads = tape.gradient(loss, prior.trainable_weights)
    assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_mixture_prior_sample_moments(rng: np.random.Generator) -> None:
    prior = MixtureOfGaussiansPrior(latent_dim=2, components=3)
    means = _f32([[-6.0, 0.0], [0.0, 6.0], [6.0, -3.0]])
    prior.means.assign(means)
    prior.log_vars.assign(np.full((3, 2), np.log(0.04), np.float32))
    weights = np.array([0.2, 0.3, 0.5])
    prior.logits.assign(_f32(np.log(weights)))
    s = prior.sample(20000, keras.random.SeedGenerator(7)).numpy()
    assert s.shape == (20000, 2)
    np.testing.assert_allclose(s.mean(0), weights @ means, atol=0.1)
    # Components are far apart: nearest-mean assignment recovers mixture weights and spread.
    nearest = np.argmin(((s[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / len(s), weights, atol=0.015)
    np.testing.assert_allclose((s - means[nearest]).std(0), 0.2, rtol=0.05)


@pytest.mark.parametrize(
    "prior",
    [
        StandardNormalPrior(latent_dim=4, name="p"),
        MixtureOfGaussiansPrior(latent_dim=4, components=3, seed=5, name="q"),
    ],
    ids=["normal", "mixture"],
)
def test_prior_get_config_round_trip(prior: keras.layers.Layer) -> None:
    config = prior.get_config()
    clone = type(prior).from_config(config)
    assert clone.get_config() == config
    assert clone.latent_dim == 4 and clone.name == prior.name
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(prior))
    assert type(revived) is type(prior) and revived.get_config() == config
    if isinstance(prior, MixtureOfGaussiansPrior):  # same seed -> same initial means
        np.testing.assert_array_equal(clone.means.numpy(), prior.means.numpy())


def test_make_prior() -> None:
    normal = make_prior({"type": "normal"}, latent_dim=6)
    assert isinstance(normal, StandardNormalPrior) and normal.latent_dim == 6
    mog = make_prior({"type": "mixture_of_gaussians", "components": 10}, latent_dim=6)
    assert isinstance(mog, MixtureOfGaussiansPrior) and mog.means.shape == (10, 6)
    with pytest.raises(ValueError, match="vamp"):
        make_prior({"type": "vamp"}, latent_dim=2)


# --------------------------------------------------------------------------------------
# KL terms and loss helpers
# --------------------------------------------------------------------------------------


def test_gaussian_kl_matches_closed_form(rng: np.random.Generator) -> None:
    mean = rng.normal(size=(5, 3))
    log_var = rng.uniform(-2, 2, size=(5, 3))
    sigma = np.exp(0.5 * log_var)
    # KL(N(mu, s^2) || N(0, 1)) = log(1/s) + (s^2 + mu^2)/2 - 1/2
    want = -np.log(sigma) + (sigma**2 + mean**2) / 2 - 0.5
    got = gaussian_kl(_f32(mean), _f32(log_var)).numpy()
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_monte_carlo_kl_averages_to_analytic_kl() -> None:
    n = 40000
    mean = tf.constant(np.tile([[0.5, -1.0, 0.2]], (n, 1)), tf.float32)
    log_var = tf.constant(np.tile([[-1.0, 0.3, 0.0]], (n, 1)), tf.float32)
    z = reparameterize(mean, log_var, keras.random.SeedGenerator(11))
    mc = monte_carlo_kl(z, mean, log_var, StandardNormalPrior(latent_dim=3))
    assert mc.shape == (n,)
    analytic = float(tf.reduce_sum(gaussian_kl(mean[:1], log_var[:1])))
    assert float(tf.reduce_mean(mc)) == pytest.approx(analytic, abs=0.03)


def test_free_bits_kl() -> None:
    kl = _f32([[0.1, 2.0, 0.0], [0.3, 4.0, 0.2]])  # batch means per dim: 0.2, 3.0, 0.1
    assert float(free_bits_kl(kl, 0.0)) == pytest.approx(kl.sum(1).mean())
    assert float(free_bits_kl(kl, 0.5)) == pytest.approx(0.5 + 3.0 + 0.5)
    assert float(free_bits_kl(kl, 0.15)) == pytest.approx(0.2 + 3.0 + 0.15)
    # Clamped dimensions get no gradient; the others keep theirs.
    var = tf.Variable(kl)
    with tf.GradientTape() as tape:
        out = free_bits_kl(var, 0.5)
    np.testing.assert_allclose(tape.gradient(out, var).numpy(), [[0, 0.5, 0], [0, 0.5, 0]])


def test_scaling_to_the_global_batch_without_strategy_is_identity() -> None:
    assert float(scale_to_global_batch(tf.constant(3.0))) == 3.0
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert float(scale_to_global_batch(tf.constant(3.0))) == 3.0


# --------------------------------------------------------------------------------------
# Everything runs inside tf.function with an unknown batch size
# --------------------------------------------------------------------------------------


def test_everything_runs_in_tf_function(rng: np.random.Generator) -> None:
    seed = keras.random.SeedGenerator(0)
    likelihoods = [Bernoulli(), Gaussian(), Gaussian(sigma=0.2), Categorical(bins=8), Logistic()]
    mog = MixtureOfGaussiansPrior(latent_dim=2, components=3)
    std = StandardNormalPrior(latent_dim=2)
    x = _f32(rng.uniform(size=(3, 4, 2)))
    params = {
        id(lik): _f32(
            rng.normal(size=(3, 4, 2) + ((lik.num_params,) if lik.num_params > 1 else ()))
        )
        for lik in likelihoods
    }
    z_mean, z_log_var = _f32(rng.normal(size=(3, 2))), _f32(rng.normal(size=(3, 2)) * 0.1)

    def run(x, z_mean, z_log_var, *lik_params):
        out = {}
        for lik, p in zip(likelihoods, lik_params, strict=True):
            out[f"{type(lik).__name__}{lik.num_params}"] = (
                lik.log_prob(x, p),
                lik.mean(p),
                lik.sample(p, seed),
            )
        z = reparameterize(z_mean, z_log_var, seed)
        n = tf.shape(z_mean)[0]
        out["priors"] = (
            diag_normal_log_prob(z, z_mean, z_log_var),
            std.log_prob(z),
            mog.log_prob(z),
            std.sample(n, seed),
            mog.sample(n, seed),
        )
        kl = gaussian_kl(z_mean, z_log_var)
        out["losses"] = (
            kl,
            monte_carlo_kl(z, z_mean, z_log_var, mog),
            free_bits_kl(kl, 0.1),
            scale_to_global_batch(tf.reduce_mean(kl)),
        )
        return out

    lik_params = [params[id(lik)] for lik in likelihoods]
    signature = (
        [tf.TensorSpec((None, 4, 2), tf.float32)]
        + [tf.TensorSpec((None, 2), tf.float32)] * 2
        + [tf.TensorSpec((None, *p.shape[1:]), tf.float32) for p in lik_params]
    )
    graph_fn = tf.function(run, input_signature=signature)
    eager = run(x, z_mean, z_log_var, *lik_params)
    graph = graph_fn(x, z_mean, z_log_var, *lik_params)
    for key, eager_values in eager.items():
        for e, g in zip(eager_values, graph[key], strict=True):
            assert e.shape == g.shape and g.dtype == tf.float32, key
            assert np.all(np.isfinite(g.numpy())), key
    # Traced with an unknown batch size, the outputs keep an unknown batch axis.
    traced = graph_fn.get_concrete_function().structured_outputs
    assert traced["Gaussian2"][0].shape.as_list() == [None]
    assert traced["priors"][4].shape.as_list() == [None, 2]
    # Deterministic outputs agree between eager and graph.
    for key in ["Bernoulli1", "Gaussian2", "Gaussian1", "Categorical8", "Logistic2"]:
        for i in (0, 1):
            np.testing.assert_allclose(graph[key][i], eager[key][i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(graph["losses"][0], eager["losses"][0], rtol=1e-5)
    assert graph["Bernoulli1"][0].shape == (3,) and graph["priors"][4].shape == (3, 2)


def test_reparameterize_takes_given_noise_as_eps() -> None:
    mean, log_var = tf.constant([[1.0, -2.0]]), tf.constant([[0.0, np.log(4.0)]])
    z = reparameterize(mean, log_var, noise=tf.constant([[0.5, -1.0]]))
    np.testing.assert_allclose(z.numpy(), [[1.5, -4.0]], rtol=1e-6)
