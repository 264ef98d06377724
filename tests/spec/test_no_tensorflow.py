"""Validating and compiling a spec must not import TensorFlow or Keras, and must be fast."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

PROBE = """
import json, sys
from pathlib import Path
import gencompile.spec
import gencompile.compiler.lower
from gencompile.spec import load_spec
from gencompile.compiler.lower import lower
overrides = json.loads(sys.argv[1])  # spec file name -> the --set values it needs
lowered = []
for path in sorted(Path("specs").glob("*.yaml")):
    plan = lower(load_spec(path, overrides.get(path.name, [])))
    lowered.append([path.name, plan.family])
frameworks = ("tensorflow", "keras", "tf_keras", "jax", "torch")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in frameworks)
print(json.dumps({"lowered": lowered, "heavy": heavy}))
"""


def test_specs_exist() -> None:
    assert len(SPECS) >= 4


def test_load_and_lower_import_no_tensorflow(example_overrides) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    overrides = json.dumps({p.name: example_overrides(p) for p in SPECS})
    result = subprocess.run(
        [sys.executable, "-c", PROBE, overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [name for name, _ in report["lowered"]] == [p.name for p in SPECS]
    assert report["heavy"] == []
    assert "tensorflow" not in report["heavy"] and "keras" not in report["heavy"]


def test_load_and_lower_is_fast() -> None:
    from gencompile.compiler.families import REGISTRY  # noqa: F401  (imports done up front)
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec

    # CPU time, best of three, with the collector paused: in a pytest worker that has
    # built Keras models, a full garbage collection or a busy neighbour can add most of
    # a second of wall time that has nothing to do with the spec language.
    path = ROOT / "specs" / "vae_digits_conv.yaml"
    timings = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            start = time.process_time()
            plan = lower(load_spec(path))
            timings.append(time.process_time() - start)
    finally:
        gc.enable()
    assert plan.name == "vae-digits-conv"
    assert min(timings) < 0.25, f"load + lower took {min(timings):.3f} s of CPU at best"
