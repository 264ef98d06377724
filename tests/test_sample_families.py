"""Sample-time options of GANs, flows and diffusion models through `gencompile sample`:
each changes the samples and is reproducible under --seed; a diffusion model draws with
another sampler, step count, eta or guidance scale than its spec's; truncation bounds z;
and each option is refused, with what to use, where it has no meaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_latent import TINY_FLOW
from tests.test_latent_families import TINY_GAN

# Two steps of training are enough: the tests are about sampling, not quality.
SHORT = "training: {epochs: 1}"
SHORT_TRAINING = "training: {epochs: 1, steps_per_epoch: 2}"

TINY_CDIFFUSION = """\
spec_version: 1
name: sample-cdiffusion
seed: 7
data:
  source: {type: builtin, name: digits}
  validation_split: 0.1
  preprocessing: {scale: [-1.0, 1.0]}
  batch_size: 128
model:
  family: diffusion
  timesteps: 40
  schedule: {type: linear, beta_start: 1.0e-4, beta_end: 0.2}
  denoiser: {type: mlp, hidden: [16], time_embedding: 8}
  sampler: {type: ddpm}
  ema: 0.0
  conditional: {num_classes: 10, guidance_scale: 1.0, label_dropout: 0.2}
training: {epochs: 1}
evaluation: {metrics: []}
output: {samples: {count: 10, format: npz}}
"""

SPECS = {"gan": TINY_GAN, "flow": TINY_FLOW, "diffusion": TINY_CDIFFUSION}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("sample-family-runs")
    done = {}
    for key, text in SPECS.items():
        assert SHORT in text
        (root / f"{key}.yaml").write_text(text.replace(SHORT, SHORT_TRAINING))
        done[key] = str(train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir)
    return done


def draw(run_cli, run: str, path: Path, *options: str, n: int = 20) -> np.ndarray:
    code, _, err = run_cli("sample", run, "-n", str(n), "-o", str(path), "--seed", "1", *options)
    assert code == 0, err
    return np.load(path)["samples"]


def test_diffusion_sampler_steps_eta_and_guidance(run_cli, runs, tmp_path) -> None:
    run = runs["diffusion"]
    ddpm = draw(run_cli, run, tmp_path / "ddpm.npz")
    ddim = draw(run_cli, run, tmp_path / "ddim.npz", "--sampler", "ddim", "--steps", "10")
    again = draw(run_cli, run, tmp_path / "ddim2.npz", "--sampler", "ddim", "--steps", "10")
    assert ddim.shape == ddpm.shape == (20, 8, 8, 1)
    assert (tmp_path / "ddim.npz").read_bytes() == (tmp_path / "ddim2.npz").read_bytes()
    np.testing.assert_array_equal(ddim, again)
    noisy = draw(
        run_cli, run, tmp_path / "eta.npz", "--sampler", "ddim", "--steps", "10", "--eta", "1"
    )
    strided = draw(run_cli, run, tmp_path / "strided.npz", "--steps", "5")  # ddpm, 5 steps
    guided = draw(run_cli, run, tmp_path / "guided.npz", "--guidance", "3")
    drawn = [ddpm, ddim, noisy, strided, guided]
    for i, a in enumerate(drawn):
        assert np.isfinite(a).all()
        for b in drawn[i + 1 :]:
            assert not np.allclose(a, b)
    labels = np.load(tmp_path / "guided.npz")["labels"]
    np.testing.assert_array_equal(labels, np.arange(20) % 10)


def test_diffusion_sampler_variants_are_traced_once(runs) -> None:
    from gencompile.generated import load_trained_model

    model, _ = load_trained_model(Path(runs["diffusion"]))
    config = {"type": "ddim", "steps": 10, "eta": 0.0}
    variant = model.sampler.with_config(config)
    assert variant is model.sampler.with_config(dict(config)) and variant.steps == 10
    assert model.sampler.with_config(None) is model.sampler
    assert model.sampler.with_config({"type": "ddpm"}) is model.sampler  # the spec's own
    for _ in range(2):
        model.sample(3, seed=5, sampler=config)
        model.sample(7, seed=5, sampler=config)
    assert variant.traces == 1


def test_gan_truncation_and_temperature(run_cli, runs, tmp_path) -> None:
    from gencompile.generated import load_trained_model

    run = runs["gan"]
    plain = draw(run_cli, run, tmp_path / "plain.npz", n=200)
    truncated = draw(run_cli, run, tmp_path / "t.npz", "--truncation", "0.5", n=200)
    draw(run_cli, run, tmp_path / "t2.npz", "--truncation", "0.5", n=200)
    cool = draw(run_cli, run, tmp_path / "cool.npz", "--temperature", "0.5", n=200)
    assert (tmp_path / "t.npz").read_bytes() == (tmp_path / "t2.npz").read_bytes()
    assert not np.allclose(plain, truncated) and not np.allclose(plain, cool)
    model, _ = load_trained_model(Path(run))
    z = np.asarray(model.sample_latent(4096, seed=3, truncation=0.5))
    assert z.shape == (4096, 2) and np.abs(z).max() <= 0.5
    assert np.abs(z).max() > 0.49  # the whole band is used, not a shrunken copy
    free = np.asarray(model.sample_latent(4096, seed=3))
    assert np.abs(free).max() > 2.0
    hot = np.asarray(model.sample_latent(4096, seed=3, temperature=2.0))
    np.testing.assert_allclose(hot, 2.0 * free, rtol=1e-6)


def test_truncated_normal_matches_scipy(tmp_path) -> None:
    from scipy import stats

    from gencompile.runtime import gan

    z = np.asarray(gan.truncated_normal((20000,), 1.5, stddev=2.0, seed=11))
    assert np.abs(z).max() <= 3.0
    result = stats.kstest(z, stats.truncnorm(-1.5, 1.5, scale=2.0).cdf)
    assert result.pvalue > 0.01, result
    with pytest.raises(ValueError, match="truncation must be > 0"):
        gan.truncated_normal((4,), 0.0, stddev=1.0, seed=1)
    moved = np.asarray(gan.scale_about(np.array([0.0, 1.0, 4.0]), 0.5, center=2.0))
    np.testing.assert_allclose(moved, [1.0, 1.5, 3.0])


def test_flow_temperature_near_zero_inverts_the_base_mean(run_cli, runs, tmp_path) -> None:
    from gencompile.generated import load_trained_model, verified_lock
    from gencompile.runtime.preprocessing import Preprocessor

    run = runs["flow"]
    plain = draw(run_cli, run, tmp_path / "plain.npz")
    cold = draw(run_cli, run, tmp_path / "cold.npz", "--temperature", "1e-6")
    draw(run_cli, run, tmp_path / "cold2.npz", "--temperature", "1e-6")
    assert (tmp_path / "cold.npz").read_bytes() == (tmp_path / "cold2.npz").read_bytes()
    model, _ = load_trained_model(Path(run))
    center = np.asarray(model.inverse(np.zeros((1, 2), np.float32)))
    statistics = verified_lock(Path(run), False)["data_statistics"]
    expected = Preprocessor.from_dict(statistics).inverse(center)
    np.testing.assert_allclose(cold, np.repeat(expected, 20, axis=0), atol=1e-4)
    assert np.ptp(plain, axis=0).min() > 0.1


@pytest.mark.parametrize(
    ("key", "args", "message"),
    [
        ("diffusion", ["--eta", "0.5"], "add --sampler ddim"),
        ("diffusion", ["--steps", "41"], "--steps 41: this model's noise process has 40 timesteps"),
        ("diffusion", ["--sampler", "lms"], "--sampler lms: choose one of ddpm, ddim, dpm_solver"),
        (
            "diffusion",
            ["--temperature", "0.5"],
            "--temperature has no meaning for a diffusion model",
        ),
        ("flow", ["--truncation", "0.5"], "it is the GAN truncation trick on the latent z"),
        ("gan", ["--steps", "10"], "a gan model takes --temperature or --truncation"),
        ("gan", ["--guidance", "2"], "--guidance has no meaning for a gan model"),
        ("flow", ["--top-k", "3"], "a flow model takes --temperature"),
    ],
)
def test_refusals(run_cli, runs, tmp_path, key, args, message) -> None:
    code, _, err = run_cli("sample", runs[key], "-n", "4", "-o", str(tmp_path / "o.npz"), *args)
    assert code == 2
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "o.npz").exists()


def _diffusion_lock(conditional: dict | None) -> dict:
    schedule = {"type": "linear", "beta_start": 1.0e-4, "beta_end": 0.02}
    model = {"sampler": {"type": "ddpm"}, "timesteps": 100, "schedule": schedule}
    model["conditional"] = conditional
    return {"family": "diffusion", "resolved_spec": {"model": model}}


@pytest.mark.parametrize(
    ("conditional", "message"),
    [
        (None, "is an unconditional diffusion model; it takes --sampler, --steps and --eta"),
        (
            {"num_classes": 10, "label_dropout": 0.0},
            "trained without label dropout (model.conditional.label_dropout: 0)",
        ),
    ],
)
def test_guidance_needs_a_model_trained_for_it(conditional, message) -> None:
    from gencompile.errors import RunError
    from gencompile.sample_options import model_options

    lock = _diffusion_lock(conditional)
    with pytest.raises(RunError) as refused:
        model_options("diffusion", lock, {"guidance": 2.0}, Path("run"))
    assert message in str(refused.value)
    guided = {"num_classes": 10, "label_dropout": 0.1}
    options = model_options("diffusion", _diffusion_lock(guided), {"guidance": 2.0}, Path("r"))
    assert options == {"guidance_scale": 2.0}


def test_diffusion_options_become_a_sampler_config() -> None:
    from gencompile.sample_options import model_options

    lock = _diffusion_lock(None)
    chosen = model_options("diffusion", lock, {"sampler": "ddim", "steps": 25}, Path("r"))
    assert chosen == {"sampler": {"type": "ddim", "steps": 25, "eta": 0.0}}
    strided = model_options("diffusion", lock, {"steps": 10}, Path("r"))
    assert strided == {"sampler": {"type": "ddpm", "steps": 10}}
    assert lock["resolved_spec"]["model"]["sampler"] == {"type": "ddpm"}  # left as it was


def test_help_describes_the_options_and_formats(run_cli) -> None:
    code, out, _ = run_cli("sample", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    for words in (
        "--truncation",
        "a normal z has every coordinate beyond PSI standard deviations redrawn",
        "scaled toward the middle of its range by PSI",
        "--sampler",
        "--steps",
        "--eta",
        "classifier-free guidance scale",
        ".parquet",
        "DIR/<label>/",
    ):
        assert words in text, words


def test_vae_priors_scale_their_standard_deviation() -> None:
    import keras

    from gencompile.runtime.distributions import MixtureOfGaussiansPrior, StandardNormalPrior

    normal = StandardNormalPrior(3)
    plain = np.asarray(normal.sample(20000, seed=keras.random.SeedGenerator(1)))
    cool = np.asarray(normal.sample(20000, seed=keras.random.SeedGenerator(1), temperature=0.5))
    np.testing.assert_allclose(cool, 0.5 * plain, rtol=1e-6)
    assert abs(plain.std() - 1.0) < 0.02
    mixture = MixtureOfGaussiansPrior(2, components=3, seed=0)
    cold = np.asarray(mixture.sample(600, seed=keras.random.SeedGenerator(2), temperature=1e-6))
    means = np.asarray(mixture.means)
    nearest = np.abs(cold[:, None, :] - means[None]).max(axis=-1).min(axis=1)
    assert nearest.max() < 1e-5  # every draw sits on a component's mean
    warm = np.asarray(mixture.sample(600, seed=keras.random.SeedGenerator(2)))
    assert np.abs(warm[:, None, :] - means[None]).max(axis=-1).min(axis=1).mean() > 0.3
