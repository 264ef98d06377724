"""The fit loop's cheap defaults: steps per execution, checkpoints by time, validation
every N epochs, and a history.csv that grows by appended lines."""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime import checkpoints
from gencompile.runtime.callbacks import CheckpointKeeper, HistoryCSV
from gencompile.runtime.history_file import read_rows as read_history_rows
from gencompile.runtime.pipeline import epoch_stream
from gencompile.runtime.training import read_history, steps_per_execution, validation_epochs


def _data(steps: int, validation_batches: int = 3) -> SimpleNamespace:
    validation = tf.data.Dataset.range(validation_batches * 4).batch(4)
    return SimpleNamespace(steps_per_epoch=steps, validation=validation)


def _training(**fields: object) -> dict:
    return {"steps_per_epoch": None, "early_stopping": None, **fields}


@pytest.mark.parametrize(("steps", "chosen"), [(26, 26), (40, 20), (97, 1), (10, 10), (64, 32)])
def test_auto_steps_per_execution_is_the_largest_divisor_up_to_32(steps, chosen) -> None:
    training = _training(steps_per_execution="auto")
    assert steps_per_execution(training, _data(steps), epochs=1000) == chosen


def test_steps_per_execution_given_must_divide_the_epoch() -> None:
    assert steps_per_execution(_training(steps_per_execution=5), _data(10), 1) == 5
    assert steps_per_execution(_training(), _data(10), 1000) == 1  # a project built before it
    mirrored = _training(steps_per_execution="auto", distribution={"strategy": "mirrored"})
    assert steps_per_execution(mirrored, _data(10), 1000) == 1  # Keras' loop fails there
    with pytest.raises(RunError, match="steps_per_execution=4 does not divide the 10 steps"):
        steps_per_execution(_training(steps_per_execution=4), _data(10), 1)


def test_auto_keeps_one_step_a_call_when_the_longer_trace_would_not_pay() -> None:
    auto = _training(steps_per_execution="auto")
    assert steps_per_execution(auto, _data(26), epochs=19) == 1  # 494 steps in all
    assert steps_per_execution(auto, _data(26), epochs=20) == 26  # 520
    assert steps_per_execution(_training(steps_per_execution=13), _data(26), epochs=1) == 13


def test_validation_epochs_auto_given_and_for_early_stopping() -> None:
    # 3 validation batches cost 8 + 1 steps; a tenth of a 26-step epoch is 2.6: every 4th.
    auto = _training(validation_every_epochs="auto")
    assert validation_epochs(auto, _data(26), 10) == [4, 8]
    assert validation_epochs(auto, _data(1000), 3) == [1, 2, 3]  # big epochs: every one
    watched = _training(validation_every_epochs="auto", early_stopping={"monitor": "val_loss"})
    assert validation_epochs(watched, _data(26), 3) == [1, 2, 3]
    assert validation_epochs(_training(validation_every_epochs=5), _data(26), 12) == [5, 10]
    assert validation_epochs(_training(), _data(26), 2) == [1, 2]  # built before it
    unsplit = SimpleNamespace(steps_per_epoch=26, validation=None)  # validation_split: 0
    assert validation_epochs(auto, unsplit, 3) == []


def _model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    return model


def _stream(first: int, last: int) -> tf.data.Dataset:
    x = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    return epoch_stream((tf.constant(x), tf.constant(y)), 100, 8, seed=1, first=first, last=last)


class Steps(keras.callbacks.Callback):
    """The optimizer's step count at the end of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seen.append(int(self.model.optimizer.iterations.numpy()))


def _fit(per_call: int, epochs: int = 3) -> tuple[list[int], list[np.ndarray]]:
    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=per_call)
    steps = Steps()
    model.fit(_stream(0, epochs), epochs=epochs, steps_per_epoch=13, callbacks=[steps], verbose=0)
    return steps.seen, model.get_weights()


def test_several_steps_per_call_keep_each_epoch_and_the_weights() -> None:
    per_call = steps_per_execution(_training(steps_per_execution="auto"), _data(13), 100)
    assert per_call == 13  # 100 examples in batches of 8: a whole epoch per call
    seen, weights = _fit(per_call)
    assert seen == [13, 26, 39]
    one_seen, one_weights = _fit(1)
    assert one_seen == seen
    for got, expected in zip(weights, one_weights, strict=True):
        np.testing.assert_array_equal(got, expected)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _built(model: keras.Model) -> keras.Model:
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_checkpoints_by_time_and_the_held_back_epoch_at_the_end(tmp_path: Path) -> None:
    clock = Clock()
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=5, every_seconds=10, clock=clock)
    model = _built(_model())
    keeper.set_model(model)
    keeper.on_train_begin()
    for epoch in range(5):  # 4 s an epoch: due at 12 s (epoch 3); epochs 4-5 held back
        clock.now += 4
        model.layers[0].kernel.assign(np.full((3, 2), float(epoch), "float32"))
        keeper.on_epoch_end(epoch, {"loss": 1.0})
    assert [c.epoch for c in checkpoints.listed(tmp_path)] == [3]
    at_epoch_5 = model.get_weights()
    model.layers[0].kernel.assign(np.full((3, 2), 99.0, "float32"))  # after the epoch

    keeper.on_train_end()

    assert [c.epoch for c in checkpoints.listed(tmp_path)] == [3, 5]
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((3, 2), 99.0))
    fresh = _built(_model())
    assert checkpoints.restore_latest(fresh, tmp_path) == 5
    for got, expected in zip(fresh.get_weights(), at_epoch_5, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_an_interrupted_fit_writes_its_last_finished_epoch(tmp_path: Path) -> None:
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.model.optimizer.iterations.numpy() > 13 * 2:  # in epoch 3
                raise KeyboardInterrupt

    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=3, every_seconds=3600)
    with pytest.raises(KeyboardInterrupt):
        try:
            model.fit(_stream(0, 4), epochs=4, steps_per_epoch=13, verbose=0,
                      callbacks=[keeper, Interrupt()])  # fmt: skip
        except KeyboardInterrupt:
            keeper.save_owed()  # as training.fit does
            raise
    assert [c.epoch for c in checkpoints.listed(tmp_path)] == [2]
    resumed = _model()
    resumed.compile(keras.optimizers.SGD(0.01), "mse")
    resumed.build((None, 3))
    assert checkpoints.restore_latest(resumed, tmp_path) == 2
    assert int(resumed.optimizer.iterations.numpy()) == 26


def test_validated_epochs_leave_their_rows_in_history_csv(tmp_path: Path) -> None:
    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    path = tmp_path / "history.csv"
    every = validation_epochs(_training(validation_every_epochs=2), _data(13), 6)
    x = np.ones((8, 3), "float32")
    model.fit(_stream(0, 6), validation_data=(x, x[:, :1]), validation_freq=every, epochs=6,
              steps_per_epoch=13, verbose=0, callbacks=[HistoryCSV(path, 0)])  # fmt: skip
    rows = read_history_rows(path)
    assert [(r["epoch"], bool(r["loss"]), bool(r["val_loss"])) for r in rows] == [
        ("1", True, False),
        ("2", True, True),
        ("3", True, False),
        ("4", True, True),
        ("5", True, False),
        ("6", True, True),
    ]
    history = read_history(path, 6)
    assert np.isnan(history["val_loss"][0]) and np.isfinite(history["val_loss"][1])
    assert len(history["val_loss"]) == len(history["loss"]) == 6


def test_history_appends_lines_ignores_a_torn_one_and_resume_truncates(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    history = HistoryCSV(path, 0)
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 0.5})
    inode = os.stat(path).st_ino
    history.on_epoch_end(1, {"loss": 0.25})
    assert os.stat(path).st_ino == inode  # appended, not rewritten
    history.on_epoch_end(2, {"loss": 0.125, "val_loss": 0.3})  # a new column: rewritten
    assert os.stat(path).st_ino != inode
    history.on_epoch_end(3, {"loss": 0.0625})
    assert path.read_text() == "epoch,loss,val_loss\n1,0.5,\n2,0.25,\n3,0.125,0.3\n4,0.0625,\n"
    with open(path, "a") as handle:
        handle.write("5,0.03")  # a write cut short
    assert [r["epoch"] for r in read_history_rows(path)] == ["1", "2", "3", "4"]

    resumed = HistoryCSV(path, initial_epoch=2)  # resumed from the checkpoint of epoch 2
    resumed.on_train_begin()
    assert path.read_text() == "epoch,loss\n1,0.5\n2,0.25\n"
    resumed.on_epoch_end(2, {"loss": 0.1})
    assert path.read_text().splitlines()[-1] == "3,0.1"


def test_a_stop_between_a_checkpoint_and_its_row_loses_no_row(tmp_path: Path) -> None:
    """The checkpoint is written before its epoch's history.csv row: a Ctrl-C between the
    two used to leave a resumable epoch without its row (`has no row for epoch(s) 2`)."""
    from gencompile.runtime.training import resumed_row

    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path / "checkpoints", every_epochs=1, keep=3)
    history = HistoryCSV(tmp_path / "history.csv", 0)
    model.fit(_stream(0, 2), epochs=2, steps_per_epoch=13, verbose=0, callbacks=[keeper, history])
    written = (tmp_path / "history.csv").read_text()
    first_row_only = "".join(written.splitlines(keepends=True)[:2])
    (tmp_path / "history.csv").write_text(first_row_only)  # the stop came before row 2

    resumed = HistoryCSV(tmp_path / "history.csv", 2, resumed_row(tmp_path, 2))
    resumed.on_train_begin()
    assert (tmp_path / "history.csv").read_text() == written
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no `has no row for epoch(s) 2`
        assert read_history(tmp_path / "history.csv", 2)["loss"][1] > 0
    assert resumed_row(tmp_path, 0) is None  # a fresh fit puts nothing back


def test_a_fit_holds_earlier_epochs_in_memory_and_ends_on_its_last_epoch(
    tmp_path: Path,
) -> None:
    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=3, every_seconds=3600)
    model.fit(_stream(0, 3), epochs=3, steps_per_epoch=13, verbose=0, callbacks=[keeper])
    # Epochs 1-2 held in memory; epoch 3, the last, written from the live weights.
    assert keeper._snapshots == 2
    assert [c.epoch for c in checkpoints.listed(tmp_path)] == [3]
    resumed = _built(_model())
    assert checkpoints.restore_latest(resumed, tmp_path) == 3
    for got, expected in zip(resumed.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow  # ~11-12 s: trains a classifier / several fits
def test_a_snapshot_keeps_its_values_while_training_goes_on() -> None:
    from gencompile.runtime.callbacks import restore, snapshot, state_variables

    model = _model()
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(_stream(0, 1), epochs=1, steps_per_epoch=13, verbose=0)
    held = snapshot(model)
    expected = [keras.ops.convert_to_numpy(v).copy() for v in state_variables(model)]
    model.fit(_stream(1, 2), epochs=2, initial_epoch=1, steps_per_epoch=13, verbose=0)
    live = [keras.ops.convert_to_numpy(v).copy() for v in state_variables(model)]
    assert any(not np.array_equal(a, b) for a, b in zip(live, expected, strict=True))
    for value, array in zip(held, expected, strict=True):  # copy on write: untouched
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(value), array)
    restore(model, held)
    for variable, array in zip(state_variables(model), expected, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), array)


@pytest.mark.parametrize(
    ("every_seconds", "interrupted", "saved"),
    [
        (3600, 3, [3]),  # epochs 1-2 only in memory: the write at the end is the only one
        (0, 2, [1, 2]),  # the write due at the end of epoch 2
    ],
)
def test_an_interrupt_during_a_checkpoint_write_is_retried(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_seconds: float,
    interrupted: int,
    saved: list[int],
) -> None:
    """Ctrl-C while a checkpoint is written: the epoch stays owed, and the interrupt's
    `save_owed` writes it (before, it was forgotten and nothing was left to resume)."""
    write = checkpoints.save_checkpoint

    def interrupted_once(
        model: keras.Model, directory: Path, epoch: int, timing: object, **fields: object
    ) -> object:
        if epoch == interrupted and not getattr(interrupted_once, "done", False):
            interrupted_once.done = True  # type: ignore[attr-defined]
            write(model, directory, epoch)  # the files are there, the write is cut short
            checkpoints.listed(directory)[-1].manifest.unlink()
            raise KeyboardInterrupt
        return write(model, directory, epoch)

    monkeypatch.setattr(checkpoints, "save_checkpoint", interrupted_once)
    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=3, every_seconds=every_seconds)
    with pytest.raises(KeyboardInterrupt):
        try:
            model.fit(_stream(0, 3), epochs=3, steps_per_epoch=13, verbose=0, callbacks=[keeper])
        except KeyboardInterrupt:
            keeper.save_owed()  # as training.fit does
            raise
    assert [c.epoch for c in checkpoints.listed(tmp_path)] == saved
    resumed = _model()
    resumed.compile(keras.optimizers.SGD(0.01), "mse")
    assert checkpoints.restore_latest(resumed, tmp_path) == interrupted
    assert int(resumed.optimizer.iterations.numpy()) == 13 * interrupted


def test_a_signal_during_a_checkpoint_write_waits_for_it_and_a_second_stops_now(
    capsys: pytest.CaptureFixture,
) -> None:
    # Python's own Ctrl-C handler, as `gencompile train` has it: a pytest-xdist worker
    # ignores SIGINT, and an ignored signal is nothing to hold.
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt), checkpoints.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here
            reached.append("after one")
        assert reached == ["after one"]
        assert "stopping once the checkpoint being written is complete" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt), checkpoints.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append("after two")
        assert reached == ["after one"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outside)


def test_a_damaged_history_costs_its_damaged_cells_with_a_warning_naming_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n1,abc,0.5\nxx\n3,0.25,\n")
    with pytest.warns(UserWarning) as warned:
        history = read_history(path, 3)
    said = [str(w.message) for w in warned]
    assert any(f"{path} line 2 loss 'abc' is not a number" in m for m in said), said
    assert any(f"{path} line 3 has no epoch number" in m for m in said), said
    assert any(f"{path} has no row for epoch(s) 2" in m for m in said), said
    assert np.isnan(history["loss"][:2]).all() and history["loss"][2] == 0.25
    assert history["val_loss"][0] == 0.5 and len(history["val_loss"]) == 3


def test_a_failed_write_of_the_owed_epoch_leaves_the_stopping_error_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training stopped, and writing its last epoch fails too (a full disk): the write's
    failure is a warning naming the newest epoch kept, not the error that replaces why
    training stopped."""
    from gencompile.runtime.training import keep_owed_epoch

    model = _model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    keeper = CheckpointKeeper(tmp_path, every_epochs=1, keep=3, every_seconds=3600)
    model.fit(_stream(0, 2), epochs=2, steps_per_epoch=13, verbose=0, callbacks=[keeper])
    assert [c.epoch for c in checkpoints.listed(tmp_path)] == [2]  # the last, at the end
    keeper._owed = (3, None)  # an epoch finished after it, not yet on disk

    def disk_full(*args: object, **fields: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_checkpoint", disk_full)
    with pytest.warns(UserWarning, match="could not be written") as warned:
        keep_owed_epoch(keeper)
    said = [str(w.message) for w in warned if "could not be written" in str(w.message)]
    assert said == [
        "the checkpoint of the last finished epoch could not be written ([Errno 28] No "
        "space left on device); the newest kept is epoch 2"
    ]


def test_a_resume_to_fewer_epochs_than_its_checkpoint_is_refused(tmp_path: Path) -> None:
    """A hand-run `train.py --resume --epochs 3` of a run interrupted at epoch 97: it used
    to train nothing and record the 97-epoch model as the 3-epoch run asked for."""
    from gencompile.runtime.training import fit

    with pytest.raises(RunError) as refused:
        fit(_model(), None, {}, {}, tmp_path, epochs=3, quiet=True, initial_epoch=97)
    assert str(refused.value) == (
        f"{tmp_path} holds a checkpoint of epoch 97, beyond the 3 epochs asked: resume it "
        "with --epochs 97 or more"
    )
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was written
