"""A bernoulli likelihood of grey levels (the digits scaled to [0, 1]) is a cross-entropy,
not a normalised likelihood: elbo and iwae_nll say so in computed_with, and bits_per_dim,
which would read as bits of information, is refused (validation for the built-in data,
the runtime for files, whose values only it sees)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import vae
from gencompile.runtime.distributions import Bernoulli, Gaussian
from gencompile.runtime.metrics.results import (
    NON_BINARY_BERNOULLI,
    likelihood_caveat,
    non_binary,
)

GREY = np.array([[0.0, 0.25, 1.0], [1.0, 0.0, 0.0]], np.float32)
BINARY = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], np.float32)


def test_only_a_bernoulli_of_non_binary_data_is_marked() -> None:
    assert non_binary(GREY) and not non_binary(BINARY)
    assert non_binary(np.concatenate([BINARY] * 5 + [GREY]), batch_size=2)  # the last batch
    assert likelihood_caveat(Bernoulli(), GREY) == {"caveat": NON_BINARY_BERNOULLI}
    assert likelihood_caveat(Bernoulli(), BINARY) == {}
    assert likelihood_caveat(Gaussian(), GREY) == {}


class Untouchable:
    """A VAE whose networks must not be called: the refusal comes before any work."""

    likelihood = Bernoulli()

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"called model.{name} before refusing")


def test_bits_per_dim_of_a_bernoulli_on_grey_file_data_is_refused_before_any_work() -> None:
    data = SimpleNamespace(x_val=GREY, y_val=None, element_shape=(3,))
    config = {"metrics": ["elbo", "bits_per_dim"], "importance_samples": 4}
    with pytest.raises(RunError, match="bits_per_dim: the held-out data is not binary") as info:
        vae.likelihood_metrics(Untouchable(), data, config)
    assert "{type: categorical, bins: N}" in str(info.value)
