"""Sample-time options that scale the draws are bounded up front (a usage error at the
option, as --temperature), and draws that overflowed anyway name the option given instead
of blaming the model ("train it again").

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
from gencompile.sample_options import GUIDANCE_MAX, TRUNCATION_MAX, model_options
from gencompile.sampling import _sample_chunks


@pytest.mark.parametrize(
    ("option", "value"),
    [("--guidance", "1e39"), ("--guidance", "3.5e38"), ("--truncation", "100.5")],
)
def test_an_option_beyond_its_limit_is_a_usage_error(run_cli, tmp_path, option, value):
    out = tmp_path / "x.npz"
    code, _, err = run_cli("sample", str(tmp_path), "-n", "3", option, value, "-o", str(out))
    assert code == 2 and "Traceback" not in err and option in err, err
    assert not out.exists()


COND = {"resolved_spec": {"model": {"conditional": {"label_dropout": 0.1}}}}


@pytest.mark.parametrize(
    ("family", "lock", "given", "message"),
    [
        ("diffusion", COND, {"guidance": 1e39}, "--guidance 1e+39: give at most 3.40282e+38"),
        ("gan", {}, {"truncation": 101.0}, "--truncation 101.0: give at most 100"),
    ],
)
def test_the_library_refuses_them_too(
    family: str, lock: dict[str, Any], given: dict[str, Any], message: str
) -> None:
    with pytest.raises(RunError) as refused:
        model_options(family, lock, given, Path("run"))
    assert message in str(refused.value)


def test_the_limits_themselves_are_taken() -> None:
    assert float(np.finfo(np.float32).max) == GUIDANCE_MAX
    assert model_options("diffusion", COND, {"guidance": GUIDANCE_MAX}, Path("run")) == {
        "guidance_scale": GUIDANCE_MAX
    }
    assert model_options("gan", {}, {"truncation": TRUNCATION_MAX}, Path("run")) == {
        "truncation": TRUNCATION_MAX
    }


class Overflowing:
    """A stand-in model whose second draw overflowed."""

    def sample(self, n: int, **_: Any) -> np.ndarray:
        drawn = np.ones((n, 2), np.float32)
        drawn[1, 0] = np.inf
        return drawn


def _refusal(tmp_path: Path, options: dict[str, Any]) -> str:
    pre = Preprocessor.fit(np.random.default_rng(0).normal(size=(50, 2)), "vector")
    data = SimpleNamespace(element_shape=(2,), preprocessor=pre)
    chunks = _sample_chunks(Overflowing(), data, 4, None, options, None)
    with pytest.raises(RunError) as refused:
        write_npz_stream(tmp_path / "x.npz", "samples", (4, 2), chunks)
    assert list(tmp_path.iterdir()) == []  # nothing written
    return str(refused.value)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"guidance_scale": 1e30}, "draw with a lower --guidance than 1e+30"),
        ({"truncation": 50.0}, "draw with a lower --truncation than 50"),
        ({"sampler": {"type": "ddim", "eta": 1.0}}, "no --sampler, --steps or --eta"),
    ],
)
def test_an_overflow_names_the_option_given(
    tmp_path: Path, options: dict[str, Any], named: str
) -> None:
    message = _refusal(tmp_path, options)
    assert "sample 1 is not a finite number" in message and named in message
    assert "train it again" not in message


def test_an_overflow_without_options_blames_the_model(tmp_path: Path) -> None:
    assert "train it again" in _refusal(tmp_path, {})
