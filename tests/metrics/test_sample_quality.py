"""Sample-quality metrics through real runs: a VAE on the digits, a mixture on ring8, and
the report that shows them."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencompile.errors import SpecError
from gencompile.generated import import_generated
from gencompile.report import compare_runs, format_value
from gencompile.runs import evaluate, train
from gencompile.runtime.data import load_data
from gencompile.runtime.metrics.distances import frechet_distance_of
from gencompile.runtime.metrics.features import digits_classifier, digits_features
from gencompile.runtime.metrics.samples import sample_quality

ROOT = Path(__file__).resolve().parents[2]
DIGITS_METRICS = "evaluation.metrics=[elbo, fd_digits, kid, precision_recall]"

RING8 = """
spec_version: 1
name: gmm-ring8
seed: 5
data:
  source: {type: builtin, name: ring8, n_samples: 4000}
  validation_split: 0.25
  batch_size: 1000
model: {family: mixture, components: 8, covariance: full}
evaluation:
  metrics: [nll, mode_coverage, energy_distance, precision_recall]
  num_samples: 1000
"""


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory):
    overrides = [DIGITS_METRICS, "evaluation.num_samples=600", "evaluation.importance_samples=8"]
    run_dir = tmp_path_factory.mktemp("vae") / "run"
    spec = ROOT / "specs" / "vae_digits.yaml"
    return train(spec, overrides, epochs=15, run_dir=run_dir, quiet=True)


def test_fd_digits_is_lower_for_a_trained_vae_than_an_untrained_one(digits_run) -> None:
    trained = digits_run.metrics
    module = import_generated(digits_run.run_dir, "vae_digits")
    data = load_data(module.DATA, seed=module.SEED)
    config = {**module.EVALUATION, "metrics": ["fd_digits"]}
    untrained = sample_quality(module.build_model(), data, config)
    # Real digits against real digits: what a perfect generator would score.
    classifier = digits_classifier()
    real = data.preprocessor.inverse(data.x_train[:600])
    held_out = data.preprocessor.inverse(data.x_val)
    real_fd = frechet_distance_of(
        digits_features(classifier, real), digits_features(classifier, held_out)
    )
    assert untrained["fd_digits"] > 10 * real_fd
    assert trained["fd_digits"] < 0.5 * untrained["fd_digits"]
    assert trained["fd_digits_classifier_accuracy"] > 0.95
    assert 0 <= trained["precision"] <= 1 and 0 <= trained["recall"] <= 1
    assert np.isfinite(trained["kid"]) and trained["kid_std"] > 0


def test_report_of_the_digits_run_embeds_and_links_its_pictures(digits_run) -> None:
    run = digits_run.run_dir
    samples = run / "samples.png"
    with Image.open(samples) as picture:
        assert picture.size == (263, 263)  # 8 x 8 cells of 32 px and 7 separators
    page = (run / "report.html").read_text()
    for name in ("samples.png", "curves.png"):
        assert f'href="{name}"' in page
        embedded = re.search(rf'href="{name}"><img src="data:image/png;base64,([^"]+)"', page)
        assert embedded and base64.b64decode(embedded[1]) == (run / name).read_bytes()
    for name, value in digits_run.metrics.items():
        assert f'<td>{name}</td><td class="num">{format_value(value)}</td>' in page
    assert "digits-classifier feature units" in page
    lock = json.loads((run / "spec.lock.json").read_text())
    assert (
        lock["resolved_spec_sha256"] in page
        and lock["resolved_spec_sha256"] in (run / "report.md").read_text()
    )
    assert "<script" not in page  # self-contained and inert


def test_mixture_on_ring8_captures_every_mode(tmp_path: Path, run_cli) -> None:
    spec = tmp_path / "gmm_ring8.yaml"
    spec.write_text(RING8)
    result = train(spec, run_dir=tmp_path / "run", quiet=True)
    metrics = result.metrics
    assert metrics["modes_captured"] == 8
    assert metrics["high_quality"] > 0.95
    assert metrics["energy_distance"] < 0.05
    assert metrics["precision"] > 0.8 and metrics["recall"] > 0.8
    # evaluate recomputes a chosen metric in place; compare shows both runs side by side
    again = evaluate(result.run_dir, ["mode_coverage"])
    assert again == {k: metrics[k] for k in ("modes_captured", "high_quality")}
    table = compare_runs([result.run_dir, result.run_dir])
    rows = {name: values for name, values, _ in table.rows}
    assert rows["modes_captured"] == ["8", "8"]
    assert table.runs == [f"gmm-ring8/{result.run_dir.name}"] * 2
    code, out, _ = run_cli("compare", str(result.run_dir), str(tmp_path / "run"), "--format", "csv")
    assert code == 0
    assert [row["modes_captured"] for row in csv.DictReader(out.splitlines())] == ["8.0", "8.0"]
    code, _, err = run_cli("compare", str(result.run_dir), str(tmp_path))
    assert code == 1 and "is not a gencompile run or project" in err


def test_evaluate_refuses_metrics_the_run_cannot_compute(digits_run, run_cli) -> None:
    with pytest.raises(SpecError) as info:
        evaluate(digits_run.run_dir, ["mode_coverage", "energy_distance", "iwae_nl"])
    text = str(info.value)
    assert "--metrics: evaluation.metrics[0]: metric 'mode_coverage' is defined for" in text
    assert "metric 'iwae_nl' is not available for family vae" in text
    code, _, err = run_cli("evaluate", str(digits_run.run_dir), "--metrics", "energy_distance")
    assert code == 2
    assert "--metrics: evaluation.metrics[0]: metric 'energy_distance' is computed on" in err
