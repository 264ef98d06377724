"""`gencompile impute` with a VAE (pseudo-Gibbs sampling) and a flow (MAP completion).

Both models are trained for a few seconds on a 4-D table whose columns are strongly
correlated (two latent factors and a little noise), so each column is nearly determined by
the other three: held-out rows with one cell removed must come back much closer to the truth
than the column mean, which is what proves the methods use the observed cells.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

COLUMNS = ["height", "width", "depth", "weight"]
SPEC = """\
spec_version: 1
name: table-{family}
seed: 1
data:
  source: {{type: csv, path: {csv}}}
  validation_split: 0.25
  preprocessing: {{standardize: true}}
  batch_size: 32
model:
{model}
training:
  epochs: 10
  optimizer: {{type: adam, learning_rate: 1.0e-2}}
evaluation:
  metrics: [{metric}]
output:
  samples: {{count: 16, format: png}}
"""
MODELS = {
    "vae": """\
  family: vae
  latent_dim: 2
  encoder: {mlp: [32]}
  decoder: {mlp: [32]}
  likelihood: {type: gaussian, sigma: learned}""",
    "flow": """\
  family: flow
  base: {type: normal}
  transforms:
    - {type: affine_coupling, hidden: [32], mask: alternating, repeat: 4}""",
}
METRICS = {"vae": "elbo", "flow": "nll"}


def write_table(path: Path, rows: int = 1200) -> Path:
    """Four columns in different units, all driven by two normal factors."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(rows, 2))
    mixing = np.array([[1.0, 0.8, -0.6, 0.3], [0.2, -0.7, 0.5, 1.0]])
    x = factors @ mixing * [3.0, 1.0, 2.0, 0.5] + [10.0, -2.0, 0.0, 5.0]
    x += 0.05 * rng.normal(size=x.shape)
    lines = [",".join(COLUMNS)] + [",".join(f"{v:.6f}" for v in row) for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("table") / "table.csv")


def trained(family: str, table: Path) -> Path:
    """A run of the family trained on `table` (its spec beside it: data paths stay inside
    the spec's folder)."""
    from gencompile.runs import train

    spec = table.parent / f"{family}.yaml"
    spec.write_text(
        SPEC.format(family=family, csv=table, model=MODELS[family], metric=METRICS[family])
    )
    return train(spec, run_dir=table.parent / f"{family}_run", quiet=True).run_dir


@pytest.fixture(scope="module")
def vae_run(table: Path) -> Path:
    return trained("vae", table)


@pytest.fixture(scope="module")
def flow_run(table: Path) -> Path:
    return trained("flow", table)


class Gaps:
    """The run's held-out rows in data units, one cell removed from most of them."""

    def __init__(self, run_dir: Path, folder: Path) -> None:
        from gencompile.generated import load_trained_model
        from gencompile.runtime.data import load_data

        _, module = load_trained_model(run_dir)
        data = load_data(module.DATA, seed=module.SEED)
        self.truth = data.preprocessor.inverse(data.x_val).astype(np.float64)
        self.column_means = data.preprocessor.inverse(data.x_train).mean(axis=0)
        self.cells = [[f"{v:.6f}" for v in row] for row in self.truth]
        self.hidden = np.zeros(self.truth.shape, dtype=bool)
        for i in range(len(self.cells)):
            if i % 5:  # every fifth row stays complete
                self.hidden[i, i % len(COLUMNS)] = True
                self.cells[i][i % len(COLUMNS)] = "" if i % 2 else "NaN"
        self.source = folder / "gaps.csv"
        with self.source.open("w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([COLUMNS, *self.cells])

    def check_contract(self, target: Path) -> np.ndarray:
        """The CSV contract; returns the filled values."""
        with target.open(newline="") as handle:
            written = list(csv.reader(handle))
        assert written[0] == COLUMNS
        assert len(written) == len(self.cells) + 1
        for i, row in enumerate(written[1:]):
            assert len(row) == len(COLUMNS)
            if not self.hidden[i].any():
                assert row == self.cells[i]  # complete rows pass through unchanged
            for j, cell in enumerate(row):
                if not self.hidden[i, j]:
                    assert cell == self.cells[i][j]  # observed cells kept verbatim
        return np.array([[float(c) for c in row] for row in written[1:]])

    def rmse(self, filled: np.ndarray) -> tuple[float, float]:
        """RMSE over the removed cells (each column in units of its spread) of `filled`,
        and of filling them with the column means."""
        spread = self.truth.std(axis=0)
        model = ((filled - self.truth) / spread)[self.hidden]
        means = ((self.column_means - self.truth) / spread)[self.hidden]
        return float(np.sqrt(np.mean(model**2))), float(np.sqrt(np.mean(means**2)))


@pytest.mark.parametrize(
    ("family", "method"),
    [
        ("vae", "the VAE's pseudo-Gibbs sampling (50 iterations, seed 0)"),
        ("flow", "the flow's MAP completion (200 Adam steps, learning rate 0.05)"),
    ],
)
def test_imputes_held_out_rows_far_better_than_column_means(
    family, method, request, tmp_path, run_cli
) -> None:
    run_dir = request.getfixturevalue(f"{family}_run")
    gaps = Gaps(run_dir, tmp_path)
    target = tmp_path / "filled.csv"

    code, out, err = run_cli("impute", str(run_dir), "--input", str(gaps.source), "-o", str(target))

    assert code == 0, err
    rows = int(gaps.hidden.any(axis=1).sum())
    assert f"filled {int(gaps.hidden.sum())} cell(s) in {rows} row(s) with {method}:" in out
    model_rmse, mean_rmse = gaps.rmse(gaps.check_contract(target))
    # Each column is nearly a linear function of the others: the column mean misses by about
    # one spread, a model that conditions on the observed cells by a fraction of it.
    assert mean_rmse > 0.9
    assert model_rmse < 0.5 * mean_rmse, (model_rmse, mean_rmse)


def test_the_vae_chain_is_reproduced_by_its_seed(vae_run, tmp_path, run_cli) -> None:
    gaps = Gaps(vae_run, tmp_path)

    def filled(name: str, *options: str) -> bytes:
        target = tmp_path / name
        args = ("impute", str(vae_run), "--input", str(gaps.source), "-o", str(target))
        code, _, err = run_cli(*args, "--iterations", "10", *options)
        assert code == 0, err
        gaps.check_contract(target)
        return target.read_bytes()

    first = filled("a.csv", "--seed", "7")
    assert filled("b.csv", "--seed", "7") == first
    other = filled("c.csv", "--seed", "8")
    assert other != first
    a, c = (np.loadtxt(tmp_path / n, delimiter=",", skiprows=1) for n in ("a.csv", "c.csv"))
    assert (a != c)[gaps.hidden].all()  # the draws move every missing cell ...
    np.testing.assert_array_equal(a[~gaps.hidden], c[~gaps.hidden])  # ... and nothing else


def test_the_flow_completion_is_deterministic_and_follows_its_options(
    flow_run, tmp_path, run_cli
) -> None:
    gaps = Gaps(flow_run, tmp_path)

    def filled(name: str, *options: str) -> np.ndarray:
        target = tmp_path / name
        args = ("impute", str(flow_run), "--input", str(gaps.source), "-o", str(target))
        code, out, err = run_cli(*args, *options)
        assert code == 0, err
        assert "(5 Adam steps, learning rate 0.001)" in out or "(200 Adam steps" in out
        return gaps.check_contract(target)

    short = filled("short.csv", "--iterations", "5", "--learning-rate", "0.001")
    again = filled("again.csv", "--iterations", "5", "--learning-rate", "0.001")
    assert (tmp_path / "short.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    np.testing.assert_array_equal(short, again)
    # Five tiny steps barely leave the start (the training mean); the full search does.
    start = np.broadcast_to(gaps.column_means, short.shape)[gaps.hidden]
    spread = np.broadcast_to(gaps.truth.std(axis=0), short.shape)[gaps.hidden]
    assert np.max(np.abs(short[gaps.hidden] - start) / spread) < 0.05
    assert gaps.rmse(short)[0] > 2 * gaps.rmse(filled("full.csv"))[0]


def test_rows_are_completed_independently_of_how_they_are_batched(
    flow_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MAP search sums the rows' log-densities, and Adam is elementwise: a row's answer
    must not depend on the rows imputed beside it. Observed cells and complete rows come
    back exactly."""
    from gencompile.generated import load_trained_model
    from gencompile.runtime import imputation

    model, _ = load_trained_model(flow_run)
    x = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    x[np.arange(0, 30, 2), np.arange(0, 30, 2) % 4] = np.nan  # even rows miss one cell
    start = np.zeros(4, np.float32)
    together = imputation.flow_map_completion(model, x, start, 20, 0.05)
    monkeypatch.setattr(imputation, "CHUNK", 4)
    apart = imputation.flow_map_completion(model, x, start, 20, 0.05)

    np.testing.assert_allclose(apart, together, rtol=1e-4, atol=1e-4)
    missing = np.isnan(x)
    np.testing.assert_array_equal(together[~missing], x[~missing])
    assert np.isfinite(together).all() and not np.allclose(together[missing], 0.0)


@pytest.mark.parametrize("posterior", ["iaf", "planar", "radial"])
def test_a_flow_posterior_chain_draws_z_from_the_models_own_posterior(
    posterior, table, tmp_path
) -> None:
    """With a flow posterior, z ~ q(z | x) is f(mu + sigma eps): each Gibbs step must decode
    the model's own `posterior` draw (not f(mu) + sigma eps, a wider Gaussian around
    `encode`'s central code), and keep the observed cells."""
    import tensorflow as tf

    from gencompile.generated import load_trained_model
    from gencompile.runs import train
    from gencompile.runtime import imputation

    model_text = MODELS["vae"] + f"\n  posterior: {{type: {posterior}, steps: 2}}"
    spec = table.parent / f"vae_{posterior}.yaml"
    spec.write_text(SPEC.format(family="vae", csv=table, model=model_text, metric="elbo"))
    run = train(spec, ["training.epochs=1"], run_dir=tmp_path / "run", quiet=True).run_dir
    model, _ = load_trained_model(run)
    rows = np.random.default_rng(2).normal(size=(64, 4)).astype(np.float32)
    missing = np.zeros(rows.shape, bool)
    missing[:, 1] = True
    key = tf.constant([5, 9], tf.int64)

    stepped = imputation._gibbs_step(model)(tf.constant(rows), tf.constant(missing), key)

    eps = tf.random.stateless_normal((len(rows), model.prior.latent_dim), seed=key)
    z, _ = model.posterior(tf.constant(rows), None, training=False, draws=1, noise=eps)
    decoded = np.asarray(model.likelihood.mean(model.decode(z, None, training=False)))
    np.testing.assert_allclose(np.asarray(stepped)[missing], decoded[missing], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(stepped)[~missing], rows[~missing])


@pytest.mark.parametrize(
    ("family", "options", "message"),
    [
        ("vae", ["--learning-rate", "0.1"], "--learning-rate does not apply to a vae model"),
        ("flow", ["--seed", "3"], "--seed does not apply to a flow model"),
        ("vae", ["--iterations", "0"], "--iterations must be at least 1, got 0"),
        ("flow", ["--learning-rate", "-1"], "--learning-rate must be > 0, got -1.0"),
    ],
)
def test_options_a_method_cannot_use_are_refused(
    family, options, message, request, tmp_path, run_cli
) -> None:
    run_dir = request.getfixturevalue(f"{family}_run")
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n1.0,,2.0,3.0\n")
    code, _, err = run_cli("impute", str(run_dir), "--input", str(source), "-o", "x.csv", *options)
    assert code == 2
    assert message in " ".join(err.split())
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("family", ["gan", "diffusion", "autoregressive"])
def test_families_without_an_imputation_are_refused_before_loading(
    family, tmp_path, monkeypatch, run_cli
) -> None:
    import gencompile.imputation as imputation

    monkeypatch.setattr(imputation, "verified_lock", lambda run, allow: {"family": family})

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(imputation, "load_trained_model", never)
    source = tmp_path / "in.csv"
    source.write_text("a,b\n1.0,\n")
    code, _, err = run_cli("impute", str(tmp_path), "--input", str(source), "-o", "x.csv")
    assert code == 2
    said = " ".join(err.split())
    assert f"holds a {family} model, which cannot impute" in said
    assert imputation.REFUSED[family] in said  # why
    assert "mixture (conditional means), vae (pseudo-Gibbs sampling) and flow (MAP" in said


DEQUANTIZED_FLOW = """\
spec_version: 1
name: digits-flow
seed: 1
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: flow
  base: {type: normal}
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit, alpha: 0.05}
    - {type: affine_coupling, hidden: [16], mask: checkerboard, repeat: 2}
training:
  epochs: 1
evaluation:
  metrics: [nll]
  importance_samples: 1
output:
  samples: {count: 4, format: png}
"""


@pytest.mark.slow  # its own training: about 13 s of CPU
def test_a_dequantized_flow_fills_pixels_with_grey_levels(
    tmp_path_factory: pytest.TempPathFactory, tmp_path, run_cli
) -> None:
    """On discrete data the search runs inside the dequantized cube and reads levels back."""
    from sklearn.datasets import load_digits

    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("digits_flow")
    (folder / "flow.yaml").write_text(DEQUANTIZED_FLOW)
    run_dir = train(folder / "flow.yaml", run_dir=folder / "run", quiet=True).run_dir
    pixels = load_digits().data[:5]
    cells = [[f"{v:g}" for v in row] for row in pixels]
    for i, row in enumerate(cells):
        row[8 * i : 8 * i + 16] = [""] * 16  # two rows of pixels lost per image
    source, target = tmp_path / "gaps.csv", tmp_path / "filled.csv"
    header = [f"x{j}" for j in range(64)]
    with source.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *cells])

    args = ("impute", str(run_dir), "--input", str(source), "-o", str(target))
    code, out, err = run_cli(*args, "--iterations", "20")

    assert code == 0, err
    assert "filled 80 cell(s) in 5 row(s) with the flow's MAP completion (20 Adam" in out
    with target.open(newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == header
    for row, given in zip(written[1:], cells, strict=True):
        for cell, was in zip(row, given, strict=True):
            if was:
                assert cell == was
            else:  # one of the 17 grey levels, not a value between them
                assert float(cell) in {float(level) for level in range(17)}
