"""InceptionV3 weights that are not keras' ImageNet file are used (a user's own file), but
the metrics in their features carry a `caveat`: the CLI prints it under the metrics, the
report shows it beside the number, `compare` under its table."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gencompile.runtime.metrics import features, samples
from gencompile.runtime.metrics.features import NOT_IMAGENET_WEIGHTS, InceptionNetwork

IMAGES = {"type": "npz", "path": "faces.npz"}  # images of unknown units: not the digits


def spaces_with(monkeypatch: pytest.MonkeyPatch, imagenet: bool) -> samples.FeatureSpaces:
    """Feature spaces whose InceptionV3 loaded a file (`imagenet`: keras' own), with the
    network's features faked: what is tested is what computed_with says of them."""
    network = InceptionNetwork(None, "mine.h5", "ab" * 32, imagenet)  # type: ignore[arg-type]

    def fake_features(_: Any, images: np.ndarray, __: Any) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(len(images))
        return rng.normal(size=(len(images), 8)), rng.dirichlet(np.ones(10), len(images))

    monkeypatch.setattr(features, "inception_network", lambda weights: network)
    monkeypatch.setattr(features, "inception_features", fake_features)
    rng = np.random.default_rng(0)
    real, fake = rng.random((40, 6, 6, 1)), rng.random((30, 6, 6, 1))
    data = SimpleNamespace(source=IMAGES, kind="image")
    return samples.FeatureSpaces(real, fake, data, {"inception_weights": "mine.h5"})


@pytest.mark.parametrize("metric", ["inception_score", "kid", "precision_recall"])
def test_inception_metrics_of_other_weights_carry_the_caveat(
    monkeypatch: pytest.MonkeyPatch, metric: str
) -> None:
    _, how = samples.METRICS[metric](spaces_with(monkeypatch, imagenet=False))
    assert how["caveat"] == NOT_IMAGENET_WEIGHTS
    assert how["features"]["keras_imagenet_weights"] is False


def test_keras_imagenet_weights_carry_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _, how = samples.METRICS["inception_score"](spaces_with(monkeypatch, imagenet=True))
    assert "caveat" not in how


def test_the_caveat_is_printed_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    from gencompile.cli import _print_metrics
    from gencompile.report import computed_with_brief

    spaces = SimpleNamespace(described={"inception": {"keras_imagenet_weights": False}})
    how = samples.FeatureSpaces.describe(spaces, "inception")  # type: ignore[arg-type]
    _print_metrics({"inception_score": 1.0, "inception_score_std": 0.0}, {"inception_score": how})
    lines = capsys.readouterr().out.splitlines()
    assert f"caveat: inception_score: {NOT_IMAGENET_WEIGHTS}" in lines
    assert computed_with_brief(how).startswith(NOT_IMAGENET_WEIGHTS)
