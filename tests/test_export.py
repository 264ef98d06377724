"""The SavedModel export's generating signatures, reloaded with `tf.saved_model.load` in a
fresh process (TensorFlow alone: no gencompile, no Keras model code) and called there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import quick

ROOT = Path(__file__).resolve().parents[1]
FEW = ["training.epochs=1", "training.steps_per_epoch=3", "evaluation.metrics=[]"]
EXPORT = "output.export=[keras, saved_model]"

# Runs in a child process: loads the SavedModel, calls each signature named on the command
# line, and prints what it got as JSON.
PROBE = """
import json, sys
import numpy as np
import tensorflow as tf

folder, calls = sys.argv[1], json.loads(sys.argv[2])
loaded = tf.saved_model.load(folder)
found = {"endpoints": [n for n in ("serve", "sample", "log_prob", "score", "encode", "decode")
                       if hasattr(loaded, n)]}
for key, (name, args) in calls.items():
    tensors = [tf.constant(a, tf.float32 if isinstance(a, list) and a and isinstance(
        np.asarray(a).flat[0].item(), float) else tf.int32) for a in args]
    out = getattr(loaded, name)(*tensors)
    out = out if isinstance(out, dict) else {"value": out}
    found[key] = {k: ([b.decode("utf-8") for b in v.numpy().tolist()] if v.dtype == tf.string
                      else v.numpy().tolist()) for k, v in out.items()}
print("RESULT " + json.dumps(found))
"""


def probe(folder: Path, calls: dict[str, tuple[str, list]]) -> dict:
    """What a fresh Python process gets from the SavedModel's signatures."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)  # TensorFlow alone: gencompile is not importable there
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), json.dumps(calls)],
        capture_output=True, text=True, timeout=300, env=env, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(out for out in done.stdout.splitlines() if out.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gencompile.runs import train

    folder = tmp_path_factory.mktemp("export")
    spec = ROOT / "specs" / "vae_digits.yaml"
    return train(spec, quick(spec, [*FEW, EXPORT]), run_dir=folder / "run", quiet=True).run_dir


@pytest.mark.slow  # test_end_to_end serves a VAE's export in the default tier
def test_vae_saved_model_samples_encodes_and_decodes(vae_run: Path, tmp_path: Path) -> None:
    from gencompile.sampling import sample

    x = np.linspace(0.0, 16.0, 2 * 64).reshape(2, 8, 8, 1).round().tolist()
    got = probe(
        vae_run / "saved_model",
        {
            "first": ("sample", [4, 7]),
            "again": ("sample", [4, 7]),
            "other": ("sample", [4, 8]),
            "encoded": ("encode", [x]),
            "decoded": ("decode", [[[0.5] * 8, [-0.5] * 8]]),
        },
    )
    assert got["endpoints"] == ["serve", "sample", "encode", "decode"]
    first = np.asarray(got["first"]["value"])
    assert first.shape == (4, 8, 8, 1) and first.min() >= 0.0 and first.max() <= 16.0
    np.testing.assert_array_equal(first, got["again"]["value"])  # same seed, same samples
    assert not np.array_equal(first, got["other"]["value"])
    assert np.asarray(got["encoded"]["z_mean"]).shape == (2, 8)
    # In data units, as `gencompile sample --seed 7` writes them.
    with np.load(sample(vae_run, 4, tmp_path / "s.npz", seed=7)) as files:
        np.testing.assert_allclose(first, files["samples"], rtol=1e-5, atol=1e-4)
    decoded = np.asarray(got["decoded"]["value"])
    assert decoded.shape == (2, 8, 8, 1) and decoded.min() >= 0.0 and decoded.max() <= 16.0


# spec, settings, signatures, arguments of `sample`
FAMILIES = [
    ("diffusion_swissroll.yaml", ["data.source.n_samples=2000"], ["serve", "sample"], [5, 3]),
    # DPM-Solver++ 3M: a tf.cond (lower order on the first steps) inside the exported loop
    (
        "diffusion_swissroll.yaml",
        ["data.source.n_samples=2000", "model.sampler={type: dpm_solver, steps: 10, order: 3}"],
        ["serve", "sample"],
        [5, 3],
    ),
    ("cdiffusion_digits.yaml", [], ["serve", "sample"], [4, 3, 2]),
    ("gan_ring8.yaml", ["data.source.n_samples=2000"], ["serve", "sample", "score"], [5, 3]),
    ("cgan_digits.yaml", [], ["serve", "sample", "score"], [4, 3, 2]),
    ("flow_moons.yaml", [], ["serve", "sample", "log_prob", "score"], [5, 3]),
    ("gmm_blobs.yaml", [], ["serve", "sample", "log_prob", "score"], [5, 3]),
    ("pixelcnn_digits.yaml", [], ["serve", "sample", "log_prob", "score"], [2, 3]),
    ("charlm_arithmetic.yaml", ["data.source.n_samples=2000"], ["serve", "sample"], [3, 3]),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "settings", "signatures", "args"),
    FAMILIES,
    ids=[f[0] + ("-dpm_solver_3m" if "order: 3" in str(f[1]) else "") for f in FAMILIES],
)
def test_every_family_exports_a_sampler(
    tmp_path: Path, spec: str, settings: list[str], signatures: list[str], args: list[int]
) -> None:
    from gencompile.runs import train

    run = train(
        ROOT / "specs" / spec, quick(spec, [*FEW, *settings, EXPORT]), run_dir=tmp_path / "run"
    )
    calls = {"first": ("sample", args), "again": ("sample", args)}
    calls["other"] = ("sample", [args[0], args[1] + 1, *args[2:]])
    got = probe(run.run_dir / "saved_model", calls)
    assert got["endpoints"] == signatures
    if spec.startswith("charlm"):
        texts, tokens = got["first"]["text"], np.asarray(got["first"]["tokens"])
        assert len(texts) == 3 and tokens.shape[0] == 3 and got["again"]["text"] == texts
        assert got["other"]["text"] != texts
        return
    first = np.asarray(got["first"]["value"])
    assert first.shape[0] == args[0] and np.isfinite(first).all()
    np.testing.assert_array_equal(first, got["again"]["value"])
    assert not np.array_equal(first, got["other"]["value"])
    if "score" in signatures:
        conditional = len(args) == 3
        scored = [first.tolist(), *([[args[2]] * args[0]] if conditional else [])]
        scores = probe(run.run_dir / "saved_model", {"s": ("score", scored)})["s"]["value"]
        assert np.asarray(scores).shape == (args[0],) and np.isfinite(scores).all()
