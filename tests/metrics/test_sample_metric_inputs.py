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
