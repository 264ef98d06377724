"""What a compared number is not travels with it in every output: a metric the runs computed
differently is marked in the CSV, Markdown, table and plot and ordering by it warns; a
val_* value from an epoch before the run's last says so; and a table piped to a file keeps
every number on one line. Built projects with a metrics.json and history.csv written here:
no TensorFlow."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from gencompile.compiler.project import build
from gencompile.report import format_value
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: tiny-vae
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [16]}
  decoder: {mlp: [16]}
  likelihood: {type: bernoulli}
"""


def fd(samples: int) -> dict[str, object]:
    return {"samples": samples, "reference": "validation", "reference_size": 180}


# name: (epochs, fd_digits, its sample count, val_loss by epoch ("" where not validated))
RUNS = {
    "a": (6, 599.82, 300, ["", "", "", "26.29", "", ""]),
    "b": (2, 600.59, 2000, ["", "27.5"]),
    "c": (4, 601.00, 2000, ["", "", "", "26.10"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("marks")
    spec = root / "tiny.yaml"
    spec.write_text(SPEC)
    made = {}
    for name, (epochs, value, samples, validated) in RUNS.items():
        directory = root / name
        build(load_spec(spec, [f"training.epochs={epochs}"]), directory)
        record = {
            "metrics": {"fd_digits": value, "elbo": -29.5 - epochs},
            "computed_with": {"fd_digits": fd(samples)},
        }
        (directory / "metrics.json").write_text(json.dumps(record))
        rows = [f"{e},{30 - e},{v}" for e, v in enumerate(validated, 1)]
        (directory / "history.csv").write_text("\n".join(["epoch,loss,val_loss", *rows]) + "\n")
        made[name] = directory
    return made


def compare_cli(run_cli, runs: dict[str, Path], *args: str) -> tuple[int, str, str]:
    return run_cli("compare", *map(str, runs.values()), *args)


def test_csv_and_markdown_mark_a_metric_computed_differently(run_cli, runs) -> None:
    code, out, err = compare_cli(run_cli, runs, "--format", "csv")
    assert code == 0 and err == ""
    header = next(csv.reader(io.StringIO(out)))
    assert "fd_digits (computed differently)" in header and "elbo" in header
    code, out, _ = compare_cli(run_cli, runs, "--format", "markdown")
    assert "| fd\\_digits (computed differently) |" in out
    assert "Computed differently: fd\\_digits (other networks" in out
    code, out, _ = compare_cli(run_cli, runs)  # the table
    assert "fd_digits (computed differently)" in out


def test_sorting_by_a_metric_computed_differently_warns(run_cli, runs) -> None:
    for output in ("table", "csv", "markdown"):
        code, _, err = compare_cli(run_cli, runs, "--sort", "fd_digits", "--format", output)
        assert code == 0
        assert err.splitlines() == [
            "warning: --sort fd_digits: the runs computed fd_digits differently (samples "
            "2000 vs 300), so this order compares the settings as much as the models; "
            "evaluate them alike (gencompile evaluate RUN --metrics fd_digits with the same "
            "options) to rank them"
        ]
    code, _, err = compare_cli(run_cli, runs, "--sort", "elbo")  # computed alike: quiet
    assert code == 0 and err == ""


def test_the_plot_of_a_metric_computed_differently_says_so(
    run_cli, runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure

    drawn: list[Figure] = []
    savefig = matplotlib.figure.Figure.savefig

    def keep(figure: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(figure)
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    picture = tmp_path / "fd.png"
    code, _, _ = compare_cli(run_cli, runs, "--sort", "fd_digits", "--plot", str(picture))
    assert code == 0 and picture.is_file()
    texts = [drawn[0].axes[0].get_title(), *(a.get_ylabel() for a in drawn[0].axes)]
    assert "3 runs: fd_digits (computed differently) by the fields that differ" in texts
    assert "fd_digits (computed differently) (lower is better)" in texts  # the colour bar


def test_a_val_value_of_an_earlier_epoch_says_which(run_cli, runs) -> None:
    code, out, _ = compare_cli(run_cli, runs, "--sort", "val_loss", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    column = "val_loss (last validated epoch)"
    assert [(r["run"].split("/")[-1], r[column]) for r in rows] == [
        ("c", "26.1"),
        ("a", "26.29"),
        ("b", "27.5"),
    ]
    code, out, _ = compare_cli(run_cli, runs, "--sort", "val_loss", "--format", "markdown")
    assert "each run's last validated epoch (or the one early stopping restored), before" in out
    assert "tiny-vae/a (epoch 4 of 6)" in out and "tiny-vae/b" not in out.split("Caveat")[-1]


def test_a_val_value_is_the_epoch_early_stopping_restored(run_cli, runs, tmp_path: Path) -> None:
    """Early stopping kept epoch 2's weights of a 4-epoch run: its val_loss is epoch 2's,
    that of the saved model, not the last validated epoch's."""
    import shutil

    run = Path(shutil.copytree(runs["c"], tmp_path / "restored"))
    (run / "history.csv").write_text(
        "epoch,loss,val_loss\n1,29,27.9\n2,28,25.5\n3,27,26.0\n4,26,26.4\n"
    )
    record = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**record, "restored_epoch": 2}))
    code, out, _ = run_cli(
        "compare", str(run), str(runs["b"]), "--sort", "val_loss", "--format", "csv"
    )
    assert code == 0
    rows = {r["run"].split("/")[-1]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["restored"]["val_loss (last validated epoch)"] == "25.5"
    code, out, _ = run_cli(
        "compare", str(run), str(runs["b"]), "--sort", "val_loss", "--format", "markdown"
    )
    assert "(epoch 2 of 4, restored by early stopping)" in out


def test_a_val_value_of_every_runs_last_epoch_is_not_marked(run_cli, runs) -> None:
    code, out, _ = run_cli(
        "compare", str(runs["b"]), str(runs["c"]), "--sort", "val_loss", "--format", "csv"
    )
    assert code == 0 and "val_loss" in out.splitlines()[0]
    assert "last validated epoch" not in out


def test_a_piped_table_keeps_every_number_on_one_line(
    run_cli, runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile import cli

    monkeypatch.setattr(cli.out, "_width", 40)  # narrower than the table
    code, out, _ = compare_cli(run_cli, runs)
    assert code == 0
    rows = [line for line in out.splitlines() if "tiny-vae/" in line]
    assert len(rows) == 3  # one line per run: nothing folded onto a second
    for name, (_, value, _, _) in RUNS.items():
        row = next(line for line in rows if f"tiny-vae/{name} " in line)
        assert f" {format_value(value)} " in row
