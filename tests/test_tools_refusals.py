"""What `latent`, `score` and `impute` refuse in one line, with what to do, where they used
to write a wrong file, crash with a traceback or say only a parser's message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GMM = """\
spec_version: 1
name: tools-gmm
seed: 2
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
  validation_split: 0.2
model:
  family: mixture
  components: 3
  covariance: diag
  algorithm: {{type: em, max_iter: 5}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 4, format: npz}}}}
"""

# A conditional VAE on a table whose class column is literally named `label` (class names).
CVAE = """\
spec_version: 1
name: tools-cvae
seed: 1
data:
  source: {{type: csv, path: {path}, label_column: label}}
  validation_split: 0.2
  preprocessing: {{standardize: true}}
  batch_size: 64
model:
  family: vae
  conditional: {{num_classes: 2}}
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: gaussian}}
training: {{epochs: 1, steps_per_epoch: 2}}
evaluation: {{metrics: [elbo]}}
output: {{samples: {{count: 4, format: npz}}, report: {{latent_pictures: false}}}}
"""


def trained(root: Path, spec: str, table: str) -> tuple[str, Path]:
    from gencompile.runs import train

    (root / "t.csv").write_text(table)
    (root / "spec.yaml").write_text(spec.format(path=root / "t.csv"))
    return str(train(root / "spec.yaml", run_dir=root / "run", quiet=True).run_dir), root / "t.csv"


@pytest.fixture(scope="module")
def gmm(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    rows = np.random.default_rng(0).normal(size=(200, 2))
    table = "a,b\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in rows)
    return trained(tmp_path_factory.mktemp("tools-gmm"), GMM, table)


@pytest.fixture(scope="module")
def cvae(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    rows = np.random.default_rng(1).normal(size=(200, 2))
    table = "a,b,label\n" + "".join(
        f"{a:.5f},{b:.5f},{'pos' if a > 0 else 'neg'}\n" for a, b in rows
    )
    return trained(tmp_path_factory.mktemp("tools-cvae"), CVAE, table)


def said(err: str) -> str:
    return " ".join(err.split())


# ------------------------------------------------------------------ A: traverse --range


@pytest.mark.parametrize("given", [["0", "inf"], ["-inf", "3"], ["nan", "3"], ["0", "nan"]])
def test_a_non_finite_range_is_refused_as_such(run_cli, tmp_path: Path, given: list[str]) -> None:
    """Before: `0 inf` wrote NaN samples with exit 0; `nan 3` was 'below the second'."""
    out = tmp_path / "t.npz"
    code, _, err = run_cli("latent", str(tmp_path), "traverse", "--range", *given, "-o", str(out))
    assert code == 2
    assert said(err) == f"error: --range {' '.join(given)}: give finite numbers, such as -3 3"
    assert not out.exists()


# ------------------------------------------------------------------ C: -o of score, impute


@pytest.mark.parametrize("name", ["s.npz", "s.parquet", "s.png", "s"])
@pytest.mark.parametrize("command", ["score", "impute"])
def test_an_output_that_is_not_csv_is_refused(
    run_cli, gmm, tmp_path: Path, command: str, name: str
) -> None:
    """Before: CSV text was written under any name (`np.load('s.npz')` then failed)."""
    run, table = gmm
    out = tmp_path / name
    code, _, err = run_cli(command, run, "--input", str(table), "-o", str(out))
    assert code == 2
    assert said(err) == (f"error: -o {out}: {command} writes a CSV table; name it .csv, e.g. s.csv")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ D: impute --input


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_impute_given_arrays_or_parquet_says_it_reads_csv(
    run_cli, gmm, tmp_path: Path, suffix: str
) -> None:
    """Before: `not UTF-8 text: 'utf-8' codec can't decode byte 0x93 ...`, no way forward."""
    run, _ = gmm
    given = tmp_path / f"rows{suffix}"
    given.write_bytes(b"\x93NUMPY\x01\x00" + bytes(range(128, 256)))
    code, _, err = run_cli("impute", run, "--input", str(given), "-o", str(tmp_path / "f.csv"))
    assert code == 1
    assert said(err) == (
        f"error: --input {given}: a {suffix} file is not a CSV table; give the rows as a CSV "
        "file (a header row naming the features; for impute, empty cells to fill)"
    )


def test_a_csv_that_is_not_utf8_says_what_to_give(run_cli, gmm, tmp_path: Path) -> None:
    run, _ = gmm
    given = tmp_path / "rows.csv"
    given.write_bytes(b"a,b\n\xff,1\n")
    code, _, err = run_cli("impute", run, "--input", str(given), "-o", str(tmp_path / "f.csv"))
    assert code == 1
    assert said(err) == (  # as the training reader says it
        f"error: --input: {given} line 2 is not UTF-8 text (byte 0xff at byte 4); save it as "
        "UTF-8 (in Excel: CSV UTF-8)"
    )


# ------------------------------------------------------------------ G: mixture interpolate


def test_a_mixture_with_unequal_component_lists_is_one_line(run_cli, gmm, tmp_path: Path) -> None:
    """Before: numpy's 'shape mismatch' traceback."""
    run, _ = gmm
    out = tmp_path / "x.npz"
    code, _, err = run_cli(
        "latent", run, "interpolate", "--from", "0,1,2", "--to", "1,2", "-o", str(out)
    )
    assert code == 2
    assert said(err) == "error: --from gives 3 components and --to 2: give as many, or one"
    assert not out.exists()
    code, _, err = run_cli(
        "latent", run, "interpolate", "--from", "0", "--to", "1,2", "-o", str(out)
    )
    assert code == 0, err  # one end for every path: still allowed
    assert np.load(out)["samples"].shape[:2] == (2, 8)


def test_a_label_on_an_unconditional_mixture_is_refused(run_cli, gmm, tmp_path: Path) -> None:
    """Before: ignored, exit 0."""
    run, _ = gmm
    out = tmp_path / "x.npz"
    code, _, err = run_cli(
        "latent", run, "interpolate", "--from", "0", "--to", "1", "--label", "3", "-o", str(out)
    )
    assert code == 2
    assert said(err) == f"error: {run} is not a conditional model: it takes no --label"
    assert not out.exists()


# ------------------------------------------------------------------ E: a conditional VAE


def test_impute_refuses_a_conditional_vae_before_loading_it(
    run_cli, cvae, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: refused before TensorFlow starts. Before: after the model and data loaded."""
    import gencompile.imputation as imputation

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(imputation, "load_trained_model", never)
    run, _ = cvae
    given = tmp_path / "gaps.csv"
    given.write_text("a,b\n1.0,\n")
    code, _, err = run_cli("impute", run, "--input", str(given), "-o", str(tmp_path / "f.csv"))
    assert code == 2
    assert said(err) == (
        f"error: {run} holds a conditional VAE: it needs each row's class, which an "
        "imputation CSV does not carry; impute with an unconditional model"
    )


# ------------------------------------------------------------------ F: `label` of names


def test_a_label_column_named_label_holding_class_names_gets_the_advice(
    run_cli, cvae, tmp_path: Path
) -> None:
    """Before: `'neg' is not a number`, no way forward."""
    run, table = cvae
    given = tmp_path / "head.csv"
    given.write_text("\n".join(table.read_text().splitlines()[:20]) + "\n")
    code, _, err = run_cli("score", run, "--input", str(given), "-o", str(tmp_path / "s.csv"))
    assert code == 1
    assert said(err) == (
        f"error: {given}, column 3 ('label') holds class names, as the run's source does; "
        "give each row's class there as its class index (the position of its class name "
        "among the training data's class names, sorted)"
    )
    names = sorted({line.split(",")[2] for line in table.read_text().splitlines()[1:]})
    rows = [line.rsplit(",", 1) for line in given.read_text().splitlines()[1:]]
    given.write_text("a,b,label\n" + "".join(f"{r},{names.index(c)}\n" for r, c in rows))
    code, _, err = run_cli("score", run, "--input", str(given), "-o", str(tmp_path / "s.csv"))
    assert code == 0, err  # the same rows with class indices are scored
