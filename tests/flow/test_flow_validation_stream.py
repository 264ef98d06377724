"""A dequantized flow's validation draws its noise from a stream of its own.

Validation dequantizes the held-out levels too; were its noise drawn from training's
generator, each validation would move training's draws on, and how often validation runs
(or early stopping on a val_ metric) would change the trained weights.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.spec import load_spec_text

SPEC = """\
spec_version: 1
name: flow-validation-stream
seed: 5
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: flow
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: logit}
    - {type: affine_coupling, mask: checkerboard, hidden: [8]}
"""


def trained_weights(model_module, validate: bool) -> list[np.ndarray]:
    keras.utils.set_random_seed(0)
    levels = np.random.default_rng(0).integers(0, 17, size=(64, 8, 8, 1))
    x = (levels / 16).astype("float32")
    train = tf.data.Dataset.from_tensor_slices(x[:48]).batch(16)
    held_out = tf.data.Dataset.from_tensor_slices(x[48:]).batch(16)
    model = model_module.build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(
        train, epochs=3, validation_data=held_out if validate else None, shuffle=False, verbose=0
    )
    return [np.asarray(w) for w in model.get_weights()]


def test_validating_every_epoch_or_never_gives_the_same_weights(tmp_path: Path) -> None:
    result = build(load_spec_text(SPEC), tmp_path / "flow")
    module = import_generated(result.directory, result.plan.package, "model")
    never = trained_weights(module, validate=False)
    every_epoch = trained_weights(module, validate=True)
    assert len(never) == len(every_epoch)
    for a, b in zip(never, every_epoch, strict=True):
        np.testing.assert_array_equal(a, b)
