""" "Did you mean" hints forgive case, `_` and `-` first, so Keras' own spellings (`AdamW`,
`ReLU`, `LeakyReLU`) get the field's value, in the spec's spelling."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gencompile.errors import SpecError
from gencompile.spec import load_spec
from gencompile.spec.diagnostics import did_you_mean

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("given", "candidates", "meant"),
    [
        ("AdamW", ["adam", "adamw", "rmsprop", "sgd"], "adamw"),
        ("Relu", ["relu", "elu", "selu"], "relu"),
        ("ReLU", ["relu", "elu", "selu"], "relu"),
        ("LeakyReLU", ["relu", "leaky_relu"], "leaky_relu"),
        ("leaky-relu", ["relu", "leaky_relu"], "leaky_relu"),
        ("VAE", ["vae", "gan", "vq_vae"], "vae"),
        ("MNIST", ["mnist", "fashion_mnist"], "mnist"),
        ("resnet50", ["ResNet50", "MobileNetV2"], "ResNet50"),  # the canonical spelling
        ("Gausian", ["gaussian", "bernoulli"], "gaussian"),  # then the closest
    ],
)
def test_the_hint_forgives_case_and_separators(given: str, candidates: list[str], meant: str):
    assert did_you_mean(given, candidates) == f"did you mean '{meant}'?"


def test_no_hint_for_nothing_close() -> None:
    assert did_you_mean("transformer", ["adam", "sgd"]) is None


def test_a_spec_with_keras_spellings_gets_the_right_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "specs" / "vae_digits.yaml", "digits.yaml")
    overrides = ["training.optimizer.type=AdamW", "model.encoder.activation=ReLU"]
    with pytest.raises(SpecError) as info:
        load_spec("digits.yaml", overrides)
    hints = {problem.path: problem.hint for problem in info.value.problems}
    assert hints == {
        "training.optimizer.type": "did you mean 'adamw'?",
        "model.encoder.activation": "did you mean 'relu'?",
    }
