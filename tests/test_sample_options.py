"""`gencompile sample --seed/--balanced/--temperature` into .npz, .csv, .parquet and image
folders: reproducible bytes, saved labels, column names, round trips, and refusals."""

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
def runs(tmp_path_factory: pytest.TempPathFactory, trained_vae: Path) -> dict[str, str]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("sample-runs")
    (root / "cvae.yaml").write_text(TINY_CVAE)
    rows = np.random.default_rng(0).normal(size=(200, 2)) * [1.0, 3.0] + [5.0, -1.0]
    table = "height cm,weight\n" + "\n".join(f"{a:.4f},{b:.4f}" for a, b in rows) + "\n"
    (root / "table.csv").write_text(table)
    (root / "gmm.yaml").write_text(TINY_GMM_CSV.format(path=root / "table.csv"))
    specs = {"cvae": root / "cvae.yaml", "gmm": root / "gmm.yaml"}
    done = {
        key: str(train(spec, epochs=1, run_dir=root / key, quiet=True).run_dir)
        for key, spec in specs.items()
    }
    return {"vae": str(trained_vae), **done}  # the session's one-epoch TINY_VAE run


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
        ("vae", ["-o", "x.txt"], "use .png, .npz, .csv or .parquet, or a folder of images"),
    ],
)
def test_refusals(run_cli, runs, tmp_path, key, args, message) -> None:
    args = [a if a != "x.txt" else str(tmp_path / a) for a in args]
    extra = ([] if "-n" in args else ["-n", "10"]) + ([] if "-o" in args else ["-o", "o.npz"])
    extra = [str(tmp_path / e) if e == "o.npz" else e for e in extra]
    code, _, err = run_cli("sample", runs[key], *extra, *args)
    assert code == 2
    assert message in " ".join(err.split()), err


@pytest.mark.parametrize("seed", ["-3", "2147483648", "4294967296"])
@pytest.mark.parametrize(
    "command",
    [["sample", "-n", "2"], ["latent", "RUN", "interpolate", "--random"], ["impute"]],
    ids=["sample", "latent", "impute"],
)
def test_a_seed_outside_0_to_seed_max_is_a_usage_error(
    run_cli, runs, tmp_path, command, seed
) -> None:
    """One range for every command's --seed and for /sample's: a spec's seed range."""
    from gencompile.sample_options import SEED_MAX

    assert SEED_MAX == 2**31 - 1
    run = runs["vae"]
    args = [run if a == "RUN" else a for a in command]
    args = args if "RUN" in command else [args[0], run, *args[1:]]
    if command[0] == "impute":
        args += ["--input", str(tmp_path / "rows.csv")]
    code, _, err = run_cli(*args, "--seed", seed, "-o", str(tmp_path / "o.npz"))
    assert code == 2 and "Traceback" not in err and err.startswith("error: ")
    assert err.count("\n") == 1, err  # one line, never a boxed usage error
    assert "--seed" in err and ("2147483647" in err or "greater than or equal to 0" in err)


def test_the_largest_seed_draws(run_cli, runs, tmp_path) -> None:
    from gencompile.sample_options import SEED_MAX
    from gencompile.sampling import sample

    out = tmp_path / "top.npz"
    code, _, err = run_cli(
        "sample", runs["vae"], "-n", "2", "--seed", str(SEED_MAX), "-o", str(out)
    )
    assert code == 0, err
    with pytest.raises(Exception, match=f"--seed -1: a seed is an integer in 0..{SEED_MAX}"):
        sample(runs["vae"], 2, tmp_path / "neg.npz", seed=-1)  # the library refuses it too


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_parquet_round_trip_keeps_column_names_and_values(run_cli, runs, tmp_path) -> None:
    import pyarrow.parquet as pq

    table, again, rows = tmp_path / "t.parquet", tmp_path / "t2.parquet", tmp_path / "t.csv"
    for path in (table, again, rows):
        code, _, err = run_cli("sample", runs["gmm"], "-n", "40", "-o", str(path), "--seed", "4")
        assert code == 0, err
    assert table.read_bytes() == again.read_bytes()
    read = pq.read_table(table)
    assert read.column_names == ["height cm", "weight"] and read.num_rows == 40
    assert str(read.schema.field("weight").type) == "float"
    from_csv = np.array(list(csv.reader(rows.open()))[1:], dtype=np.float32)
    np.testing.assert_array_equal(np.column_stack(list(read.to_pydict().values())), from_csv)


def test_parquet_writer_saves_labels_as_an_int_column(tmp_path) -> None:
    import pyarrow.parquet as pq

    from gencompile.sample_files import write_parquet_stream

    chunks = iter([np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((2, 2), np.float32)])
    labels = np.array([4, 0, 2, 2, 1], np.int32)
    out = write_parquet_stream(tmp_path / "l.parquet", ["a", "b"], chunks, labels)
    read = pq.read_table(out).to_pydict()
    assert list(read) == ["a", "b", "label"]
    assert read["label"] == [4, 0, 2, 2, 1] and read["a"] == [0.0, 2.0, 4.0, 1.0, 1.0]


def test_image_folder_loads_back_with_counts_and_labels(run_cli, runs, tmp_path) -> None:
    import keras

    folder, npz = tmp_path / "digits", tmp_path / "digits.npz"
    args = ["-n", "20", "--balanced", "--seed", "2"]
    code, _, err = run_cli("sample", runs["cvae"], *args, "-o", f"{folder}/")
    assert code == 0, err
    assert run_cli("sample", runs["cvae"], *args, "-o", str(npz))[0] == 0
    assert (folder / "3" / "000007.png").is_file()  # sample 7 of 20, two per class
    loaded = keras.utils.image_dataset_from_directory(
        folder, color_mode="grayscale", image_size=(8, 8), shuffle=False, batch_size=64
    )
    assert loaded.class_names == [str(k) for k in range(10)]
    images, labels = next(iter(loaded))
    np.testing.assert_array_equal(labels.numpy(), np.repeat(np.arange(10), 2))
    # Pixels are the samples mapped from the digits' range 0..16 to 0..255.
    expected = np.rint(np.clip(np.load(npz)["samples"] / 16.0, 0, 1) * 255)
    np.testing.assert_array_equal(images.numpy(), expected)
    again = tmp_path / "again"
    assert run_cli("sample", runs["cvae"], *args, "-o", f"{again}/")[0] == 0
    assert _files(again) == _files(folder)


def test_unconditional_image_folder_is_flat(run_cli, runs, tmp_path) -> None:
    import keras

    folder = tmp_path / "flat"
    folder.mkdir()  # an existing, empty folder needs no trailing slash
    assert run_cli("sample", runs["vae"], "-n", "5", "-o", str(folder))[0] == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"00000{i}.png" for i in range(1, 6)]
    loaded = keras.utils.image_dataset_from_directory(
        folder, labels=None, color_mode="grayscale", image_size=(8, 8), shuffle=False
    )
    assert next(iter(loaded)).shape == (5, 8, 8, 1)


def test_vae_temperature_changes_samples_reproducibly(run_cli, runs, tmp_path) -> None:
    paths = {name: tmp_path / f"{name}.npz" for name in ("plain", "cool", "cool2", "warm")}
    extra = {"plain": [], "cool": ["0.5"], "cool2": ["0.5"], "warm": ["2.0"]}
    for name, path in paths.items():
        temperature = ["--temperature", *extra[name]] if extra[name] else []
        code, _, err = run_cli("sample", runs["vae"], "-n", "64", "-o", str(path), *temperature)
        assert code == 0, err
    assert paths["cool"].read_bytes() == paths["cool2"].read_bytes()
    spread = {k: np.load(p)["samples"].std(axis=0).mean() for k, p in paths.items()}
    assert spread["cool"] < spread["plain"] < spread["warm"]


def test_vae_temperature_near_zero_decodes_the_prior_mean(run_cli, runs, tmp_path) -> None:
    from gencompile.generated import load_trained_model, verified_lock
    from gencompile.runtime.preprocessing import Preprocessor

    out = tmp_path / "cold.npz"
    code, _, err = run_cli(
        "sample", runs["vae"], "-n", "6", "-o", str(out), "--temperature", "1e-6"
    )
    assert code == 0, err
    model, _ = load_trained_model(Path(runs["vae"]))
    decoded = np.asarray(model.likelihood.mean(model.decode(np.zeros((1, 2), np.float32))))
    statistics = verified_lock(Path(runs["vae"]), False)["data_statistics"]
    expected = Preprocessor.from_dict(statistics).inverse(decoded)
    samples = np.load(out)["samples"]
    np.testing.assert_allclose(samples, np.repeat(expected, 6, axis=0), atol=1e-3)


def test_mixture_temperature_near_zero_draws_component_means(run_cli, runs, tmp_path) -> None:
    out, plain = tmp_path / "cold.csv", tmp_path / "plain.csv"
    assert (
        run_cli("sample", runs["gmm"], "-n", "200", "-o", str(out), "--temperature", "1e-6")[0] == 0
    )
    assert run_cli("sample", runs["gmm"], "-n", "200", "-o", str(plain))[0] == 0
    cold = np.array(list(csv.reader(out.open()))[1:], dtype=np.float64)
    warm = np.array(list(csv.reader(plain.open()))[1:], dtype=np.float64)
    # Two components, two points: the rows split into two groups, each of one value.
    upper = cold[:, 1] > cold[:, 1].mean()
    assert 0 < upper.sum() < len(cold)
    assert max(np.ptp(cold[upper], axis=0).max(), np.ptp(cold[~upper], axis=0).max()) < 1e-3
    assert np.ptp(warm[warm[:, 1] > warm[:, 1].mean()], axis=0).min() > 0.1


@pytest.mark.parametrize(
    ("key", "output", "message", "exit_code"),
    [  # 2: a format the run cannot be written as (bad arguments); 1: a folder in the way
        ("gmm", "rows/", "writes one image file per sample, but", 2),
        ("cvae", "x.parquet", "a .parquet file holds a table, but", 2),
        ("vae", "full/", "already holds files; give a new or empty folder", 1),
        ("vae", "x.json", "use .png, .npz, .csv or .parquet, or a folder of images (-o ", 2),
    ],
)
def test_output_refusals(run_cli, runs, tmp_path, key, output, message, exit_code) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = run_cli("sample", runs[key], "-n", "4", "-o", f"{tmp_path}/{output}")
    assert code == exit_code
    assert message in " ".join(err.split()), err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*partial*"))
