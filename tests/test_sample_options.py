"""`gencompile sample --seed/--balanced` and .csv output: reproducible bytes, saved labels,
column names, and refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

TINY_CVAE = """\
spec_version: 1
name: tiny-cvae
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
training: {epochs: 1}
evaluation: {metrics: [elbo]}
output: {samples: {count: 10, format: npz}}
"""

TINY_GMM_CSV = """\
spec_version: 1
name: tiny-gmm-table
seed: 2
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
model:
  family: mixture
  components: 2
  covariance: diag
  algorithm: {{type: em, max_iter: 5}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 10, format: npz}}}}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_vae_spec: Path) -> dict[str, str]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("sample-runs")
    (root / "cvae.yaml").write_text(TINY_CVAE)
    rows = np.random.default_rng(0).normal(size=(200, 2)) * [1.0, 3.0] + [5.0, -1.0]
    table = "height cm,weight\n" + "\n".join(f"{a:.4f},{b:.4f}" for a, b in rows) + "\n"
    (root / "table.csv").write_text(table)
    (root / "gmm.yaml").write_text(TINY_GMM_CSV.format(path=root / "table.csv"))
    specs = {"vae": tiny_vae_spec, "cvae": root / "cvae.yaml", "gmm": root / "gmm.yaml"}
    return {
        key: str(train(spec, epochs=1, run_dir=root / key, quiet=True).run_dir)
        for key, spec in specs.items()
    }


def test_same_seed_same_bytes_other_seed_other_samples(run_cli, runs, tmp_path) -> None:
    paths = [tmp_path / f"{name}.npz" for name in ("a", "b", "c", "d", "e")]
    seeds = (["--seed", "9"], ["--seed", "9"], ["--seed", "10"], [], [])
    for path, extra in zip(paths, seeds, strict=True):
        code, _, err = run_cli("sample", runs["vae"], "-n", "8", "-o", str(path), *extra)
        assert code == 0, err
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[3].read_bytes() == paths[4].read_bytes()  # no --seed: the run's, every time
    a, c = np.load(paths[0])["samples"], np.load(paths[2])["samples"]
    assert a.shape == (8, 8, 8, 1) and not np.allclose(a, c)
    run_seed = tmp_path / "run_seed.npz"  # tiny_vae's spec has seed: 3
    assert run_cli("sample", runs["vae"], "-n", "8", "-o", str(run_seed), "--seed", "3")[0] == 0
    assert run_seed.read_bytes() == paths[3].read_bytes()
    assert "labels" not in np.load(paths[0]).files  # unconditional: no labels


def test_balanced_draws_equal_counts_and_saves_labels(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "b.npz"
    code, _, err = run_cli("sample", runs["cvae"], "-n", "30", "--balanced", "-o", str(out))
    assert code == 0, err
    with np.load(out) as files:
        labels, samples = files["labels"], files["samples"]
    assert samples.shape == (30, 8, 8, 1) and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), [3] * 10)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))


def test_label_is_saved_with_every_sample(run_cli, runs, tmp_path) -> None:
    out, plain = tmp_path / "seven.npz", tmp_path / "plain.npz"
    assert run_cli("sample", runs["cvae"], "-n", "4", "--label", "7", "-o", str(out))[0] == 0
    np.testing.assert_array_equal(np.load(out)["labels"], [7, 7, 7, 7])
    assert run_cli("sample", runs["cvae"], "-n", "12", "-o", str(plain))[0] == 0
    np.testing.assert_array_equal(np.load(plain)["labels"], np.arange(12) % 10)  # cycles


def test_image_csv_has_pixel_columns_and_a_label_column(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "s.csv"
    code, _, err = run_cli("sample", runs["cvae"], "-n", "20", "--balanced", "-o", str(out))
    assert code == 0, err
    rows = list(csv.reader(out.open()))
    assert rows[0] == [f"x{i}" for i in range(64)] + ["label"]
    assert len(rows) == 21 and [int(r[-1]) for r in rows[1:]] == [i // 2 for i in range(20)]
    npz = tmp_path / "s.npz"
    assert run_cli("sample", runs["cvae"], "-n", "20", "--balanced", "-o", str(npz))[0] == 0
    values = np.array([[float(c) for c in r[:-1]] for r in rows[1:]], np.float32)
    np.testing.assert_array_equal(values, np.load(npz)["samples"].reshape(20, 64))


def test_table_csv_uses_the_source_column_names(run_cli, runs, tmp_path) -> None:
    out, again = tmp_path / "t.csv", tmp_path / "t2.csv"
    assert run_cli("sample", runs["gmm"], "-n", "50", "-o", str(out), "--seed", "1")[0] == 0
    assert run_cli("sample", runs["gmm"], "-n", "50", "-o", str(again), "--seed", "1")[0] == 0
    assert out.read_bytes() == again.read_bytes()
    assert run_cli("sample", runs["gmm"], "-n", "50", "-o", str(again), "--seed", "2")[0] == 0
    assert out.read_bytes() != again.read_bytes()
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["height cm", "weight"] and len(rows) == 51
    values = np.array(rows[1:], dtype=np.float64)
    assert abs(values[:, 0].mean() - 5.0) < 1.0  # back in the table's units


@pytest.mark.parametrize(
    ("key", "args", "message"),
    [
        ("vae", ["--balanced"], "is not a conditional model: it takes no --balanced"),
        ("vae", ["--label", "1"], "is not a conditional model: it takes no --label"),
        ("cvae", ["--balanced", "-n", "7"], "-n must be a multiple of 10 (got 7; try -n 10)"),
        ("cvae", ["--label", "10"], "--label 10: "),
        ("cvae", ["--label", "1", "--balanced"], "either --label or --balanced, not both"),
        ("vae", ["-o", "x.txt"], "use .png, .npz or .csv"),
    ],
)
def test_refusals(run_cli, runs, tmp_path, key, args, message) -> None:
    args = [a if a != "x.txt" else str(tmp_path / a) for a in args]
    extra = ([] if "-n" in args else ["-n", "10"]) + ([] if "-o" in args else ["-o", "o.npz"])
    extra = [str(tmp_path / e) if e == "o.npz" else e for e in extra]
    code, _, err = run_cli("sample", runs[key], *extra, *args)
    assert code == 1
    assert message in " ".join(err.split()), err
