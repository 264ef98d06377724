"""Early stopping may watch any per-epoch log the generated model writes, and no other: the
spec's checks and a sweep's metric check read one list (`spec.logs.logged_metrics`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


def stopping_on(spec: str, monitor: str, *settings: str) -> None:
    load_spec(SPECS / spec, [*settings, f"training.early_stopping={{monitor: {monitor}}}"])


@pytest.mark.parametrize(
    ("spec", "monitor", "settings"),
    [
        ("wgan_gp_ring8.yaml", "gradient_penalty", ()),
        ("tcvae_shapes2d.yaml", "tc", ()),
        ("tcvae_shapes2d.yaml", "val_tc", ()),
        ("dcgan_digits.yaml", "augment_p", ("model.augmentation={type: ada}",)),
        ("bgmm_blobs.yaml", "lower_bound", ()),
    ],
)
def test_a_log_of_this_model_may_be_watched(spec: str, monitor: str, settings: tuple) -> None:
    stopping_on(spec, monitor, *settings)


@pytest.mark.parametrize(
    ("spec", "monitor"),
    [
        ("wgan_gp_ring8.yaml", "val_gradient_penalty"),  # validation reports 4 trackers
        ("dcgan_digits.yaml", "augment_p"),  # no adaptive augmentation here
        ("vae_moons.yaml", "tc"),  # no total-correlation term
        ("vae_moons.yaml", "val_grad_norm"),
    ],
)
def test_a_log_this_model_never_writes_is_refused(spec: str, monitor: str) -> None:
    with pytest.raises(SpecError) as refused:
        stopping_on(spec, monitor)
    [problem] = refused.value.problems
    assert problem.path == "training.early_stopping.monitor"
    assert f"'{monitor}' is not a logged metric" in problem.message
