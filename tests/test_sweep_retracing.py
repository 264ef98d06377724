"""A sweep trains one model per trial in one process: evaluating each one's ELBO traces
its own compiled function once, which TensorFlow must not take for a retrace of one
function (its multi-line "triggered tf.function retracing" WARNING on the terminal)."""

from __future__ import annotations

import logging

import numpy as np
import pytest


class Model:
    """Stands in for a trial's VAE: the ELBO terms of a batch."""

    def __init__(self, scale: float):
        self.scale = scale

    def elbo_terms(self, xb, yb, training: bool = False):
        import tensorflow as tf

        reconstruction = tf.reduce_sum(xb, axis=1) * self.scale
        return reconstruction, reconstruction * 0.0


def test_a_new_model_per_trial_is_not_a_retrace(caplog: pytest.LogCaptureFixture) -> None:
    from gencompile.runtime.vae import elbo_batches

    logger = logging.getLogger("tensorflow")
    logger.addHandler(caplog.handler)  # TensorFlow's logger does not propagate
    try:
        for trial in range(8):  # the warning came from the 5th model on
            model = Model(float(trial))
            x = np.ones((4, 3), "float32")
            [elbo] = list(elbo_batches(model, x, None))  # type: ignore[arg-type]
            assert np.allclose(elbo, -3.0 * trial)  # each model's own graph
    finally:
        logger.removeHandler(caplog.handler)
    assert "retracing" not in caplog.text
