"""Commands that only read or write specs start quickly: they import neither TensorFlow nor
NumPy, scikit-learn, pyarrow, PIL or matplotlib (issue #16); `sample` rebuilds the
preprocessing from the lock instead of loading the data set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = "specs/vae_digits.yaml"
HEAVY = ("tensorflow", "keras", "numpy", "sklearn", "scipy", "pyarrow", "PIL", "matplotlib")

# Runs the command line in this interpreter, then prints which heavy packages it imported.
PROBE = """
import json, sys
from gencompile.cli import main
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["gencompile", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as done:
    code = done.code
else:
    code = 0
found = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print(json.dumps({"code": code, "heavy": found}))
"""


def imported_by(*args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [("--help",), ("validate", SPEC), ("explain", SPEC), ("schema",)],
    ids=["help", "validate", "explain", "schema"],
)
def test_spec_commands_import_nothing_heavy(args: tuple[str, ...]) -> None:
    assert imported_by(*args) == {"code": 0, "heavy": []}


def test_building_a_builtin_data_set_reads_no_data(tmp_path: Path) -> None:
    """The digits' shapes are known: building loads neither them nor NumPy."""
    found = imported_by("build", SPEC, "-o", str(tmp_path / "project"))
    assert found == {"code": 0, "heavy": []}
    assert (tmp_path / "project" / "spec.lock.json").is_file()


def test_a_bad_spec_is_reported_without_heavy_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / SPEC).read_text().replace("latent_dim: 8", "latent_dim: -3"))
    assert imported_by("validate", str(bad)) == {"code": 2, "heavy": []}


# Statistics of the digits run's lock: min-max scaling of 0..16 to [0, 1].
DIGITS = {
    "kind": "image",
    "element_shape": [8, 8, 1],
    "scale": [0.0, 1.0],
    "standardize": False,
    "center": 0.0,
    "factor": 1 / 16,
    "offset": 0.0,
    "log_det_jacobian": 0.0,
}


def test_the_picture_range_comes_from_the_lock_statistics() -> None:
    from gencompile.sampling import _image_range

    assert _image_range(DIGITS) == (0.0, 16.0)
    shifted = dict(DIGITS, scale=[-1.0, 1.0], center=2.0, factor=2 / 10, offset=-1.0)
    assert _image_range(shifted) == pytest.approx((2.0, 12.0))
    assert _image_range(dict(DIGITS, standardize=True)) is None  # ends moved
    assert _image_range(dict(DIGITS, scale=None)) is None  # identity: range unknown
    assert _image_range(dict(DIGITS, kind="vector")) is None  # a scatter needs data


def test_sampling_reads_the_preprocessing_from_the_lock(monkeypatch) -> None:
    import numpy as np

    from gencompile.sampling import RecordedData, _drawing_data

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data set was loaded")

    # A stand-in for the runtime's loader (the real one imports TensorFlow).
    monkeypatch.setitem(sys.modules, "gencompile.runtime.data", SimpleNamespace(load_data=no_load))
    module = SimpleNamespace(DATA={}, SEED=0)  # a generated train module's constants
    data = _drawing_data(module, DIGITS, Path("samples.png"))
    assert isinstance(data, RecordedData) and data.element_shape == (8, 8, 1)
    assert data.value_range == (0.0, 16.0)
    np.testing.assert_array_equal(data.preprocessor.inverse(np.array([0.5])), [8.0])
    vectors = dict(DIGITS, kind="vector", element_shape=[64])
    assert _drawing_data(module, vectors, Path("s.npz")).element_shape == (64,)
    with pytest.raises(AssertionError, match="was loaded"):  # a scatter shows held-out data
        _drawing_data(module, vectors, Path("s.png"))


def test_reading_a_runs_lock_loads_no_compiler() -> None:
    """`sample`, `evaluate` and `impute` import a run through `generated`: checking its lock
    needs the spec models, not the compiler or jinja2 (only a rebuild does)."""
    probe = (
        "import sys, gencompile.generated, gencompile.lockfile; "
        "print(sorted(m for m in sys.modules if m.startswith(('gencompile.compiler', 'jinja2'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
