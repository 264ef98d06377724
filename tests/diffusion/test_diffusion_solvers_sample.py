"""`gencompile sample RUN --sampler dpm_solver|euler|heun` on a tiny trained run: the same
weights draw with a fast solver chosen at sample time, seed-deterministic, the right shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_sample_families import SHORT, SHORT_TRAINING, TINY_CDIFFUSION


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The conditional digits diffusion of the sample-option tests (40 timesteps, DDPM in
    its spec), two training steps: the tests are about sampling, not quality."""
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("solver-run")
    (root / "spec.yaml").write_text(TINY_CDIFFUSION.replace(SHORT, SHORT_TRAINING))
    return str(train(root / "spec.yaml", run_dir=root / "run", quiet=True).run_dir)


def draw(run_cli, run: str, path: Path, *options: str) -> np.ndarray:
    code, _, err = run_cli("sample", run, "-n", "12", "-o", str(path), *options)
    assert code == 0, err
    return np.load(path)["samples"]


def test_dpm_solver_at_sample_time_is_seed_deterministic(run_cli, tiny_run, tmp_path) -> None:
    options = ("--sampler", "dpm_solver", "--steps", "20")
    first = draw(run_cli, tiny_run, tmp_path / "a.npz", *options, "--seed", "3")
    again = draw(run_cli, tiny_run, tmp_path / "b.npz", *options, "--seed", "3")
    other = draw(run_cli, tiny_run, tmp_path / "c.npz", *options, "--seed", "4")
    assert first.shape == (12, 8, 8, 1) and np.isfinite(first).all()
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["labels"], np.arange(12) % 10)
    # pixels in the training images' range: every x_0 estimate is clipped to the scale
    assert first.min() >= 0.0 and first.max() <= 16.0


def test_every_solver_draws_from_the_same_weights(run_cli, tiny_run, tmp_path) -> None:
    drawn = {
        kind: draw(run_cli, tiny_run, tmp_path / f"{kind}.npz", "--sampler", kind, "--seed", "1")
        for kind in ("ddpm", "dpm_solver", "euler", "heun")
    }
    for kind, samples in drawn.items():
        assert samples.shape == (12, 8, 8, 1) and np.isfinite(samples).all(), kind
    assert not np.allclose(drawn["dpm_solver"], drawn["euler"])
    assert not np.allclose(drawn["euler"], drawn["heun"])


def test_solver_variants_are_traced_once(tiny_run) -> None:
    from gencompile.generated import load_trained_model

    model, _ = load_trained_model(Path(tiny_run))
    config = {"type": "dpm_solver", "steps": 20}
    for n in (3, 7, 3):
        model.sample(n, seed=5, sampler=config)
    variant = model.sampler.with_config(config)
    assert variant.traces == 1 and variant.steps == 20
