"""A refused command line exits 2 ("a bad spec or bad arguments", README's exit table) in
one line, whichever check refuses it: typer's, the command's range checks, or the library's
(`UsageRefusal`); a run or file that fails stays exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.errors import RunError, UsageRefusal
from gencompile.scoring import score

# (arguments after RUN, with OUT for a file in an empty folder; what the one line says)
REFUSED = [
    (["score", "--split", "heldout", "-o", "OUT/s.csv", "--threshold-quantile", "1.5"],
     "--threshold-quantile must be in (0, 1], got 1.5"),
    (["score", "-o", "OUT/s.csv"], "give what to score: either --input FILE or --split heldout"),
    (["score", "--split", "train", "-o", "OUT/s.csv"], "--split train: only the held-out split"),
    (["score", "--split", "heldout", "-o", "OUT/s.npz"], "score writes a CSV table"),
    (["latent", "interpolate", "--from", "3", "-o", "OUT/a.png"],
     "an interpolation needs both ends: --from A --to B"),
    (["latent", "arithmetic", "-o", "OUT/a.png"], "missing option '--add'"),
    (["latent", "traverse", "--range", "3", "1", "-o", "OUT/t.png"], "must be below the second"),
    (["latent", "reconstruct", "-o", "OUT/r.xyz"], "write a picture (.png) or arrays (.npz)"),
    (["sample", "-n", "4", "-o", "OUT/x.xyz"], "cannot write samples as .xyz"),
    (["sample", "-n", "10001", "-o", "OUT/big.png"], "a picture shows at most 10,000 samples"),
    (["sample", "-n", "4", "--truncation", "0.5", "-o", "OUT/t.npz"],
     "--truncation has no meaning for a vae model"),
    (["sample", "-n", "4", "--temperature", "1000", "-o", "OUT/t.npz"], "--temperature must be"),
    (["impute", "--input", "OUT/gaps.csv", "-o", "OUT/f.csv", "--learning-rate", "0.1"],
     "--learning-rate does not apply to a vae model"),
]  # fmt: skip


def _args(run: Path, given: list[str], out: Path) -> list[str]:
    """`COMMAND RUN ...` (`latent RUN ACTION ...` too), OUT made the folder `out`."""
    command, *rest = given
    return [command, str(run), *(arg.replace("OUT", str(out)) for arg in rest)]


@pytest.mark.parametrize(("given", "said"), REFUSED, ids=[" ".join(g) for g, _ in REFUSED])
def test_a_refused_command_line_exits_2_in_one_line(
    run_cli, trained_vae: Path, tmp_path: Path, given: list[str], said: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "gaps.csv").write_text("x0,x1\n0.5,\n")
    code, _, err = run_cli(*_args(trained_vae, given, out))
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert said in " ".join(err.split()), err
    assert sorted(p.name for p in out.iterdir()) == ["gaps.csv"]  # nothing written


def test_a_run_that_does_not_exist_stays_exit_1(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("sample", str(tmp_path / "gone"), "-o", str(tmp_path / "s.npz"))
    assert code == 1 and "does not exist" in err, err


def test_the_library_raises_a_usage_refusal_that_is_still_a_run_error(trained_vae: Path) -> None:
    """Callers of the library that refuse any RunError (the server's 422) refuse it too."""
    with pytest.raises(UsageRefusal) as refused:
        score(trained_vae, "s.csv", split="heldout", threshold_quantile=0.0)
    assert isinstance(refused.value, RunError) and refused.value.exit_code == 2
