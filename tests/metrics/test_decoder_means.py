"""A VAE's samples are its decoder's means E[x | z] of prior draws (`sample(..., mean=True)`,
the usual convention for image VAEs), not draws from p(x | z): the sample-quality metrics
keep their numbers and say so in computed_with (`decoder_means: true`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from gencompile.runtime.metrics.samples import decoder_means, sample_quality

VECTORS = SimpleNamespace(
    x_val=np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32),
    preprocessor=SimpleNamespace(inverse=lambda x: x),
    source={"type": "builtin", "name": "moons"},
    kind="vector",
)


class DecoderMeans:
    """As a generated VAE: `sample` returns the likelihood's means unless mean=False."""

    def sample(self, num_samples: int, mean: bool = True, temperature: float = 1.0) -> np.ndarray:
        return np.random.default_rng(1).normal(size=(num_samples, 2)).astype(np.float32)


class Draws:
    """As a mixture or a GAN: every sample is a draw from the model."""

    def sample(self, num_samples: int, temperature: float = 1.0) -> np.ndarray:
        return np.random.default_rng(1).normal(size=(num_samples, 2)).astype(np.float32)


class DrawsByDefault:
    def sample(self, num_samples: int, mean: bool = False) -> np.ndarray:
        raise AssertionError("not drawn")


def test_sample_metrics_of_decoder_means_say_so() -> None:
    assert decoder_means(DecoderMeans()) == {"decoder_means": True}
    assert decoder_means(Draws()) == decoder_means(DrawsByDefault()) == {}
    config = {"metrics": ["energy_distance", "precision_recall"], "num_samples": 20}
    means = sample_quality(DecoderMeans(), VECTORS, config)
    for name in ("energy_distance", "precision", "recall"):
        assert means.computed_with[name]["decoder_means"] is True, name
    draws = sample_quality(Draws(), VECTORS, config)
    assert dict(draws) == dict(means)  # the same numbers: only what they are is added
    assert not any("decoder_means" in how for how in draws.computed_with.values())
