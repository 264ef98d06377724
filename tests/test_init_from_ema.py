"""An EMA copy taken whole from the parent (a GAN's `ema_generator`, a diffusion model's
`ema_denoiser`) goes on averaging from the parent's average: the decay's warm-up, meant
for an average that starts from a fresh network, would replace it within a few steps."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from gencompile.runtime import ema
from tests.test_init_from_left_behind import built, load, parent_file


def distance(a: keras.Model, b: keras.Model) -> float:
    return max(
        float(np.abs(np.asarray(x) - np.asarray(y)).max())
        for x, y in zip(a.get_weights(), b.get_weights(), strict=True)
    )


def apart(networks: dict[str, list[str]]) -> keras.Model:
    """A model whose average is 1.0 away from its generator in every weight."""
    model = built(networks)
    model.ema_generator.set_weights([w + 1.0 for w in model.generator.get_weights()])
    return model


def test_an_ema_copy_taken_from_the_parent_keeps_its_average(tmp_path: Path) -> None:
    """Five updates at decay 0.999 move it by about 0.5 % towards the network, not (as the
    warm-up from step 0 did) 99.8 %."""
    networks = {"generator": ["dense"], "ema_generator": ["dense"]}
    parent = tmp_path / "parent.weights.h5"
    apart(networks).save_weights(parent)
    child = built(networks)
    load(tmp_path, parent, child)
    assert distance(child.ema_generator, child.generator) == pytest.approx(1.0)
    for step in range(5):
        ema.update(child.ema_generator, child.generator, 0.999, step=step)
    assert distance(child.ema_generator, child.generator) == pytest.approx(0.999**5, rel=1e-4)


def test_an_ema_copy_partly_fresh_warms_up_as_a_new_one(tmp_path: Path) -> None:
    """strict: false with a layer of another shape: that layer of the average is random, so
    the warm-up lets the average follow the network, as in a run from scratch."""
    parent = parent_file(tmp_path, {"generator": ["dense"], "ema_generator": ["dense"]})
    child = built({"generator": ["dense"], "ema_generator": ["dense", "extra"]})
    load(tmp_path, parent, child, strict=False, networks=["generator"])
    assert not getattr(child.ema_generator, ema.WARMED_UP, False)


def test_a_fresh_ema_copy_still_warms_up() -> None:
    model = apart({"generator": ["dense"], "ema_generator": ["dense"]})
    ema.update(model.ema_generator, model.generator, 0.999, step=0)
    assert distance(model.ema_generator, model.generator) == pytest.approx(0.1, rel=1e-4)
