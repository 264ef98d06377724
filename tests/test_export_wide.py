"""The SavedModel export of a run with a wide feature (unix timestamps): its data units are
float64 as `gencompile sample`'s are, in and out; every other run's export stays float32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_wide_feature_outputs import table

SPEC = """\
spec_version: 1
name: wide-vae
seed: 7
data:
  source: {{type: csv, path: {path}}}
  preprocessing: {{standardize: true}}
  batch_size: 100
model:
  family: vae
  latent_dim: 2
  encoder: {{mlp: [8]}}
  decoder: {{mlp: [8]}}
  likelihood: {{type: gaussian, sigma: learned}}
training: {{epochs: 1}}
evaluation: {{metrics: []}}
output: {{export: [keras, saved_model]}}
"""


def exported_run(folder: Path, wide: bool) -> Path:
    """A tiny VAE of `table(wide)` with a SavedModel."""
    from gencompile.runs import train

    folder.mkdir()
    rows = table(wide)
    (folder / "t.csv").write_text("t,v\n" + "".join(f"{a:.3f},{b:.5f}\n" for a, b in rows))
    (folder / "vae.yaml").write_text(SPEC.format(path=folder / "t.csv"))
    return train(folder / "vae.yaml", run_dir=folder / "run", quiet=True).run_dir


def input_dtype(function: Any) -> Any:
    """The dtype of a restored signature's one input."""
    (spec,) = function.concrete_functions[0].structured_input_signature[0]
    return spec.dtype


@pytest.mark.slow
def test_a_timestamp_runs_export_is_float64_and_equals_gencompile_sample(
    run_cli: Any, tmp_path: Path
) -> None:
    import tensorflow as tf

    run = exported_run(tmp_path / "wide", wide=True)
    loaded = tf.saved_model.load(str(run / "saved_model"))
    exported = loaded.sample(tf.constant(5), tf.constant(3)).numpy()
    out = tmp_path / "s.npz"
    code, _, err = run_cli("sample", str(run), "-n", "5", "--seed", "3", "-o", str(out))
    assert code == 0, err
    with np.load(out) as files:
        sampled = files["samples"]
    assert exported.dtype == sampled.dtype == np.float64
    # Equal up to the last bit of the model's float32 draw (4e-4 s at a std of an hour);
    # float32 data units would be up to 64 s away.
    np.testing.assert_allclose(exported, sampled, rtol=0, atol=1e-2)
    assert np.abs(exported[:, 0] % 128).max() > 1  # not float32's 128 s steps
    decoded = loaded.decode(tf.zeros((1, 2))).numpy()
    assert decoded.dtype == np.float64 and decoded[0, 0] % 128 != 0
    # x reaches the float64 map unrounded: 1 s apart is two inputs, not one float32.
    assert input_dtype(loaded.encode) == tf.float64
    x = tf.constant([[1.7e9, 0.0], [1.7e9 + 1.0, 0.0]], tf.float64)
    z_mean = loaded.encode(x)["z_mean"].numpy()
    assert not np.array_equal(z_mean[0], z_mean[1])

    plain = tf.saved_model.load(str(exported_run(tmp_path / "plain", wide=False) / "saved_model"))
    assert plain.sample(tf.constant(5), tf.constant(3)).dtype == tf.float32
    assert plain.decode(tf.zeros((1, 2))).dtype == tf.float32
    assert input_dtype(plain.encode) == tf.float32
