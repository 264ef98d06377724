"""Early stopping may watch any per-epoch log the generated model writes, and no other: the
spec's checks and a sweep's metric check read one list (`spec.logs.logged_metrics`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


def stopping_on(spec: str, monitor: str, *settings: str) -> None:
    load_spec(SPECS / spec, [f"training.early_stopping={{monitor: {monitor}}}", *settings])


@pytest.mark.parametrize(
    ("spec", "monitor", "settings"),
    [
        ("wgan_gp_ring8.yaml", "gradient_penalty", ()),
        ("tcvae_shapes2d.yaml", "tc", ()),
        ("tcvae_shapes2d.yaml", "val_tc", ()),
        (
            "dcgan_digits.yaml",
            "augment_p",
            ("model.augmentation={type: ada}", "training.early_stopping.mode=min"),
        ),
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
        ("bgmm_blobs.yaml", "val_lower_bound"),  # a callback's log at each epoch's end
    ],
)
def test_a_log_this_model_never_writes_is_refused(spec: str, monitor: str) -> None:
    with pytest.raises(SpecError) as refused:
        stopping_on(spec, monitor)
    [problem] = refused.value.problems
    assert problem.path == "training.early_stopping.monitor"
    assert f"'{monitor}' is not a logged metric" in problem.message


def test_a_log_without_a_better_side_needs_its_mode() -> None:
    with pytest.raises(SpecError) as refused:
        stopping_on("dcgan_digits.yaml", "augment_p", "model.augmentation={type: ada}")
    [problem] = refused.value.problems
    assert problem.message == "cannot tell whether a higher or a lower 'augment_p' is better"
    assert problem.hint == "set training.early_stopping.mode: min or max"


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_loss", "min"), ("lower_bound", "max"), ("val_tc", "min"), ("d_real_accuracy", "max")],
)
def test_the_generated_training_knows_which_way_its_monitor_improves(
    monitor: str, mode: str
) -> None:
    from gencompile.compiler.lower import lower

    spec = {"lower_bound": "bgmm_blobs.yaml", "val_tc": "tcvae_shapes2d.yaml"}.get(
        monitor, "dcgan_digits.yaml" if "accuracy" in monitor else "vae_moons.yaml"
    )
    loaded = load_spec(SPECS / spec, [f"training.early_stopping={{monitor: {monitor}}}"])
    assert lower(loaded).training["early_stopping"]["mode"] == mode


@pytest.mark.slow  # two short fits of a Bayesian mixture
def test_early_stopping_on_a_rising_log_trains(tmp_path: Path) -> None:
    """Keras' EarlyStopping cannot tell lower_bound's direction by itself (mode auto
    failed at the first epoch's end, with a traceback)."""
    from gencompile.runs import train

    stopping = "training.early_stopping={monitor: lower_bound, patience: 1}"
    result = train(SPECS / "bgmm_blobs.yaml", [stopping], epochs=2, run_dir=tmp_path / "r")
    assert (result.run_dir / "metrics.json").is_file()
