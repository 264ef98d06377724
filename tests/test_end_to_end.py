"""End to end: every example spec validates, builds and trains; runs are reproducible; the
generated project's own test passes; a trained VAE beats a Gaussian baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import norm
from sklearn.datasets import load_digits

from gencompile.errors import RunError
from gencompile.runs import train
from gencompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
FAST = ["evaluation.importance_samples=16", "evaluation.num_samples=256"]
DEFAULT_METRICS = {
    "vae": {"elbo", "iwae_nll"},
    "mixture": {"nll", "bic", "aic"},
    "autoregressive": {"perplexity", "bits_per_char"},  # text; images: nll, bits_per_dim
    "diffusion": {"denoising_loss"},
    "flow": {"nll", "bits_per_dim"},
    "gan": set(),  # sample quality only: the data set's offline metrics
    "vq_vae": {"reconstruction_nll", "prior_nll", "nll_bound", "codebook_perplexity"},
}
# Examples whose family default differs: a variational mixture has no bic or aic.
SPEC_METRICS = {"bgmm_blobs": {"nll"}}
# Smaller data and sampling budgets for the autoregressive examples (2 tiny epochs).
LENGTH = "model.sampling.length=32"
TINY = {
    "charlm_arithmetic": ["data.source.n_samples=2000", "evaluation.num_samples=8", LENGTH],
    "transformer_arithmetic": [
        "data.source.n_samples=2000",
        "evaluation.num_samples=8",
        LENGTH,
        "model.network.layers=1",
    ],
    "charlm_text": ["model.context_length=64", "evaluation.num_samples=8", LENGTH],
    "charlm_finetune": ["model.context_length=64", "evaluation.num_samples=8", LENGTH],
}
# A GAN's epoch is long (gan_ring8: 36 batches, each of several network passes): two tiny
# epochs of a few batches check that its spec trains and writes every artifact.
GAN_SPECS = (
    "gan_ring8",
    "gan_grid25",
    "wgan_gp_ring8",
    "dcgan_digits",
    "cgan_digits",
    "gan_digits_finetune",
    "dcgan_digits_small",
)
TINY.update({stem: ["training.steps_per_epoch=4"] for stem in GAN_SPECS})
# A U-Net samples in 5 DDIM steps rather than 50 for the metrics of a 2-epoch smoke run.
TINY.update({stem: ["model.sampler.steps=5"] for stem in ("diffusion_digits", "cdiffusion_digits")})
TINY["vq_vae_digits"] = ["model.prior.epochs=1"]  # its second stage, after the 2 epochs


# The default tier trains one cheap example of each family and each data kind; the slow
# tier (CI runs it too) trains the rest: image diffusion, the image flow and PixelCNN, and
# the variants that take 4 s or more even tiny (convolutions, transformers, conditional and
# Wasserstein GANs, MAF, the other toy data sets).
SLOW_SPECS = {
    "diffusion_digits",
    "cdiffusion_digits",
    "flow_digits",
    "flow_digits_multiscale",
    "pixelcnn_digits",
    "charlm_arithmetic",
    "transformer_arithmetic",
    "dcgan_digits",
    "dcgan_digits_small",
    "vae_digits_conv",
    "wgan_gp_ring8",
    "cvae_digits",
    "cgan_digits",
    "maf_moons",
    "diffusion_ring8",
    "vae_moons",
    "gan_grid25",
    "vae_digits_finetune",
    "gan_digits_finetune",
    "charlm_finetune",
    "vq_vae_digits",  # tests/vq_vae trains it tiny in the default tier
    "tcvae_shapes2d",  # tests/disentanglement trains a tiny beta-TCVAE in the default tier
    "vae_digits_iaf",
}


@pytest.mark.parametrize(
    "spec",
    [pytest.param(s, marks=pytest.mark.slow) if s.stem in SLOW_SPECS else s for s in SPECS],
    ids=[s.stem for s in SPECS],
)
def test_example_spec_trains_and_writes_its_artifacts(
    spec: Path, tmp_path: Path, example_overrides
) -> None:
    overrides = [*FAST, *example_overrides(spec), *TINY.get(spec.stem, [])]
    result = train(spec, overrides, epochs=2, run_dir=tmp_path / "run", quiet=True)
    run = result.run_dir
    family = json.loads((run / "spec.lock.json").read_text())["family"]
    text = (run / "samples.txt").exists()
    expected = DEFAULT_METRICS[family] if text or family != "autoregressive" else {"nll"}
    expected = SPEC_METRICS.get(spec.stem, expected)
    assert set(result.metrics) >= expected
    assert all(np.isfinite(v) for v in result.metrics.values())
    if family == "vae":  # the IWAE bound is tighter than the ELBO (up to Monte Carlo noise)
        assert -result.metrics["iwae_nll"] >= result.metrics["elbo"] - 1.0
    for name in ("metrics.json", "history.csv", "report.md", "model.weights.h5", "curves.png"):
        assert (run / name).is_file(), name
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3  # header + 2 epochs
    if family == "gan":  # training health: both losses, accuracies, gradients, diversity
        for column in ("d_loss", "g_loss", "d_real_accuracy", "d_grad_norm", "diversity"):
            assert column in history[0].split(","), column
    lock = json.loads((run / "spec.lock.json").read_text())
    assert lock["resolved_spec"]["training"]["epochs"] == 2
    assert lock["data_fingerprint"] == result.record["data_fingerprint"]
    assert len(lock["data_fingerprint"]) == 64
    report = (run / "report.md").read_text()
    assert all(name in report for name in result.metrics)
    if text:  # a language model: text samples, shown in the report; its vocabulary is locked
        samples = (run / "samples.txt").read_text(encoding="utf-8")
        assert samples.startswith("### sample 1\n") and samples.splitlines()[1] in report
        assert lock["files"][f"{lock['name'].replace('-', '_')}/vocabulary.json"]
        return
    assert "![samples](samples.png)" in report
    picture = Image.open(run / "samples.png")
    assert picture.size[0] >= 256 and picture.size[1] >= 256


@pytest.mark.slow
def test_same_spec_and_seed_give_identical_weights(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "vae_digits.yaml"
    first = train(spec, FAST, epochs=2, run_dir=tmp_path / "a", quiet=True)
    second = train(spec, FAST, epochs=2, run_dir=tmp_path / "b", quiet=True)
    assert first.record["weights_sha256"] == second.record["weights_sha256"]
    assert first.metrics == second.metrics
    other = train(spec, [*FAST, "seed=7"], epochs=2, run_dir=tmp_path / "c", quiet=True)
    assert other.record["weights_sha256"] != first.record["weights_sha256"]


def discretized_gaussian_nll(train_x: np.ndarray, held_out: np.ndarray, top: int) -> float:
    """NLL (nats/example) of integer pixels 0..top under a per-pixel Gaussian fitted to train
    data and integrated over each pixel's bin: a proper discrete baseline."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-3
    low = np.where(held_out <= 0, -np.inf, held_out - 0.5)
    high = np.where(held_out >= top, np.inf, held_out + 0.5)
    mass = norm.cdf((high - mean) / std) - norm.cdf((low - mean) / std)
    return float(-np.log(np.maximum(mass, 1e-300)).sum(1).mean())


@pytest.mark.slow
def test_vae_on_digits_beats_a_diagonal_gaussian(tmp_path: Path) -> None:
    # Exact discrete likelihood: 17 bins for the digits' 17 grey levels.
    overrides = [
        "model.likelihood={type: categorical, bins: 17}",
        "evaluation.importance_samples=100",
    ]
    spec = ROOT / "specs" / "vae_digits.yaml"
    result = train(spec, overrides, epochs=20, run_dir=tmp_path / "run", quiet=True)
    x = load_digits().data
    held_out = np.random.default_rng(42).permutation(len(x))[: round(len(x) * 0.1)]
    is_train = np.ones(len(x), bool)
    is_train[held_out] = False
    baseline = discretized_gaussian_nll(x[is_train], x[held_out], top=16)
    assert result.metrics["iwae_nll"] < baseline - 25.0, (result.metrics, baseline)


@pytest.mark.slow
def test_generated_projects_own_test_passes(tmp_path: Path) -> None:
    from gencompile.compiler.project import build

    project = tmp_path / "cvae"
    build(load_spec(ROOT / "specs" / "cvae_digits.yaml"), project)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_nan_loss_stops_with_a_clear_message(tmp_path: Path) -> None:
    overrides = [
        *FAST,
        "training.optimizer={type: sgd, learning_rate: 1.0e+12}",
        "training.checkpoint.every_epochs=1",
    ]
    spec = ROOT / "specs" / "vae_moons.yaml"
    with pytest.raises(RunError, match=r"loss became (nan|inf) at epoch \d+"):
        train(spec, overrides, epochs=3, run_dir=tmp_path / "run", quiet=True)


@pytest.mark.slow  # two epochs of the digits VAE under mixed precision (over 10 s)
def test_mixed_precision_trains_with_a_scaled_loss(tmp_path: Path) -> None:
    import keras

    overrides = [*FAST, "training.mixed_precision=true"]
    try:
        result = train(ROOT / "specs" / "vae_digits.yaml", overrides, epochs=2, run_dir=tmp_path)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # process-wide: restore it
    assert "scale_loss" in (tmp_path / "vae_digits" / "model.py").read_text()
    assert all(np.isfinite(v) for v in result.metrics.values())


@pytest.mark.parametrize("spec", ["vae_digits", "cvae_digits"])
def test_saved_model_export_serves_reconstructions(spec: str, tmp_path: Path) -> None:
    import tensorflow as tf

    # The export is under test, not the model: three steps and no evaluation (the example
    # specs' metrics are checked by test_example_spec_trains_and_writes_its_artifacts).
    overrides = ["training.steps_per_epoch=3", "evaluation.metrics=[]"]
    overrides.append("output.export=[keras, saved_model]")
    train(ROOT / "specs" / f"{spec}.yaml", overrides, epochs=1, run_dir=tmp_path, quiet=True)
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    x = tf.random.uniform((3, 8, 8, 1))
    inputs = (x, tf.constant([0, 1, 2])) if spec.startswith("cvae") else x
    reconstruction = served.serve(inputs)
    assert reconstruction.shape == (3, 8, 8, 1)
    assert not list(tmp_path.glob(".tmp-*"))  # nothing half-written left behind
