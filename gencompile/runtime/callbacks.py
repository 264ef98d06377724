"""Training callbacks shared by every generated project.

Keras' own callbacks cover early stopping (told which epoch's weights it kept, `EarlyStopping`);
TensorBoard logs are `runtime.tensorboard`'s.
These add what a run directory needs on top: failing clearly on a NaN loss while keeping
the last good checkpoint, atomic checkpoints and history, gradient-health warnings, sample
pictures and KL warmup. Epochs are reported 1-based everywhere a person reads them (file names,
messages, history.csv), matching the "Epoch 1/N" of Keras' progress bar.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import RunError
from gencompile.runtime import checkpoints, fine_tune, history_file, loss_scaling
from gencompile.runtime.checkpoint_files import Stopping, Timing

_CHECKPOINT = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def _as_float(value: Any) -> float | None:
    """A log value as a Python float, or None if it is not a scalar number."""
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        return None
    return float(array) if array.size == 1 else None


def history_row(logs: Mapping[str, Any] | None) -> dict[str, str]:
    """An epoch's logs as history.csv's cells: each number's repr by its key (a log that is
    not a number has no column to read back)."""
    row = {}
    for key, value in (logs or {}).items():
        number = _as_float(value)
        if number is not None:
            row[key] = repr(number)
    return row


def loss_keys(logs: Mapping[str, Any]) -> list[str]:
    """`loss` and every `*_loss` (a GAN reports `d_loss`/`g_loss` and maybe no `loss`)."""
    return [key for key in logs if key == "loss" or key.endswith("_loss")]


def _first_bad_loss(logs: Mapping[str, Any] | None) -> tuple[str, float] | None:
    """The first loss-like log that is NaN or infinite, with its value."""
    for key in loss_keys(logs or {}):
        value = _as_float(logs[key])
        if value is not None and not math.isfinite(value):
            return key, value
    return None


def latest_checkpoint(directory: Path) -> Path | None:
    """The weights file of the newest committed checkpoint, or None (for NaN reports)."""
    found = checkpoints.listed(directory)
    return found[-1].weights if found else None


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first NaN/inf loss and turn it into a `RunError` after `fit` returns.

    Raising inside a callback would surface as a TensorFlow traceback; instead training is
    stopped, and the caller calls `raise_if_failed()` once `fit` returns. The last good
    checkpoint is whatever `CheckpointKeeper` last wrote to `checkpoint_dir`; that keeper
    refuses to save non-finite epochs, so the NaN weights never replace it.
    """

    def __init__(self, checkpoint_dir: Path):
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)
        self.failed_epoch: int | None = None  # 1-based
        self.failed_batch: int | None = None  # 1-based
        self.failed_key: str | None = None
        self.failed_value: float | None = None
        self._epoch = 0

    @property
    def failed(self) -> bool:
        return self.failed_epoch is not None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.failed_epoch = self.failed_batch = self.failed_key = self.failed_value = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        bad = _first_bad_loss(logs)
        if bad is None or self.failed:
            return
        self.failed_key, self.failed_value = bad
        self.failed_epoch, self.failed_batch = self._epoch + 1, batch + 1
        self.model.stop_training = True

    def message(self) -> str:
        """The user-facing explanation of the failure ("" if training did not fail)."""
        if not self.failed:
            return ""
        what = "nan" if math.isnan(self.failed_value) else str(self.failed_value)
        latest = latest_checkpoint(self.checkpoint_dir)
        kept = (
            f"the last good checkpoint is kept at {latest}"
            if latest is not None
            else f"no checkpoint had been written yet in {self.checkpoint_dir}"
        )
        # Several steps per execution: the logs come at the end of each call's steps.
        per_call = int(getattr(self.model, "steps_per_execution", 1) or 1)
        first = max(1, self.failed_batch - per_call + 1)
        batch = (
            f"batch {self.failed_batch}"
            if first == self.failed_batch
            else (f"batches {first}-{self.failed_batch}")
        )
        return (
            f"{self.failed_key} became {what} at epoch {self.failed_epoch}, "
            f"{batch}; {kept}; try a lower learning_rate or clipnorm"
        )

    def raise_if_failed(self) -> None:
        """Raise `RunError` if a NaN/inf loss stopped training."""
        if self.failed:
            raise RunError(self.message())


def _weights_finite(model: keras.Model) -> bool:
    for variable in model.weights:
        array = keras.ops.convert_to_numpy(variable)
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            return False
    return True


def state_variables(model: keras.Model) -> list[Any]:
    """Every variable a checkpoint holds: the model's (weights and random state) and those
    of its optimizers (`model.optimizer` and any other, e.g. a GAN's discriminator's)."""
    found = {id(v): v for v in model.variables}
    for value in vars(model).values():
        if isinstance(value, keras.optimizers.Optimizer):
            for variable in value.variables:
                found.setdefault(id(variable), variable)
    return list(found.values())


def snapshot(model: keras.Model) -> list[Any]:
    """A copy of every state variable, as tensors: one read each and no data copied.
    TensorFlow copies on write (an update of a variable whose value a tensor still holds
    writes to a new buffer), so later steps do not change the values read. Reading into
    NumPy instead copied the bytes: 4 ms an epoch for the digits VAE, 16 ms for a
    1M-weight flow; a compiled copier cost a 0.5 s trace."""
    return [_read(variable) for variable in state_variables(model)]


def _read(variable: Any) -> Any:
    value = getattr(variable, "value", variable)  # a keras.Variable holds a tf.Variable
    return value.read_value() if hasattr(value, "read_value") else tf.identity(value)


def restore(model: keras.Model, values: list[Any]) -> None:
    for variable, value in zip(state_variables(model), values, strict=True):
        variable.assign(value)


class CheckpointKeeper(keras.callbacks.Callback):
    """Save full checkpoints (`runtime.checkpoints`) at the end of every `every_epochs`-th
    epoch, at most one per `every_seconds`, keeping the newest few.

    The newest epoch not written is held in memory (a copy of every variable) and written when
    training ends or stops (`on_train_end`) or is interrupted (`save_owed`), so the last
    finished epoch is always on disk. Ctrl-C or SIGTERM during a write waits for it to end
    (a second one stops at once), and a write stopped anyway stays owed to `save_owed`. A
    checkpoint is skipped when the epoch's loss or any weight is not finite, so the newest
    file on disk is always a good one to resume from or to report after a NaN.

    Each checkpoint also records its epoch's history.csv row (written after it: a stop
    between the two loses no row). With `stopping`, it records early stopping's state at
    its epoch's end (that callback must come before this one, to have seen the epoch); the
    last epoch is then written at its end, before early stopping puts the best weights back.
    """

    def __init__(
        self,
        directory: Path,
        every_epochs: int,
        keep: int,
        every_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        timing: Callable[[int], Timing] | None = None,
        stopping: EarlyStopping | None = None,
    ):
        super().__init__()
        if every_epochs < 0:
            raise ValueError(f"every_epochs must be >= 0. Received: every_epochs={every_epochs}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1. Received: keep={keep}")
        self.directory = Path(directory)
        self.every_epochs = int(every_epochs)
        self.keep = int(keep)
        self.every_seconds = float(every_seconds)
        self.clock = clock
        self.timing = timing  # the seconds trained by an epoch's end, for its manifest
        self.stopping = stopping
        self._saved_at = clock()
        self._owed: tuple[int, list[Any] | None] | None = None  # (epoch, variables or live)
        self._owed_stopping: Stopping | None = None  # early stopping's state at its end
        self._owed_row: dict[str, str] = {}  # its history.csv row, which the checkpoint keeps
        self._best_written = -1  # the best epoch whose weights this fit wrote
        self._snapshots = 0  # epochs held in memory, for tests

    def latest(self) -> Path | None:
        return latest_checkpoint(self.directory)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._saved_at, self._owed, self._owed_stopping = self.clock(), None, None
        self._best_written = -1

    def snapshot(self) -> list[Any]:
        self._snapshots += 1
        return snapshot(self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        number = epoch + 1
        if self.every_epochs == 0 or _first_bad_loss(logs) is not None:
            return
        due = number % self.every_epochs == 0
        self._owed_stopping = None if self.stopping is None else self.stopping.state()
        self._owed_row = history_row(logs)
        last = number == (self.params or {}).get("epochs")
        if (due and self.clock() - self._saved_at >= self.every_seconds) or (
            last and self.stopping is not None  # now: early stopping changes it at the end
        ):
            self._owed = (number, None)  # owed until written: an interrupted write is retried
            self._save(number)
        elif last:  # nothing changes it after
            self._owed = (number, None)
        else:  # keep it in memory until the next one, the end or an interrupt
            self._owed = (number, self.snapshot())

    def on_train_end(self, logs: dict | None = None) -> None:
        self.save_owed()

    def save_owed(self) -> None:
        """Write the newest finished epoch not yet on disk (held back for time, or whose
        write an interrupt cut short), if any."""
        if self._owed is None:
            return
        number, values = self._owed
        if values is None:  # the live state is that epoch's
            self._save(number)
            return
        with checkpoints.interrupts_deferred():  # not stopped between the two restores
            live = self.snapshot()
            restore(self.model, values)
            try:
                self._save(number)
            finally:
                restore(self.model, live)

    def _save(self, number: int) -> None:
        """Write epoch `number` from the live state, with early stopping's state at its end.
        What is owed is cleared only once the checkpoint is on disk: a write stopped half-way
        (Ctrl-C) stays owed, and the interrupt's `save_owed` writes it again. A signal during
        the write waits for it."""
        with checkpoints.interrupts_deferred():
            if _weights_finite(self.model):
                timing = None if self.timing is None else self.timing(number)
                stopping = self._stopping_fields()
                checkpoints.save_checkpoint(
                    self.model,
                    self.directory,
                    number,
                    timing,
                    history_row=self._owed_row,
                    **stopping,
                )
                checkpoints.prune(self.directory, self.keep)
                self._saved_at = self.clock()
                if "stopping" in stopping:
                    self._best_written = stopping["stopping"].best_epoch
            self._owed = None

    def _stopping_fields(self) -> dict[str, Any]:
        """`save_checkpoint`'s early-stopping arguments for the epoch owed (none without
        early stopping); its best weights are written when they changed since the last."""
        state = self._owed_stopping
        if state is None:
            return {}
        return {"stopping": state, "write_best": state.best_epoch != self._best_written}


# The network whose gradients a logged norm measures: a GAN's two networks; any other key
# measures the whole model.
GRAD_NORM_NETWORKS = {"d_grad_norm": "discriminator", "g_grad_norm": "generator"}
# The optimizer that steps on those gradients.
GRAD_NORM_OPTIMIZERS = {
    "d_grad_norm": "discriminator_optimizer",
    "g_grad_norm": "generator_optimizer",
}


class GradientMonitor(keras.callbacks.Callback):
    """Warn, in plain words, when a logged `*grad_norm` explodes or vanishes.

    Templates log gradient norms as metrics; this reads them at epoch end and warns once per
    key and kind, so a long run does not repeat the same advice every epoch. A network
    frozen on purpose (no trainable weights: `freeze: true`) has a norm of 0 that is no
    sign of trouble, so it is not warned about. Under mixed precision, a step whose scaled
    gradients overflowed is skipped by loss scaling (which lowers its scale) and left out of
    the norm's mean: an epoch where every step was skipped has no norm, so its value is set
    to nan (history.csv reads nan, not 0) and the warning says so, with no advice.
    """

    def __init__(
        self,
        explode: float = 1e3,
        vanish: float = 1e-7,
        warn: Callable[[str], Any] = warnings.warn,
    ):
        super().__init__()
        self.explode = float(explode)
        self.vanish = float(vanish)
        self.warn = warn
        self._warned: set[tuple[str, str]] = set()
        self._applied: dict[str, int] = {}  # loss-scaled optimizer -> steps applied

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._applied = {
            name: loss_scaling.applied_steps(optimizer)
            for name in ("optimizer", *GRAD_NORM_OPTIMIZERS.values())
            if (optimizer := self._loss_scaled(name)) is not None
        }

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key in sorted(logs or {}):
            if not key.endswith("grad_norm"):
                continue
            value = _as_float(logs[key])
            if value is None:
                continue
            if self._every_step_skipped(key) and not self._frozen(key):
                kind = "skipped"
                logs[key] = float("nan")  # no step measured: not the 0 of an empty mean
                advice = (
                    f"{key} has no value at epoch {epoch + 1}: loss scaling (mixed precision) "
                    "skipped every step because the scaled gradients overflowed; it halves "
                    "its scale at each skip, so later epochs train (no gradient problem)"
                )
            elif not math.isfinite(value) or value > self.explode:
                kind = "exploding"
                advice = (
                    f"{key} reached {value:.1e} at epoch {epoch + 1}: gradients are exploding; "
                    "lower the learning rate or set clipnorm"
                )
            elif value < self.vanish and not self._frozen(key):
                kind = "vanishing"
                advice = (
                    f"{key} fell to {value:.1e} at epoch {epoch + 1}: gradients are vanishing; "
                    "check for saturating activations or raise the learning rate"
                )
            else:
                continue
            if (key, kind) not in self._warned:
                self._warned.add((key, kind))
                self.warn(advice)

    def _loss_scaled(self, name: str) -> Any:
        """The model's optimizer `name` if it is a `LossScaleOptimizer`, else None."""
        optimizer = getattr(getattr(self, "_model", None), name, None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return None

    def _every_step_skipped(self, key: str) -> bool:
        """Whether loss scaling skipped every step of the epoch for the norm `key`: its
        optimizer (whose `iterations` counts applied steps only) applied none."""
        name = GRAD_NORM_OPTIMIZERS.get(key, "optimizer")
        optimizer = self._loss_scaled(name)
        if optimizer is None or name not in self._applied:
            return False
        return loss_scaling.applied_steps(optimizer) == self._applied[name]

    def _frozen(self, key: str) -> bool:
        """Whether the network the norm measures has no trainable weights, or none that
        trains this epoch (held at a learning-rate factor of 0 by `training.fine_tune`)."""
        model = getattr(self, "_model", None)  # None until fit sets it
        if model is None:
            return False
        network = getattr(model, GRAD_NORM_NETWORKS.get(key, ""), model)
        weights = network.trainable_weights
        return not weights or fine_tune.none_trains(model, weights)


class SamplePictures(keras.callbacks.Callback):
    """Every N epochs, draw samples and save a picture, to watch training progress.

    `draw` and `save` come from the generated code (which knows how to sample its model and
    what kind of data it makes); `every_epochs=0` disables the callback. `log(path, epoch)`,
    if given, also gets each saved picture (TensorBoard's image summary of it).
    """

    def __init__(
        self,
        directory: Path,
        every_epochs: int,
        draw: Callable[[], np.ndarray],
        save: Callable[[np.ndarray, Path], Any],
        log: Callable[[Path, int], Any] | None = None,
    ):
        super().__init__()
        self.directory = Path(directory)
        self.every_epochs = int(every_epochs)
        self.draw = draw
        self.save = save
        self.log = log

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        number = epoch + 1
        if self.every_epochs <= 0 or number % self.every_epochs:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"samples-epoch-{number:04d}.png"
        self.save(self.draw(), path)
        if self.log is not None:
            self.log(path, number)


class KLWarmup(keras.callbacks.Callback):
    """Anneal a KL weight linearly from 0 to `target` over the first `warmup_epochs`.

    Assigns `model.<variable_name>` (a `keras.Variable`, so the compiled train step sees the
    new value without retracing) at each epoch start: `target * min(1, epoch / warmup_epochs)`
    with Keras' 0-based epoch, so the first epoch trains with weight 0. Resuming with
    `initial_epoch` picks up the schedule where it was.
    """

    def __init__(self, variable_name: str, target: float, warmup_epochs: int):
        super().__init__()
        self.variable_name = variable_name
        self.target = float(target)
        self.warmup_epochs = int(warmup_epochs)

    def value_at(self, epoch: int) -> float:
        """The weight used during 0-based `epoch`."""
        if self.warmup_epochs <= 0:
            return self.target
        return self.target * min(1.0, epoch / self.warmup_epochs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        variable = getattr(self.model, self.variable_name, None)
        if variable is None or not hasattr(variable, "assign"):
            raise RunError(
                f"KL warmup needs model.{self.variable_name} to be a keras.Variable; "
                f"{type(self.model).__name__} has {type(variable).__name__}"
            )
        variable.assign(self.value_at(epoch))


class HistoryCSV(keras.callbacks.Callback):
    """Write every epoch's logs to a CSV: one appended line per epoch.

    Columns are `epoch` (1-based) then the sorted log keys; an epoch without a value (not
    validated) leaves its cell empty. An epoch with a key the header lacks rewrites the
    file atomically, as does the start of a fit, which keeps only the rows before
    `initial_epoch` (a resumed run drops what it is about to train again) and puts back the
    row of the checkpoint it resumed from (`restored_row`) if a stop came between the two.
    An append is one write of one line, and a reader ignores a last line without its newline.
    """

    def __init__(
        self,
        path: Path,
        initial_epoch: int | None = None,
        restored_row: dict[str, str] | None = None,
    ):
        super().__init__()
        self.path = Path(path)
        self.initial_epoch = initial_epoch
        self.restored_row = restored_row  # the row the resumed checkpoint recorded, if any
        self.rows: dict[int, dict[str, Any]] = dict(history_file.read_epochs(self.path))
        self.columns: list[str] | None = None  # the header of the file on disk

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.initial_epoch is not None:
            self.rows = {e: row for e, row in self.rows.items() if e <= self.initial_epoch}
        if self.initial_epoch and self.restored_row and self.initial_epoch not in self.rows:
            # a stop between the checkpoint and its row: the checkpoint kept the row too
            self.rows[self.initial_epoch] = dict(self.restored_row)
        if self.rows or self.path.exists():
            self.write()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = history_row(logs)
        last = max(self.rows, default=0)
        self.rows[epoch + 1] = row
        if self.columns is None or epoch + 1 <= last or not set(row) <= set(self.columns):
            self.write()
            return
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            [epoch + 1, *(row.get(key, "") for key in self.columns)]
        )
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())  # one line, one write

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.path.is_file():  # the appended lines on disk before the run counts as done
            with open(self.path, "rb+") as handle:
                os.fsync(handle.fileno())

    def write(self) -> None:
        self.columns = history_file.write(self.path, self.rows)


# The epoch (1-based) whose weights early stopping put back into each model at its last fit's
# end; held weakly, the model is the key (a sweep trains many in one process).
_RESTORED: weakref.WeakKeyDictionary[keras.Model, int] = weakref.WeakKeyDictionary()


# Early stopping's state at the checkpoint each model was resumed from, with its epoch
# (`resumed_from`): every worker of a cluster reads it from the folder it restored the model
# from, so they all stop alike.
_RESUMED: weakref.WeakKeyDictionary[keras.Model, tuple[int, Stopping | None]] = (
    weakref.WeakKeyDictionary()
)


def resumed_from(model: keras.Model, epoch: int, state: Stopping | None) -> None:
    """Note the early-stopping state that the checkpoint of `epoch`, just restored into
    `model`, recorded (None: none), for the fit that resumes it."""
    _RESUMED[model] = (epoch, state)


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping, which remembers the epoch whose weights it restored, and whose
    state each checkpoint records (`state`): a fit from `initial_epoch` goes on from the
    state of the checkpoint its model was resumed from (`resumed_from`), so it keeps the
    weights an uninterrupted run keeps.

    With `restore_best_weights`, Keras 3 puts the best epoch's weights back at the end of
    every fit, whether it stopped early or not. A checkpoint that records no state (written
    by an older gencompile, or its best weights damaged) leaves the best to the epochs
    trained after it, with a warning."""

    def __init__(self, initial_epoch: int = 0, **options: Any):
        super().__init__(**options)
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        _RESTORED.pop(self.model, None)
        recorded = self.recorded()
        if recorded is not None:
            self.resume(recorded)
        elif self.initial_epoch and self.restore_best_weights:
            warnings.warn(
                f"early stopping chooses the best weights among the epochs trained after "
                f"epoch {self.initial_epoch} only (its checkpoint records no best weights of "
                "the epochs before: written by an older gencompile, or their file is missing "
                "or damaged); metrics.json's restored_epoch names the epoch whose weights "
                "the run keeps",
                stacklevel=2,
            )

    def recorded(self) -> Stopping | None:
        """The state the checkpoint a fit resumes from recorded (None: a fresh fit, or a
        checkpoint that records none)."""
        epoch, state = _RESUMED.get(self.model, (0, None))
        return state if self.initial_epoch and epoch == self.initial_epoch else None

    def resume(self, state: Stopping) -> None:
        """Go on from the state a checkpoint recorded."""
        self.best, self.wait = state.best, state.wait
        self.best_epoch = max(state.best_epoch - 1, 0)  # Keras counts from 0
        self.best_weights = state.best_weights if self.restore_best_weights else None

    def finish(self, model: keras.Model) -> None:
        """End a fit that trains no epoch (a run resumed after its last one) as the fit
        that trained them ended: with the best weights its last checkpoint recorded. A
        checkpoint that records none leaves the model its last epoch's, with a warning."""
        self.set_model(model)
        super().on_train_begin()
        _RESTORED.pop(model, None)
        recorded = self.recorded()
        if recorded is not None:
            self.resume(recorded)
            self.on_train_end()
        elif self.restore_best_weights:
            warnings.warn(
                f"the checkpoint of epoch {self.initial_epoch} records no best weights of "
                "early stopping (written by an older gencompile, or their file is missing or "
                f"damaged): the run keeps the weights of epoch {self.initial_epoch}, not "
                "necessarily those of its best epoch",
                stacklevel=2,
            )

    def state(self) -> Stopping:
        """What a checkpoint of the epoch just ended records."""
        best = None if self.best is None else float(self.best)
        weights = self.best_weights if self.restore_best_weights else None
        epoch = self.best_epoch + 1 if best is not None or weights is not None else 0
        stopped = self.stopped_epoch > 0  # (Keras' 0-based epoch: it never stops at 0)
        return Stopping(best, epoch, int(self.wait), weights, stopped=stopped)

    def on_train_end(self, logs: dict | None = None) -> None:
        super().on_train_end(logs)
        if self.restore_best_weights and self.best_weights is not None:
            _RESTORED[self.model] = self.best_epoch + 1  # Keras counts from 0


def stopped_at(model: keras.Model, epoch: int) -> bool:
    """Whether the checkpoint of `epoch` the model was resumed from records that early
    stopping ended the fit there: a resume then trains no epoch more (the uninterrupted
    run trained none), even when its final phase failed after the stop."""
    resumed, state = _RESUMED.get(model, (0, None))
    return epoch > 0 and resumed == epoch and state is not None and state.stopped


def restored_epoch(model: keras.Model) -> int | None:
    """The epoch whose weights early stopping restored at the end of the model's fit; None
    when it restored none (the model holds its last epoch's)."""
    return _RESTORED.get(model)


class TrainingProgress(keras.callbacks.Callback):
    """What a person watching `fit` sees, on stdout.

    On a terminal: a bar over the epochs with the latest losses, and one over the steps
    of the current epoch with examples/s and the time left (refreshed at most
    `REFRESH_SECONDS` apart, so a fast step pays only a clock read). Elsewhere (a log
    file, CI, a pipe) a live bar would leave only its last state: one plain line per
    epoch instead, e.g. `epoch 3/20  loss 1.234  val_loss 1.301  2.1 s  5,400 examples/s`.
    """

    REFRESH_SECONDS = 0.1

    def __init__(
        self,
        epochs: int,
        steps: int,
        batch_size: int,
        initial_epoch: int = 0,
        keys: tuple[str, ...] = ("loss", "val_loss"),
        console: Any = None,
    ):
        super().__init__()
        from rich.console import Console

        self.epochs, self.steps, self.batch_size = int(epochs), int(steps), int(batch_size)
        self.initial_epoch, self.keys = int(initial_epoch), keys
        self.console = console if console is not None else Console()
        self.live = self.console.is_terminal
        self.display: Any = None
        self._started = self._shown = 0.0

    def status(self, logs: Mapping[str, Any]) -> str:
        keys = [k for k in self.keys if k in logs] or loss_keys(logs)  # a GAN: d_/g_loss
        return "  ".join(f"{k} {v:.4g}" for k in keys if (v := _as_float(logs[k])) is not None)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.display = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.epoch_task = self.display.add_task(
            f"epoch {self.initial_epoch}/{self.epochs}",
            total=self.epochs,
            completed=self.initial_epoch,
            status="",
        )
        self.step_task = self.display.add_task("", total=self.steps, status="")
        self.display.start()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = self._shown = time.monotonic()
        if self.display is not None:
            self.display.update(
                self.step_task, description=f"step 0/{self.steps}", completed=0, status=""
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.display is None:
            return
        now = time.monotonic()
        if now - self._shown < self.REFRESH_SECONDS and batch + 1 < self.steps:
            return
        self._shown = now
        done = batch + 1  # Keras' 0-based index of the last step run
        rate = done * self.batch_size / max(now - self._started, 1e-9)
        self.display.update(
            self.step_task,
            description=f"step {done}/{self.steps}",
            completed=done,
            status=f"{rate:,.0f} examples/s",
            refresh=True,  # drawn now (throttled above), not at the display's next tick
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        status = self.status(logs or {})
        if self.display is not None:
            self.display.update(
                self.epoch_task,
                description=f"epoch {epoch + 1}/{self.epochs}",
                completed=epoch + 1,
                status=status,
                refresh=True,
            )
            return
        seconds = time.monotonic() - self._started
        rate = self.steps * self.batch_size / max(seconds, 1e-9)
        line = f"epoch {epoch + 1}/{self.epochs}  {status}  {seconds:.1f} s  {rate:,.0f} examples/s"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.display is not None:
            self.display.remove_task(self.step_task)  # the epochs' bar stays on screen
            self.display.stop()
            self.display = None
