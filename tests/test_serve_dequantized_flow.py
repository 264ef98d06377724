"""`gencompile serve` of a dequantized flow (the digits' 17 grey levels): it starts without
the held-out split `gencompile score` checks the levels on, answers the same bound as
`gencompile score`, and refuses posted values that share one of the flow's levels, as
`score` refuses such held-out values. Asked over real HTTP on a loopback port."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

# The digits' 17 levels dequantized, with the smallest flow that has a coupling (about 5 s of
# CPU to train and load).
SPEC = """\
spec_version: 1
name: flow-tiny
seed: 3
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 64
model:
  family: flow
  base: {type: normal}
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit, alpha: 0.05}
    - type: affine_coupling
      mask: checkerboard
      hidden:
        layers:
          - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}
      repeat: 2
training:
  epochs: 1
  steps_per_epoch: 2
evaluation:
  metrics: []
  importance_samples: 4
output:
  samples: {count: 4}
"""


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    from gencompile.runs import train
    from gencompile.serving.api import create_app
    from gencompile.serving.engine import load_engine
    from gencompile.serving.server import running

    folder = tmp_path_factory.mktemp("flow")
    (folder / "flow.yaml").write_text(SPEC)
    run = train(folder / "flow.yaml", [], run_dir=folder / "run", quiet=True)
    app = create_app(load_engine(run.run_dir))  # was an AttributeError: no x_val
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield run.run_dir, client


def test_scores_are_the_bound_gencompile_score_gives(flow, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    from gencompile.scoring import score

    run_dir, client = flow
    x = load_digits().data[:3]
    answer = client.post("/score", json={"examples": x.tolist()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "nll_bound_nats" and body["outside_support"] == [False] * 3
    assert "17 levels" in body["support"]
    np.save(tmp_path / "x.npy", x)
    result = score(run_dir, tmp_path / "scores.csv", tmp_path / "x.npy")
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert result.kind == body["kind"] and result.description == body["description"]
    np.testing.assert_allclose(body["scores"], [float(r["score"]) for r in rows], rtol=1e-6)


def test_values_sharing_one_level_are_refused_as_score_refuses_them(flow) -> None:
    """3.0 and 3.2 (of the digits' 0..16) are both level 3: the bound would be that of a
    coarsened copy of the example."""
    example = [3.0, 3.2] + [0.0] * 62
    answer = flow[1].post("/score", json={"examples": [example]})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "the values 0.1875 and 0.2" in detail and "level 3 of the flow's 17" in detail
    assert "coarsened copy" in detail and "without model.dequantization" in detail
