"""Outputs in data units of features float32 cannot hold (unix timestamps): sample files,
imputed cells, latent arrays and served answers keep float64 precision, while the outputs of
every other run stay float32 and `%.9g`, byte for byte as before.

Most tests build the preprocessing from arrays and draw from a stand-in model: no training.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gencompile.runtime.preprocessing import Preprocessor

ROWS = 400


def table(wide: bool) -> np.ndarray:
    """A timestamp-like column (1.7e9 s, std an hour) and a normal one; or two near 1."""
    rng = np.random.default_rng(0)
    first = 1.7e9 + 3600 * rng.normal(size=ROWS) if wide else 5.0 + rng.normal(size=ROWS) / 3
    return np.column_stack([first, rng.normal(size=ROWS)])


def recorded(wide: bool) -> Preprocessor:
    """The map as `sample` rebuilds it: from the statistics a lock records."""
    fitted = Preprocessor.fit(table(wide), "vector", standardize=True)
    return Preprocessor.from_dict(fitted.to_dict())


def model_draws(count: int = 20) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(count, 2)).astype(np.float32)


def exact_units(preprocessor: Preprocessor, y: np.ndarray) -> np.ndarray:
    """Model-space values in data units, in float64 throughout."""
    return (y.astype(np.float64) - preprocessor.offset) / preprocessor.factor + preprocessor.center


class Drawer:
    """A stand-in model: its draws in model space, and mean imputation of NaN cells."""

    def __init__(self) -> None:
        self.draws = model_draws()

    def sample(self, n: int, **_: Any) -> np.ndarray:
        return self.draws[:n]

    def impute(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), np.float32(0.25), x).astype(np.float32)


# ------------------------------------------------------------------ the rule


def test_a_timestamp_feature_is_wide_and_data_near_one_or_digits_are_not() -> None:
    wide = recorded(True)
    np.testing.assert_array_equal(wide.wide_features(), [True, False])
    assert wide.output_dtype == np.float64
    assert recorded(False).output_dtype == np.float32
    scaled = Preprocessor.fit(table(True), "vector", scale=[0.0, 1.0])
    assert scaled.output_dtype == np.float64  # min-max scaling: the unit is the range
    digits = np.random.default_rng(2).integers(0, 17, size=(50, 8, 8, 1)).astype(np.float64)
    for kind, data in (("image", digits), ("vector", table(False))):
        plain = Preprocessor.fit(data, kind, scale=[0.0, 1.0])
        assert plain.output_dtype == np.float32
    assert Preprocessor("vector", (3,)).output_dtype == np.float32  # no preprocessing


@pytest.mark.parametrize("value", [2024.0, 600.0, 2024.1, 1.7e9 + 0.3, 0.1])
@pytest.mark.parametrize(
    "options", [{"standardize": True}, {"scale": [-1.0, 1.0]}, {"scale": [0, 1], "standardize": 1}]
)
def test_a_constant_column_is_never_wide(value: float, options: dict) -> None:
    """A year, or any constant: its placeholder unit (zero std or range), or a std that is
    float64's rounding of its mean (2024.1), is no spread; a timestamp still is wide."""
    from gencompile.runtime.preprocessing import Statistics

    rows = np.column_stack([np.full(ROWS, value), table(False)[:, 1]])
    fitted = Preprocessor.fit(rows, "vector", **options)
    streamed = Preprocessor.from_statistics("vector", (2,), Statistics.of(rows, 0), **options)
    for preprocessor in (fitted, Preprocessor.from_dict(fitted.to_dict()), streamed):
        np.testing.assert_array_equal(preprocessor.wide_features(), [False, False])
        assert preprocessor.output_dtype == np.float32
    beside = np.column_stack([rows, table(True)[:, 0]])
    timestamps = Preprocessor.fit(beside, "vector", **options)
    np.testing.assert_array_equal(timestamps.wide_features(), [False, False, True])
    assert timestamps.output_dtype == np.float64


def test_float32_step_is_numpy_spacing_and_goes_beyond_float32() -> None:
    from gencompile.runtime.preprocessing import _float32_step

    values = np.array([1e-40, 1e-30, 0.75, 1.0, 3.0, 5000.0, 1.7e9, 3e38])
    expected = np.spacing(values.astype(np.float32)).astype(np.float64)
    np.testing.assert_array_equal(_float32_step(values), expected)
    assert _float32_step(np.array([1e300]))[0] > 1e280  # float32 would be inf


def test_inverse_is_float64_for_wide_features_and_float32_otherwise() -> None:
    y = model_draws()
    wide, plain = recorded(True), recorded(False)
    out = wide.inverse(y)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, exact_units(wide, y), rtol=0, atol=1e-6)
    rounded = exact_units(wide, y).astype(np.float32)  # what float32 gave before
    assert np.abs(rounded[:, 0].astype(np.float64) % 128).max() == 0
    same = plain.inverse(y)
    before = exact_units(plain, y).astype(np.float32)
    assert same.dtype == np.float32 and same.tobytes() == before.tobytes()


# ------------------------------------------------------------------ sample files


def write(tmp_path: Path, wide: bool, suffix: str) -> Path:
    """`gencompile sample`'s chunked drawing and writing, with the stand-in model."""
    from gencompile.sampling import RecordedData, _sample_chunks, _write_samples

    data = RecordedData(recorded(wide), None)
    chunks = _sample_chunks(Drawer(), data, 20, None, {}, None)
    module = SimpleNamespace(DATA={"source": {"type": "builtin"}})
    return _write_samples(tmp_path / f"s{suffix}", 20, data, chunks, None, module)


def read_back(path: Path) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path) as files:
            return files["samples"]
    if path.suffix == ".csv":
        return np.array(list(csv.reader(path.open()))[1:], dtype=np.float64)
    import pyarrow.parquet as pq

    read = pq.read_table(path)
    assert {str(field.type) for field in read.schema} == {"double"}
    return np.column_stack([read.column(i).to_numpy() for i in range(read.num_columns)])


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".parquet"])
def test_wide_samples_keep_seconds_in_every_file_type(tmp_path, suffix) -> None:
    values = read_back(write(tmp_path, True, suffix))
    assert values.dtype == np.float64
    expected = exact_units(recorded(True), model_draws())
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)
    assert np.abs(values[:, 0] % 128).max() > 1  # not float32's steps of 128 s


def test_other_runs_write_the_same_float32_files_as_before(tmp_path) -> None:
    from gencompile.sample_files import write_csv_stream, write_npz_stream

    plain = recorded(False)
    before = plain.inverse(model_draws())  # what sampling wrote from, as float32
    npz = write(tmp_path, False, ".npz")
    old_npz = write_npz_stream(tmp_path / "old.npz", "samples", (20, 2), iter([before]))
    assert npz.read_bytes() == old_npz.read_bytes()
    with np.load(npz) as files:
        assert files["samples"].dtype == np.float32
    text = "x0,x1\n" + "".join(f"{a:.9g},{b:.9g}\n" for a, b in before.astype(np.float64))
    assert write(tmp_path, False, ".csv").read_text() == text
    assert write_csv_stream(tmp_path / "old.csv", ["x0", "x1"], iter([before])).read_text() == text
    import pyarrow.parquet as pq

    table = pq.read_table(write(tmp_path, False, ".parquet"))
    assert {str(field.type) for field in table.schema} == {"float"}
    np.testing.assert_array_equal(table.column("x0").to_numpy(), before[:, 0])


# ------------------------------------------------------------------ latent, serving


def test_latent_arrays_in_units_keep_wide_features(tmp_path) -> None:
    from gencompile.runtime.latent_actions import LatentRun

    y = model_draws()
    for wide in (True, False):
        data = SimpleNamespace(preprocessor=recorded(wide), element_shape=(2,))
        run = LatentRun(tmp_path, "mixture", None, data, None, None, 0)
        units = run.units(y)
        if wide:
            assert units.dtype == np.float64
            np.testing.assert_allclose(units, exact_units(data.preprocessor, y), atol=1e-6)
        else:
            assert units.tobytes() == data.preprocessor.inverse(y).tobytes()


def engine(wide: bool) -> Any:
    from gencompile.serving.engine import Engine, ServedData

    module = SimpleNamespace(DATA={"with_labels": False}, SEED=0)
    data = ServedData(recorded(wide), "vector")
    return Engine(Path("run"), Drawer(), module, "mixture", data, False, None, None, [])


def test_served_samples_and_imputed_cells_keep_wide_features() -> None:
    served = engine(True)
    drawn = served.sample(5)
    assert isinstance(drawn.samples, np.ndarray) and drawn.samples.dtype == np.float64
    preprocessor = served.data.preprocessor
    expected = exact_units(preprocessor, model_draws()[:5])
    np.testing.assert_allclose(drawn.samples, expected, rtol=0, atol=1e-6)
    filled, cells = served.impute([[None, 0.5]])
    expected = exact_units(preprocessor, np.array([[0.25, 0.0]], np.float32))[0, 0]
    assert cells == 1 and abs(filled[0, 0] - expected) < 1e-6 and filled[0, 1] == 0.5
    assert isinstance(engine(False).sample(5).samples, np.ndarray)
    assert engine(False).sample(5).samples.dtype == np.float32  # as before


# ------------------------------------------------------------------ through the CLI

SPEC = """\
spec_version: 1
name: wide-gmm
seed: 2
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
model:
  family: mixture
  components: 2
  covariance: full
  algorithm: {{type: em, max_iter: 5}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 10, format: npz}}}}
"""


def test_sample_and_impute_of_a_timestamp_table_keep_seconds(run_cli, tmp_path) -> None:
    """A mixture of a timestamp column: sampled and imputed timestamps map back into the
    model's float32 values and out again unchanged (float32 output would move them up to
    64 s), and the run's own map, rebuilt from its lock, calls the feature wide."""
    import json

    from gencompile.runs import train

    rows = table(True)
    (tmp_path / "t.csv").write_text("t,v\n" + "".join(f"{a:.3f},{b:.5f}\n" for a, b in rows))
    (tmp_path / "gmm.yaml").write_text(SPEC.format(path=tmp_path / "t.csv"))
    run = train(tmp_path / "gmm.yaml", epochs=1, run_dir=tmp_path / "run", quiet=True).run_dir
    lock = json.loads((run / "spec.lock.json").read_text())
    preprocessor = Preprocessor.from_dict(lock["data_statistics"])
    assert preprocessor.output_dtype == np.float64
    out = tmp_path / "s.csv"
    code, _, err = run_cli("sample", str(run), "-n", "20", "-o", str(out))
    assert code == 0, err
    sampled = read_back(out)
    gaps, filled_csv = tmp_path / "gaps.csv", tmp_path / "filled.csv"
    gaps.write_text("t,v\n,0.5\n1700001234.5,\n")
    code, _, err = run_cli("impute", str(run), "--input", str(gaps), "-o", str(filled_csv))
    assert code == 0, err
    filled = read_back(filled_csv)
    assert filled[1, 0] == 1700001234.5  # observed: as written
    for values in (sampled, filled[:1]):
        again = preprocessor.inverse(preprocessor.transform(values))
        np.testing.assert_allclose(again[:, 0], values[:, 0], rtol=0, atol=1e-3)
        assert np.abs(values[:, 0] % 128).max() > 1
