"""A mixture needs a training example per component: refused at model.components when the
spec says how many examples there are, and with a clear RunError when file data is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencompile.errors import RunError
from gencompile.runtime import mixture

ROOT = Path(__file__).resolve().parents[2]

NPY_SPEC = """\
spec_version: 1
name: gmm-few
data:
  source: {type: npy, path: x.npy}
  validation_split: 0.1
  batch_size: 8
model:
  family: mixture
  components: 32
  algorithm: {type: em, max_iter: 1}
evaluation:
  metrics: [nll]
output:
  samples: {count: 4, format: npz}
  tensorboard: false
"""


@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_the_initialisation_refuses_fewer_examples_than_components(init: str) -> None:
    x = np.random.default_rng(0).normal(size=(18, 2))
    message = (
        "model.components=32 needs at least 32 training examples, but the training split "
        "holds 18; lower model.components or use more data"
    )
    with pytest.raises(RunError) as caught:
        mixture.initial_statistics(x, 32, init, 0, "full", 2)
    assert str(caught.value) == message
    with pytest.raises(RunError) as caught:
        mixture.starts_statistics(x, 32, init, 0, "full", 2, starts=2)
    assert str(caught.value) == message
    assert len(mixture.initial_statistics(x, 18, init, 0, "full", 2)) > 0  # one each: enough


def test_training_on_a_file_with_too_few_examples_fails_with_a_message(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(20, 2)).astype("float32"))
    (tmp_path / "spec.yaml").write_text(NPY_SPEC)
    code, _, err = run_cli("train", "spec.yaml", "--runs-dir", "runs")
    assert code == 1, err
    assert "model.components=32 needs at least 32 training examples" in err
    assert "holds 18" in err and "Traceback" not in err


def test_built_in_data_with_too_few_examples_is_refused_when_validating(run_cli) -> None:
    spec = str(ROOT / "specs" / "gmm_moons.yaml")
    sets = ["--set", "data.source.n_samples=20", "--set", "model.components=32"]
    code, _, err = run_cli("validate", spec, *sets)
    assert code == 2
    assert (
        "--set: model.components: 32 components need at least 32 training examples, but the "
        "data leaves 18 (20 examples, 2 held out by data.validation_split) "
        "(use at most 18 components, or more data)"
    ) in err
    code, _, _ = run_cli("validate", spec, "--set", "data.source.n_samples=20")
    assert code == 0
