"""A GAN step scales its CRITIC_STEPS + 1 losses by one share of the global batch: the
example counts are all-reduced once a step (under multi_worker, a network round trip)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from gencompile.compiler.project import build
from gencompile.runs import import_generated
from gencompile.runtime import replicas, training
from gencompile.runtime.data import load_data
from gencompile.spec import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


class CountingContext:
    """A replica context of 2 replicas, the other one holding what this one holds; it
    counts the all-reduces of the step."""

    num_replicas_in_sync = 2
    replica_id_in_sync_group = 0

    def __init__(self) -> None:
        self.all_reduces = 0

    def all_reduce(self, op: Any, value: Any) -> Any:
        self.all_reduces += 1
        return tf.nest.map_structure(lambda v: v * 2, value)

    def all_gather(self, value: Any, axis: int) -> tf.Tensor:
        return tf.concat([value, value], axis=axis)


def test_a_gan_step_all_reduces_its_examples_once(tmp_path: Path, monkeypatch) -> None:
    overrides = [
        "name=wgan-share",
        "data.source.n_samples=64",
        "data.batch_size=8",
        "model.generator={mlp: [4]}",
        "model.discriminator={mlp: [4]}",
        "model.ema=0",
        "training.distribution.strategy=mirrored",
    ]
    built = build(load_spec(SPECS / "wgan_gp_ring8.yaml", overrides), tmp_path, force=True)
    module = import_generated(tmp_path, built.plan.package)
    data = load_data(module.DATA, seed=module.SEED)
    one_device = {**module.TRAINING, "distribution": {"strategy": "none"}}
    model = training.build_and_compile(module.build_model, one_device, data, epochs=1)
    context = CountingContext()
    monkeypatch.setattr(replicas, "replica_context", lambda: context)
    logs = model.train_step(tf.constant(data.x_train[:8]))
    assert context.all_reduces == 1  # 5 critic losses and G's, one share of the global batch
    assert all(np.isfinite(float(value)) for value in logs.values())
