"""`gencompile compare`: one row per run, sorted by a metric (best first where known), as a
table, CSV or Markdown, with the spec fields that differ, a picture, and sweep folders
standing for their trials. The runs are built projects (real locks, no training) with a
metrics.json written here, so these tests need no TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from gencompile.comparison import UnknownColumn, compare, flatten
from gencompile.compiler.project import build
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

# (latent_dim, learning rate, elbo, iwae_nll): the best elbo is not the best iwae_nll
RUNS = {"a": (2, 1e-3, -40.0, 39.0), "b": (4, 3e-3, -35.0, 36.5), "c": (8, 1e-3, -38.0, 34.0)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    spec = root / "tiny.yaml"
    spec.write_text(SPEC)
    made = {}
    for name, (latent, rate, elbo, iwae) in RUNS.items():
        overrides = [f"model.latent_dim={latent}", f"training.optimizer.learning_rate={rate}"]
        directory = root / name
        build(load_spec(spec, overrides), directory)
        record = {"metrics": {"elbo": elbo, "iwae_nll": iwae}}
        (directory / "metrics.json").write_text(json.dumps(record))
        made[name] = directory
    return made


def labels(table) -> list[str]:
    return [entry.label.split("/")[-1] for entry in table.entries]


def test_the_fields_that_differ_are_columns(runs: dict[str, Path]) -> None:
    table = compare(list(runs.values()))
    assert table.differing == ["model.latent_dim", "training.optimizer.learning_rate"]
    assert table.header == [
        "run",
        "status",
        "model.latent_dim",
        "training.optimizer.learning_rate",
        "elbo",
        "iwae_nll",
    ]
    assert table.cells(table.entries[1]) == [
        "tiny-vae/b",
        "finished",
        "4",
        "0.003",
        "-35",
        "36.5000",
    ]


def test_sort_infers_the_direction_from_the_metric(runs: dict[str, Path]) -> None:
    paths = list(runs.values())
    assert labels(compare(paths, sort="iwae_nll")) == ["c", "b", "a"]  # lower is better
    assert labels(compare(paths, sort="elbo")) == ["b", "c", "a"]  # higher is better
    assert labels(compare(paths, sort="elbo", descending=False)) == ["a", "c", "b"]
    by_field = compare(paths, sort="model.latent_dim", descending=True)
    assert labels(by_field) == ["c", "b", "a"] and by_field.descending


def test_sorting_by_a_field_that_is_the_same_everywhere_shows_it(runs: dict[str, Path]) -> None:
    table = compare(list(runs.values()), sort="seed")
    assert table.differing[-1] == "seed"  # shown, though it does not differ


def test_an_unknown_sort_column_says_what_there_is(runs: dict[str, Path]) -> None:
    with pytest.raises(UnknownColumn, match="--sort iwae: no run has it") as info:
        compare(list(runs.values()), sort="iwae")
    assert info.value.exit_code == 2


def test_csv_and_markdown(runs: dict[str, Path], run_cli) -> None:
    code, out, err = run_cli(
        "compare", *map(str, runs.values()), "--sort", "iwae_nll", "--format", "csv"
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["run"] for row in rows] == ["tiny-vae/c", "tiny-vae/b", "tiny-vae/a"]
    assert rows[0]["model.latent_dim"] == "8" and rows[0]["iwae_nll"] == "34.0"
    assert rows[1]["training.optimizer.learning_rate"] == "0.003"
    code, out, _ = run_cli("compare", *map(str, runs.values()), "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == (
        "| run | status | model.latent\\_dim | training.optimizer.learning\\_rate | elbo | "
        "iwae\\_nll |"
    )
    assert lines[2] == "| tiny-vae/a | finished | 2 | 0.001 | -40 | 39 |"
    assert "Units: elbo: nats / example; iwae\\_nll: nats / example." in out


def test_the_table_and_a_bad_format(runs: dict[str, Path], run_cli) -> None:
    code, out, _ = run_cli("compare", *map(str, runs.values()), "--sort", "elbo")
    assert code == 0
    assert "3 runs, by elbo descending" in out
    assert out.index("tiny-vae/b") < out.index("tiny-vae/c") < out.index("tiny-vae/a")
    assert "units: elbo: nats / example" in out
    code, _, err = run_cli("compare", str(runs["a"]), "--format", "xml")
    assert code == 2 and "choose table, csv or markdown" in err


def test_a_sweep_folder_stands_for_its_trials(runs: dict[str, Path], tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    for name in ("b", "a"):
        (sweep / f"trial-{name}").symlink_to(runs[name], target_is_directory=True)
    (sweep / "notes").mkdir()  # not a run: left out
    table = compare([sweep], sort="elbo")
    assert labels(table) == ["trial-b", "trial-a"]


def test_plot_draws_a_picture(runs: dict[str, Path], tmp_path: Path, run_cli) -> None:
    picture = tmp_path / "sweep.png"
    args = ["compare", *map(str, runs.values()), "--sort", "iwae_nll", "--plot", str(picture)]
    code, _, err = run_cli(*args)
    assert code == 0 and f"wrote {picture}" in err
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000
    scatter = tmp_path / "one.png"  # one differing field: a scatter plot
    code, _, _ = run_cli("compare", str(runs["a"]), str(runs["c"]), "--plot", str(scatter))
    assert code == 0 and scatter.stat().st_size > 5000


def test_flatten_keeps_plain_lists_whole() -> None:
    spec = {"model": {"encoder": {"mlp": [256, 128]}, "layers": [{"type": "dense", "units": 4}]}}
    assert flatten(spec) == {
        "model.encoder.mlp": [256, 128],
        "model.layers[0].type": "dense",
        "model.layers[0].units": 4,
    }


def test_two_sweeps_trials_of_one_spec_keep_their_own_rows(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Both sweeps hold a trial-0001: each row is labelled by as much of its path as tells
    them apart, and a per-epoch val_* column is read from each run's own history."""
    trials = []
    for sweep, run, loss in (("sw_a", "a", 1.0), ("sw_b", "b", 99.0)):
        trial = tmp_path / "cmp" / sweep / "trial-0001"
        shutil.copytree(runs[run], trial)
        (trial / "history.csv").write_text(f"epoch,loss,val_loss\n0,5.0,{loss}\n")
        trials.append(trial)
    table = compare(trials, sort="val_loss")
    expected = ["tiny-vae/sw_a/trial-0001", "tiny-vae/sw_b/trial-0001"]
    assert [e.label for e in table.entries] == expected
    assert [e.metrics["val_loss"] for e in table.entries] == [1.0, 99.0]
    assert [e.fields["model.latent_dim"] for e in table.entries] == [2, 4]
    descending = compare(trials, sort="val_loss", descending=True)
    assert [e.metrics["val_loss"] for e in descending.entries] == [99.0, 1.0]
    assert [e.label for e in compare([trials[0], runs["c"]]).entries] == [
        "tiny-vae/trial-0001",
        "tiny-vae/c",
    ]  # distinct already: the short labels


def test_a_damaged_run_is_an_unreadable_row_with_its_repair_not_the_end(
    runs: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    """One damaged run (or a half-built folder) among `runs/NAME/*` used to stop the whole
    comparison; it is a row saying `unreadable`, and stderr says why and what repairs it."""
    damaged = Path(shutil.copytree(runs["b"], tmp_path / "tiny-vae" / "damaged"))
    (damaged / "metrics.json").write_text('{"metrics": {"elbo": ')
    half_built = tmp_path / "tiny-vae" / "half"
    half_built.mkdir()
    folders = [runs["a"], damaged, half_built, runs["c"]]
    code, out, err = run_cli("compare", *map(str, folders), "--sort", "elbo", "--format", "csv")
    assert code == 0, err
    rows = {row["run"]: row for row in csv.DictReader(io.StringIO(out))}
    assert rows["tiny-vae/damaged"]["status"] == "unreadable"
    assert rows["tiny-vae/half"]["status"] == "unreadable"
    assert rows["tiny-vae/c"]["elbo"] == "-38.0" and rows["tiny-vae/a"]["elbo"] == "-40.0"
    # the damaged rows' missing fields do not make every field a column
    assert list(rows["tiny-vae/a"]) == ["run", "status", "model.latent_dim", "elbo", "iwae_nll"]
    warnings = err.strip().splitlines()
    assert warnings[0] == (
        f"warning: {damaged / 'metrics.json'} is unreadable or corrupt (Expecting value: "
        f"line 1 column 22 (char 21)): `gencompile train --resume {damaged}` writes it "
        "again from the checkpoint of its last epoch if the run trained all its epochs; else "
        "restore it from a copy"
    )
    assert warnings[1] == (
        f"warning: {half_built} is not a gencompile run or project (no spec.lock.json)"
    )
    code, _, err = run_cli("compare", str(half_built))  # nothing else: an error, as before
    assert code == 1 and "no spec.lock.json" in err
    code, _, err = run_cli("compare", str(runs["a"]), str(runs["a"].parent))  # runs/NAME
    assert code == 1 and err.strip().endswith(
        f"give them, e.g. `gencompile compare {runs['a'].parent}/*`"
    )
