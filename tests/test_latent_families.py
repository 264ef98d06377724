"""`gencompile latent` on tiny GAN, mixture, diffusion and conditional VAE runs (slow
tier: four more trainings). A GAN walks random draws of z; a mixture maps held-out data by
component and walks between component means; a diffusion model with a deterministic DDIM
sampler encodes examples by DDIM inversion, which the sampler undoes; a conditional VAE
decodes with the examples' labels or the one asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_latent import TINY_VAE, arrays, latent

pytestmark = pytest.mark.slow

TINY_GAN = """\
spec_version: 1
name: latent-gan
seed: 5
data:
  source: {type: builtin, name: ring8, n_samples: 600}
  validation_split: 0.1
  preprocessing: {standardize: true}
  batch_size: 128
model:
  family: gan
  latent_dim: 2
  generator: {mlp: [8]}
  discriminator: {mlp: [8]}
  loss: {type: non_saturating}
training: {epochs: 1}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

TINY_GMM = """\
spec_version: 1
name: latent-gmm
seed: 6
data:
  source: {type: builtin, name: moons, n_samples: 600, noise: 0.05}
  validation_split: 0.2
  preprocessing: {standardize: true}
model:
  family: mixture
  components: 3
  covariance: full
  algorithm: {type: em, max_iter: 3}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

TINY_DIFFUSION = """\
spec_version: 1
name: latent-diffusion
seed: 7
data:
  source: {type: builtin, name: moons, n_samples: 600, noise: 0.05}
  validation_split: 0.2
  preprocessing: {standardize: true}
  batch_size: 128
model:
  family: diffusion
  timesteps: 100
  schedule: {type: linear, beta_start: 1.0e-4, beta_end: 0.02}
  denoiser: {type: mlp, hidden: [16], time_embedding: 8}
  sampler: {type: ddim, steps: 100, eta: 0.0}
  ema: 0.0
training: {epochs: 1}
evaluation: {metrics: []}
output: {samples: {count: 4, format: npz}}
"""

TINY_CVAE = TINY_VAE.replace("latent-vae", "latent-cvae").replace(
    "likelihood: {type: bernoulli}",
    "likelihood: {type: bernoulli}\n  conditional: {num_classes: 10}",
)

# The same model sampled by DDPM, which adds noise at each step: latent tools use DDIM.
TINY_DDPM = TINY_DIFFUSION.replace("latent-diffusion", "latent-ddpm").replace(
    "sampler: {type: ddim, steps: 100, eta: 0.0}", "sampler: {type: ddpm}"
)

SPECS = {
    "gan": TINY_GAN,
    "gmm": TINY_GMM,
    "diffusion": TINY_DIFFUSION,
    "ddpm": TINY_DDPM,
    "cvae": TINY_CVAE,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("latent-family-runs")
    done = {}
    for key, text in SPECS.items():
        (root / f"{key}.yaml").write_text(text)
        done[key] = train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir
    return done


def test_gan_walks_random_draws_and_refuses_what_needs_an_encoder(run_cli, runs, tmp_path):
    out = tmp_path / "g.npz"
    code, _, err = latent(run_cli, runs["gan"], "interpolate", "--random", "-n", "2",
                          "--steps", "4", "-o", str(out))  # fmt: skip
    assert code == 0, err
    assert arrays(out)["samples"].shape == (2, 4, 2)
    grid = tmp_path / "t.npz"
    assert latent(run_cli, runs["gan"], "traverse", "--steps", "3", "-o", str(grid))[0] == 0
    found = arrays(grid)
    assert found["codes"].shape == (2, 3, 2) and np.all(found["center"] == 0.0)
    for args in (["reconstruct"], ["map"], ["arithmetic", "--add", "1", "--subtract", "2"],
                 ["interpolate", "--from", "1", "--to", "2"]):  # fmt: skip
        code, _, err = latent(run_cli, runs["gan"], *args, "-o", str(tmp_path / "no.png"))
        assert code == 2 and "a GAN has no encoder" in err, (args, err)
    assert not (tmp_path / "no.png").exists()


def test_mixture_maps_components_and_walks_between_means(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "m.npz"
    code, stdout, err = latent(run_cli, runs["gmm"], "map", "-o", str(out))
    assert code == 0, err
    found = arrays(out)
    assert found["responsibilities"].shape == (120, 3)
    np.testing.assert_allclose(found["responsibilities"].sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(found["components"], found["responsibilities"].argmax(1))
    assert "most responsible component" in stdout
    assert found["means"].shape == (3, 2) and found["codes"].shape == (120, 2)
    path = tmp_path / "p.npz"
    assert latent(run_cli, runs["gmm"], "interpolate", "--from", "0", "--to", "2", "--steps",
                  "4", "-o", str(path))[0] == 0  # fmt: skip
    from gencompile.generated import load_trained_model

    model, _ = load_trained_model(runs["gmm"])
    means = np.asarray(model.means, np.float32)
    np.testing.assert_array_equal(arrays(path)["codes"][0, [0, -1]], means[[0, 2]])
    code, _, err = latent(run_cli, runs["gmm"], "traverse", "-o", str(tmp_path / "t.png"))
    assert code == 2 and "no continuous code to traverse" in err


def test_diffusion_ddim_inversion_round_trips(run_cli, runs, tmp_path) -> None:
    """x -> x_T by DDIM inversion, x_T -> x by the same deterministic sampler: with one
    step per timestep the round trip returns close to the example (the inversion's only
    error is the denoiser's change between neighbouring steps)."""
    out = tmp_path / "r.npz"
    code, _, err = latent(run_cli, runs["diffusion"], "reconstruct", "-n", "16", "-o",
                               str(out))  # fmt: skip
    assert code == 0, err
    found = arrays(out)
    assert found["codes"].shape == (16, 2) and found["reconstructions"].shape == (16, 2)
    error = np.abs(found["reconstructions"] - found["inputs"]).max()
    spread = np.abs(found["inputs"] - found["inputs"].mean(0)).max()
    assert error < 0.05 * spread, (error, spread)
    assert np.abs(found["codes"]).max() > 0.5  # noise, not the example itself
    path = tmp_path / "i.npz"
    code, _, err = latent(run_cli, runs["diffusion"], "interpolate", "--from", "0", "--to",
                          "1", "--steps", "3", "-o", str(path))  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(arrays(path)["codes"][0, [0, -1]], found["codes"][:2], atol=1e-5)


def test_a_ddpm_model_is_inverted_by_ddim_over_its_own_denoiser(run_cli, runs, tmp_path) -> None:
    """The spec samples by DDPM (noise at each step: no inverse); the latent tools map x_T
    with DDIM, eta 0, at `gencompile sample --sampler ddim`'s default 50 of 100 steps."""
    out = tmp_path / "r.npz"
    code, _, err = latent(run_cli, runs["ddpm"], "reconstruct", "-n", "16", "-o", str(out))
    assert code == 0, err
    found = arrays(out)
    error = np.abs(found["reconstructions"] - found["inputs"]).max()
    spread = np.abs(found["inputs"] - found["inputs"].mean(0)).max()
    assert error < 0.1 * spread, (error, spread)
    assert np.abs(found["codes"]).max() > 0.5
    path = tmp_path / "i.npz"
    code, stdout, err = latent(run_cli, runs["ddpm"], "interpolate", "--from", "0", "--to",
                               "1", "--steps", "3", "-o", str(path))  # fmt: skip
    assert code == 0, err
    assert "in the starting noise x_T (DDIM, eta 0, 50 steps)" in stdout
    np.testing.assert_allclose(arrays(path)["codes"][0, [0, -1]], found["codes"][:2], atol=1e-5)


def test_conditional_vae_decodes_with_labels(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "i.npz"
    code, _, err = latent(run_cli, runs["cvae"], "interpolate", "--random", "-n", "3",
                          "--label", "4", "-o", str(out))  # fmt: skip
    assert code == 0, err
    assert arrays(out)["labels"].tolist() == [4, 4, 4]
    cycled = tmp_path / "c.npz"
    assert latent(run_cli, runs["cvae"], "interpolate", "--random", "-n", "3", "-o",
                  str(cycled))[0] == 0  # fmt: skip
    assert arrays(cycled)["labels"].tolist() == [0, 1, 2]
    code, _, err = latent(run_cli, runs["cvae"], "traverse", "--label", "12", "-o",
                          str(tmp_path / "t.png"))  # fmt: skip
    assert code == 2 and "--label 12: " in err and "classes 0..9" in err
    arithmetic = tmp_path / "a.npz"
    code, _, err = latent(run_cli, runs["cvae"], "arithmetic", "--add", "0", "--subtract", "6",
                          "-n", "2", "-o", str(arithmetic))  # fmt: skip
    assert code == 0, err
    assert arrays(arithmetic)["samples"].shape == (2, 5, 8, 8, 1)
    mapped = tmp_path / "m.npz"
    code, stdout, err = latent(run_cli, runs["cvae"], "map", "--method", "tsne", "-o",
                               str(mapped))  # fmt: skip
    assert code == 0, err
    found = arrays(mapped)
    assert found["points"].shape == (180, 2) and found["codes"].shape == (180, 3)
    assert found["labels"].shape == (180,) and "t-SNE of 3-D codes" in stdout
