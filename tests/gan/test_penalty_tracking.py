"""The logged gradient penalty is the penalty the discriminator's updates applied, when a
training step makes several critic updates and the penalty is lazy (computed on every
interval-th update only) or not."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gencompile.runtime import gan as runtime_gan
from tests.gan.test_gan_training import RING, compiled

PENALTY = "  gradient_penalty: {{type: r1, weight: 1.0, interval: {interval}}}\n  critic_steps: 4"


def applied_penalties(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The values r1_penalty returns from now on (eager steps: one entry per computation)."""
    seen: list[float] = []
    r1 = runtime_gan.r1_penalty

    def recording(*args, **kwargs):
        value = r1(*args, **kwargs)
        seen.append(float(value))
        return value

    monkeypatch.setattr(runtime_gan, "r1_penalty", recording)
    return seen


@pytest.mark.parametrize(
    "interval, computed_per_step", [(4, 1), (2, 2), (1, 4)], ids=["lazy4", "lazy2", "every"]
)
def test_the_tracked_penalty_is_the_mean_of_the_penalties_applied(
    generated_gan, monkeypatch, interval: int, computed_per_step: int
) -> None:
    model = compiled(generated_gan(model=PENALTY.format(interval=interval)))
    seen = applied_penalties(monkeypatch)
    for step in range(2):  # eager train steps: 4 critic updates each
        model.train_step(tf.constant(RING[step * 32 : (step + 1) * 32]))
    assert len(seen) == 2 * computed_per_step  # the lazy penalty is computed when it applies
    tracked = float(model.penalty_tracker.result())
    assert tracked > 0
    np.testing.assert_allclose(tracked, np.mean(seen), rtol=1e-5)
