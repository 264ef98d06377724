"""A multi-scale flow trained through the real compiler: a few steps on the digits, then its
samples, its held-out bound, the latent tools on its exact inverse, and `explain`.

The flow has an actnorm past the split, so the data-dependent start walks through it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

TINY_MULTISCALE = """\
spec_version: 1
name: tiny-multiscale
seed: 6
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 128
model:
  family: flow
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit}
    - {type: squeeze}
    - {type: actnorm}
    - {type: affine_coupling, mask: channel, scale: sigmoid, hidden: [16]}
    - {type: split, prior: {type: learned}}
    - {type: actnorm}
    - {type: squeeze}
    - {type: invertible_dense}
    - {type: affine_coupling, mask: channel, hidden: [16]}
    - {type: split, prior: {type: normal}}
training:
  epochs: 2
  steps_per_epoch: 4
evaluation:
  metrics: [nll, bits_per_dim]
  importance_samples: 4
output:
  samples: {count: 8, format: npz}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("multiscale-run")
    (root / "spec.yaml").write_text(TINY_MULTISCALE)
    result = train(root / "spec.yaml", run_dir=root / "run", quiet=True)
    assert 0 < result.metrics["nll"] < 64 * math.log(17) * 1.5
    assert result.metrics["bits_per_dim"] == pytest.approx(
        result.metrics["nll"] / (64 * math.log(2))
    )
    return result.run_dir


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as files:
        return {name: files[name] for name in files.files}


def test_trained_model_samples_discrete_digits_and_reloads(run: Path) -> None:
    from gencompile.generated import load_trained_model

    model, _ = load_trained_model(run)
    assert model.base.shape == (64,)  # z: the flat join of the parts
    samples = model.sample(6).numpy()
    assert samples.shape == (6, 8, 8, 1)
    levels = samples * 16
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert levels.min() >= 0 and levels.max() <= 16
    # training moved the learned prior off its N(0, I) start
    prior = next(t for t in model.transforms if t.name == "split_1").network
    assert max(float(np.abs(w).max()) for w in prior.get_weights()) > 0


def test_sample_command_writes_the_samples(run_cli, run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npz"
    code, _, err = run_cli("sample", str(run), "-n", "5", "-o", str(out))
    assert code == 0, err
    (samples,) = arrays(out).values()
    assert samples.shape == (5, 8, 8, 1)


def test_latent_tools_use_the_exact_inverse_through_the_splits(
    run_cli, run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.npz"
    code, _, err = run_cli("latent", str(run), "reconstruct", "-n", "12", "-o", str(out))
    assert code == 0, err
    found = arrays(out)
    assert found["inputs"].shape == (12, 8, 8, 1)
    # the code of a digit, decoded, is the digit: every level back in place
    np.testing.assert_allclose(found["reconstructions"], found["inputs"], atol=1e-5)
    mapped = tmp_path / "m.npz"
    code, _, err = run_cli("latent", str(run), "map", "-o", str(mapped))
    assert code == 0, err
    assert arrays(mapped)["codes"].shape[1] == 64  # the flat code: every dimension
    path = tmp_path / "i.npz"
    code, _, err = run_cli(
        "latent", str(run), "interpolate", "--from", "0", "--to", "1", "-o", str(path)
    )
    assert code == 0, err


def test_explain_lists_the_prior_network_and_the_splits(run_cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_MULTISCALE)
    code, out, err = run_cli("explain", str(spec))
    assert code == 0, err
    text = " ".join(out.split())  # rich wraps titles and the loss to the terminal
    assert "split_prior_1: Mean and log-scale of the channels a split factors out" in text
    assert "2 splits" in text
    assert "learned Gaussian given the half kept, or N(0, I)" in text
