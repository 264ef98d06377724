"""What `latent` and `score` say about the inputs they cannot use: a mixture's paths run
between components (not held-out examples), and a conditional model's file without
labels: `latent` takes the class from --label, and an image file is said to carry none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CVAE = """\
spec_version: 1
name: messages-cvae
seed: 5
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
  conditional: {num_classes: 10}
training: {epochs: 1, steps_per_epoch: 2}
evaluation: {metrics: [elbo]}
output: {samples: {count: 10, format: npz}, report: {latent_pictures: false}}
"""

GMM = """\
spec_version: 1
name: messages-gmm
seed: 2
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
  validation_split: 0.2
model:
  family: mixture
  components: 2
  covariance: diag
  algorithm: {{type: em, max_iter: 5}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 4, format: npz}}}}
"""


def trained(root: Path, key: str, spec: str) -> str:
    from gencompile.runs import train

    (root / f"{key}.yaml").write_text(spec)
    return str(train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir)


@pytest.fixture(scope="module")
def gmm(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("messages-gmm")
    rows = np.random.default_rng(0).normal(size=(200, 2))
    (root / "t.csv").write_text("a,b\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in rows) + "\n")
    return trained(root, "gmm", GMM.format(path=root / "t.csv"))


@pytest.fixture(scope="module")
def cvae(tmp_path_factory: pytest.TempPathFactory) -> str:
    return trained(tmp_path_factory.mktemp("messages-cvae"), "cvae", CVAE)


def said(err: str) -> str:
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("ends", "message"),
    [
        (["0", "5"], "--to 5: the mixture has components 0..1"),
        (["FILE", "1"], "a mixture's paths run between component means; give component indices"),
    ],
)
def test_a_mixture_is_told_about_its_components(run_cli, gmm, tmp_path, ends, message) -> None:
    file = tmp_path / "a.csv"
    file.write_text("a,b\n0.1,0.2\n")
    start, end = (str(file) if e == "FILE" else e for e in ends)
    out = str(tmp_path / "p.png")
    code, _, err = run_cli("latent", gmm, "interpolate", "--from", start, "--to", end, "-o", out)
    assert code == 2 and "Traceback" not in err, err
    assert message in said(err)
    assert "held-out" not in err


def test_a_conditional_models_file_takes_its_class_from_label(run_cli, cvae, tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.full((2, 8, 8, 1), 8.0))
    np.save(tmp_path / "b.npy", np.zeros((2, 8, 8, 1)))
    args = ["latent", cvae, "interpolate", "--from", str(tmp_path / "a.npy"),
            "--to", str(tmp_path / "b.npy"), "-o", str(tmp_path / "p.npz")]  # fmt: skip
    code, _, err = run_cli(*args)
    assert code == 1
    assert (
        "a conditional model encodes an example with its class; give labels (an .npz array "
        "`labels`, or a CSV column `label`), or --label K for all of them"
    ) in said(err)
    assert "scores" not in err
    code, _, err = run_cli(*args, "--label", "30")
    assert code == 2 and "--label 30: " in err and "knows classes 0..9" in said(err)
    code, _, err = run_cli(*args, "--label", "3")
    assert code == 0, err
    assert np.load(tmp_path / "p.npz")["codes"].shape == (2, 8, 2)


def test_an_image_file_of_a_conditional_model_is_said_to_carry_no_class(
    run_cli, cvae, tmp_path
) -> None:
    assert run_cli("sample", cvae, "-n", "10", "-o", f"{tmp_path}/drawn/")[0] == 0
    png = next((tmp_path / "drawn" / "3").glob("*.png"))
    code, _, err = run_cli("score", cvae, "--input", str(png), "-o", str(tmp_path / "s.csv"))
    assert code == 1
    assert (
        "an image file carries none (`sample -o DIR/` names a class only by its folder); give "
        "the pixels with their classes as an .npz (arrays `x` and `labels`)"
    ) in said(err)
    out = tmp_path / "p.npz"
    args = ["--from", str(png), "--to", str(png), "--label", "3", "-o", str(out)]
    code, _, err = run_cli("latent", cvae, "interpolate", *args)
    assert code == 0, err
