"""The SavedModel's `encode` of a VAE says what its posterior is: a Gaussian's mean and
log-variance, or, for a flow posterior (not Gaussian), only its code: the base Gaussian's
log-variance beside f(mean) would read as q(z | x)'s spread, and is not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import export
from tests.vae.test_variant_models import IAF, PLANAR, RADIAL, digits, nudge

# The digits as the model sees them (no preprocessing to undo), without labels.
DATA = SimpleNamespace(
    preprocessor=SimpleNamespace(
        output_dtype="float32", center=0.0, factor=1.0, offset=0.0, log_det_jacobian=0.0
    ),
    train=tf.data.Dataset.from_tensor_slices(digits(4)),
    element_shape=(8, 8, 1),
)


def exported_encode(model):
    function, _ = export.endpoints(model, DATA)["encode"]
    return function


@pytest.mark.parametrize("posterior", [IAF, PLANAR, RADIAL], ids=["iaf", "planar", "radial"])
def test_a_flow_posterior_exports_its_code_and_no_log_variance(generated_vae, posterior):
    model = generated_vae(posterior).build_model()
    nudge(model)
    x = digits(4)
    got = exported_encode(model)(tf.constant(x))
    assert set(got) == {"code"}
    code, _ = model.encode(x, None)
    np.testing.assert_allclose(got["code"].numpy(), code.numpy(), rtol=1e-6)


def test_a_gaussian_posterior_exports_its_mean_and_log_variance(generated_vae):
    model = generated_vae().build_model()
    x = digits(4)
    got = exported_encode(model)(tf.constant(x))
    z_mean, z_log_var = model.encoder(x)
    assert set(got) == {"z_mean", "z_log_var"}
    np.testing.assert_allclose(got["z_mean"].numpy(), z_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["z_log_var"].numpy(), z_log_var.numpy(), rtol=1e-6)
