"""Tests of the runtime's optimizer/schedule factories and training callbacks."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, ops

from gencompile.errors import RunError
from gencompile.runtime.callbacks import (
    CheckpointKeeper,
    GradientMonitor,
    HistoryCSV,
    KLWarmup,
    NaNGuard,
    SamplePictures,
)
from gencompile.runtime.optimizers import LinearWarmup, make_optimizer, make_schedule

BASE = {
    "type": "adam",
    "learning_rate": 1e-3,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
    "weight_decay": None,
    "momentum": 0.0,
    "nesterov": False,
    "rho": 0.9,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
}


def lr_at(schedule, step: int) -> float:
    return float(ops.convert_to_numpy(schedule(step)))


# --- optimizers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "cls", "expected"),
    [
        (
            {"type": "adam", "beta_1": 0.5, "beta_2": 0.9, "clipnorm": 1.0},
            keras.optimizers.Adam,
            {"beta_1": 0.5, "beta_2": 0.9, "clipnorm": 1.0, "weight_decay": None},
        ),
        (
            {"type": "adamw", "weight_decay": 0.01, "global_clipnorm": 2.0},
            keras.optimizers.AdamW,
            {"weight_decay": 0.01, "global_clipnorm": 2.0, "beta_1": 0.9},
        ),
        (
            {"type": "rmsprop", "rho": 0.8, "momentum": 0.5, "clipvalue": 0.1},
            keras.optimizers.RMSprop,
            {"rho": 0.8, "momentum": 0.5, "clipvalue": 0.1},
        ),
        (
            {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
            keras.optimizers.SGD,
            {"momentum": 0.9, "nesterov": True, "clipnorm": None},
        ),
    ],
)
def test_make_optimizer_passes_its_arguments_and_steps(overrides, cls, expected):
    config = {**BASE, **overrides}
    optimizer = make_optimizer(config)
    assert type(optimizer) is cls
    for name, value in expected.items():
        actual = getattr(optimizer, name)
        if value is None:
            assert actual is None, name
        else:
            assert actual == pytest.approx(value), name
    assert float(ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(
        config["learning_rate"]
    )

    variable = keras.Variable([1.0, -2.0])
    before = ops.convert_to_numpy(variable).copy()
    optimizer.apply([ops.convert_to_tensor([0.5, -0.5])], [variable])
    after = ops.convert_to_numpy(variable)
    assert np.all(np.isfinite(after))
    assert not np.allclose(before, after)


def test_make_optimizer_rejects_unknown_type():
    with pytest.raises(ValueError, match="adamax"):
        make_optimizer({**BASE, "type": "adamax"})


def test_make_optimizer_with_schedule_round_trips_through_config():
    optimizer = make_optimizer(
        {**BASE, "learning_rate": 0.01},
        {"type": "exponential_decay", "decay_steps": 10, "decay_rate": 0.5, "warmup_steps": 4},
        total_steps=100,
    )
    config = optimizer.get_config()
    assert config["learning_rate"]["class_name"] == "LinearWarmup"
    restored = keras.optimizers.Adam.from_config(config)
    assert float(ops.convert_to_numpy(restored.learning_rate)) == pytest.approx(0.0)
    restored.iterations.assign(14)  # 4 warmup steps, then 10 = one decay period
    assert float(ops.convert_to_numpy(restored.learning_rate)) == pytest.approx(0.005)


# --- schedules --------------------------------------------------------------------------


def test_constant_schedule_is_the_float():
    assert make_schedule(0.01, None, 100) == 0.01
    assert make_schedule(0.01, {"type": "constant"}, 100) == 0.01
    assert make_schedule(0.01, {"type": "constant", "warmup_steps": 0}, 100) == 0.01

    warm = make_schedule(0.01, {"type": "constant", "warmup_steps": 10}, 100)
    assert isinstance(warm, LinearWarmup)
    restored = LinearWarmup.from_config(warm.get_config())
    for schedule in (warm, restored):
        assert [lr_at(schedule, s) for s in (0, 5, 10, 50)] == pytest.approx([0, 0.005, 0.01, 0.01])


def test_cosine_decay_with_warmup():
    schedule = make_schedule(
        1e-3, {"type": "cosine_decay", "warmup_steps": 10, "alpha": 0.0}, total_steps=110
    )
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert lr_at(schedule, 0) == pytest.approx(0.0)
    assert lr_at(schedule, 5) == pytest.approx(5e-4)
    assert lr_at(schedule, 10) == pytest.approx(1e-3)
    assert lr_at(schedule, 60) == pytest.approx(5e-4, rel=1e-4)  # halfway through the cosine
    assert lr_at(schedule, 110) == pytest.approx(0.0, abs=1e-9)


def test_cosine_decay_without_warmup_ends_at_alpha():
    schedule = make_schedule(
        0.1, {"type": "cosine_decay", "warmup_steps": 0, "alpha": 0.1}, total_steps=50
    )
    assert lr_at(schedule, 0) == pytest.approx(0.1)
    assert lr_at(schedule, 50) == pytest.approx(0.01)
    assert lr_at(schedule, 500) == pytest.approx(0.01)


def test_exponential_decay_without_warmup_is_keras_own():
    schedule = make_schedule(
        0.1,
        {"type": "exponential_decay", "decay_steps": 100, "decay_rate": 0.5, "warmup_steps": 0},
        1000,
    )
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    assert lr_at(schedule, 100) == pytest.approx(0.05)


def test_linear_warmup_wrapper_values_and_serialization():
    schedule = make_schedule(
        0.1,
        {"type": "exponential_decay", "decay_steps": 100, "decay_rate": 0.5, "warmup_steps": 20},
        1000,
    )
    assert isinstance(schedule, LinearWarmup)
    expected = {0: 0.0, 5: 0.025, 10: 0.05, 20: 0.1, 120: 0.05, 220: 0.025}
    for step, value in expected.items():
        assert lr_at(schedule, step) == pytest.approx(value, rel=1e-5), step

    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, LinearWarmup)
    assert isinstance(restored.after, keras.optimizers.schedules.ExponentialDecay)
    for step, value in expected.items():
        assert lr_at(restored, step) == pytest.approx(value, rel=1e-5), step


def test_piecewise_constant_values_are_absolute_and_warmup_reaches_the_first():
    plain = make_schedule(
        1.0, {"type": "piecewise_constant", "boundaries": [10, 20], "values": [0.1, 0.01, 0.001]}, 1
    )
    assert [lr_at(plain, s) for s in (0, 10, 11, 21)] == pytest.approx([0.1, 0.1, 0.01, 0.001])

    warm = make_schedule(
        1.0,
        {
            "type": "piecewise_constant",
            "boundaries": [10],
            "values": [0.1, 0.01],
            "warmup_steps": 4,
        },
        1,
    )
    assert [lr_at(warm, s) for s in (0, 2, 4, 15)] == pytest.approx([0.0, 0.05, 0.1, 0.01])


def test_unknown_schedule_type():
    with pytest.raises(ValueError, match="linear_decay"):
        make_schedule(0.1, {"type": "linear_decay"}, 10)


# --- a tiny model whose loss turns NaN --------------------------------------------------


class BlowsUp(keras.Model):
    """Linear regression whose loss (and so its gradients and weights) turn NaN after k steps."""

    def __init__(self, nan_after: int, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)
        self.nan_after = nan_after
        self.steps_done = keras.Variable(0, dtype="int32", trainable=False, name="steps_done")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, x):
        return self.dense(x)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, y = data
        self.steps_done.assign_add(1)
        poison = tf.where(self.steps_done > self.nan_after, float("nan"), 1.0)
        with tf.GradientTape() as tape:
            loss = ops.mean(ops.square(self(x, training=True) - y)) * poison
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def _data(n: int = 8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")


def _model(nan_after: int = 10**9) -> BlowsUp:
    model = BlowsUp(nan_after)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def test_nan_guard_stops_keeps_last_good_checkpoint_and_raises(tmp_path: Path):
    x, y = _data(8)  # batch_size 2 -> 4 batches per epoch; step 10 = epoch 3, batch 2
    model = _model(nan_after=9)
    directory = tmp_path / "checkpoints"
    guard = NaNGuard(directory)
    keeper = CheckpointKeeper(directory, every_epochs=1, keep=3)
    history = model.fit(
        x, y, batch_size=2, epochs=6, shuffle=False, verbose=0, callbacks=[guard, keeper]
    )

    assert len(history.history["loss"]) == 3  # stopped during epoch 3
    assert (guard.failed_epoch, guard.failed_batch) == (3, 2)
    assert not np.all(np.isfinite(ops.convert_to_numpy(model.dense.kernel)))
    assert sorted(p.name for p in directory.glob("*.weights.h5")) == [
        "epoch-0001.weights.h5",
        "epoch-0002.weights.h5",
    ]
    kept = keeper.latest()
    assert kept == directory / "epoch-0002.weights.h5"

    with pytest.raises(RunError) as caught:
        guard.raise_if_failed()
    assert str(caught.value) == (
        f"loss became nan at epoch 3, batch 2; the last good checkpoint is kept at {kept}; "
        "try a lower learning_rate or clipnorm"
    )

    fresh = _model()
    fresh(x[:1])
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(kept)
    assert all(np.all(np.isfinite(ops.convert_to_numpy(w))) for w in fresh.weights)
    assert int(ops.convert_to_numpy(fresh.steps_done)) == 8  # state at the end of epoch 2


def test_nan_guard_without_checkpoint_or_failure(tmp_path: Path):
    guard = NaNGuard(tmp_path / "none")
    guard.raise_if_failed()  # nothing happened: no error
    guard.set_model(_model())
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(0, {"d_loss": 0.5, "g_loss": float("inf")})
    assert guard.model.stop_training
    with pytest.raises(RunError, match=r"g_loss became inf at epoch 1, batch 1; no checkpoint"):
        guard.raise_if_failed()


def test_checkpoint_keeper_keeps_only_the_newest(tmp_path: Path):
    x, y = _data()
    model = _model()
    keeper = CheckpointKeeper(tmp_path, every_epochs=2, keep=2)
    history_path = tmp_path / "history.csv"
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=8,
        verbose=0,
        callbacks=[keeper, HistoryCSV(history_path)],
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    kept = [f"epoch-{n:04d}.{part}" for n in (6, 8) for part in ("json", "rng.npz", "weights.h5")]
    assert names == [*kept, "history.csv"]
    assert keeper.latest() == tmp_path / "epoch-0008.weights.h5"

    with open(history_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert all(math.isfinite(float(r["loss"])) for r in rows)


def test_checkpoint_keeper_skips_non_finite_epochs(tmp_path: Path):
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=5)
    model = _model()
    model(np.zeros((1, 3), dtype="float32"))
    keeper.set_model(model)
    keeper.on_epoch_end(0, {"loss": 1.0})
    keeper.on_epoch_end(1, {"loss": float("nan")})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-0001.json",
        "epoch-0001.rng.npz",
        "epoch-0001.weights.h5",
    ]
    assert CheckpointKeeper(tmp_path / "empty", 1, 1).latest() is None
    with pytest.raises(ValueError, match="keep"):
        CheckpointKeeper(tmp_path, every_epochs=1, keep=0)


def test_gradient_monitor_warns_once_per_key_and_kind():
    said: list[str] = []
    monitor = GradientMonitor(warn=said.append)
    monitor.on_epoch_end(0, {"loss": 1e9, "generator_grad_norm": 1.5, "grad_norm": 0.3})
    assert said == []
    monitor.on_epoch_end(4, {"generator_grad_norm": 3.2e4, "discriminator_grad_norm": 2.0})
    monitor.on_epoch_end(5, {"generator_grad_norm": 5e4})
    assert said == [
        "generator_grad_norm reached 3.2e+04 at epoch 5: gradients are exploding; "
        "lower the learning rate or set clipnorm"
    ]
    monitor.on_epoch_end(6, {"generator_grad_norm": 1e-9, "discriminator_grad_norm": 1e-8})
    monitor.on_epoch_end(7, {"generator_grad_norm": 1e-9})
    assert len(said) == 3
    assert said[1].startswith("discriminator_grad_norm fell to 1.0e-08 at epoch 7")
    assert "vanishing" in said[1] and "vanishing" in said[2]


def test_gradient_monitor_default_uses_warnings():
    with pytest.warns(UserWarning, match="exploding"):
        GradientMonitor(explode=10.0).on_epoch_end(0, {"grad_norm": 11.0})


def test_kl_warmup_values_per_epoch():
    model = _model()
    model.kl_weight = keras.Variable(0.0, trainable=False, name="kl_weight")
    warmup = KLWarmup("kl_weight", target=2.0, warmup_epochs=4)
    warmup.set_model(model)
    seen = []
    for epoch in range(6):
        warmup.on_epoch_begin(epoch)
        seen.append(float(ops.convert_to_numpy(model.kl_weight)))
    assert seen == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])

    always = KLWarmup("kl_weight", target=0.7, warmup_epochs=0)
    always.set_model(model)
    always.on_epoch_begin(0)
    assert float(ops.convert_to_numpy(model.kl_weight)) == pytest.approx(0.7)

    missing = KLWarmup("beta", target=1.0, warmup_epochs=2)
    missing.set_model(model)
    with pytest.raises(RunError, match=r"model\.beta"):
        missing.on_epoch_begin(0)


def test_kl_warmup_reaches_the_compiled_train_step():
    class Probe(BlowsUp):
        def train_step(self, data):
            logs = super().train_step(data)
            return {**logs, "kl_weight": ops.convert_to_tensor(self.kl_weight)}

    model = Probe(10**9)
    model.kl_weight = keras.Variable(0.0, trainable=False, name="kl_weight")
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x, y = _data()
    history = model.fit(
        x, y, batch_size=8, epochs=4, verbose=0, callbacks=[KLWarmup("kl_weight", 1.0, 2)]
    )
    assert history.history["kl_weight"] == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_history_csv_content_and_resume(tmp_path: Path):
    path = tmp_path / "history.csv"
    history = HistoryCSV(path)
    history.on_epoch_end(0, {"loss": 0.5, "kl": np.float32(0.25)})
    history.on_epoch_end(1, {"loss": 0.25, "kl": 0.125, "val_loss": 0.3})
    assert path.read_text() == ("epoch,kl,loss,val_loss\n1,0.25,0.5,\n2,0.125,0.25,0.3\n")
    assert sorted(os.listdir(tmp_path)) == ["history.csv"]

    resumed = HistoryCSV(path)  # a resumed run keeps earlier rows and replaces re-run ones
    resumed.on_epoch_end(1, {"loss": 0.2, "kl": 0.1, "val_loss": 0.3})
    resumed.on_epoch_end(2, {"loss": 0.1, "kl": 0.05, "val_loss": 0.2})
    assert path.read_text().splitlines() == [
        "epoch,kl,loss,val_loss",
        "1,0.25,0.5,",
        "2,0.1,0.2,0.3",
        "3,0.05,0.1,0.2",
    ]


def test_sample_pictures_every_n_epochs(tmp_path: Path):
    calls: list[Path] = []

    def save(samples: np.ndarray, path: Path) -> None:
        assert samples.shape == (4, 2)
        path.write_bytes(b"png")
        calls.append(path)

    pictures = SamplePictures(tmp_path / "samples", 2, lambda: np.zeros((4, 2)), save)
    for epoch in range(5):
        pictures.on_epoch_end(epoch)
    assert [p.name for p in calls] == ["samples-epoch-0002.png", "samples-epoch-0004.png"]
    assert all(p.parent == tmp_path / "samples" for p in calls)

    disabled = SamplePictures(tmp_path / "off", 0, lambda: 1 / 0, save)
    for epoch in range(3):
        disabled.on_epoch_end(epoch)
    assert not (tmp_path / "off").exists()


def test_build_and_compile_creates_the_optimizer_variables_so_the_step_traces_once():
    from gencompile.runtime import training

    traces: list[int] = []

    class Regression(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            traces.append(1)  # runs once per trace of the compiled step
            x, y = data
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x) - y))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"loss": loss}

    def build() -> keras.Model:
        model = Regression()
        model(np.zeros((1, 3), "float32"))  # creates the weights, as generated builders do
        return model

    config = {
        "mixed_precision": False,
        "distribution": {"strategy": "none"},
        "steps_per_epoch": 4,
        "optimizer": BASE,
        "schedule": None,
    }
    model = training.build_and_compile(build, config, data=None, epochs=1)
    assert model.optimizer.built
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8), epochs=1, verbose=0)
    assert len(traces) == 1
