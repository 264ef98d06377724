"""`global_clipnorm` with parts at a learning-rate factor of 0 (training.fine_tune).

A part frozen until `unfreeze_after_epochs` (or held at a multiplier of 0) must train the
rest as Keras freezing does: its gradients are left out of the global norm, so the other
weights' updates are bit for bit those of a run that freezes it in Keras. Once unfrozen,
its gradients count again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.compiler.lower import lower
from gencompile.compiler.project import render_project
from gencompile.runs import train
from gencompile.runtime import fine_tune
from gencompile.spec import load_spec
from tests.transfer.test_fine_tune import Snapshots, TwoNetworks

REPO = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
CLIP = 0.01  # far below the gradients' norm: every step is clipped
OPTIMIZERS: dict[str, Callable[[], keras.optimizers.Optimizer]] = {
    "sgd": lambda: keras.optimizers.SGD(0.1, global_clipnorm=CLIP),
    "adam": lambda: keras.optimizers.Adam(0.01, global_clipnorm=CLIP),
}
ENCODER = range(4)  # kernel and bias of the encoder's two layers, then the decoder's


def data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def fitted(
    config: dict[str, Any] | None,
    epochs: int,
    optimizer: Callable[[], keras.optimizers.Optimizer],
    keras_frozen: bool = False,
) -> tuple[list[np.ndarray], Snapshots]:
    """Initial weights and those after each epoch (one batch an epoch); `keras_frozen`:
    the encoder `trainable=False`, Keras' own freezing."""
    keras.utils.set_random_seed(3)
    model = TwoNetworks()
    model.encoder.trainable = not keras_frozen
    model.compile(optimizer=optimizer(), loss="mse")
    x, y = data()
    model(x[:1])
    initial = [np.array(w) for w in model.get_weights()]
    snapshots = Snapshots()
    schedule = fine_tune.callbacks(model, {} if config is None else {"fine_tune": config})
    callbacks = [*schedule, snapshots]
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return initial, snapshots


SCHEDULED = {"unfreeze_after_epochs": 5, "learning_rate_multipliers": {}, "frozen": ["encoder"]}
HELD = {"unfreeze_after_epochs": None, "learning_rate_multipliers": {"encoder": 0.0}, "frozen": []}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("config", [SCHEDULED, HELD], ids=["scheduled", "multiplier_0"])
def test_a_part_at_a_factor_of_0_is_left_out_of_the_global_clip(
    optimizer: str, config: dict[str, Any]
) -> None:
    initial, frozen = fitted(None, 3, OPTIMIZERS[optimizer], keras_frozen=True)
    _, scheduled = fitted(config, 3, OPTIMIZERS[optimizer])
    for epoch in range(3):
        for i, start in enumerate(initial):
            if i in ENCODER:
                assert np.array_equal(scheduled.after[epoch][i], start)
            else:
                assert not np.array_equal(frozen.after[epoch][i], start)  # it trains
                assert np.array_equal(scheduled.after[epoch][i], frozen.after[epoch][i])


def test_an_unfrozen_parts_gradients_count_in_the_global_clip_again() -> None:
    """Epoch 2, after unfreezing: SGD's step is the learning rate times every gradient
    clipped together (the encoder's in the norm), computed here by hand."""
    config = {**SCHEDULED, "unfreeze_after_epochs": 1}
    _, run = fitted(config, 2, OPTIMIZERS["sgd"])
    model = TwoNetworks()
    x, y = data()
    model(x[:1])
    model.set_weights(run.after[0])
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    clipped, _ = tf.clip_by_global_norm(grads, CLIP)
    for i, (before, grad) in enumerate(zip(run.after[0], clipped, strict=True)):
        np.testing.assert_allclose(run.after[1][i], before - 0.1 * grad.numpy(), atol=1e-7)
    assert np.any(run.after[1][0] != run.after[0][0])


def test_the_gradients_of_what_trains_leave_out_a_part_at_a_factor_of_0() -> None:
    """`fine_tune.trained`, whose norm the generated train_step logs as grad_norm: the
    encoder's gradients are zeros while it is frozen, themselves once it unfreezes."""
    keras.utils.set_random_seed(3)
    model = TwoNetworks()
    model.compile(optimizer=OPTIMIZERS["sgd"](), loss="mse")
    x, y = data()
    model(x[:1])
    [schedule] = fine_tune.callbacks(model, {"fine_tune": SCHEDULED})
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    schedule.on_epoch_begin(0)
    frozen = fine_tune.trained(model, grads, model.trainable_weights)
    schedule.on_epoch_begin(5)
    unfrozen = fine_tune.trained(model, grads, model.trainable_weights)
    for i, grad in enumerate(grads):
        assert np.any(grad.numpy() != 0)
        assert np.array_equal(frozen[i], np.zeros_like(grad) if i in ENCODER else grad)
        assert np.array_equal(unfrozen[i], grad)
    assert fine_tune.trained(TwoNetworks(), grads, model.trainable_weights) == grads


@pytest.mark.slow
def test_a_vae_frozen_until_later_trains_and_logs_as_one_frozen_in_keras(
    tiny_vae_spec: Path, tmp_path: Path
) -> None:
    """The generated VAE with its encoder frozen in Keras, and frozen until epoch 5: with
    `global_clipnorm` the decoders come out bit for bit equal, and so does the loss (no
    regularisation here); grad_norm counts the decoder's gradients alone in both."""
    common = [
        "model.encoder.freeze=true",
        "training.optimizer.clipnorm=null",
        "training.optimizer.global_clipnorm=0.1",
        "evaluation.metrics=[elbo]",
    ]
    runs = {
        name: train(tiny_vae_spec, [*common, *more], run_dir=tmp_path / name, quiet=True).run_dir
        for name, more in [
            ("keras", []),
            ("scheduled", ["training.fine_tune.unfreeze_after_epochs=5"]),
        ]
    }
    weights = {name: h5py.File(run / "model.weights.h5", "r") for name, run in runs.items()}
    kernels = [key for key in walk(weights["keras"]) if key.startswith(("decoder/", "encoder/"))]
    assert any(key.startswith("decoder/") for key in kernels)
    for key in kernels:
        assert np.array_equal(weights["keras"][key][...], weights["scheduled"][key][...]), key
    logs = {name: (run / "history.csv").read_text().splitlines() for name, run in runs.items()}
    header = logs["keras"][0].split(",")
    rows = {
        name: dict(zip(header, lines[1].split(","), strict=True)) for name, lines in logs.items()
    }
    assert rows["keras"]["loss"] == rows["scheduled"]["loss"]
    norms = [float(rows[name]["grad_norm"]) for name in runs]
    assert norms[1] == pytest.approx(norms[0], rel=1e-5)


def walk(group: h5py.Group, prefix: str = "") -> list[str]:
    """The paths of the datasets in an HDF5 group."""
    found = []
    for name, item in group.items():
        path = f"{prefix}{name}"
        found += walk(item, f"{path}/") if isinstance(item, h5py.Group) else [path]
    return found


# (example spec, a network of it, mixed precision): every family training.fine_tune takes.
FAMILIES = [
    ("vae_digits", "encoder", False),
    ("vae_digits", "encoder", True),
    ("dcgan_digits", "generator", False),
    ("dcgan_digits", "generator", True),
    ("diffusion_ring8", "denoiser", False),
    ("diffusion_ring8", "denoiser", True),
    ("charlm_text", "network", False),
    ("pixelcnn_digits", "network", False),
]


@pytest.mark.parametrize(("name", "network", "mixed"), FAMILIES)
def test_every_family_logs_the_norm_of_the_gradients_of_what_trains(
    name: str, network: str, mixed: bool, example_overrides: Callable[[Path], list[str]]
) -> None:
    """With training.fine_tune, the generated train_step tracks its gradient norms over
    `fine_tune.trained`'s gradients (as many as it tracks), and the module is clean."""
    spec = REPO / f"specs/{name}.yaml"
    overrides = [
        *example_overrides(spec),
        f"training.fine_tune.learning_rate_multipliers={{{network}: 0.0}}",
        *(["training.mixed_precision=true"] if mixed else []),
    ]
    loaded = load_spec(spec, overrides)
    plan = lower(loaded)
    source = render_project(loaded, plan)[f"{plan.package}/model.py"]
    tracked = source.count("grad_norm_tracker, ") + source.count("grad_norm_tracker.update_state(")
    assert source.count("fine_tune.trained(self, ") == tracked > 0
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--isolated", "--select", "E9,F", "-"],
        input=source,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


def test_none_trains_while_every_weight_is_at_a_factor_of_0() -> None:
    """What GradientMonitor needs to tell a held network's norm of 0 from vanishing."""
    model = TwoNetworks()
    model.compile(optimizer=OPTIMIZERS["sgd"](), loss="mse")
    model(data()[0][:1])
    [schedule] = fine_tune.callbacks(model, {"fine_tune": SCHEDULED})
    encoder, everything = model.encoder.trainable_weights, model.trainable_weights
    schedule.on_epoch_begin(0)
    assert fine_tune.none_trains(model, encoder) and not fine_tune.none_trains(model, everything)
    schedule.on_epoch_begin(5)
    assert not fine_tune.none_trains(model, encoder)
    assert not fine_tune.none_trains(TwoNetworks(), encoder) and not fine_tune.none_trains(
        model, []
    )


def test_a_network_held_at_0_is_no_vanishing_gradient() -> None:
    """A norm of 0 from a network that trains nothing this epoch (every part frozen until
    later) is no warning; once it trains, a norm of ~0 is one."""
    from gencompile.runtime.callbacks import GradientMonitor

    model = TwoNetworks()
    model.compile(optimizer=OPTIMIZERS["sgd"](), loss="mse")
    model(data()[0][:1])
    everything = {**SCHEDULED, "frozen": ["encoder", "decoder"]}
    [schedule] = fine_tune.callbacks(model, {"fine_tune": everything})
    said: list[str] = []
    monitor = GradientMonitor(warn=said.append)
    monitor.set_model(model)
    schedule.on_epoch_begin(0)
    monitor.on_epoch_end(0, {"grad_norm": 0.0})
    assert said == []
    schedule.on_epoch_begin(5)
    monitor.on_epoch_end(5, {"grad_norm": 0.0})
    assert len(said) == 1 and "vanishing" in said[0]
