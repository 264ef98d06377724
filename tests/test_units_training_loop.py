"""The training loop's numbers (history.csv's loss and val_*) are in the model's units, after
the data's preprocessing, while the held-out metrics are in the data's: the report says so
above its epoch table, and `compare --sort val_*` marks the column and warns when the runs'
preprocessing or loss differ. Built projects with a metrics.json and history.csv written
here: no TensorFlow."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from gencompile.compiler.project import build
from gencompile.report import read_report, render_html, render_markdown
from gencompile.spec import load_spec

SPEC = """\
spec_version: 1
name: tiny-moons
data:
  source: {type: builtin, name: moons, n_samples: 400}
  preprocessing: {standardize: true}
model:
  family: vae
  latent_dim: 2
  encoder: {mlp: [8]}
  decoder: {mlp: [8]}
  likelihood: {type: gaussian}
evaluation:
  metrics: [elbo, iwae_nll]
"""

# name: (--set of its spec, log|dy/dx|, elbo, iwae_nll in data units, val_loss in model units)
# As in the review: the standardized run is the better model in the data's units, but its
# val_loss, in the standardized units, is the larger.
RUNS = {
    "raw": (["data.preprocessing.standardize=false"], 0.0, -1.8756, 1.8489, 1.8995),
    "std": ([], 0.8403, -1.8216, 1.7989, 2.6945),
}


def make_run(root: Path, name: str, more: tuple[str, ...] = ()) -> Path:
    settings, shift, elbo, iwae, val_loss = RUNS[name]
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "tiny.yaml"
    spec.write_text(SPEC)
    run = root / name
    build(load_spec(spec, [*settings, *more]), run)
    record = {
        "metrics": {"elbo": elbo, "iwae_nll": iwae},
        "data_statistics": {"log_det_jacobian": shift},
    }
    (run / "metrics.json").write_text(json.dumps(record))
    (run / "history.csv").write_text(f"epoch,loss,val_loss\n1,3.0,3.1\n2,2.6,{val_loss}\n")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("units")
    return {name: make_run(root, name) for name in RUNS}


# ----------------------------------------------------------------------------- report


def test_the_epoch_table_of_a_preprocessed_run_says_its_values_are_in_model_units(
    runs: dict[str, Path],
) -> None:
    report = read_report(runs["std"])
    markdown = render_markdown(report)
    epoch = markdown[markdown.index("## Last epoch") : markdown.index("| quantity |")]
    assert "Training-loop values, in the model's units" in epoch
    assert "(standardized; log\\|dy/dx\\| = 0.8403 nats per example)" in epoch
    assert "Do not compare the two tables directly." in epoch
    html = render_html(report)
    section = html[html.index("<h2>Last epoch</h2>") :]
    assert section.index("in the model&#x27;s units") < section.index("<table>")


def test_the_epoch_table_of_data_seen_as_is_has_no_units_note(runs: dict[str, Path]) -> None:
    report = read_report(runs["raw"])
    assert report.epoch_note == ""
    assert "model's units" not in render_markdown(report)


# ----------------------------------------------------------------------------- compare


def test_sorting_by_val_loss_of_runs_preprocessed_differently_marks_and_warns(
    run_cli, runs: dict[str, Path]
) -> None:
    folders = [str(runs["raw"]), str(runs["std"])]
    for output in ("table", "csv", "markdown"):
        code, out, err = run_cli("compare", *folders, "--sort", "val_loss", "--format", output)
        assert code == 0
        assert err.splitlines() == [
            "warning: --sort val_loss: val_loss is the training loop's, in each run's model "
            "units and loss, and these differ (data.preprocessing.standardize false vs true), "
            "so this order compares the preprocessing and loss as much as the models; sort by "
            "a held-out metric (elbo, iwae_nll), in the data's units, to rank them"
        ]
        assert "val_loss (model units differ)" in out.replace("\\_", "_")
        if output != "csv":  # a CSV holds the table alone
            assert "in each run's model units (its data as preprocessed)" in out
    code, out, _ = run_cli("compare", *folders, "--sort", "val_loss", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["val_loss (model units differ)"] for r in rows] == ["1.8995", "2.6945"]


def test_val_loss_of_runs_preprocessed_alike_is_not_marked(
    run_cli, runs: dict[str, Path], tmp_path: Path
) -> None:
    other = make_run(tmp_path, "std")
    code, out, err = run_cli(
        "compare", str(runs["std"]), str(other), "--sort", "val_loss", "--format", "csv"
    )
    assert code == 0 and err == ""
    assert "model units differ" not in out


def test_a_loss_weight_that_differs_marks_val_loss_too(run_cli, tmp_path: Path) -> None:
    """val_loss holds the KL term times its weight: a beta-VAE's is another loss."""
    first = make_run(tmp_path / "a", "std")
    second = make_run(tmp_path / "b", "std", ("model.losses.kl.weight=4.0",))
    code, out, err = run_cli("compare", str(first), str(second), "--sort", "val_loss")
    assert code == 0 and "val_loss (model units differ)" in out
    assert "(model.losses.kl.weight 1.0 vs 4.0)" in err


def _bernoulli_and_gaussian(root: Path, computed_alike: dict[str, float]) -> list[str]:
    """A bernoulli run (its resolved spec has no likelihood sigma) and a gaussian one, whose
    elbo and iwae_nll carry other caveats (computed differently), with `computed_alike`
    metrics that both computed the same way."""
    bernoulli = make_run(
        root / "b",
        "raw",
        ("model.likelihood.type=bernoulli", "data.preprocessing.scale=[0, 1]"),
    )
    gaussian = make_run(root / "g", "std")
    for run, caveat in ((bernoulli, "Bernoulli cross-entropy"), (gaussian, "density")):
        record = json.loads((run / "metrics.json").read_text())
        record["metrics"].update(computed_alike)
        likelihood = {"split": "validation", "examples": 40, "caveat": caveat}
        record["computed_with"] = {
            "elbo": likelihood,
            "iwae_nll": likelihood,
            **{name: {"samples": 100} for name in computed_alike},
        }
        (run / "metrics.json").write_text(json.dumps(record))
    return [str(bernoulli), str(gaussian)]


def test_a_field_one_run_lacks_is_said_not_set_in_the_warning(run_cli, tmp_path: Path) -> None:
    folders = _bernoulli_and_gaussian(tmp_path, {})
    code, _, err = run_cli("compare", *folders, "--sort", "val_loss")
    assert code == 0 and "object at" not in err
    assert 'model.likelihood.sigma "learned" vs (not set)' in err
    assert 'model.likelihood.type "bernoulli" vs "gaussian"' in err


def test_the_warning_advises_no_metric_the_runs_computed_differently(
    run_cli, tmp_path: Path
) -> None:
    folders = _bernoulli_and_gaussian(tmp_path / "none", {})
    code, out, err = run_cli("compare", *folders, "--sort", "val_loss")
    assert code == 0 and "elbo (computed differently)" in out
    assert "sort by a held-out metric" not in err  # elbo, iwae_nll are not comparable here
    assert "no held-out metric here is computed alike in every run" in err

    folders = _bernoulli_and_gaussian(tmp_path / "some", {"energy_distance": 0.1})
    code, _, err = run_cli("compare", *folders, "--sort", "val_loss")
    assert code == 0
    assert "sort by a held-out metric (energy_distance), in the data's units" in err
