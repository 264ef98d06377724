"""samples.png shows the samples the evaluation scored, instead of drawing as many again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gencompile.runs import train
from gencompile.runtime import training
from gencompile.runtime.metrics import samples as sample_metrics
from gencompile.runtime.metrics.results import Metrics


class NoSampling:
    def sample(self, count: int) -> Any:
        raise AssertionError("drew samples again")


class Zeros:
    def sample(self, count: int) -> np.ndarray:
        return np.zeros((count, 2), np.float32)


DATA = SimpleNamespace(preprocessor=SimpleNamespace(inverse=lambda x: x + 1.0))


def test_merge_keeps_the_scored_samples() -> None:
    scored = Metrics()
    scored.add("energy_distance", 0.5, {})
    scored.samples = np.arange(6.0).reshape(3, 2)
    merged = Metrics().merge({"nll": 1.0}).merge(scored)
    assert merged == {"nll": 1.0, "energy_distance": 0.5}
    np.testing.assert_array_equal(merged.samples, scored.samples)
    assert Metrics().merge({"nll": 1.0}).samples is None


def test_the_first_scored_samples_are_used_when_there_are_enough() -> None:
    metrics = Metrics()
    metrics.samples = np.arange(20.0).reshape(10, 2)
    kept = training.drawn_samples(NoSampling(), DATA, metrics, 4)
    np.testing.assert_array_equal(kept, metrics.samples[:4])
    # Fewer scored than wanted, or none: fresh samples, through the preprocessing.
    fresh = training.drawn_samples(Zeros(), DATA, metrics, 11)
    np.testing.assert_array_equal(fresh, np.ones((11, 2)))
    np.testing.assert_array_equal(training.drawn_samples(Zeros(), DATA, {}, 3), np.ones((3, 2)))


SPEC = """\
spec_version: 1
name: scored-ring8
seed: 5
data:
  source: {type: builtin, name: ring8, n_samples: 600}
  preprocessing: {standardize: true}
  batch_size: 200
model:
  family: diffusion
  timesteps: 20
  denoiser: {type: mlp, hidden: [16, 16], time_embedding: 8}
  sampler: {type: ddim, steps: 4}
evaluation:
  metrics: [energy_distance]
  num_samples: 100
output:
  samples: {count: 64, format: npz}
"""


def test_a_run_writes_the_samples_its_evaluation_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored = []
    draw = sample_metrics.draw_samples

    def recorded(*args: Any) -> np.ndarray:
        scored.append(draw(*args))
        return scored[-1]

    def refused(*args: Any) -> None:
        raise AssertionError("samples.npz drew its samples again")

    monkeypatch.setattr(sample_metrics, "draw_samples", recorded)
    monkeypatch.setattr(training, "samples_in_data_units", refused)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    result = train(spec, epochs=1, run_dir=tmp_path / "run", quiet=True)
    written = np.load(result.run_dir / "samples.npz")["samples"]
    (drawn,) = scored
    assert drawn.shape == (100, 2) and written.shape == (64, 2)
    np.testing.assert_array_equal(written, drawn[:64])
