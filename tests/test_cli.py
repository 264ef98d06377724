"""The command line: exit codes, messages and files, through the real entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "specs" / "vae_digits.yaml")
CVAE = str(ROOT / "specs" / "cvae_digits.yaml")


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("runs")
    # Sampling and `evaluate --metrics elbo` read these runs: a few steps and the ELBO alone
    # (test_train_prints_metrics_and_paths trains with every metric of the default spec).
    fast = ["training.steps_per_epoch=3", "evaluation.metrics=[elbo]"]
    return {
        "vae": train(DIGITS, fast, epochs=1, run_dir=root / "vae", quiet=True).run_dir,
        "cvae": train(CVAE, fast, epochs=1, run_dir=root / "cvae", quiet=True).run_dir,
    }


def test_validate_accepts_every_example(run_cli, example_overrides) -> None:
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    plain = [str(p) for p in specs if not example_overrides(p)]
    code, out, _ = run_cli("validate", *plain)
    assert code == 0
    assert out.count("ok ") == len(plain)
    for spec in (p for p in specs if example_overrides(p)):  # they read a file given by --set
        sets = [arg for value in example_overrides(spec) for arg in ("--set", value)]
        code, out, _ = run_cli("validate", str(spec), *sets)
        assert (code, out.count("ok ")) == (0, 1), out


def test_validate_reports_every_problem_with_exit_2(run_cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "spec_version: 1\nname: bad\ndata:\n  source: {type: builtin, name: digits}\n"
        "  preprocessing: {scale: [0, 1]}\nmodel:\n  family: vae\n  latnt_dim: 4\n"
        "  encoder: {mlp: [0]}\n  decoder: {mlp: [8]}\n"
    )
    code, _, err = run_cli("validate", str(bad))
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith(str(bad))]
    assert lines[0].endswith(
        "8:3: model.latnt_dim: unknown key 'latnt_dim' (did you mean 'latent_dim'?)"
    )
    assert lines[1].endswith("9:19: model.encoder.mlp[0]: must be > 0 (got 0)")
    assert "Traceback" not in err


def test_bad_override_is_a_spec_error(run_cli) -> None:
    code, _, err = run_cli("explain", DIGITS, "--set", "model.latent_dim=-1")
    assert code == 2
    assert "--set: model.latent_dim: must be > 0 (got -1)" in err


def test_explain_shows_layers_shapes_params_and_loss(run_cli) -> None:
    code, out, _ = run_cli("explain", DIGITS)
    assert code == 0
    assert "z_log_var" in out and "(batch, 8, 8, 1)" in out
    assert "51,600" in out  # encoder: 64*256+256 + 256*128+128 + 2*(128*8+8)
    assert "Loss:" in out and "bernoulli" in out
    assert "beta_1: 0.9" in out  # defaults are resolved


def test_schema_is_json_schema(run_cli, tmp_path) -> None:
    code, out, _ = run_cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Spec" and "model" in schema["properties"]
    target = tmp_path / "spec.schema.json"
    code, _, _ = run_cli("schema", "-o", str(target))
    assert code == 0 and json.loads(target.read_text()) == schema


def test_build_writes_the_project(run_cli, tmp_path) -> None:
    code, out, _ = run_cli("build", DIGITS, "-o", str(tmp_path / "p"))
    assert code == 0
    for name in ("vae_digits/model.py", "vae_digits/train.py", "spec.lock.json", "README.md"):
        assert (tmp_path / "p" / name).is_file()
    assert "spec.lock.json" in out


def test_sample_writes_png_and_npz(run_cli, tmp_path, trained_runs) -> None:
    run = str(trained_runs["vae"])
    png, npz = tmp_path / "s.png", tmp_path / "s.npz"
    assert run_cli("sample", run, "-n", "16", "-o", str(png))[0] == 0
    assert Image.open(png).size == (4 * 32 + 3, 4 * 32 + 3)  # 1-px separators
    assert run_cli("sample", run, "-n", "16", "-o", str(npz))[0] == 0
    samples = np.load(npz)["samples"]
    assert samples.shape == (16, 8, 8, 1)
    assert samples.min() >= 0.0 and samples.max() <= 16.0  # back in the digits' units


def test_conditional_sample_follows_the_label(run_cli, tmp_path, trained_runs):
    run = str(trained_runs["cvae"])
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    run_cli("sample", run, "-n", "4", "--label", "0", "-o", str(first))
    run_cli("sample", run, "-n", "4", "--label", "7", "-o", str(second))
    assert not np.allclose(np.load(first)["samples"], np.load(second)["samples"])


def test_evaluate_recomputes_metrics(run_cli, trained_runs) -> None:
    run = trained_runs["vae"]
    before = json.loads((run / "metrics.json").read_text())["metrics"]["elbo"]
    code, out, _ = run_cli("evaluate", str(run), "--metrics", "elbo")
    assert code == 0 and "elbo" in out
    after = json.loads((run / "metrics.json").read_text())["metrics"]["elbo"]
    assert after == before  # same weights, same seeded draw: the number training wrote


def test_evaluate_draws_the_samples_asked_for(run_cli, trained_runs) -> None:
    run = trained_runs["vae"]
    args = ("evaluate", str(run), "--metrics", "precision_recall", "--num-samples")
    code, _, err = run_cli(*args, "64")
    assert code == 0, err
    record = json.loads((run / "metrics.json").read_text())
    assert record["computed_with"]["precision"]["samples"] == 64
    code, _, err = run_cli(*args, "0")
    assert code == 1 and "--num-samples 0: draw at least one sample" in err


def test_evaluate_refuses_a_folder_that_is_not_a_run(run_cli, tmp_path) -> None:
    code, _, err = run_cli("evaluate", str(tmp_path))
    assert code == 1
    assert "is not a gencompile run or project (no spec.lock.json)" in err


def test_train_prints_metrics_and_paths(run_cli, tmp_path) -> None:
    args = ["train", "--epochs", "1", "--runs-dir", str(tmp_path), "--quiet"]
    code, out, _ = run_cli(*args, "--set", "evaluation.importance_samples=4")
    assert code == 0
    run_dirs = list((tmp_path / "vae-digits").iterdir())  # the embedded default spec
    assert len(run_dirs) == 1 and (run_dirs[0] / "samples.png").is_file()
    assert "iwae_nll" in out and "fd_digits" in out
    for name in ("samples.png", "report.md", "report.html"):
        assert f"{name}:" in out and str(run_dirs[0] / name) in out.replace("\n", "")


def test_explain_prints_yaml_that_reads_back_as_the_resolved_spec(run_cli) -> None:
    """A string that looks like a number ("1e5") stays quoted, so the printed spec is a spec."""
    from gencompile.spec.loader import parse_yaml

    code, out, _ = run_cli("explain", DIGITS, "--set", "description='1e5'")
    assert code == 0
    printed = out.split("\n", 1)[1].split("\n\n", 1)[0]  # after the title, up to the tables
    data, _ = parse_yaml(printed, "<explain>")
    assert data["description"] == "1e5"
    assert data["training"]["optimizer"]["learning_rate"] == 1.0e-3


# One rule for every -o: a file's folder must exist and be writable, else `error: cannot
# write` and exit 1 (the README's "a folder that cannot be written"), before any work and
# without creating a folder; a folder output is created with its missing parents, below a
# writable folder. RUN need not exist: the output is checked first.
OUTPUT_COMMANDS = {
    "schema": ("schema", "-o", "{out}/s.json"),
    "build": ("build", DIGITS, "-o", "{out}/b"),
    "build-locked": ("build", "--locked", "spec.lock.json", "-o", "{out}/b"),
    "reproduce": ("reproduce", "RUN", "-o", "{out}/r"),
    "sample": ("sample", "RUN", "-n", "4", "-o", "{out}/x.png"),
    "sample-folder": ("sample", "RUN", "-n", "4", "-o", "{out}/pngs/"),
    "impute": ("impute", "RUN", "--input", "x.csv", "-o", "{out}/filled.csv"),
    "score": ("score", "RUN", "--split", "heldout", "-o", "{out}/scores.csv"),
    "latent-interpolate": ("latent", "RUN", "interpolate", "--random", "-o", "{out}/i.png"),
    "latent-traverse": ("latent", "RUN", "traverse", "-o", "{out}/t.png"),
    "latent-reconstruct": ("latent", "RUN", "reconstruct", "-o", "{out}/r.png"),
    "latent-arithmetic": (
        "latent", "RUN", "arithmetic", "--add", "1", "--subtract", "2", "-o", "{out}/a.png"
    ),
    "latent-map": ("latent", "RUN", "map", "-o", "{out}/m.png"),
    "eject": ("eject", "RUN", "-o", "{out}/e"),
    "wheel": ("wheel", "-o", "{out}/w"),
}  # fmt: skip


FOLDER_OUTPUTS = {"build", "build-locked", "reproduce", "eject", "wheel"}
REFUSED_OUTPUTS = [
    pytest.param(command, where, id=f"{where}-{name}")
    for where in ("missing", "file", "read-only")
    for name, command in OUTPUT_COMMANDS.items()
    if not (where == "missing" and name in FOLDER_OUTPUTS)
]


@pytest.mark.parametrize(("command", "where"), REFUSED_OUTPUTS)
def test_every_output_option_refuses_an_unwritable_folder_alike(
    run_cli, tmp_path, monkeypatch, command, where
) -> None:
    monkeypatch.chdir(tmp_path)
    if where == "missing":
        out, reason = "nowhere/deeper", "the folder nowhere/deeper does not exist"
    elif where == "file":
        (tmp_path / "plain").write_text("x")
        out, reason = "plain", "plain is not a folder"
    else:
        (tmp_path / "locked").mkdir()
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "locked")
        out, reason = "locked", "the folder locked is not writable"
    args = [arg.format(out=out) for arg in command]
    target = next(arg for arg in args if arg.startswith(out))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _, err = run_cli(*args)
    assert code == 1, err
    assert err.strip().startswith(f"error: cannot write {target}: {reason}"), err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_folder_output_is_created_with_its_missing_parents(run_cli, tmp_path) -> None:
    project = tmp_path / "nowhere" / "deeper" / "b"
    code, _, err = run_cli("build", DIGITS, "-o", str(project))
    assert code == 0, err
    assert (project / "spec.lock.json").is_file()


@pytest.mark.parametrize("name", sorted(FOLDER_OUTPUTS - {"build", "wheel"}))
def test_a_folder_output_below_a_missing_folder_is_not_refused_as_unwritable(
    run_cli, tmp_path, monkeypatch, name
) -> None:
    monkeypatch.chdir(tmp_path)  # RUN and spec.lock.json do not exist: refused for that
    args = [arg.format(out="nowhere/deeper") for arg in OUTPUT_COMMANDS[name]]
    code, _, err = run_cli(*args)
    assert code == 1 and "does not exist" in err and "cannot write" not in err, err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("debug", [False, True])
def test_ctrl_c_outside_training_says_interrupted(monkeypatch, capsys, debug) -> None:
    """typer turns Ctrl-C into a silent exit 130; the CLI must still say what happened."""
    import sys

    import gencompile.spec
    from gencompile import cli

    def pressed_ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(gencompile.spec, "load_spec", pressed_ctrl_c)
    monkeypatch.setattr(
        sys, "argv", ["gencompile", *(["--debug"] if debug else []), "explain", "x.yaml"]
    )
    monkeypatch.setitem(cli.DEBUG, "on", False)
    if debug:  # --debug shows the interrupt's traceback instead of the one-line message
        with pytest.raises(KeyboardInterrupt):
            cli.main()
        return
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_a_warning_is_one_line_not_pythons_format(monkeypatch, capsys) -> None:
    """Python prints `file:line: UserWarning: ...` and the source line; the CLI says
    `warning: ...` (a damaged history's warnings read so on every command)."""
    import sys
    import warnings

    import gencompile.spec
    from gencompile import cli

    def warns_then_stops(*args: object, **kwargs: object) -> None:
        warnings.warn("history.csv line 3 loss 'abc' is not a number", stacklevel=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(gencompile.spec, "load_spec", warns_then_stops)
    monkeypatch.setattr(sys, "argv", ["gencompile", "explain", "x.yaml"])
    monkeypatch.setitem(cli.DEBUG, "on", False)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(SystemExit):
            cli.main()
    assert capsys.readouterr().err.splitlines() == [
        "warning: history.csv line 3 loss 'abc' is not a number",
        "interrupted",
    ]
