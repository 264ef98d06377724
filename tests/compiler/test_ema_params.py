"""A model with an EMA copy of a network (a GAN's generator, a diffusion model's denoiser)
holds and saves that copy too: the model card and `explain` count it apart, as the built
model's networks count them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.project import build, total_params
from gencompile.generated import import_generated
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize(
    ("spec", "copied"), [("gan_ring8", "generator"), ("diffusion_ring8", "denoiser")]
)
def test_the_ema_copy_is_counted_apart_and_in_the_total(
    tmp_path: Path, run_cli, spec: str, copied: str
) -> None:
    built = build(load_spec(SPECS / f"{spec}.yaml"), tmp_path)
    model = import_generated(tmp_path, built.plan.package, "model").build_model()
    trained = total_params(built.plan)
    copy = next(n.params for n in built.plan.networks if n.name == copied)
    networks = [getattr(model, network.name) for network in built.plan.networks]
    assert sum(network.count_params() for network in networks) == trained
    assert getattr(model, f"ema_{copied}").count_params() == copy
    said = (
        f"{trained:,} trained, plus an EMA copy of the {copied} ({copy:,}): "
        f"{trained + copy:,} in the model"
    )
    assert f"| parameters | {said} |" in (tmp_path / "README.md").read_text("utf-8")
    code, out, _ = run_cli("explain", str(SPECS / f"{spec}.yaml"))
    assert code == 0
    assert f"Parameters: {said}." in " ".join(out.split())


def test_without_ema_the_count_is_the_trained_parameters(tmp_path: Path) -> None:
    spec = SPECS / "gan_ring8.yaml"
    built = build(load_spec(spec, ["model.ema=0"]), tmp_path)
    model = import_generated(tmp_path, built.plan.package, "model").build_model()
    assert not hasattr(model, "ema_generator")
    readme = (tmp_path / "README.md").read_text("utf-8")
    assert f"| parameters | {total_params(built.plan):,} |" in readme


def test_the_memory_estimate_holds_the_ema_copy() -> None:
    """One float32 more a weight of the copied network (it has no gradient or optimizer
    state): explain's Memory line used to leave the copy out."""
    from gencompile.compiler.lower import lower
    from gencompile.compiler.resources import FLOAT32, estimate_memory

    spec = SPECS / "diffusion_ring8.yaml"
    with_ema, without = (lower(load_spec(spec, s)) for s in ([], ["model.ema=0"]))
    copy = next(n.params for n in with_ema.networks if n.name == "denoiser")
    grown = estimate_memory(with_ema).model_bytes - estimate_memory(without).model_bytes
    assert grown == copy * FLOAT32
    assert f"(an EMA copy of {copy:,} included)" in estimate_memory(with_ema).summary()
    assert "EMA" not in estimate_memory(without).summary()


def test_trained_counts_only_what_gradients_change(tmp_path: Path, run_cli) -> None:
    """Spectral norm's power-iteration vectors are non-trainable state: `explain` said
    them "trained" and counted gradients and optimizer slots for them."""
    import keras

    from gencompile.compiler.resources import estimate_memory

    spec = SPECS / "dcgan_digits_small.yaml"
    built = build(load_spec(spec), tmp_path)
    model = import_generated(tmp_path, built.plan.package, "model").build_model()
    networks = [getattr(model, n.name) for n in built.plan.networks]
    trainable = sum(keras.ops.size(w) for net in networks for w in net.trainable_weights)
    untrained = built.plan.untrained_params
    assert untrained > 0 and total_params(built.plan) - untrained == int(trainable)
    code, out, _ = run_cli("explain", str(spec))
    assert code == 0
    assert f"Parameters: {int(trainable):,} trained and {untrained:,} not trained" in " ".join(
        out.split()
    )
    estimate = estimate_memory(built.plan)
    assert f"to train: {int(trainable):,} parameters with gradients" in estimate.summary()
