"""`gencompile sample` never writes a sample that is no number: a non-finite or over-large
--temperature is refused at the option (at most 100, as `/sample`'s), and draws that came
out NaN or infinite stop the command before the file is renamed into place.

No training: the options are refused before a run is opened; the draws come from a
stand-in model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime.preprocessing import Preprocessor
from gencompile.sample_files import write_npz_stream
from gencompile.sample_options import TEMPERATURE_MAX, model_options
from gencompile.sampling import _sample_chunks


@pytest.mark.parametrize("value", ["inf", "1e38", "100.5", "nan"])
def test_a_temperature_beyond_100_or_not_finite_is_a_usage_error(run_cli, tmp_path, value):
    out = tmp_path / "x.npz"
    code, _, err = run_cli(
        "sample", str(tmp_path), "-n", "3", "--temperature", value, "-o", str(out)
    )
    assert code == 2 and "Traceback" not in err
    assert "--temperature" in err and ("100" in err or "nan" in err.lower()), err
    assert not out.exists()


@pytest.mark.parametrize("value", [str(2**31), str(10**400)])
def test_a_top_k_beyond_int32_is_a_usage_error(run_cli, tmp_path, value):
    """The model takes k as an int32: 2**31 wrapped around to no filter, 10**400 crashed."""
    out = tmp_path / "x.txt"
    code, _, err = run_cli("sample", str(tmp_path), "-n", "3", "--top-k", value, "-o", str(out))
    assert code == 2 and "Traceback" not in err and "--top-k" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"temperature": float("inf")}, "--temperature inf: give a finite number"),
        ({"temperature": float("nan")}, "--temperature nan: give a finite number"),
        ({"temperature": 1e38}, "give a temperature in (0, 100]"),
        ({"truncation": float("inf")}, "--truncation inf: give a finite number"),
    ],
)
def test_the_library_refuses_them_too(given: dict[str, Any], message: str) -> None:
    family = "gan" if "truncation" in given else "vae"
    with pytest.raises(RunError) as refused:
        model_options(family, {}, given, Path("run"))
    assert message in str(refused.value)


def test_the_limit_is_the_servers() -> None:
    assert TEMPERATURE_MAX == 100.0
    assert model_options("vae", {}, {"temperature": 100.0}, Path("run")) == {"temperature": 100.0}


class Overflowing:
    """A stand-in model whose fourth draw overflowed."""

    def sample(self, n: int, **_: Any) -> np.ndarray:
        drawn = np.ones((n, 2), np.float32)
        drawn[3, 1] = np.inf
        return drawn


def test_non_finite_draws_stop_before_a_file_is_written(tmp_path: Path) -> None:
    pre = Preprocessor.fit(
        np.random.default_rng(0).normal(size=(50, 2)), "vector", standardize=True
    )
    data = SimpleNamespace(element_shape=(2,), preprocessor=pre)
    out = tmp_path / "x.npz"
    chunks = _sample_chunks(Overflowing(), data, 6, None, {"temperature": 50.0}, None)
    with pytest.raises(RunError) as refused:
        write_npz_stream(out, "samples", (6, 2), chunks)
    message = str(refused.value)
    assert "sample 3 is not a finite number" in message
    assert "lower --temperature than 50" in message
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
