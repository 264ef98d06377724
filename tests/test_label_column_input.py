"""`impute`, `score` and `latent --from` given the run's own source table, label column
included: refused before the class names are parsed as numbers, naming the column and
what to do (drop it; a conditional model takes a `label` column of class indices)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.table_input import check_label_column

GMM = """\
spec_version: 1
name: labelled-gmm
seed: 2
data:
  source: {{type: csv, path: {path}, columns: [a, b], label_column: kind}}
  preprocessing: {{standardize: true}}
  validation_split: 0.2
model:
  family: mixture
  components: 2
  covariance: full
  algorithm: {{type: em, max_iter: 5}}
evaluation: {{metrics: [nll]}}
output: {{samples: {{count: 4, format: npz}}}}
"""


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A mixture trained on a table with a class-name column; that table, a gap in it."""
    from gencompile.runs import train

    root = tmp_path_factory.mktemp("labelled")
    rows = np.random.default_rng(0).normal(size=(200, 2))
    lines = [f"{a:.5f},{b:.5f},{'pos' if a > 0 else 'neg'}" for a, b in rows]
    (root / "table.csv").write_text("a,b,kind\n" + "\n".join(lines) + "\n")
    (root / "gmm.yaml").write_text(GMM.format(path=root / "table.csv"))
    run = train(root / "gmm.yaml", run_dir=root / "gmm", quiet=True).run_dir
    return run, root / "table.csv"


@pytest.mark.parametrize("command", ["impute", "score"])
def test_the_source_table_with_its_label_column_is_refused_with_the_fix(
    run_cli, labelled, tmp_path, command
) -> None:
    run, table = labelled
    text = table.read_text().splitlines()
    text[1] = "," + text[1].split(",", 1)[1] if command == "impute" else text[1]  # a gap
    given = tmp_path / "rows.csv"
    given.write_text("\n".join(text[:20]) + "\n")
    code, _, err = run_cli(command, str(run), "--input", str(given), "-o", str(tmp_path / "o.csv"))
    assert code == 1
    assert (
        f"{given}, column 3 ('kind') is the run's label column, not a feature: the rows must "
        "hold the features a,b only; drop the 'kind' column"
    ) in " ".join(err.split()), err
    assert "is not a number" not in err
    assert not (tmp_path / "o.csv").exists()


def lock(conditional: bool) -> dict:
    model = {"family": "vae", **({"conditional": {"num_classes": 2}} if conditional else {})}
    source = {"type": "csv", "path": "t.csv", "label_column": "kind"}
    return {"resolved_spec": {"data": {"source": source}, "model": model}}


def test_a_conditional_model_is_told_to_give_a_label_column() -> None:
    with pytest.raises(RunError) as refused:
        check_label_column(["kind", "x0", "x1"], [], lock(True), Path("in.csv"))
    message = str(refused.value)
    assert "in.csv, column 1 ('kind') is the run's label column" in message
    assert "the features only; drop the 'kind' column, and give each row's class as a last " \
        "column 'label' holding its class index" in message  # fmt: skip


def test_a_table_without_the_label_column_passes() -> None:
    check_label_column(["x0", "x1"], [], lock(True), Path("in.csv"))
    check_label_column(["x0", "x1", "label"], [["1", "2", "0"]], lock(True), Path("in.csv"))
