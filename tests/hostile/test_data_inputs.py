"""Hostile data: what a spec's `data.source` and preprocessing can do to `gencompile train`.

Every case is refused with a one-line message before a run folder is written; the cases
that used to hang (FIFOs, /dev/zero) run in a child process with a time limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

MIXTURE = """\
spec_version: 1
name: hostile-data
seed: 1
data:
  source: {type: builtin, name: moons, n_samples: 200}
  batch_size: 64
model:
  family: mixture
  components: 2
  covariance: diag
  algorithm: {type: em, max_iter: 2, tol: 0.0, init: kmeans}
"""

TEXT = """\
spec_version: 1
name: hostile-text
seed: 1
data:
  source: {type: text, path: corpus.txt}
  batch_size: 8
model:
  family: autoregressive
  context_length: 16
  network: {type: lstm, units: 8}
training:
  epochs: 1
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The working folder: the specs, data files of every kind, and nothing else."""
    (tmp_path / "mixture.yaml").write_text(MIXTURE)
    (tmp_path / "text.yaml").write_text(TEXT)
    (tmp_path / "a_dir").mkdir()
    os.mkfifo(tmp_path / "pipe")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "vectors.npy", rng.normal(size=(50, 3)).astype("float32"))
    np.savez(tmp_path / "arrays.npz", x=rng.normal(size=(50, 3)))
    np.save(tmp_path / "no_columns.npy", np.ones((50, 0), "float32"))
    np.save(tmp_path / "no_rows.npy", np.ones((0, 3), "float32"))
    np.save(tmp_path / "scalar.npy", np.float32(3.0))
    with_inf = rng.normal(size=(50, 3))
    with_inf[7, 1] = np.inf
    np.save(tmp_path / "with_inf.npy", with_inf)
    return tmp_path


RUN = ("runs/",)  # refused while loading data: the built run folder stays, as after any failed run


def train_args(spec: str, *overrides: str) -> list[str]:
    sets = [arg for override in overrides for arg in ("--set", override)]
    return ["train", spec, "--runs-dir", "runs", "--quiet", *sets]


def source(text: str) -> str:
    return f"data.source={text}"


def write_csv(path: Path, rows: list[str], header: str = "a,b,c") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# --------------------------------------------------------------------------- hangs
# Before: each of these hung forever (the open of a FIFO blocks; /dev/zero never ends and
# its one endless "line" grew memory until the kernel stepped in).

HANGS = [
    ("csv-dev-zero", "mixture.yaml", "{type: csv, path: /dev/zero}", "character device"),
    ("csv-fifo", "mixture.yaml", "{type: csv, path: pipe}", "FIFO"),
    ("npy-fifo", "mixture.yaml", "{type: npy, path: pipe}", "FIFO"),
    ("npz-fifo", "mixture.yaml", "{type: npz, path: pipe}", "FIFO"),
    ("text-fifo", "text.yaml", "{type: text, path: pipe}", "FIFO"),
    ("text-dev-zero", "text.yaml", "{type: text, path: /dev/zero}", "character device"),
]


@pytest.mark.parametrize(
    "spec, given, words", [case[1:] for case in HANGS], ids=[case[0] for case in HANGS]
)
def test_pipes_and_devices_are_refused_without_opening_them(
    hostile_subprocess, work: Path, spec: str, given: str, words: str
) -> None:
    outcome = hostile_subprocess(*train_args(spec, source(given)), timeout=60, watch=work)
    outcome.assert_refused(2, "data.source.path", words, "not a regular file")


def test_a_pipe_named_like_an_image_is_refused_not_skipped(hostile, work: Path) -> None:
    """Before: the FIFO was skipped silently and the model trained on the other images."""
    folder = work / "images"
    folder.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 30 * i).save(folder / f"{i}.png")
    os.mkfifo(folder / "9.png")
    given = source(f"{{type: images, dir: {folder}, size: [8, 8]}}")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        1, "9.png is a FIFO", "not an image file", allowed=RUN
    )


# --------------------------------------------------------------------------- memory


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`small_machine("64K")`: what gencompile may plan for, via $GENCOMPILE_MEMORY."""
    return lambda size: monkeypatch.setenv("GENCOMPILE_MEMORY", size)


def test_data_too_large_for_memory_is_refused_before_the_build(
    hostile, work: Path, small_machine
) -> None:
    """Before: a CSV was read whole whatever its size (a 10 GB file took 10 GB and more)."""
    write_csv(work / "big.csv", [f"{i},{i + 1},{i + 2}" for i in range(20000)])
    small_machine("64M")
    given = source("{type: csv, path: big.csv}")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        1,
        "needs about",
        "the data",
        "64.0 MiB allowed by GENCOMPILE_MEMORY",
        # TensorFlow's 512 MiB, not these few MiB of data, is what exceeds 64 MiB
        "TensorFlow itself needs about 512.0 MiB, the largest part",
        "raise GENCOMPILE_MEMORY to at least",
    )


def test_a_forged_npy_header_is_not_believed(hostile, work: Path) -> None:
    """A header promising 10**12 rows must not make gencompile allocate them."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)}
    with open(work / "forged.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    given = source("{type: npy, path: forged.npy}")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        1, "needs about", "use less data"
    )


LIMITED = [
    ("csv", lambda w: write_csv(w / "d.csv", ["1,2,3"] * 5000), {"columns": None,
     "label_column": None}),
    ("npy", lambda w: np.save(w / "d.npy", np.zeros((5000, 30), "f4")) or w / "d.npy", {}),
    ("npz", lambda w: np.savez(w / "d.npz", x=np.zeros((5000, 30))) or w / "d.npz",
     {"key": "x", "labels": None}),
]  # fmt: skip


@pytest.mark.parametrize(
    "kind, make, extra", LIMITED, ids=[f"{case[0]}-read-limit" for case in LIMITED]
)
def test_the_runtime_reads_data_files_with_a_memory_limit(
    work: Path, small_machine, kind: str, make: Callable, extra: dict
) -> None:
    """The second line of defence (a file that grew after the build, `evaluate` on a run
    whose data changed): the loader itself refuses what cannot fit, before reading it."""
    from gencompile.datafiles import DataFileError
    from gencompile.runtime.data import load_arrays

    path = make(work)
    small_machine("100K")
    with pytest.raises(DataFileError, match=r"needs about .* more than the 100.0 KiB"):
        load_arrays({"type": kind, "path": str(path), **extra}, seed=0)


def test_a_huge_builtin_data_set_is_refused_before_it_is_generated(
    hostile, work: Path, small_machine
) -> None:
    """Before: scikit-learn tried to allocate 10**11 points (1.6 TB) and died. Sizes beyond
    what any machine holds are a located spec error; large ones are weighed against memory."""
    absurd = source("{type: builtin, name: blobs, n_samples: 100000000000, n_features: 2}")
    hostile(*train_args("mixture.yaml", absurd), watch=work).assert_refused(
        2, "data.source.n_samples", "2147483647"
    )
    small_machine("1G")
    large = source("{type: builtin, name: blobs, n_samples: 100000000, n_features: 2}")
    hostile(*train_args("mixture.yaml", large), watch=work).assert_refused(
        1, "needs about", "the data", "use less data"
    )


def test_a_model_too_large_for_memory_is_refused_before_tensorflow(
    hostile_subprocess, work: Path, small_machine
) -> None:
    """Before: `--set model.latent_dim=1000000000` died in ResourceExhaustedError. Now that
    is a located spec error (no layer holds 10**9 values per example); a model within those
    bounds but beyond this machine's memory is refused by the estimate."""
    spec = str(ROOT / "specs" / "vae_digits.yaml")
    absurd = hostile_subprocess(
        *train_args(spec, "model.latent_dim=1000000000"), timeout=30, watch=work
    )
    absurd.assert_refused(2, "model.encoder", "outputs 1,000,000,000 values per example")
    small_machine("4G")
    outcome = hostile_subprocess(
        *train_args(spec, "model.latent_dim=2000000"), timeout=30, watch=work
    )
    outcome.assert_refused(
        1, "GiB to train", "parameters", "this machine has", "shrink the model", "model.latent_dim"
    )
    assert "ResourceExhausted" not in outcome.err
    check = (
        "import sys\n"
        "from gencompile.errors import RunError\n"
        "from gencompile.runs import train\n"
        "try:\n"
        f"    train({spec!r}, ['model.latent_dim=2000000'], runs_root='runs')\n"
        "except RunError:\n"
        "    print('tensorflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=work, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stdout + done.stderr  # TensorFlow never started


def test_a_batch_too_large_for_memory_names_the_batch_size(hostile, work: Path) -> None:
    """Ten million moons in one batch through a 100,000-unit layer: 7 TiB of activations."""
    spec = str(ROOT / "specs" / "vae_moons.yaml")
    sizes = ["data.source.n_samples=10000000", "data.batch_size=10000000"]
    outcome = hostile(*train_args(spec, *sizes, "model.encoder.mlp=[100000]"), watch=work)
    outcome.assert_refused(1, "one batch of 10000000", "lower data.batch_size", "encoder/")


def test_a_layer_too_wide_for_memory_is_named_by_its_spec_path(
    hostile, work: Path, small_machine
) -> None:
    small_machine("2G")
    spec = str(ROOT / "specs" / "vae_digits.yaml")
    outcome = hostile(*train_args(spec, "model.decoder.mlp=[128, 1000000]"), watch=work)
    outcome.assert_refused(1, "decoder/dense_2 (model.decoder.mlp[1])", "parameters")


def test_a_batch_larger_than_the_data_is_the_data(work: Path) -> None:
    """`batch_size: 1000000000` on 1,797 digits trains on batches of 1,797: not refused."""
    from gencompile.compiler.lower import lower
    from gencompile.compiler.resources import check_memory
    from gencompile.spec import load_spec

    spec = ROOT / "specs" / "vae_digits.yaml"
    estimate = check_memory(lower(load_spec(spec, ["data.batch_size=1000000000"])))
    assert estimate.batch_size == 1797


def test_the_memory_cap_must_be_a_size(hostile, work: Path, small_machine) -> None:
    small_machine("lots")
    hostile(*train_args("mixture.yaml"), watch=work).assert_refused(
        1, "GENCOMPILE_MEMORY='lots' is not a size"
    )


# --------------------------------------------------------------------------- wrong kinds
# Before: the npz-as-npy case and the (N, 0) array ended in tracebacks; the others had
# messages that named the wrong problem ("pickled data" for /dev/zero).

KINDS = [
    ("npz-as-npy", "{type: npy, path: arrays.npz}", 2, ("is an .npz archive", "{type: npz")),
    ("npy-as-npz", "{type: npz, path: vectors.npy}", 2, ("not an .npz archive", "{type: npy}")),
    ("npy-dev-zero", "{type: npy, path: /dev/zero}", 2, ("character device",)),
    ("csv-directory", "{type: csv, path: a_dir}", 2, ("is a directory", "not a regular file")),
    ("npy-no-columns", "{type: npy, path: no_columns.npy}", 2, ("(50, 0)", "no values")),
    ("npy-scalar", "{type: npy, path: scalar.npy}", 2, ("a single number",)),
    ("npy-no-rows", "{type: npy, path: no_rows.npy}", 1, ("holds no examples",)),
    ("images-on-a-file", "{type: images, dir: mixture.yaml, size: [8, 8]}", 1, ("not a dir",)),
    ("missing-npy", "{type: npy, path: nowhere.npy}", 2, ("file not found: nowhere.npy",)),
]


@pytest.mark.parametrize(
    "given, code, words", [case[1:] for case in KINDS], ids=[case[0] for case in KINDS]
)
def test_a_file_of_the_wrong_kind_is_named(
    hostile, work: Path, given: str, code: int, words: tuple[str, ...]
) -> None:
    outcome = hostile(*train_args("mixture.yaml", source(given)), watch=work)
    outcome.assert_refused(code, *words, allowed=RUN if code == 1 else ())


def test_a_decompression_bomb_is_a_one_line_error(
    hostile, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: PIL's DecompressionBombError escaped as a traceback."""
    folder = work / "bombs"
    folder.mkdir()
    Image.new("L", (64, 64)).save(folder / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels > 2 x 100: a "bomb"
    given = source(f"{{type: images, dir: {folder}, size: [8, 8]}}")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        1, "cannot read image", "big.png", allowed=RUN
    )


# --------------------------------------------------------------------------- values


def test_scale_bounds_beyond_float32_are_refused(hostile, work: Path) -> None:
    """Before: `scale: [0, 1e308]` made inf data and a scikit-learn traceback in k-means."""
    outcome = hostile(
        *train_args(
            "mixture.yaml",
            source("{type: npy, path: vectors.npy}"),
            "data.preprocessing={scale: [0, 1.0e+308]}",
        ),
        watch=work,
    )
    outcome.assert_refused(1, "data.preprocessing", "beyond float32's range", "[0, 1]", allowed=RUN)


def test_scale_bounds_whose_width_overflows_are_refused(hostile, work: Path) -> None:
    outcome = hostile(
        *train_args("mixture.yaml", "data.preprocessing={scale: [-1.0e+308, 1.0e+308]}"),
        watch=work,
    )
    outcome.assert_refused(1, "data.preprocessing", "beyond float32's range", allowed=RUN)


@pytest.mark.parametrize(
    "cell, words",
    [("inf", ("'inf'", "is infinite")), ("1e999", ("'1e999'", "is infinite")),
     ("-1e300", ("'-1e300'", "beyond float32's range"))],
    ids=["inf", "overflow-1e999", "beyond-float32"],
)  # fmt: skip
def test_csv_values_that_are_not_finite_name_their_cell(
    hostile, work: Path, cell: str, words: tuple[str, ...]
) -> None:
    """Before: "the data contains NaN or infinite values", with no row, column, or the
    fact that 1e300 is finite but beyond float32."""
    rows = [f"{i},{i + 1},{i + 2}" for i in range(40)]
    rows[4] = f"4,{cell},6"
    write_csv(work / "values.csv", rows)
    given = source("{type: csv, path: values.csv}")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        1, *words, "column 'b'", "line 6", allowed=RUN
    )


def test_array_values_that_are_not_finite_name_their_index(hostile, work: Path) -> None:
    outcome = hostile(
        *train_args("mixture.yaml", source("{type: npy, path: with_inf.npy}")), watch=work
    )
    outcome.assert_refused(1, "example 7", "[7, 1]", "is infinite", allowed=RUN)


@pytest.mark.parametrize(
    "content, words",
    [(b"a" * (2 << 20), ("cannot read the header row", "field larger than")),
     (b"a," * (1 << 20), ("first row", "longer than 1.0 MiB"))],
    ids=["one-endless-field", "endless-fields"],
)  # fmt: skip
def test_a_csv_header_row_without_end_is_refused(
    hostile, work: Path, content: bytes, words: tuple[str, ...]
) -> None:
    """A 'CSV' of one endless line (a binary dump, /dev/zero copied to disk): the header is
    read with a 1 MiB limit, not line by line to the end of the file."""
    (work / "endless.csv").write_bytes(content)
    outcome = hostile(
        *train_args("mixture.yaml", source("{type: csv, path: endless.csv}")), watch=work
    )
    outcome.assert_refused(2, *words, "is it a CSV file with a header row?")


def test_every_shipped_spec_passes_the_memory_check(example_overrides) -> None:
    from gencompile.compiler.lower import lower
    from gencompile.compiler.resources import check_memory
    from gencompile.spec import load_spec

    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        estimate = check_memory(lower(load_spec(spec, example_overrides(spec))))
        assert estimate.total < 2 << 30, (spec.name, estimate.summary())


def test_refused_runs_leave_no_run_folder(hostile, work: Path, small_machine) -> None:
    small_machine("4G")
    spec = str(ROOT / "specs" / "vae_digits.yaml")
    hostile(*train_args(spec, "model.latent_dim=2000000"), watch=work).assert_refused(1)
    assert not (work / "runs").exists()


def test_explain_shows_the_memory_estimate_even_when_it_cannot_fit(hostile, work: Path) -> None:
    spec = str(ROOT / "specs" / "vae_digits.yaml")
    fits = hostile("explain", spec, watch=work)
    assert fits.code == 0 and "Memory: about" in fits.out and "102,224 parameters" in fits.out
    huge = hostile("explain", spec, "--set", "model.latent_dim=2000000", watch=work)
    assert huge.code == 0 and "GiB to train" in huge.out  # explain shows; train refuses
    assert not fits.changed and not huge.changed


# --------------------------------------------------------------------------- streamed sources


def write_records(path: Path, count: int) -> Path:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            values = tf.train.FloatList(value=[float(i), float(i % 7), 1.0])
            features = {"x": tf.train.Feature(float_list=values)}
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
            )
    return path


RECORDS = "{type: tfrecord, files: %s, features: {x: {type: values, name: x, shape: [3]}}}"


def test_an_empty_tfrecord_glob_is_a_located_spec_error(hostile, work: Path) -> None:
    given = source(RECORDS % "shards/*.tfrecord")
    hostile(*train_args("mixture.yaml", given), watch=work).assert_refused(
        2, "--set:", "data.source.files: no file matches shards/*.tfrecord"
    )


def test_a_pipe_matched_by_a_tfrecord_glob_is_refused(hostile_subprocess, work: Path) -> None:
    os.mkfifo(work / "pipe.tfrecord")
    given = source(RECORDS % "'*.tfrecord'")
    outcome = hostile_subprocess(*train_args("mixture.yaml", given), timeout=60, watch=work)
    outcome.assert_refused(2, "data.source.files", "FIFO")


@pytest.mark.slow
def test_a_damaged_streamed_record_is_one_line(hostile_subprocess, work: Path) -> None:
    """Before the pass checked records, TensorFlow's DataLossError escaped as a traceback."""
    (work / "shards").mkdir()
    write_records(work / "shards" / "a.tfrecord", 50)
    damaged = write_records(work / "shards" / "b.tfrecord", 50)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    given = source(RECORDS % "shards/*.tfrecord")
    outcome = hostile_subprocess(
        *train_args("mixture.yaml", given, "data.cache=stream"), timeout=120, watch=work
    )
    outcome.assert_refused(1, "b.tfrecord: ", "corrupted record", allowed=RUN)
    assert [line.startswith("error:") for line in outcome.err.splitlines()].count(True) == 1
    assert "Op:" not in outcome.err and "{{" not in outcome.err


@pytest.mark.slow
def test_a_damaged_image_in_a_streamed_folder_is_one_line(hostile_subprocess, work: Path) -> None:
    folder = work / "images"
    folder.mkdir()
    for i in range(40):
        Image.new("L", (8, 8), 5 * i).save(folder / f"{i:02d}.png")
    (folder / "17.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    given = source(f"{{type: images, dir: {folder}, size: [8, 8]}}")
    outcome = hostile_subprocess(
        *train_args("mixture.yaml", given, "data.cache=stream"), timeout=120, watch=work
    )
    outcome.assert_refused(1, "cannot read image", "17.png", allowed=RUN)
