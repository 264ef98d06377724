"""`score --input` and `latent --from FILE` map a file's rows into the model's units in
float64: a timestamp feature (1.7e9 s, which float32 holds only in steps of 128) keeps its
seconds, as `impute` and `serve`'s /score keep them. No training: a stand-in data set."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from gencompile.runtime.preprocessing import Preprocessor
from gencompile.scoring import _prepared, read_input


def timestamp_data() -> SimpleNamespace:
    """What `_prepared` reads of a loaded data set: timestamps an hour apart, and a value."""
    rng = np.random.default_rng(0)
    rows = np.column_stack([1.7e9 + rng.integers(0, 3600, 500), rng.normal(size=500)])
    pre = Preprocessor.fit(rows, "vector", standardize=True)
    return SimpleNamespace(
        kind="vector", element_shape=(2,), preprocessor=pre, feature_names=("t", "y"),
        source={"type": "csv"},
    )  # fmt: skip


def test_a_file_of_timestamps_30_seconds_apart_maps_to_different_model_values(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("t,y\n1700001800,0.5\n1700001830,0.5\n")
    data = timestamp_data()
    scaled, labels = _prepared(read_input(path), data, path, None, {})
    exact = np.array([[1700001800, 0.5], [1700001830, 0.5]], np.float64)
    expected = ((exact - data.preprocessor.center) * data.preprocessor.factor
                + data.preprocessor.offset)  # fmt: skip
    assert labels is None
    assert scaled[0, 0] != scaled[1, 0]  # float32 first made both 1700001792
    np.testing.assert_allclose(scaled, expected, rtol=0, atol=1e-6)
