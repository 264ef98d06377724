"""`data.source.classes`: keep some classes of a labelled built-in data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SPEC = """\
spec_version: 1
name: some-digits
data:
  source: {{type: builtin, name: {name}, classes: {classes}}}
  preprocessing: {{scale: [0.0, 1.0]}}
model:
  family: mixture
  components: 2
  covariance: diag
"""


def write(tmp_path: Path, classes: str, name: str = "digits") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(classes=classes, name=name))
    return str(path)


@pytest.mark.parametrize(
    ("name", "classes", "located"),
    [
        (
            "digits",
            "[0, 1, 10, 3]",
            "4:57: data.source.classes[2]: 'digits' has classes 0..9, not 10",
        ),
        ("moons", "[0, 2]", "4:53: data.source.classes[1]: 'moons' has classes 0..1, not 2"),
        ("digits", "[8, 8]", "4:41: data.source.classes: names class 8 twice"),
        ("digits", "[-1]", "4:51: data.source.classes[0]: must be >= 0 (got -1)"),
        ("swiss_roll", "[1]", "data.source.classes: builtin data set 'swiss_roll' has no labels"),
    ],
)
def test_a_bad_class_is_a_located_spec_error(run_cli, tmp_path, name, classes, located) -> None:
    spec = write(tmp_path, classes, name)
    code, _, err = run_cli("validate", spec)
    assert code == 2
    assert f"{spec}:" in err and located in " ".join(err.split()), err


def test_the_filter_is_in_the_generated_config_and_the_lock(run_cli, tmp_path) -> None:
    spec = write(tmp_path, "[0, 1, 2]")
    assert run_cli("build", spec, "-o", str(tmp_path / "p"))[0] == 0
    lock = json.loads((tmp_path / "p" / "spec.lock.json").read_text())
    assert lock["resolved_spec"]["data"]["source"]["classes"] == [0, 1, 2]
    train = (tmp_path / "p" / "some_digits" / "train.py").read_text()
    assert '"classes": [0, 1, 2]' in train


def test_the_loaded_data_holds_those_classes_alone() -> None:
    from sklearn.datasets import load_digits

    from gencompile.runtime.data import load_arrays

    digits = load_digits()
    kept = list(range(9))
    x, y = load_arrays({"type": "builtin", "name": "digits", "classes": kept}, seed=0)
    assert y is not None and sorted(set(y.tolist())) == kept
    assert len(x) == int((digits.target != 9).sum()) == 1797 - 180
    np.testing.assert_array_equal(x[:, :, :, 0], digits.images[digits.target != 9])
    x_all, _ = load_arrays({"type": "builtin", "name": "digits"}, seed=0)
    assert len(x_all) == 1797  # no filter: every class
