"""Out-of-range options of `gencompile sample` are one line and exit code 2, as every other
refusal (typer's min/max printed a boxed usage paragraph), before a run is opened."""

from __future__ import annotations

import pytest

from gencompile.sample_options import out_of_range


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("--steps", "0", "--steps must be at least 1 (got 0)"),
        ("--eta", "1.5", "--eta must be in 0..1 (got 1.5)"),
        ("--guidance", "-1", "--guidance must be in 0..3.40282e+38 (got -1)"),
        ("--temperature", "0", "--temperature must be in 1e-06..100 (got 0)"),
        ("--temperature", "nan", "--temperature nan: give a finite number"),
        ("--truncation", "101", "--truncation must be in 1e-06..100 (got 101)"),
        ("--top-p", "0", "--top-p must be in 1e-06..1 (got 0)"),
        ("--top-k", "-2", "--top-k must be in 0..2147483647 (got -2)"),
        ("--length", "0", "--length must be at least 1 (got 0)"),
        ("--seed", "-1", "--seed must be in 0..2147483647 (got -1)"),
        ("-n", "0", "-n must be at least 1 (got 0)"),
    ],
)
def test_an_out_of_range_option_is_one_line(run_cli, tmp_path, option, value, line) -> None:
    out = tmp_path / "x.npz"
    args = ["sample", str(tmp_path / "no-run"), "-o", str(out)]
    code, stdout, stderr = run_cli(*args, *(["-n", "2"] if option != "-n" else []), option, value)
    assert (code, stdout, stderr) == (2, "", f"error: {line}\n")
    assert not out.exists()


def test_the_ends_of_the_ranges_are_taken() -> None:
    ends = {"n": 1, "seed": 2**31 - 1, "steps": 1, "eta": 1.0, "guidance": 0.0, "top_k": 0}
    assert out_of_range({**ends, "temperature": 1e-6, "top_p": 1.0, "length": 1}) is None
