"""The moving average of weights that the GAN's generator and the diffusion model's denoiser
sample from (`gencompile.runtime.ema`), on one device and across two replicas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from gencompile.runtime import ema

ROOT = Path(__file__).resolve().parents[2]


def small_net(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(3,))
    h = keras.layers.Dense(4)(x)
    return keras.Model(x, keras.layers.BatchNormalization()(h))


def test_averages_trainable_weights_and_copies_the_others() -> None:
    model, average = small_net(1), small_net(2)
    model.layers[-1].moving_mean.assign(np.full(4, 3.0))  # a statistic that differs
    before = [w.numpy().copy() for w in average.weights]
    current = [w.numpy() for w in model.weights]
    ema.update(average, model, decay=0.9)
    for variable, old, new, after in zip(
        model.weights, before, current, average.weights, strict=True
    ):
        expected = 0.9 * old + 0.1 * new if variable.trainable else new
        np.testing.assert_allclose(after.numpy(), expected, rtol=1e-6)


def test_follows_faster_in_its_first_updates() -> None:
    model, average = small_net(1), small_net(2)
    old = average.weights[0].numpy().copy()
    ema.update(average, model, decay=0.999, step=1)  # min(0.999, 2 / 11)
    d = 2.0 / 11.0
    expected = d * old + (1 - d) * model.weights[0].numpy()
    np.testing.assert_allclose(average.weights[0].numpy(), expected, rtol=1e-6)


# TensorFlow fixes its devices when it starts: two logical CPUs need a fresh process.
MIRRORED = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from gencompile.runtime import ema

def net(seed):
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(3,))
    return keras.Model(x, keras.layers.BatchNormalization()(keras.layers.Dense(4)(x)))

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model, average = net(1), net(2)
model.layers[-1].moving_mean.assign(np.full(4, 3.0))
before = [w.numpy() for w in average.weights]
strategy.run(tf.function(lambda: ema.update(average, model, 0.9, step=tf.constant(100))))
copies = [[c.numpy().tolist() for c in w.value.values] for w in average.weights]
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "before": [w.tolist() for w in before],
    "model": [w.numpy().tolist() for w in model.weights],
    "trainable": [w.trainable for w in model.weights],
    "copies": copies,
}))
"""


@pytest.mark.slow
def test_one_cross_replica_update_under_a_mirrored_strategy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    for old, new, trainable, copies in zip(
        out["before"], out["model"], out["trainable"], out["copies"], strict=True
    ):
        expected = 0.9 * np.array(old) + 0.1 * np.array(new) if trainable else np.array(new)
        for copy in copies:  # every device's copy holds the same new value
            np.testing.assert_allclose(copy, expected, rtol=1e-6)
