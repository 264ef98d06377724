"""What the sample metrics compare: the modes the data holds, the images' nominal range,
enough samples for FID's covariances. Small arrays, no training."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gencompile.runtime import sources
from gencompile.runtime.metrics import samples as sample_metrics


@pytest.mark.parametrize(("name", "classes"), [("ring8", [0, 1, 2]), ("grid25", [3, 24])])
def test_mode_coverage_counts_the_modes_of_the_classes_kept(name: str, classes: list) -> None:
    """With data.source.classes, a sampler that draws from the data itself covers every
    mode the data has: those of the classes kept, not all of the mixture's."""
    source = {"type": "builtin", "name": name, "n_samples": 2000, "std": 0.01, "classes": classes}
    if name == "ring8":
        source["radius"] = 1.0
    fake, labels = sources._load_builtin(source, 1)
    assert set(np.asarray(labels).tolist()) == set(classes)
    spaces = SimpleNamespace(fake=np.asarray(fake), data=SimpleNamespace(source=source))
    values, how = sample_metrics._mode_coverage(spaces)
    assert values["modes_captured"] == len(classes) == how["modes"]
    assert values["high_quality"] > 0.97  # within 3 std of a 2-d Gaussian: 98.9%
    np.testing.assert_array_equal(
        sources.data_mode_centers(source), sources.mode_centers(name, source)[sorted(classes)]
    )


class StubInception:
    def describe(self) -> dict:
        return {"network": "stub"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"type": "builtin", "name": "digits"}, (0.0, 16.0)),
        ({"type": "builtin", "name": "shapes2d"}, (0.0, 1.0)),
        ({"type": "images", "dir": "faces"}, (0.0, 255.0)),
        ({"type": "keras", "name": "cifar10"}, (0.0, 255.0)),
        ({"type": "tfrecord", "features": {"x": {"type": "image", "name": "x"}}}, (0.0, 255.0)),
    ],
)
def test_inception_sees_the_datas_nominal_range(monkeypatch, source: dict, expected) -> None:
    """Images are mapped to InceptionV3's [-1, 1] from the data's nominal range, not from
    the held-out images' extremes: held-out images whose brightest pixel is below the top
    level must not be stretched (nor the samples with them)."""
    from gencompile.runtime.metrics import features

    seen = []

    def fake_features(network, images, value_range):
        seen.append(value_range)
        return np.zeros((len(images), 4)), np.full((len(images), 2), 0.5)

    monkeypatch.setattr(features, "inception_network", lambda weights: StubInception())
    monkeypatch.setattr(features, "inception_features", fake_features)
    high = expected[1]
    real = np.random.default_rng(0).uniform(0.1 * high, 0.7 * high, (20, 8, 8, 1))
    fake = np.random.default_rng(1).uniform(0.0, high, (20, 8, 8, 1))
    spaces = sample_metrics.FeatureSpaces(real, fake, SimpleNamespace(source=source), {})
    spaces.inception()
    assert seen == [expected, expected]
    described = spaces.described["inception"]
    assert described["input_range"] == list(expected)
    assert described["input_range_from"] == "the data's nominal range"


def test_inception_range_of_arrays_of_unknown_units_is_observed_and_said() -> None:
    real = np.random.default_rng(0).uniform(0.2, 0.7, (20, 8, 8, 1))
    value_range, origin = sample_metrics.inception_range({"type": "npz", "path": "x.npz"}, real)
    assert value_range == (0.0, pytest.approx(real.max()))
    assert "observed" in origin
