"""training.fine_tune on a VQ-VAE: its encoder and decoder, which stage 1's optimizer
trains, take learning-rate multipliers and unfreeze on a schedule as a VAE's do; its prior,
fitted after by an optimizer of its own, is refused with that reason."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.errors import SpecError
from gencompile.runs import resume, train
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vq_vae_digits.yaml"
QUICK = ["training.steps_per_epoch=2", "model.prior.epochs=1", "evaluation.metrics=[]"]
SCHEDULE = [
    "model.encoder.freeze=true",
    "training.fine_tune.unfreeze_after_epochs=1",
    "training.fine_tune.learning_rate_multipliers={decoder: 0.0}",
]


def test_a_vq_vae_takes_fine_tune_schedules() -> None:
    """Validated, planned as the runtime reads it, and the generated train step logs the
    norm of the gradients of what trains."""
    loaded = load_spec(SPEC, SCHEDULE)
    plan = lower(loaded)
    assert plan.training["fine_tune"] == {
        "unfreeze_after_epochs": 1,
        "learning_rate_multipliers": {"decoder": 0.0},
        "frozen": ["encoder"],
    }
    source = render_project(loaded, plan)[f"{plan.package}/model.py"]
    assert source.count("grads = fine_tune.trained(self, grads, weights)") == 1


@pytest.mark.parametrize("name", ["prior_network", "prior"])
def test_the_prior_takes_no_learning_rate_multiplier(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        lower(load_spec(SPEC, [f"training.fine_tune.learning_rate_multipliers={{{name}: 0.5}}"]))
    [problem] = [str(p) for p in caught.value.problems]
    assert problem == (
        f"--set: training.fine_tune.learning_rate_multipliers.{name}: the vq_vae model's "
        f"{name} is fitted after the other networks, by an optimizer of its own that "
        "training.fine_tune does not scale (set model.prior.learning_rate instead)"
    )


def arrays(weights: Path, network: str) -> list[np.ndarray]:
    """The arrays of a network in a weights file, in a fixed order."""
    found: dict[str, np.ndarray] = {}
    with h5py.File(weights, "r") as h5:
        h5[network].visititems(
            lambda path, item: (
                found.setdefault(path, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return [found[path] for path in sorted(found)]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return 0 < len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
def test_a_fine_tuned_vq_vae_holds_and_unfreezes_its_networks(tmp_path: Path) -> None:
    """From a parent: in epoch 1 the encoder (frozen until then) and the decoder (at a
    multiplier of 0) keep the parent's weights bit for bit while the codebook trains; in
    epoch 2, resumed, the encoder trains and the decoder still holds."""
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(SPEC, QUICK, epochs=1, run_dir=parent, quiet=True)
    overrides = [*QUICK, *SCHEDULE, f"model.init_from.run={parent}"]
    train(SPEC, overrides, epochs=1, run_dir=child, quiet=True)
    start, now = parent / "model.weights.h5", child / "model.weights.h5"
    assert same(arrays(now, "encoder"), arrays(start, "encoder"))
    assert same(arrays(now, "decoder"), arrays(start, "decoder"))
    codebook = "layers/vector_quantizer"
    assert not same(arrays(now, codebook), arrays(start, codebook))
    resume(child, quiet=True, epochs=2)
    assert not same(arrays(now, "encoder"), arrays(start, "encoder"))
    assert same(arrays(now, "decoder"), arrays(start, "decoder"))
