"""`gencompile serve` of a dequantized flow (the digits' 17 grey levels): it starts without
the held-out split `gencompile score` checks the levels on, answers the same bound as
`gencompile score`, and refuses a value between the flow's levels, example by example, as
`score --input` does. Asked over real HTTP on a loopback port."""

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


def _digit(value: float) -> list[float]:
    """The first digit with its pixel 12 set to `value` (the digits' levels are 0..16)."""
    from sklearn.datasets import load_digits

    example = load_digits().data[0].copy()
    example[12] = value
    return example.tolist()


LEVELS = "this flow was trained on the levels 0, 1, ..., 16 (model.dequantization)"


def test_a_value_between_levels_is_refused_on_its_own(flow) -> None:
    """3.4 lies between the levels 3 and 4: it was scored as level 3, a silent 200 with the
    score of another example, unless another posted value shared its level."""
    client = flow[1]
    answer = client.post("/score", json={"examples": [_digit(3.0), _digit(3.4)]})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("examples[1] pixel 12 is 3.4: " + LEVELS), detail
    assert "give values on those levels" in detail
    alone = client.post("/score", json={"examples": [_digit(3.4)]})
    assert alone.status_code == 422 and alone.json()["detail"].startswith("examples[0] pixel 12")
    assert client.post("/score", json={"examples": [_digit(3.0)]}).status_code == 200


def test_score_input_refuses_it_as_the_server_does(
    flow, tmp_path: Path, monkeypatch, capsys
) -> None:
    """`gencompile score --input` scored 3.4 beside 3.0 with exit 0: now one line, exit 1
    (refused input data), the same words as /score's, and no scores file."""
    from gencompile.cli import main

    run_dir = flow[0]
    path = tmp_path / "x.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"x{i}" for i in range(64)])
        writer.writerow(_digit(3.4))
    out = tmp_path / "scores.csv"
    argv = ["gencompile", "score", str(run_dir), "--input", str(path), "-o", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: --input {path}: example 0 pixel 12 is 3.4: " + LEVELS + (
        " and would score it as the level it rounds to; give values on those levels, or "
        "score continuous values with a flow trained without model.dequantization"
    ), err
    assert not out.exists()


def test_score_reads_an_image_file_of_a_sample_on_its_levels(flow, tmp_path: Path) -> None:
    """An 8-bit PNG of the digits' levels lies up to half a pixel from them: still scored."""
    from PIL import Image

    from gencompile.runtime.pixels import to_pixels
    from gencompile.scoring import score

    levels = np.arange(64).reshape(8, 8) % 17
    Image.fromarray(to_pixels(levels, (0.0, 16.0))).save(tmp_path / "x.png")
    result = score(flow[0], tmp_path / "scores.csv", tmp_path / "x.png")
    assert result.count == 1
