"""Validation draws from its own random stream: how often a GAN is validated leaves its
training draws, and so its weights, unchanged."""

from __future__ import annotations

from tests.gan.test_gan_training import RING
from tests.vae.test_validation_stream import assert_same_weights


def test_validating_a_gan_leaves_its_weights_unchanged(generated_gan) -> None:
    assert_same_weights(generated_gan().module, RING)
