"""Usage errors of click (bad option values, missing arguments, unknown commands) are one
line `error: ...` and exit code 2, as every other refusal: never typer's boxed paragraph."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["latent", "RUN", "interpolate", "--seed", "-1"], "invalid value for '--seed'"),
        (["impute", "RUN", "i.csv", "-o", "o.csv", "--seed", "-5"], "invalid value for '--seed'"),
        (["serve", "RUN", "--port", "70000"], "invalid value for '--port'"),
        (["train", "spec.yaml", "--epochs", "x"], "invalid value for '--epochs'"),
        (["sample"], "missing argument 'run'"),
        (["trian"], "no such command 'trian'. Did you mean 'train'?"),
        (["--bogus"], "no such option: --bogus"),
    ],
)
def test_a_usage_error_is_one_line(run_cli, args: list[str], said: str) -> None:
    code, out, err = run_cli(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {said}") and err.count("\n") == 1, err
    assert "--help`)" in err  # where to read how the command is used


def test_a_commands_own_usage_refusal_is_one_line(run_cli) -> None:
    code, _, err = run_cli("build")
    assert code == 2 and err == "error: give a spec file, or --locked spec.lock.json\n"


def test_a_latent_actions_usage_error_names_its_help_to_read(run_cli) -> None:
    code, _, err = run_cli("latent", "RUN", "traverse", "--steps", "1")
    assert code == 2 and "(see `" in err
    assert err.rstrip().endswith("latent RUN traverse --help`)"), err  # not `{run}`
