"""`gencompile score --input` of a model of discrete levels other than a dequantized flow (a
VAE's categorical likelihood, a PixelCNN; the flow's case: test_serve_dequantized_flow.py):
a value between its levels would be scored as the level it rounds to, so it is refused
(exit 1, one line, no scores), and a value on the levels still scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# The digits' 17 grey levels, each model as small as it trains (a few seconds of CPU).
CATEGORICAL_VAE = """\
spec_version: 1
name: levels-vae
seed: 3
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: categorical, bins: 17}
training: {epochs: 1, steps_per_epoch: 2}
evaluation: {metrics: [], importance_samples: 2}
output: {samples: {count: 4, format: npz}}
"""

PIXELCNN = """\
spec_version: 1
name: levels-pixelcnn
seed: 3
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: autoregressive
  network:
    type: pixelcnn
    filters: 4
    layers: 1
    kernel_size: 3
    likelihood: {type: categorical, bins: 17}
training: {epochs: 1, steps_per_epoch: 2}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

TRAINED = {
    "vae": "this VAE's categorical likelihood was trained on the levels 0, 1, ..., 16 "
    "(model.likelihood) and would score it as the level it rounds to; give values on those "
    "levels, or score continuous values with a VAE trained with model.likelihood: "
    "{type: gaussian}",
    "pixelcnn": "this pixel model was trained on the levels 0, 1, ..., 16 "
    "(model.network.likelihood) and would score it as the level it rounds to; give values "
    "on those levels",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("levels-runs")
    done = {}
    for key, text in {"vae": CATEGORICAL_VAE, "pixelcnn": PIXELCNN}.items():
        (root / f"{key}.yaml").write_text(text)
        done[key] = train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir
    return done


def _digits(pixel_12: float) -> np.ndarray:
    """The first two digits (levels 0..16), the second's pixel 12 set to `pixel_12`."""
    from sklearn.datasets import load_digits

    x = load_digits().images[:2].copy()
    x[1].reshape(-1)[12] = pixel_12
    return x


@pytest.mark.parametrize("key", ["vae", "pixelcnn"])
def test_a_value_between_the_levels_is_refused(run_cli, runs, tmp_path, key) -> None:
    """3.4 lies between the levels 3 and 4: it was scored silently as level 3."""
    path, out = tmp_path / "x.npy", tmp_path / "s.csv"
    np.save(path, _digits(3.4))
    code, _, err = run_cli("score", str(runs[key]), "--input", str(path), "-o", str(out))
    assert code == 1
    assert err == f"error: --input {path}: example 1 pixel 12 is 3.4: {TRAINED[key]}\n", err
    assert not out.exists()


@pytest.mark.parametrize("key", ["vae", "pixelcnn"])
def test_values_on_the_levels_still_score(run_cli, runs, tmp_path, key) -> None:
    path, out = tmp_path / "x.npy", tmp_path / "s.csv"
    np.save(path, _digits(3.0))
    code, _, err = run_cli("score", str(runs[key]), "--input", str(path), "-o", str(out))
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 3  # a header and both digits


@pytest.mark.parametrize("key", ["vae", "pixelcnn"])
def test_an_image_file_of_the_levels_scores(run_cli, runs, tmp_path, key) -> None:
    """An 8-bit PNG of the digits' levels lies up to half a pixel from them: still scored,
    as for a dequantized flow (the tolerance was the flow's alone)."""
    from PIL import Image

    from gencompile.runtime.pixels import to_pixels

    levels = np.arange(64).reshape(8, 8) % 17
    Image.fromarray(to_pixels(levels, (0.0, 16.0))).save(tmp_path / "x.png")
    out = tmp_path / "s.csv"
    code, _, err = run_cli(
        "score", str(runs[key]), "--input", str(tmp_path / "x.png"), "-o", str(out)
    )
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize("key", ["vae", "pixelcnn"])
def test_the_server_refuses_it_with_the_same_words(runs, key) -> None:
    """/score's engine: a 422 naming the example, as `score --input` names it."""
    from gencompile.serving.engine import load_engine
    from gencompile.serving.limits import RequestError

    engine = load_engine(runs[key])
    with pytest.raises(RequestError) as refused:
        engine.score(_digits(3.4), None)
    assert refused.value.status == 422
    assert refused.value.message == f"examples[1] pixel 12 is 3.4: {TRAINED[key]}"
    assert engine.score(_digits(3.0), None).scores.shape == (2,)
