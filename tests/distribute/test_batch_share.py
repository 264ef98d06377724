"""A training step makes one collective for how the global batch splits over the replicas
(`replicas.split`, an all-gather of the example counts), shared by its draws and its
losses: a GAN's CRITIC_STEPS + 1 latent draws, interpolations, augmentations and losses, a
VAE's eps and loss, a diffusion step's timesteps, noise, hidden labels and loss. Under
multi_worker each collective is a network round trip."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.compiler.project import build
from gencompile.runs import import_generated
from gencompile.runtime import replicas, training
from gencompile.runtime.data import load_data
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
FIXTURES = ROOT / "tests" / "compiler" / "fixtures"
MIRRORED = "training.distribution.strategy=mirrored"


class CountingContext:
    """A replica context of 2 replicas, the other one holding what this one holds; it
    counts the collectives of the step."""

    num_replicas_in_sync = 2
    replica_id_in_sync_group = 0

    def __init__(self) -> None:
        self.all_reduces = 0
        self.all_gathers = 0

    def all_reduce(self, op: Any, value: Any) -> Any:
        self.all_reduces += 1
        return tf.nest.map_structure(lambda v: v * 2, value)

    def all_gather(self, value: Any, axis: int) -> tf.Tensor:
        self.all_gathers += 1
        return tf.concat([value, value], axis=axis)

    def merge_call(self, fn: Any, args: tuple[Any, ...] = ()) -> Any:
        # What `replicas.assign` asks of a strategy: each variable updated in place.
        update = lambda variable, op, args, group: op(variable, *args)  # noqa: E731
        return fn(SimpleNamespace(extended=SimpleNamespace(update=update)), *args)


# spec, overrides, the step's (all-gathers, all-reduces)
CASES = {
    # 5 critic steps, each with a fresh z, a WGAN-GP interpolation and a loss; G's z and loss.
    # The critic's accuracy cuts midway between the global batch's mean scores: one
    # all-reduce of the replicas' sums (gan.discriminator_accuracy with threshold None).
    "wgan_gp": (
        SPECS / "wgan_gp_ring8.yaml",
        ["model.generator={mlp: [4]}", "model.discriminator={mlp: [4]}", "model.ema=0"],
        (1, 1),
    ),
    # ADA: every augmentation of real and generated images draws per example; the
    # controller of p sums its statistics over the replicas (one all-reduce of its own).
    "gan_ada": (FIXTURES / "gan" / "small_data.yaml", [], (1, 1)),
    "gan_diffaugment": (
        FIXTURES / "gan" / "small_data.yaml",
        ["model.augmentation={type: diffaugment}"],
        (1, 0),
    ),
    "vae": (SPECS / "vae_moons.yaml", [], (1, 0)),
    # Timesteps, noise and the hidden labels of classifier-free guidance.
    "diffusion": (FIXTURES / "diffusion" / "mirrored.yaml", ["model.ema=0"], (1, 0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_training_step_makes_one_collective_for_its_split(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, overrides, collectives = CASES[case]
    overrides = [f"name=share-{case.replace('_', '-')}", "data.batch_size=8", MIRRORED, *overrides]
    built = build(load_spec(spec, overrides), tmp_path, force=True)
    module = import_generated(tmp_path, built.plan.package)
    data = load_data(module.DATA, seed=module.SEED)
    one_device = {**module.TRAINING, "distribution": {"strategy": "none"}}
    model = training.build_and_compile(module.build_model, one_device, data, epochs=1)
    batch = next(iter(data.train))
    context = CountingContext()
    monkeypatch.setattr(replicas, "replica_context", lambda: context)
    logs = model.train_step(batch)
    assert (context.all_gathers, context.all_reduces) == collectives
    assert all(np.isfinite(float(value)) for value in logs.values())


def test_draws_placed_by_a_split_equal_draws_that_gather_the_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = CountingContext()
    context.replica_id_in_sync_group = 1  # the second of two replicas holding 3 each
    monkeypatch.setattr(replicas, "replica_context", lambda: context)
    split = replicas.split(3)
    assert (int(split.start), int(split.total), float(split.share)) == (3, 6, 0.5)
    sample = lambda n: keras.random.normal((n, 2), seed=7)  # noqa: E731
    np.testing.assert_array_equal(replicas.draw(sample, split), replicas.draw(sample, 3))
    np.testing.assert_array_equal(replicas.draw(sample, split), sample(6)[3:])
    assert context.all_gathers == 2  # the split's and the plain count's, none for its draw
    loss = tf.constant(4.0)
    np.testing.assert_array_equal(
        replicas.scale_to_global_batch(loss, share=split.share),
        replicas.scale_to_global_batch(loss, 3),
    )
