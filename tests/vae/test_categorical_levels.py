"""A categorical likelihood reads x in [0, 1] as bin round(x (bins - 1)): file data whose
distinct values share a bin ([.50, .25, 0, 1] and [.52, .23, .02, .98] score alike) would
have the NLL of a coarsened copy reported as the data's. The VAE's and VQ-VAE's likelihood
metrics stop with advice first, as the PixelCNN's do (one `merged_levels`)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import vae, vq_vae
from gencompile.runtime.distributions import Categorical
from gencompile.runtime.metrics.levels import check_categorical_levels

ON_GRID = np.array([[0.50, 0.25, 0.0, 1.0], [0.5, 0.75, 0.0625, 1.0]], np.float32)
OFF_GRID = np.array([[0.50, 0.25, 0.0, 1.0], [0.52, 0.23, 0.02, 0.98]], np.float32)


class Untouchable:
    """A model whose networks must not be called: the refusal comes before any work."""

    def __init__(self) -> None:
        self.__dict__["likelihood"] = Categorical(bins=17)

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"called model.{name} before refusing")


def data(x: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(
        x_val=x,
        y_val=None,
        element_shape=(4,),
        source={"type": "npz", "path": "x.npz"},
        preprocessor=SimpleNamespace(log_det_jacobian=0.0),
    )


def test_values_on_the_bins_pass_and_values_sharing_a_bin_are_found() -> None:
    check_categorical_levels(Categorical(bins=17), ON_GRID, ["elbo"])  # one value per bin
    with pytest.raises(RunError, match="coarsened copy of the data"):
        check_categorical_levels(Categorical(bins=17), OFF_GRID, ["elbo"])


def test_vae_likelihood_metrics_on_values_sharing_a_bin_are_refused_before_any_work() -> None:
    config = {"metrics": ["elbo", "iwae_nll", "bits_per_dim"], "importance_samples": 4}
    with pytest.raises(RunError) as info:
        vae.likelihood_metrics(Untouchable(), data(OFF_GRID), config)
    message = str(info.value)
    assert message.startswith("elbo, iwae_nll and bits_per_dim: the held-out values")
    assert "{type: categorical, bins: N}" in message and "\n" not in message


def test_vq_vae_likelihood_metrics_on_values_sharing_a_bin_are_refused_before_any_work() -> None:
    config = {"metrics": ["reconstruction_nll", "nll_bound"]}
    evaluate = vq_vae.evaluate.__wrapped__  # without the seeding, which reads the model
    with pytest.raises(RunError, match=r"^reconstruction_nll and nll_bound: the held-out"):
        evaluate(Untouchable(), data(OFF_GRID), config)
