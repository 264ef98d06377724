"""`gencompile score`: per-example anomaly scores, the held-out threshold, refusals.

The mean of the held-out scores must be the held-out metric training wrote: exactly where
the score is exact (a mixture's NLL), within Monte Carlo error where it is an estimate (a
VAE's IWAE bound: the score gives every example the same importance draws, the metric each
example its own). A file holding the held-out examples in data units must score exactly as
the split does (the preprocessing is applied)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

TINY_VAE = """\
spec_version: 1
name: score-vae
seed: 3
data:
  source: {type: builtin, name: digits, classes: [0, 1, 2, 3, 4, 5, 6, 7, 8]}
  preprocessing: {scale: [0.0, 1.0]}
  batch_size: 256
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
training: {epochs: 1}
evaluation: {metrics: [iwae_nll], importance_samples: 4}
output: {samples: {count: 4, format: npz}}
"""

TINY_CVAE = TINY_VAE.replace("score-vae", "score-cvae").replace(
    "likelihood: {type: bernoulli}",
    "likelihood: {type: bernoulli}\n  conditional: {num_classes: 10}",
)

TINY_GMM = """\
spec_version: 1
name: score-gmm
seed: 2
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
  validation_split: 0.2
model:
  family: mixture
  components: 2
  covariance: full
  algorithm: {{type: em, max_iter: 20}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 4, format: npz}}}}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("score-runs")
    rows = np.random.default_rng(0).normal(size=(300, 2)) * [2.0, 0.5] + [10.0, -3.0]
    table = "a,b\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in rows) + "\n"
    (root / "table.csv").write_text(table)
    specs = {
        "vae": TINY_VAE,
        "cvae": TINY_CVAE,
        "gmm": TINY_GMM.format(path=root / "table.csv"),
    }
    done = {}
    for key, text in specs.items():
        (root / f"{key}.yaml").write_text(text)
        done[key] = train(root / f"{key}.yaml", run_dir=root / key, quiet=True).run_dir
    return done


def read_scores(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def metric(run: Path, name: str) -> float:
    return float(json.loads((run / "metrics.json").read_text())["metrics"][name])


@pytest.mark.parametrize(
    ("key", "name", "kind", "rel"),
    [("vae", "iwae_nll", "iwae_nll_nats", 0.02), ("gmm", "nll", "nll_nats", 1e-6)],
)
def test_mean_held_out_score_is_the_held_out_metric(
    run_cli, runs, tmp_path, key, name, kind, rel
) -> None:
    out = tmp_path / "h.csv"
    code, stdout, err = run_cli("score", str(runs[key]), "--split", "heldout", "-o", str(out))
    assert code == 0, err
    rows = read_scores(out)
    assert {r["score_kind"] for r in rows} == {kind}
    scores = np.array([float(r["score"]) for r in rows])
    assert scores.mean() == pytest.approx(metric(runs[key], name), rel=rel)
    said = " ".join(stdout.split())
    assert f"score: {kind}:" in stdout and "nats per example" in said
    # The tiny VAE's bernoulli likelihood of grey digits: a cross-entropy, as its metrics say.
    assert ("a Bernoulli cross-entropy, not a normalised likelihood" in said) == (key == "vae")


def test_a_file_in_data_units_scores_like_the_split(run_cli, runs, tmp_path) -> None:
    """The held-out rows written back in the table's units, as a CSV with its header."""
    from gencompile.generated import import_generated
    from gencompile.runtime.data import load_data

    run = runs["gmm"]
    module = import_generated(run, "score_gmm")
    data = load_data(module.DATA, seed=module.SEED)
    rows = data.preprocessor.inverse(np.asarray(data.x_val))
    table = tmp_path / "rows.csv"
    table.write_text("a,b\n" + "\n".join(f"{a:.9g},{b:.9g}" for a, b in rows.tolist()) + "\n")
    split, given = tmp_path / "split.csv", tmp_path / "given.csv"
    assert run_cli("score", str(run), "--split", "heldout", "-o", str(split))[0] == 0
    code, _, err = run_cli("score", str(run), "--input", str(table), "-o", str(given))
    assert code == 0, err
    expected = np.array([float(r["score"]) for r in read_scores(split)])
    found = np.array([float(r["score"]) for r in read_scores(given)])
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-5)
    far = tmp_path / "far.csv"  # a point 40 spreads away from the data is flagged
    far.write_text("a,b\n10.0,-3.0\n90.0,-3.0\n")
    assert run_cli("score", str(run), "--input", str(far), "-o", str(given))[0] == 0
    assert [r["flag"] for r in read_scores(given)] == ["0", "1"]


def test_threshold_is_the_quantile_of_held_out_scores(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "q.csv"
    args = ["score", str(runs["vae"]), "--split", "heldout", "-o", str(out)]
    code, stdout, _ = run_cli(*args, "--threshold-quantile", "0.8")
    assert code == 0
    rows = read_scores(out)
    scores = np.array([float(r["score"]) for r in rows])
    threshold = np.quantile(scores, 0.8)
    flags = np.array([int(r["flag"]) for r in rows])
    np.testing.assert_array_equal(flags, (scores > threshold).astype(int))
    assert f"{flags.sum()} of {len(rows)} flagged" in stdout
    assert f"threshold {threshold:.6g} (quantile 0.8" in stdout
    assert {r["label"] for r in rows} <= {str(c) for c in range(9)}  # classes 0-8 alone


def test_held_out_scores_that_are_not_finite_stop_with_advice(
    run_cli, runs, tmp_path, monkeypatch
) -> None:
    """The threshold is a quantile of the held-out scores: one NaN among them makes it NaN,
    which flags nothing ("0 flagged"). It stops instead, before anything is written."""
    from gencompile.runtime import scores

    real_scorer = scores.scorer

    def scorer_with_a_nan(*args, **kwargs):
        kind, compute = real_scorer(*args, **kwargs)
        calls = []

        def compute_with_a_nan(x, y):
            values = np.array(compute(x, y), dtype=np.float64)
            if not calls:  # the first call scores the held-out split
                values[3] = np.nan
            calls.append(len(values))
            return values

        return kind, compute_with_a_nan

    monkeypatch.setattr(scores, "scorer", scorer_with_a_nan)
    table, out = tmp_path / "rows.csv", tmp_path / "s.csv"
    table.write_text("a,b\n10.0,-3.0\n90.0,-3.0\n")
    code, stdout, err = run_cli("score", str(runs["gmm"]), "--input", str(table), "-o", str(out))
    assert code == 1 and not out.exists()
    said = " ".join((stdout + err).split())
    assert "held-out example 3 is not finite" in said
    assert "no threshold can be set" in said and "retrain" in said
    assert "flagged" not in said


def test_nines_from_an_npy_file_are_scored(run_cli, runs, tmp_path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    nines = tmp_path / "nines.npy"
    np.save(nines, digits.images[digits.target == 9])
    out = tmp_path / "n.csv"
    code, _, err = run_cli("score", str(runs["vae"]), "--input", str(nines), "-o", str(out))
    assert code == 0, err
    rows = read_scores(out)
    assert len(rows) == 180 and "label" not in rows[0]
    assert np.isfinite([float(r["score"]) for r in rows]).all()


def test_values_outside_the_likelihoods_support_score_inf_and_are_flagged(
    run_cli, runs, tmp_path
) -> None:
    """A bernoulli likelihood gives values outside [0, 1] (model units; 0..16 for digits)
    probability 0: -log p is +inf. Its cross-entropy formula would give -3788 nats to an
    all -100 image, the most "normal" of all. The rows inside score as they do alone."""
    from sklearn.datasets import load_digits

    digits = load_digits().data[:3]
    far = np.stack([np.full(64, -5.0), np.full(64, -100.0), np.full(64, 40.0), -digits[0]])
    inside, mixed = tmp_path / "inside.npy", tmp_path / "mixed.npy"
    np.save(inside, digits)
    np.save(mixed, np.concatenate([far[:2], digits[:1], far[2:], digits[1:]]))
    alone, out = tmp_path / "alone.csv", tmp_path / "mixed.csv"
    assert run_cli("score", str(runs["vae"]), "--input", str(inside), "-o", str(alone))[0] == 0
    code, stdout, err = run_cli("score", str(runs["vae"]), "--input", str(mixed), "-o", str(out))
    assert code == 0, err
    rows = read_scores(out)
    outside = [0, 1, 3, 4]
    assert [rows[i]["score"] for i in outside] == ["inf"] * 4
    assert [rows[i]["flag"] for i in outside] == ["1"] * 4
    assert [rows[i]["score"] for i in (2, 5, 6)] == [r["score"] for r in read_scores(alone)]
    said = " ".join(err.split())
    assert "4 of 7 example(s) outside the data's support" in said
    why = "a bernoulli likelihood gives values outside [0, 1] probability 0"
    assert f"{why} (the model's units; 0..16 in the data's)" in said
    assert "scored inf and flagged" in said and "4 of 7 flagged" in " ".join(stdout.split())
    assert "the first is example 0; a gaussian likelihood" in said  # images: no feature names
    assert "held-out example(s) outside" not in said  # the digits' held-out split is inside


def test_a_conditional_model_scores_with_labels(run_cli, runs, tmp_path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    given, bare = tmp_path / "l.npz", tmp_path / "x.npy"
    np.savez(given, x=digits.images[:20], labels=digits.target[:20])
    np.save(bare, digits.images[:20])
    out = tmp_path / "c.csv"
    code, _, err = run_cli("score", str(runs["cvae"]), "--input", str(given), "-o", str(out))
    assert code == 0, err
    assert [int(r["label"]) for r in read_scores(out)] == digits.target[:20].tolist()
    code, _, err = run_cli("score", str(runs["cvae"]), "--input", str(bare), "-o", str(out))
    assert code == 1
    assert "a conditional model scores an example with its class; give labels" in err
    np.savez(given, x=digits.images[:2], labels=[3, 10])
    code, _, err = run_cli("score", str(runs["cvae"]), "--input", str(given), "-o", str(out))
    assert code == 1
    assert "labels must be 2 class indices in 0..9" in " ".join(err.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "either --input FILE or --split heldout"),
        (["--split", "train"], "only the held-out split is scored"),
        (["--split", "heldout", "--threshold-quantile", "1.5"], "must be in (0, 1]"),
        (
            ["--input", "WRONG_SHAPE"],
            "read as 3 example(s) of shape (5,); one example of this model has shape (8, 8, 1)",
        ),
        (["--input", "ONE"], "a single example needs a leading batch axis: shape (1, 8, 8, 1)"),
        (["--input", "HOLE"], "is empty: every value is needed to score a row"),
        (["--input", "TEXT"], "cannot read .txt"),
        (["--input", "HELLO.npy"], "hello.npy: not a numeric .npy file (it starts with neither"),
        (["--input", "OBJECTS.npy"], "objects.npy: not a numeric .npy file (it holds Python obj"),
        (["--input", "HELLO.npz"], "hello.npz: not a numeric .npz file (it starts with neither"),
        (["--input", "OBJECTS.npz"], "objects.npz: not a numeric .npz file (it holds Python obj"),
        (["--input", "CUT.npy"], "cut.npy: not a numeric .npy file (numpy cannot read it"),
        (["--input", "HELLO.png"], "hello.png: not an image file PIL can read (cannot identify"),
    ],
)
def test_refusals(run_cli, runs, tmp_path, args, message) -> None:
    np.save(tmp_path / "shape.npy", np.ones((3, 5)))
    (tmp_path / "hole.csv").write_text("x0,x1\n1,\n")
    (tmp_path / "t.txt").write_text("1,2\n")
    np.save(tmp_path / "one.npy", np.ones((8, 8, 1)))  # one example, no batch axis
    for suffix in ("npy", "npz", "png"):  # not numpy files (or images) at all; Python objects
        (tmp_path / f"hello.{suffix}").write_text("hello\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "shape.npy").read_bytes()[:140])
    files = {"WRONG_SHAPE": "shape.npy", "HOLE": "hole.csv", "TEXT": "t.txt", "ONE": "one.npy"}
    named = ("HELLO.npy", "OBJECTS.npy", "HELLO.npz", "OBJECTS.npz", "HELLO.png")
    files |= {n: n.lower() for n in named}
    files["CUT.npy"] = "cut.npy"
    args = [str(tmp_path / files[a]) if a in files else a for a in args]
    run = str(runs["vae"])
    code, _, err = run_cli("score", run, *args, "-o", str(tmp_path / "o.csv"))
    assert code == (1 if "--input" in args else 2)  # a file that fails; a bad command line
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "o.csv").exists()


def test_an_output_that_is_an_input_is_refused(run_cli, runs, tmp_path, monkeypatch) -> None:
    """-o naming the --input file (another spelling of it, or a link to it) is refused
    before anything is read or written: the data stays as it was."""
    table = tmp_path / "rows.csv"
    table.write_text("a,b\n10.0,-3.0\n11.0,\n")
    before = table.read_bytes()
    (tmp_path / "link.csv").symlink_to(table)
    monkeypatch.chdir(tmp_path)
    run = str(runs["gmm"])
    for command, given, out in [
        ("score", "rows.csv", str(table)),
        ("score", str(table), "link.csv"),
        ("impute", "./rows.csv", "rows.csv"),
    ]:
        code, _, err = run_cli(command, run, "--input", given, "-o", out)
        said = " ".join(err.split())
        assert code == 1, err
        named = f"-o {Path(out)} is the file given as --input ({Path(given)})"
        assert f"{named}: writing it would replace what is being read" in said
        assert table.read_bytes() == before
    code, _, err = run_cli("impute", run, "--input", "rows.csv", "-o", "filled.csv")
    assert code == 0, err  # another file is fine
    assert table.read_bytes() == before


def test_an_image_file_is_read_in_the_datas_units(run_cli, runs, tmp_path) -> None:
    """A sample written as a PNG (`sample -o DIR/`) scores as the same sample written as
    arrays, up to the PNG's 8-bit rounding: its pixels map back from 0..255 to the digits'
    0..16, as the folder mapped them. An image for a model of rows is refused."""
    from PIL import Image

    run = str(runs["vae"])
    folder, npz = tmp_path / "png", tmp_path / "s.npz"
    draw = ["-n", "2", "--seed", "5"]
    assert run_cli("sample", run, *draw, "-o", f"{folder}/")[0] == 0
    assert run_cli("sample", run, *draw, "-o", str(npz))[0] == 0
    with Image.open(folder / "000001.png") as image:
        pixels = np.asarray(image, np.float64)
    as_drawn, as_pixels = tmp_path / "drawn.npy", tmp_path / "pixels.npy"
    np.save(as_drawn, np.load(npz)["samples"][:1])
    np.save(as_pixels, pixels[None, :, :, None] * (16.0 / 255.0))

    def scored(given: Path) -> float:
        out = tmp_path / f"{given.stem}.csv"
        code, _, err = run_cli("score", run, "--input", str(given), "-o", str(out))
        assert code == 0, err
        return float(read_scores(out)[0]["score"])

    png = scored(folder / "000001.png")
    assert png == pytest.approx(scored(as_pixels), rel=1e-6)  # pixel p is p * 16 / 255
    assert png == pytest.approx(scored(as_drawn), rel=5e-3)  # 8-bit rounding of the sample
    out = tmp_path / "rows.csv"
    code, _, err = run_cli(
        "score", str(runs["gmm"]), "--input", str(folder / "000001.png"), "-o", str(out)
    )
    assert code == 1
    assert "an image file, but the model was trained on rows of 2 values, not images" in err


IMAGE_FOLDER_VAE = """\
spec_version: 1
name: score-folder
seed: 1
data:
  source: {{type: images, dir: {folder}, size: [8, 8], color: grayscale}}
  preprocessing: {{scale: [0.0, 1.0]}}
  validation_split: 0.25
  batch_size: 16
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: gaussian, sigma: learned}}
training: {{epochs: 1}}
evaluation: {{metrics: [], importance_samples: 2}}
output: {{samples: {{count: 4, format: npz}}}}
"""


def test_an_image_folders_pixels_are_its_own_units(run_cli, tmp_path) -> None:
    """Trained on PNG files whose pixels span only 40..200: a PNG's pixels are the data's
    own values both ways, so a training file scores as its pixels do, and `sample -o DIR/`
    writes the samples' values as pixels (not stretched to the training range)."""
    from PIL import Image

    from gencompile.runs import train

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        pixels = rng.integers(40, 201, size=(8, 8)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    spec = tmp_path / "folder.yaml"
    spec.write_text(IMAGE_FOLDER_VAE.format(folder=folder))
    run = str(train(spec, run_dir=tmp_path / "run", quiet=True).run_dir)
    with Image.open(folder / "007.png") as image:
        as_values = tmp_path / "values.npy"
        np.save(as_values, np.asarray(image, np.float64)[None, :, :, None])
    outs = [tmp_path / "png.csv", tmp_path / "npy.csv"]
    for given, out in zip([folder / "007.png", as_values], outs, strict=True):
        code, _, err = run_cli("score", run, "--input", str(given), "-o", str(out))
        assert code == 0, err
    png, npy = (float(read_scores(out)[0]["score"]) for out in outs)
    assert png == pytest.approx(npy, rel=1e-6)
    draw = ["-n", "3", "--seed", "4"]
    assert run_cli("sample", run, *draw, "-o", f"{tmp_path / 'drawn'}/")[0] == 0
    assert run_cli("sample", run, *draw, "-o", str(tmp_path / "drawn.npz"))[0] == 0
    samples = np.load(tmp_path / "drawn.npz")["samples"][..., 0]
    with Image.open(tmp_path / "drawn" / "000002.png") as image:
        written = np.asarray(image, np.float64)
    np.testing.assert_array_equal(written, np.rint(np.clip(samples[1], 0, 255)))


def test_a_16_bit_image_scores_as_its_folder_reads_it(run_cli, tmp_path) -> None:
    """A 16-bit PNG (written by Pillow) is read by `score --input` as an `images` folder
    reads it, v >> 8 (TensorFlow's uint16 -> uint8): the file scores as those values do,
    and a float image is refused in one line that names the file and what to do."""
    from PIL import Image

    from gencompile.runs import train

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        pixels = rng.integers(40 * 256, 201 * 256, size=(8, 8)).astype(np.uint16)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    spec = tmp_path / "folder.yaml"
    spec.write_text(IMAGE_FOLDER_VAE.format(folder=folder))
    run = str(train(spec, run_dir=tmp_path / "run", quiet=True).run_dir)
    with Image.open(folder / "007.png") as image:
        assert image.mode == "I;16"
        as_values = tmp_path / "values.npy"
        np.save(as_values, (np.asarray(image) >> 8).astype(np.float64)[None, :, :, None])
    outs = [tmp_path / "png.csv", tmp_path / "npy.csv"]
    for given, out in zip([folder / "007.png", as_values], outs, strict=True):
        code, _, err = run_cli("score", run, "--input", str(given), "-o", str(out))
        assert code == 0, err
    png, npy = (float(read_scores(out)[0]["score"]) for out in outs)
    assert png == pytest.approx(npy, rel=1e-6)
    floats = tmp_path / "f.tif"
    Image.fromarray(np.ones((8, 8), np.float32)).save(floats)
    code, _, err = run_cli("score", run, "--input", str(floats), "-o", str(outs[0]))
    assert (code, err) == (
        1,
        f"error: cannot read image {floats}: its pixels are floats (PIL mode F) with no fixed "
        "range to map to 0..255; save it as 8- or 16-bit, or give its values as .npy\n",
    )


def test_a_language_model_refuses_any_input_file_before_reading_it(run_cli, tmp_path) -> None:
    """The family decides, not the file's format: no --input would do, so none is suggested."""
    from gencompile import build, load_spec

    root = Path(__file__).resolve().parents[1]
    built = build(load_spec(root / "specs" / "charlm_arithmetic.yaml"), tmp_path / "lm").directory
    (tmp_path / "corpus.txt").write_text("12+7=19\n")
    for given in ("corpus.txt", "missing.npy"):
        out = tmp_path / "x.csv"
        code, _, err = run_cli(
            "score", str(built), "--input", str(tmp_path / given), "-o", str(out)
        )
        said = " ".join(err.split())
        assert code == 2, err
        assert (
            "a language model is scored on its own held-out text windows: use --split heldout"
            in said
        )
        assert "cannot read" not in said and "not found" not in said and not out.exists()


VECTOR_BERNOULLI = """\
spec_version: 1
name: score-vec
seed: 5
data:
  source: {{type: npy, path: {path}}}
  validation_split: 0.25
  preprocessing: {{scale: [0, 1]}}
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: bernoulli}}
training: {{epochs: 1}}
evaluation: {{metrics: [iwae_nll], importance_samples: 4}}
output: {{samples: {{count: 4, format: npz}}}}
"""


def test_held_out_rows_beyond_the_training_range_leave_the_threshold_finite(
    run_cli, tmp_path
) -> None:
    """A vector's `scale` is fitted on the training split: two held-out rows beyond its range
    are outside the bernoulli's [0, 1] (inf, flagged, named with their features). They
    used to make the 0.99 quantile inf (flagging nothing inside); the threshold is the
    quantile of the 98 inside, also where numpy's index lands exactly on the last of them."""
    from gencompile.runs import train
    from gencompile.runtime.pipeline import split_indices

    x = np.random.default_rng(1).uniform(size=(400, 4)).astype(np.float32)
    trained, held = split_indices(400, 0.25, 5)
    x[trained[0]], x[trained[1]] = 0.0, 1.0  # the training range: [0, 1] for every feature
    x[held[3], 1], x[held[7], 2] = 3.0, -2.0
    np.save(tmp_path / "vec.npy", x)
    (tmp_path / "vec.yaml").write_text(VECTOR_BERNOULLI.format(path=tmp_path / "vec.npy"))
    run = train(tmp_path / "vec.yaml", run_dir=tmp_path / "run", quiet=True).run_dir
    for quantile in ("0.99", str(97 / 99)):  # (100 - 1) * 97/99 = 97: the last finite one
        out = tmp_path / "h.csv"
        code, stdout, err = run_cli(
            "score", str(run), "--split", "heldout", "--threshold-quantile", quantile,
            "-o", str(out),
        )  # fmt: skip
        assert code == 0, err
        scores = np.array([float(r["score"]) for r in read_scores(out)])
        flags = np.array([r["flag"] == "1" for r in read_scores(out)])
        outside = ~np.isfinite(scores)
        assert outside.sum() == 2 and flags[outside].all()
        threshold = float(np.quantile(scores[~outside], float(quantile)))
        said, printed = " ".join(err.split()), " ".join(stdout.split())
        assert f"threshold {threshold:.6g} (quantile {float(quantile):g} of the 98 held-out" in (
            printed
        )
        np.testing.assert_array_equal(flags[~outside], scores[~outside] > threshold)
        assert "2 of 100 held-out example(s) outside the data's support" in said
        assert "left out of the threshold" in said
        assert "feature(s) x1, x2 lie beyond the training split's range (x1: " in said
        assert "a gaussian likelihood (model.likelihood: {type: gaussian})" in said
