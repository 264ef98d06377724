"""A conditional VAE's bounds are of log p(x | y); its elbo, iwae_nll and bits_per_dim are
of the marginal p(x) = sum_y p(y) p(x | y), p(y) the training split's class frequencies,
so that they compare with an unconditional model's. Checked on a VAE whose bounds are
exact (q(z | x, y) = p(z) and a decoder that ignores z: every bound is log p(x | y))."""

from __future__ import annotations

import math
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import norm

from gencompile.runtime import vae
from gencompile.runtime.distributions import Gaussian, StandardNormalPrior

K, D, SIGMA = 3, 2, 0.5
MEANS = np.array([-2.0, 0.0, 2.0])  # p(x | y) = N(MEANS[y], SIGMA^2 I): labels identifiable
CONFIG = {"metrics": ["elbo", "iwae_nll", "bits_per_dim"], "importance_samples": 4}


class ExactVAE:
    """q(z | x, y) = p(z) = N(0, 1) and p(x | z, y) = N(MEANS[y] or 0, SIGMA^2 I)."""

    likelihood = Gaussian(sigma=SIGMA)
    conditional = True

    def __init__(self) -> None:
        self.prior = StandardNormalPrior(1)

    def encode(self, x, y, training=False):
        rows = tf.shape(x)[0]
        return tf.zeros((rows, 1)), tf.zeros((rows, 1))

    def decode(self, z, y, training=False):
        if not self.conditional:
            return tf.zeros((tf.shape(z)[0], D))
        mean = tf.gather(tf.constant(MEANS, tf.float32), tf.cast(y, tf.int32))
        return tf.tile(mean[:, None], [1, D])

    def elbo_terms(self, x, y=None, training=False):
        reconstruction = -self.likelihood.log_prob(x, self.decode(tf.zeros_like(x), y))
        kl = tf.zeros_like(reconstruction)
        return reconstruction, kl, tf.reduce_mean(kl)


def model_of(classes: int | None, monkeypatch: pytest.MonkeyPatch) -> ExactVAE:
    """An ExactVAE whose module says NUM_CLASSES, as a generated model.py does."""
    module = types.ModuleType(f"exact_vae_{classes}")
    module.NUM_CLASSES = classes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    cls = type("Model", (ExactVAE,), {"__module__": module.__name__})
    model = cls()
    model.conditional = classes is not None
    return model


def data() -> SimpleNamespace:
    rng = np.random.default_rng(0)
    y_val = rng.integers(0, K, 200).astype(np.int32)
    x_val = (MEANS[y_val][:, None] + SIGMA * rng.standard_normal((200, D))).astype(np.float32)
    return SimpleNamespace(
        x_val=x_val,
        y_val=y_val,
        y_train=np.repeat(np.arange(K, dtype=np.int32), 50),  # p(y) = 1/3 each
        element_shape=(D,),
        source={"type": "npz", "path": "x.npz"},
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
    )


def log_p(x: np.ndarray, mean: float) -> np.ndarray:
    return norm.logpdf(x, mean, SIGMA).sum(axis=1)


def test_a_conditional_vae_reports_the_marginal_nll(monkeypatch) -> None:
    d = data()
    metrics = vae.likelihood_metrics(model_of(K, monkeypatch), d, CONFIG)
    per_class = np.stack([log_p(d.x_val, m) for m in MEANS], axis=1)
    marginal = logsumexp(per_class + np.log(1 / K), axis=1)
    conditional = per_class[np.arange(len(d.y_val)), d.y_val]
    assert metrics["iwae_nll"] == pytest.approx(-marginal.mean(), abs=1e-3)
    assert metrics["elbo"] == pytest.approx(marginal.mean(), abs=1e-3)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["iwae_nll"] / (D * math.log(2)))
    # Above the conditional NLL by about log K: the labels are identifiable.
    gap = metrics["iwae_nll"] - (-conditional.mean())
    assert gap == pytest.approx(math.log(K), abs=0.02)
    how = metrics.computed_with["iwae_nll"]
    assert how["marginal_over_classes"] == K and "class frequencies" in how["class_prior"]
    assert "p(y) p(x|y)" in metrics.computed_with["elbo"]["computed"]


def test_class_frequencies_weigh_the_classes_and_unseen_classes_drop_out(monkeypatch) -> None:
    d = data()
    d.y_train = np.array([0, 0, 0, 1], np.int32)  # p(y) = 3/4, 1/4, 0
    metrics = vae.likelihood_metrics(model_of(K, monkeypatch), d, CONFIG)
    per_class = np.stack([log_p(d.x_val, m) for m in MEANS[:2]], axis=1)
    marginal = logsumexp(per_class + np.log([0.75, 0.25]), axis=1)
    assert metrics["iwae_nll"] == pytest.approx(-marginal.mean(), abs=1e-3)


def test_the_same_code_gives_the_plain_value_for_an_unconditional_vae(monkeypatch) -> None:
    d = data()
    metrics = vae.likelihood_metrics(model_of(None, monkeypatch), d, CONFIG)
    assert metrics["iwae_nll"] == pytest.approx(-log_p(d.x_val, 0.0).mean(), abs=1e-3)
    assert metrics["elbo"] == pytest.approx(log_p(d.x_val, 0.0).mean(), abs=1e-3)
    assert "marginal_over_classes" not in metrics.computed_with["iwae_nll"]


def test_the_report_says_the_marginal(monkeypatch) -> None:
    from gencompile.report import computed_with_brief

    metrics = vae.likelihood_metrics(model_of(K, monkeypatch), data(), CONFIG)
    assert "marginal over 3 classes" in computed_with_brief(metrics.computed_with["iwae_nll"])
