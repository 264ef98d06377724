"""Hostile sample sizes, output paths and imputation inputs for `sample` and `impute`.

Each case asserts the exit code, a one-line message, and that nothing but the intended
output changed in the working folder (the shared runs are read-only).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

MIXTURE = """\
spec_version: 1
name: tiny-gmm
seed: 3
data:
  source: {{type: csv, path: {csv}}}
  preprocessing: {{standardize: true}}
  batch_size: 128
model:
  family: mixture
  components: 2
  covariance: full
  algorithm: {{type: em, max_iter: 3, tol: 0.0, init: kmeans}}
"""
COLUMNS = ("height", "width", "depth")


def write_table(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.normal(0, 1, (150, 3)), rng.normal(5, 1, (150, 3))])
    lines = [",".join(COLUMNS)] + [",".join(f"{v:.4f}" for v in row) for row in points]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained_gmm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny mixture trained on a CSV with named columns (read-only)."""
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("gmm")
    spec = folder / "gmm.yaml"
    spec.write_text(MIXTURE.format(csv=write_table(folder / "table.csv")))
    return train(spec, run_dir=folder / "run", quiet=True).run_dir


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "out.npz").mkdir()  # a folder with a file's name
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "input.csv").write_text("height,width,depth\n0.5,,1.0\n5.0,4.0,\n")
    return tmp_path


def impute(hostile, run: Path, work: Path, text: str | None, out: str = "filled.csv"):
    if text is not None:
        (work / "given.csv").write_text(text)
    return hostile("impute", run, "--input", "given.csv", "-o", out, watch=work)


# --------------------------------------------------------------------------- sample


def test_a_picture_of_more_samples_than_it_can_show_is_refused(hostile, trained_vae, work) -> None:
    """Before: -n 100000 drew them all and wrote a 10,000 x 10,000 pixel grid."""
    hostile("sample", trained_vae, "-n", "100000", "-o", "many.png", watch=work).assert_refused(
        2, "at most 10,000 samples", "-o many.npz"
    )


def test_samples_beyond_the_free_disk_are_refused_before_drawing(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: -n 100000000 built all 100 million samples in memory (25 GB) and died in
    ResourceExhaustedError; now they stream to disk, if the disk can take them."""
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: real(path)._replace(free=10 << 30)
    )  # a disk with 10 GiB free
    outcome = hostile("sample", trained_vae, "-n", "100000000", "-o", "all.npz", watch=work)
    outcome.assert_refused(1, "would take 23.8 GiB", "10.0 GiB free", "draw fewer samples")


def test_many_samples_stream_in_chunks_into_one_npz(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file holds every sample; chunk by chunk, the first chunk equals a one-shot draw."""
    import gencompile.sampling as sampling

    assert hostile("sample", trained_vae, "-n", "300", "-o", "one.npz", watch=work).code == 0
    monkeypatch.setattr(sampling, "SAMPLE_CHUNK", 300)
    assert hostile("sample", trained_vae, "-n", "1000", "-o", "many.npz", watch=work).code == 0
    with np.load(work / "one.npz") as one, np.load(work / "many.npz") as many:
        assert many["samples"].shape == (1000, 8, 8, 1)
        assert many["samples"].dtype == np.float32
        np.testing.assert_array_equal(many["samples"][:300], one["samples"])
        assert np.isfinite(many["samples"]).all()
    assert sorted(p.name for p in work.iterdir()) == [
        "a_dir", "input.csv", "many.npz", "one.npz", "out.npz", "pipe"
    ]  # fmt: skip


def test_an_interrupted_draw_leaves_the_old_file_and_no_temporary(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data loss: a draw that fails half-way must not truncate the file it replaces."""
    import gencompile.sampling as sampling

    (work / "kept.npz").write_bytes(b"the user's earlier samples")
    real = sampling._sample_chunks

    def fail_half_way(*args, **kwargs):
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(sampling, "SAMPLE_CHUNK", 64)
    monkeypatch.setattr(sampling, "_sample_chunks", fail_half_way)
    outcome = hostile("sample", trained_vae, "-n", "500", "-o", "kept.npz", watch=work)
    assert outcome.code == 130  # click's exit code for Ctrl-C
    assert not outcome.changed
    assert (work / "kept.npz").read_bytes() == b"the user's earlier samples"
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_a_terminal_sees_a_progress_bar_while_chunks_are_drawn(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch, terminal_progress
) -> None:
    import gencompile.sampling as sampling

    monkeypatch.setattr(sampling, "SAMPLE_CHUNK", 100)
    assert hostile("sample", trained_vae, "-n", "400", "-o", "s.npz", watch=work).code == 0
    assert "sampling" in terminal_progress.getvalue()
    with np.load(work / "s.npz") as drawn:
        assert drawn["samples"].shape == (400, 8, 8, 1)


# (id, -o, exit code: 1 a path the file system refuses, 2 a format sample does not write,
# words the message says, words it may say)
OUTPUTS = [
    ("missing-folder", "nowhere/s.npz", 1, ("the folder nowhere does not exist",), ()),
    ("folder-named-npz", "out.npz", 1, ("out.npz is a folder",), ()),
    ("onto-a-fifo", "pipe", 1, ("is a FIFO", "regular file name"), ()),
    ("under-a-file", "input.csv/s.npz", 1, ("input.csv is not a folder",), ()),
    ("wrong-suffix", "s.txt", 2, ("use .png, .npz, .csv or",), ()),
]


@pytest.mark.parametrize(
    "target, code, words, allowed", [c[1:] for c in OUTPUTS], ids=[c[0] for c in OUTPUTS]
)
def test_sample_output_paths_that_cannot_be_files(
    hostile,
    trained_vae,
    work,
    target: str,
    code: int,
    words: tuple[str, ...],
    allowed: tuple[str, ...],
) -> None:
    """Before: a missing folder was created silently, a folder named out.npz ended in an
    IsADirectoryError traceback, and a FIFO was replaced by the samples."""
    outcome = hostile("sample", trained_vae, "-n", "4", "-o", target, watch=work)
    outcome.assert_refused(code, *words, allowed=allowed)
    assert not (work / "nowhere").exists()
    assert (work / "pipe").is_fifo()


def test_sample_into_a_read_only_folder(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root here, where chmod cannot make a folder read-only: the refusal is
    checked with os.access answering as it does for other users."""
    (work / "locked").mkdir(mode=0o555)
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p).name == "locked" else real(p, mode)
    )
    outcome = hostile("sample", trained_vae, "-n", "4", "-o", "locked/s.npz", watch=work)
    outcome.assert_refused(1, "the folder locked is not writable")


def test_a_full_disk_while_writing_is_a_one_line_error(
    hostile, trained_vae, work, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import gencompile.sampling as sampling

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sampling.np.lib.format, "write_array_header_2_0", full)
    outcome = hostile("sample", trained_vae, "-n", "4", "-o", "s.npz", watch=work)
    outcome.assert_refused(1, "cannot write s.npz", "No space left on device")


# --------------------------------------------------------------------------- impute


def test_impute_fills_a_named_csv(hostile, trained_gmm, work) -> None:
    """The contract the refusals below protect: named columns in order, missing cells."""
    outcome = hostile("impute", trained_gmm, "--input", "input.csv", "-o", "filled.csv", watch=work)
    assert outcome.code == 0, outcome.err
    assert outcome.changed == {"filled.csv"}
    lines = (work / "filled.csv").read_text().splitlines()
    assert lines[0] == "height,width,depth"
    first = lines[1].split(",")
    assert first[0] == "0.5" and first[2] == "1.0" and np.isfinite(float(first[1]))


SILENT = [
    ("inf", "height,width,depth\n1.0,inf,\n", ("line 2, column 2 ('width')", "'inf'")),
    ("minus-inf", "height,width,depth\n-inf,1.0,\n", ("column 1 ('height')", "'-inf'")),
    ("overflow-1e999", "height,width,depth\n1.0,1e999,\n", ("'1e999'", "not a finite")),
    ("beyond-float32", "height,width,depth\n1e300,1.0,\n", ("column 1 ('height')", "too large")),
    ("renamed", "height,weight,depth\n1.0,,2.0\n", ("column 2: 'weight'", "expects 'width'")),
    ("reordered", "width,height,depth\n1.0,,2.0\n", ("another order", "height,width,depth")),
    ("unnamed", "x0,x1,x2\n1.0,,2.0\n", ("'x0' where the model expects 'height'",)),
]


@pytest.mark.parametrize("text, words", [c[1:] for c in SILENT], ids=[c[0] for c in SILENT])
def test_impute_refuses_what_it_used_to_get_silently_wrong(
    hostile, trained_gmm, work, text: str, words: tuple[str, ...]
) -> None:
    """Before: each exited 0; inf/1e999 cells came back as `nan` in the filled file, and
    renamed or reordered columns were imputed as if they were the training columns."""
    impute(hostile, trained_gmm, work, text).assert_refused(1, *words)
    assert not (work / "filled.csv").exists()


BROKEN = [
    ("header-only", "height,width,depth\n", ("header but no data rows",)),
    ("empty", "", ("is empty",)),
    ("too-few-columns", "height,width\n1.0,\n", ("2 columns", "3 features")),
    ("ragged-row", "height,width,depth\n1.0,2.0\n", ("line 2: 2 cells",)),
    ("not-a-number", "height,width,depth\n1.0,abc,\n", ("'abc' is not a number",)),
]


@pytest.mark.parametrize("text, words", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_impute_input_that_cannot_be_imputed(
    hostile, trained_gmm, work, text: str, words: tuple[str, ...]
) -> None:
    """Before: the header-only file ended in a numpy AxisError traceback."""
    impute(hostile, trained_gmm, work, text).assert_refused(1, *words)


def test_impute_input_that_is_not_utf8(hostile, trained_gmm, work) -> None:
    (work / "given.csv").write_bytes(b"height,width,depth\n\xff\xfe,1,\n")
    impute(hostile, trained_gmm, work, None).assert_refused(1, "not UTF-8")


def test_impute_input_that_is_a_directory(hostile, trained_gmm, work) -> None:
    outcome = hostile("impute", trained_gmm, "--input", "a_dir", "-o", "f.csv", watch=work)
    outcome.assert_refused(1, "a_dir is a directory", "not a regular file")


@pytest.mark.parametrize("given", ["pipe", "/dev/zero"], ids=["fifo", "dev-zero"])
def test_impute_input_that_never_ends(hostile_subprocess, trained_gmm, work, given) -> None:
    """Before: the FIFO hung forever; /dev/zero was read until memory ran out."""
    outcome = hostile_subprocess(
        "impute", trained_gmm, "--input", given, "-o", "f.csv", timeout=60, watch=work
    )
    outcome.assert_refused(1, "--input", "not a regular file")


IMPUTE_OUTPUTS = [
    ("onto-a-folder", "a_dir", ("a_dir is a folder", "a_dir/imputed.csv")),
    ("missing-folder", "nowhere/f.csv", ("the folder nowhere does not exist",)),
    ("onto-a-fifo", "pipe", ("is a FIFO",)),
]


@pytest.mark.parametrize(
    "target, words", [c[1:] for c in IMPUTE_OUTPUTS], ids=[c[0] for c in IMPUTE_OUTPUTS]
)
def test_impute_output_paths_that_cannot_be_files(
    hostile, trained_gmm, work, target: str, words: tuple[str, ...]
) -> None:
    """Before: -o DIR ended in an IsADirectoryError traceback; a missing folder was created."""
    outcome = hostile("impute", trained_gmm, "--input", "input.csv", "-o", target, watch=work)
    outcome.assert_refused(1, *words)
    assert not (work / "nowhere").exists()


def test_impute_with_an_image_vae_reads_pixels_as_named_columns(hostile, trained_vae, work) -> None:
    """The digits VAE imputes a CSV of 8x8 images, x0..x63 row by row, in grey levels."""
    from sklearn.datasets import load_digits

    refused = hostile("impute", trained_vae, "--input", "input.csv", "-o", "f.csv", watch=work)
    refused.assert_refused(1, "3 columns; the model was trained on 64 features", "x0,x1,x2")
    pixels = load_digits().data[:6]
    cells = [[f"{v:g}" for v in row] for row in pixels]
    for i, row in enumerate(cells[:4]):  # the top half of four images is lost
        row[: 8 * (i + 1)] = [""] * (8 * (i + 1))
    header = ",".join(f"x{j}" for j in range(64))
    text = "\n".join([header, *(",".join(row) for row in cells)]) + "\n"

    outcome = impute(hostile, trained_vae, work, text)

    assert outcome.code == 0, outcome.err
    assert outcome.changed == {"filled.csv"}
    assert "filled 80 cell(s) in 4 row(s) with the VAE's pseudo-Gibbs sampling" in outcome.out
    lines = (work / "filled.csv").read_text().splitlines()
    assert lines[0] == header and len(lines) == 7
    assert lines[5:] == text.splitlines()[5:]  # complete images come back unchanged
    for line, row in zip(lines[1:5], cells[:4], strict=True):
        written = line.split(",")
        for cell, given in zip(written, row, strict=True):
            if given:
                assert cell == given
            else:  # a Bernoulli decoder's mean, back in grey levels 0..16
                assert 0.0 <= float(cell) <= 16.0


def test_impute_refuses_when_the_training_data_changed(
    hostile, work, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Column names and scaling come from the training data: changed data is not the model's."""
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("changed")
    table = write_table(folder / "table.csv")
    (folder / "gmm.yaml").write_text(MIXTURE.format(csv=table))
    run = train(folder / "gmm.yaml", run_dir=folder / "run", quiet=True).run_dir
    write_table(table, seed=1)
    outcome = hostile("impute", run, "--input", "input.csv", "-o", "f.csv", watch=work)
    outcome.assert_refused(1, "changed since training", "restore the data, or retrain")
