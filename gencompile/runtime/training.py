"""The fit loop every generated `train.py` shares: build, compile, fit, evaluate, write.

Generated code keeps the model and its `train_step`; this module keeps the plumbing that is
the same for every family (strategy scope, mixed precision, callbacks, artifacts).
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gencompile.errors import GencompileError, RunError, quoted
from gencompile.files import (
    UnwrittenRunFile,
    atomic_save,
    atomic_save_weights,
    os_error_text,
    read_json,
)
from gencompile.interrupts import kept_interrupts
from gencompile.runtime import callbacks as cb
from gencompile.runtime import (
    checkpoint_files,
    checkpoints,
    cluster,
    ema,
    epoch_listeners,
    final_files,
    fine_tune,
    history_file,
    init_from,
    pictures,
    python_reads,
    quiet,
    replica_batches,
    repro,
    run_lock,
    tensorboard,
)
from gencompile.runtime.contract import (
    InitializedFromData,
    OutputConfig,
    TrainedInStages,
    TrainingConfig,
)
from gencompile.runtime.optimizers import make_optimizer
from gencompile.runtime.splits import head
from gencompile.tf_messages import tf_summary, unhealthy


def parse_args(argv: list[str] | None, epochs: int, run_dir: Path) -> argparse.Namespace:
    """A generated train.py's options; `run_dir` is its project's folder (the default run
    folder). A run that a pending continuation trains is refused to other code, and the
    continuation's project its own folder (`final_files.check_trainer`). Run as a command,
    train.py holds the run folder's lock from here until it ends (`run_lock`): a second
    trainer, or one beside an evaluation, is refused before it checks or writes anything."""
    parser = argparse.ArgumentParser(description="Train the generated model.")
    parser.add_argument("--epochs", type=epoch_count, default=epochs, help=f"default {epochs}")
    parser.add_argument("--run-dir", type=Path, default=run_dir, help="where artifacts go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's newest checkpoint"
    )
    args = parser.parse_args(argv)
    final_files.check_trainer(run_dir, args.run_dir)  # `run_dir`: the project's own folder
    if writes_run_folder():  # a worker other than the chief writes to a scratch folder
        run_lock.hold_for_command(args.run_dir)  # before the checks: none can start meanwhile
    if not args.resume:
        refuse_earlier_training(args.run_dir)
    else:
        refuse_resume_without_checkpoints(args.run_dir)
        refuse_training_past_finished(args.run_dir, args.epochs)
    return args


def refuse_resume_without_checkpoints(run_dir: Path) -> None:
    """A folder holding a trained model but no checkpoint (an ejected run: eject copies the
    final weights only) can be neither resumed nor trained afresh (`refuse_earlier_training`):
    say what works instead of sending the user from one refusal to the other."""
    run_dir = Path(run_dir)
    if (
        checkpoint_files.newest_epoch(run_dir / "checkpoints")
        or not (run_dir / "model.weights.h5").exists()
    ):
        return
    raise RunError(
        f"{run_dir} holds a trained model (model.weights.h5) but no checkpoint to resume "
        "from (an ejected run comes without them): train anew into another folder with "
        "--run-dir DIR; this folder keeps its model"
    )


def epoch_count(text: str) -> int:
    """`--epochs`: at least 1, as the spec's `training.epochs` and `gencompile train`'s;
    a usage error (exit 2) before anything is checked or written."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def writes_run_folder() -> bool:
    """Whether this process writes the run folder: not a worker of a cluster other than its
    chief (`cluster.output_dir`). A TF_CONFIG that names no valid cluster is refused later,
    where the strategy starts; until then this process counts as the writer."""
    try:
        return cluster.is_chief()
    except RunError:
        return True


def refuse_training_past_finished(run_dir: Path, epochs: int) -> None:
    """A finished gencompile run (status.json) trains past its lock's epochs only as a
    continuation (`gencompile train --resume RUN --epochs N`), which records the new
    epochs in its lock: trained on here, its lock, report and checkpoints would disagree.
    A plain generated project (no status.json) trains on as asked."""
    run_dir = Path(run_dir)
    # While a continuation is pending (its project alone trains the run), its lock's epochs.
    lock = run_dir / final_files.PENDING if final_files.pending(run_dir) else run_dir
    try:
        finished = read_json(run_dir / "status.json").get("status") == "finished"
        planned = read_json(lock / "spec.lock.json")["resolved_spec"]["training"]["epochs"]
    except (RunError, KeyError, TypeError):  # no gencompile run, or not one it can read
        return
    if not finished or not isinstance(planned, int) or epochs <= planned:
        return
    raise RunError(
        f"{run_dir} finished its training at epoch {planned}: continue it to {epochs} epochs with "
        f"`gencompile train --resume {quoted(run_dir)} --epochs {epochs}`, which records the "
        "continuation in its lock"
    )


def refuse_earlier_training(run_dir: Path) -> None:
    """A fresh training refuses a folder that holds another one's: it would replace that
    model, and a later --resume would restore the other training's newest checkpoint."""
    newest = checkpoint_files.newest_epoch(Path(run_dir) / "checkpoints")
    found = [f"checkpoints up to epoch {newest}"] if newest else []
    found += [name for name in ("model.weights.h5", "history.csv") if (run_dir / name).exists()]
    if found:
        resume = "continue it with --resume, " if newest else ""  # from its newest checkpoint
        raise RunError(
            f"{run_dir} holds an earlier training ({', '.join(found)}): {resume}train anew "
            "into another folder with --run-dir DIR, or move those files aside first"
        )


def run_as_command(main: Callable[[], object]) -> None:
    """A generated train.py run as a command: gencompile's errors as one line on stderr
    with their exit code, and Ctrl-C as `interrupted` (130), as the gencompile CLI says
    them, not as tracebacks. The run folder `parse_args` names stays locked until `main`
    returns."""
    try:
        with run_lock.command_locks():  # the run folder's lock, held until main returns
            main()
    except GencompileError as error:
        print(f"{error.prefix}{error}", file=sys.stderr, flush=True)
        raise SystemExit(error.exit_code) from None
    except OSError as error:  # a full disk, a folder it may not write: the path and why
        print(f"error: {os_error_text(error)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def strategy_for(name: str) -> tf.distribute.Strategy:
    """`mirrored`: one replica per GPU, or per logical CPU device when there is no GPU;
    `multi_worker`: the workers of the cluster `TF_CONFIG` names (`runtime/cluster.py`)."""
    if name == "mirrored":
        return mirrored_strategy()
    if name == "multi_worker":
        return cluster.multi_worker_strategy()
    return tf.distribute.get_strategy()


@functools.cache
def mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """One per process: two strategies over the same devices would share the keys of their
    collective operations, and a later run's all-reduce would meet an earlier one's."""
    return tf.distribute.MirroredStrategy()


def replicas_of(training: TrainingConfig) -> int:
    """The replicas training runs on: those of its strategy (1 without one)."""
    name = training.get("distribution", {}).get("strategy", "none")  # projects built before
    return 1 if name == "none" else int(strategy_for(name).num_replicas_in_sync)


def steps_per_epoch(training: TrainingConfig, data: Any) -> int:
    """training.steps_per_epoch, or a pass over the training split (but a last batch that
    would leave a replica without an example: `skipped_per_epoch`)."""
    if training["steps_per_epoch"]:
        return int(training["steps_per_epoch"])
    return int(data.steps_per_epoch) - (1 if skipped_per_epoch(training, data) else 0)


def skipped_per_epoch(training: TrainingConfig, data: Any) -> int:
    """The training examples an epoch leaves out: its last batch's when that batch would
    leave one of the replicas without an example (`runtime/replica_batches.py`), else 0.
    A fixed training.steps_per_epoch draws full batches only."""
    if training["steps_per_epoch"] or takes_empty_slices(training):
        return 0
    if (replicas := replicas_of(training)) == 1:
        return 0
    count, steps = len(data.x_train), int(data.steps_per_epoch)
    return replica_batches.skipped_last_batch(count, steps, data.batch_size, replicas)


def takes_empty_slices(training: TrainingConfig) -> bool:
    """Whether the model's steps take a replica's empty slice of a batch (the compiler's
    word for its family: a mixture's do), so that no batch is kept from the replicas."""
    return bool(training.get("distribution", {}).get("empty_slices", False))


# Steps per call into the compiled train function that `auto` goes up to: each call costs
# ~1-2 ms of Python and dispatch, which is most of a small model's step.
MAX_STEPS_PER_EXECUTION = 32


# Tracing Keras' multi-step loop costs more than one step a call and saves about 1 ms of
# CPU a step (2 cores). CPU of whole `gencompile train` processes, 26 or 32 steps a call
# against one (medians of 3 alternating runs, load average 2): the digits VAE 0.7 s less
# at 1040 steps, even or less at 520, 0.5 s more at 260; the swiss-roll diffusion 1.4 s
# less at 960, even at 96. The weights are the same either way.
MIN_STEPS_FOR_SEVERAL_PER_CALL = 500


def steps_per_execution(training: TrainingConfig, data: Any, epochs: int) -> int:
    """Keras' steps_per_execution. It must divide the steps per epoch: Keras starts the last
    call of an epoch even when fewer steps are left, and that call would run on into the
    next epoch's batches. `auto`: the largest divisor up to MAX_STEPS_PER_EXECUTION, or one
    for short trainings (the longer trace would cost more than it saves) and under a
    distribution strategy. The weights are the same either way."""
    chosen = training.get("steps_per_execution", 1)  # projects built before it: one
    strategy = training.get("distribution", {}).get("strategy", "none")
    if strategy != "none":  # Keras' multi-step loop fails there (a placeholder unfed)
        if chosen not in ("auto", 1):  # the spec refuses it; an edited project would fail
            raise RunError(  # at its first step with a raw TensorFlow error
                f"training.steps_per_execution={chosen} fails under the {strategy!r} "
                "distribution strategy (Keras' multi-step loop): set it to 1 or auto in the "
                "spec and build again"
            )
        return 1
    steps = steps_per_epoch(training, data)
    if chosen != "auto":
        if steps % int(chosen):
            raise RunError(
                f"training.steps_per_execution={chosen} does not divide the {steps} steps "
                "of an epoch: use a divisor of it, or auto"
            )
        return int(chosen)
    if steps * epochs < MIN_STEPS_FOR_SEVERAL_PER_CALL:
        return 1
    return max(d for d in range(1, min(steps, MAX_STEPS_PER_EXECUTION) + 1) if steps % d == 0)


# `auto` validation counts a validation pass as this many training steps of fixed cost
# (an evaluate call, its iterator and callbacks) plus a third of a step per batch (no
# gradient), and keeps it under VALIDATION_SHARE of the training steps between passes.
VALIDATION_FIXED_STEPS = 8
VALIDATION_SHARE = 0.1


def validation_epochs(training: TrainingConfig, data: Any, epochs: int) -> list[int]:
    """The 1-based epochs that are validated (Keras' validation_freq): every N-th. It
    depends only on the config and the data's size, not on `epochs`: validation may draw
    from training's random state (a dequantizing flow's does; VAEs, GANs and diffusion
    models validate from a stream of their own), so a run continued to more epochs must
    validate the epochs a run of that length does. No epoch when data.validation_split
    is 0."""
    if data.validation is None:
        return []
    every = training.get("validation_every_epochs", 1)  # projects built before it: 1
    if every == "auto":
        every = auto_validation_every(training, data)
    return list(range(int(every), epochs + 1, int(every)))


def auto_validation_every(training: TrainingConfig, data: Any) -> int:
    stopping = training.get("early_stopping")
    if stopping and str(stopping.get("monitor", "")).startswith("val_"):
        return 1  # early stopping reads the validation of every epoch
    batches = int(tf.data.experimental.cardinality(data.validation))
    if batches < 0:  # unknown or infinite: validate as before
        return 1
    cost = VALIDATION_FIXED_STEPS + batches / 3
    return max(1, math.ceil(cost / (VALIDATION_SHARE * steps_per_epoch(training, data))))


def set_precision(training: TrainingConfig) -> None:
    """The global dtype policy of the run: models built after this compute as training did."""
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if training["mixed_precision"] else "float32"
    )


def build_and_compile(
    build_model: Callable[[], keras.Model], training: TrainingConfig, data: Any, epochs: int
) -> keras.Model:
    """Build the model and its optimizer under the configured strategy and precision."""
    from gencompile.runtime.contract import CompiledForEpochSize

    set_precision(training)
    per_call = steps_per_execution(training, data, epochs)
    strategy = strategy_for(training["distribution"]["strategy"])
    total_steps = steps_per_epoch(training, data) * epochs
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        name = training["distribution"]["strategy"]
        replica_batches.check_batch_split(data.batch_size, replicas, name)
        if not takes_empty_slices(training):
            count, batch = len(data.x_val), data.batch_size
            replica_batches.check_validation_batches(count, batch, replicas, name)
            if steps_per_epoch(training, data) == 0:  # its one batch would be left out
                replica_batches.refuse_one_skipped_batch(len(data.x_train), batch, replicas, name)
        counts = len(data.x_train), len(data.x_val)
        replica_batches.check_first_batches(*counts, data.batch_size, replicas, name)
    with strategy.scope():
        model = build_model()
        if isinstance(model, CompiledForEpochSize):
            model.choose_compilation(steps_per_epoch(training, data))
        roles = training.get("optimizers")
        if roles:  # one optimizer per network: the first is model.optimizer, the others
            # are passed as `<role>_optimizer` (a GAN: generator, then discriminator)
            made = {
                role: make_optimizer(config, training["schedule"], total_steps)
                for role, config in roles.items()
            }
            for optimizer in made.values():
                clip_after_all_reduce(optimizer, replicas)
            first, *others = made
            model.compile(
                optimizer=made[first],
                steps_per_execution=per_call,
                **{f"{role}_optimizer": made[role] for role in others},
            )
        else:
            optimizer = make_optimizer(training["optimizer"], training["schedule"], total_steps)
            clip_after_all_reduce(optimizer, replicas)
            model.compile(optimizer=optimizer, steps_per_execution=per_call)
        # Create the optimizer's variables now, not inside the first step: a tf.function
        # that creates variables is traced a second time. (Generated models have all their
        # weights once built; those with several optimizers build each in `compile`.)
        if model.built and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    return model


def clip_after_all_reduce(optimizer: keras.optimizers.Optimizer, replicas: int) -> None:
    """Clip the gradients summed over the replicas, as one device clips its gradient.

    Keras' optimizer clips each replica's share before summing the shares, so clipnorm,
    clipvalue and global_clipnorm would depend on the number of replicas. With several
    replicas this moves Keras' own clipping to after the sum; with one it changes nothing.
    """
    clipping = (optimizer.clipnorm, optimizer.clipvalue, optimizer.global_clipnorm)
    if replicas == 1 or not any(clipping):
        return
    clip = type(optimizer)._clip_gradients  # reads the (unchanged) clipping settings
    sum_over_replicas = optimizer._all_reduce_sum_gradients

    def sum_then_clip(grads_and_vars: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        pairs = list(sum_over_replicas(grads_and_vars))
        present = [i for i, (grad, _) in enumerate(pairs) if grad is not None]
        clipped = clip(optimizer, [pairs[i][0] for i in present])
        for i, grad in zip(present, clipped, strict=True):
            pairs[i] = (grad, pairs[i][1])
        return pairs

    optimizer._clip_gradients = lambda grads: grads  # not before the sum
    optimizer._all_reduce_sum_gradients = sum_then_clip


@dataclass(frozen=True)
class FitResult:
    history: dict[str, list[float]]  # every epoch of the run, resumed ones included
    seconds: float  # wall time of the run's fits, over every process (`TrainingClock`)
    epochs: int  # the epochs the run has trained, counted by the fit, not history.csv's rows
    untimed_epochs: int = 0  # epochs trained whose seconds are unknown (`TrainingClock`)


def resume_point(model: keras.Model, run_dir: Path) -> int:
    """Restore the newest whole checkpoint of a run; the number of epochs it had finished."""
    checkpoints.remove_strays(run_dir / "checkpoints")  # left by a kill during a write
    epoch = checkpoints.restore_latest(model, run_dir / "checkpoints")
    if epoch == 0:
        raise RunError(
            f"{run_dir} has no usable checkpoint to resume from; train it again without --resume"
        )
    # Early stopping goes on from its state then (the fit's EarlyStopping reads it).
    cb.resumed_from(model, epoch, checkpoints.restore_stopping(run_dir / "checkpoints", epoch))
    mark_parent_averages(model, run_dir)
    return epoch


def mark_parent_averages(model: keras.Model, run_dir: Path) -> None:
    """Mark again the EMA copies the run took whole from its parent (`init_from.json`), as
    `init_from.load_pretrained` marked them: the mark is on the Python object, not in the
    checkpoint, and without it the average would warm up again from the restored step
    count and give the parent's average up within a few steps."""
    report = read_json(run_dir / init_from.REPORT)  # {} for a run without init_from
    for name in averages_taken_whole(report):
        average = getattr(model, name, None)
        if isinstance(average, keras.Model):
            ema.started_from_average(average)


def averages_taken_whole(report: dict[str, Any]) -> list[str]:
    """The EMA copies of which init_from.json lists units taken and none left fresh: every
    unit of a network it took from is either taken or fresh (`init_from.merge`)."""

    def network(label: Any) -> str:
        return str(label).split(".")[0]

    taken = {network(label) for label in report.get("taken", [])}
    fresh = {network(entry.get("layer")) for entry in report.get("fresh", [])}
    return sorted(n for n in taken - fresh if n.startswith(init_from.EMA_PREFIX))


class TrainingClock(keras.callbacks.Callback):
    """The seconds a run has trained, over all its processes. Each checkpoint's manifest
    records the seconds by its epoch's end (`timing`), and a resumed fit counts on from
    those of the checkpoint it restored: time spent on epochs an interruption lost is not
    counted.

    A checkpoint that records no seconds (written before gencompile kept them, or edited)
    leaves its epochs `untimed`, with a warning: they count no seconds, later checkpoints
    carry their number on, and metrics.json says it (`untimed_epochs`), so the sum is never
    taken for the whole."""

    def __init__(self, directory: Path, initial_epoch: int = 0):
        super().__init__()
        earlier = None
        if initial_epoch:
            checkpoint = checkpoint_files.paths(directory, initial_epoch)
            earlier = checkpoint_files.timing(checkpoint)
            if earlier is None:
                warnings.warn(
                    f"{checkpoint.manifest} records no training seconds (written by an "
                    "older gencompile, or edited): train_seconds leaves out its "
                    f"{initial_epoch} epoch(s) (metrics.json's untimed_epochs counts them)",
                    stacklevel=4,  # the caller of `fit`
                )
        self.before = earlier.seconds if earlier else 0.0
        self.untimed = earlier.untimed_epochs if earlier else initial_epoch
        self.at_end: dict[int, float] = {}  # epoch (1-based) -> seconds by its end
        self.start = time.perf_counter()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.at_end[epoch + 1] = self.seconds()

    def timing(self, epoch: int) -> checkpoint_files.Timing:
        """What the checkpoint of `epoch` (ended in this fit) records."""
        return checkpoint_files.Timing(self.at_end[epoch], self.untimed)

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.start


def read_history(path: Path, epochs: int) -> dict[str, list[float]]:
    """history.csv's values, one place per epoch 1..`epochs`: a value an epoch lacks (not
    validated, a damaged cell) is NaN, and so are the epochs of rows the file lost (said
    in a warning), so the lists stay aligned with the epochs."""
    rows = history_file.read_numbers(path)
    lost = [epoch for epoch in range(1, epochs + 1) if epoch not in rows]
    if lost:
        warnings.warn(
            f"{path} has no row for epoch(s) {', '.join(map(str, lost))} (a damaged or edited "
            "history): its curves and final values leave them out",
            stacklevel=2,
        )
    keys = sorted(set(history_file.names(path)).union(*rows.values()))
    return {k: [rows.get(e, {}).get(k, math.nan) for e in range(1, epochs + 1)] for k in keys}


def fit(
    model: keras.Model,
    data: Any,
    training: TrainingConfig,
    output: OutputConfig,
    run_dir: Path,
    epochs: int,
    quiet: bool = False,
    initial_epoch: int = 0,
) -> FitResult:
    """model.fit with checkpoints, a NaN guard, gradient monitoring and sample pictures.

    `initial_epoch` > 0 continues a run restored by `resume_point`: each epoch's batches
    depend only on (seed, epoch), and early stopping goes on from its checkpoint's state, so
    the result equals an uninterrupted run's (with no epoch left too). A model with
    an `initialize(data)` method gets it called once before a fresh fit.
    """
    if initial_epoch > epochs:  # a run trains on from its newest checkpoint, never back
        raise RunError(
            f"{run_dir} holds a checkpoint of epoch {initial_epoch}, beyond the {epochs} "
            f"epochs asked: resume it with --epochs {initial_epoch} or more"
        )
    fingerprint = getattr(data, "fingerprint", None)
    # Before anything trains or is recorded: every worker of a cluster read the same data.
    cluster.check_same_data(model.distribute_strategy, fingerprint, getattr(data, "source", {}))
    guard = cb.NaNGuard(run_dir / "checkpoints")
    clock = TrainingClock(run_dir / "checkpoints", initial_epoch)
    callbacks = [
        clock,  # an epoch's seconds are taken before its checkpoint is written
        *fit_callbacks(model, data, training, output, run_dir, guard, clock, initial_epoch),
    ]
    if not quiet:
        steps, batch = steps_per_epoch(training, data), data.batch_size
        callbacks.append(cb.TrainingProgress(epochs, steps, batch, initial_epoch))
    callbacks += epoch_listeners.callbacks()  # after history.csv has the epoch
    # Data-dependent initialisation (k-means, actnorm, ...), unless init_from did it.
    fresh = initial_epoch == 0 and not getattr(model, "initialized_from_parent", False)
    if fresh and isinstance(model, InitializedFromData):
        model.initialize(data)
    if initial_epoch == 0 and fingerprint:  # what the checkpoints to come are trained on
        checkpoints.record_data(run_dir / "checkpoints", fingerprint)
    # No epoch left (a run stopped after its last checkpoint, in its final evaluation):
    # nothing to fit, and a distributed stream of no epoch fails in model.fit
    # (StopIteration), so every run goes straight on to its final phase.
    # Likewise a run early stopping ended at its checkpoint's epoch (its final phase failed).
    last = initial_epoch
    if initial_epoch < epochs and not cb.stopped_at(model, initial_epoch):
        last = fit_epochs(model, data, training, callbacks, epochs, initial_epoch)
    else:  # the weights early stopping would have put back at the fit's end
        for stopping in (c for c in callbacks if isinstance(c, cb.EarlyStopping)):
            stopping.finish(model)
    guard.raise_if_failed()
    if isinstance(model, TrainedInStages):  # e.g. a VQ-VAE's prior, fitted on its codes
        model.fit_next_stage(data, run_dir, quiet)
    seconds = clock.seconds()  # the next stage's included
    history = read_history(run_dir / "history.csv", last)
    return FitResult(history, seconds, last, clock.untimed)


def fit_epochs(
    model: keras.Model,
    data: Any,
    training: TrainingConfig,
    callbacks: list[keras.callbacks.Callback],
    epochs: int,
    initial_epoch: int,
) -> int:
    """model.fit over epochs `initial_epoch`+1..`epochs`; the last epoch it ran (Keras' own
    count: early stopping may end it sooner)."""
    fixed_steps = training["steps_per_epoch"]
    stream = data.epochs(initial_epoch, epochs, steps=fixed_steps)
    skipped = skipped_per_epoch(training, data)
    if skipped:
        stream = replica_batches.without_batches_of(stream, skipped)
        warnings.warn(
            f"each epoch leaves out its last batch of {skipped} training example(s): it "
            f"would leave one of the {replicas_of(training)} replicas without an example "
            "(other examples each epoch, as the order is reshuffled)",
            stacklevel=3,  # the caller of `fit`
        )
    stream = cluster.shard_by_example(stream)
    validation = None if data.validation is None else cluster.shard_by_example(data.validation)
    try:
        # A Ctrl-C while TensorFlow traces a step can surface as another error (a
        # KeyboardInterrupt inside its tensor conversion becomes a TypeError): `stopped`
        # tells, so the run is reported interrupted and resumable, not failed.
        with kept_interrupts() as stopped, quiet.stderr_without(quiet.HARMLESS_ERRORS):
            try:
                progress = model.fit(
                    stream,
                    validation_data=validation,
                    validation_freq=validation_epochs(training, data, epochs),
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    steps_per_epoch=steps_per_epoch(training, data),
                    callbacks=callbacks,
                    shuffle=False,  # the stream is shuffled per epoch, seeded
                    verbose=0,
                )
            except Exception:
                stopped()  # raises the KeyboardInterrupt if one arrived and was lost
                raise
    except BaseException as error:  # Ctrl-C, SIGTERM, a failed read: keep the last
        keeper = next(c for c in callbacks if isinstance(c, cb.CheckpointKeeper))
        keep_owed_epoch(keeper)
        if isinstance(error, tf.errors.OpError):
            # The run folder, not a worker's scratch folder: the chief's keeps the checkpoints.
            run_dir = cluster.run_folder(keeper.directory.parent)
            failure = python_reads.failure_behind(error)
            if failure is not None:  # a streamed file that changed: one line, not TF's
                raise RunError(changed_data_message(failure, run_dir)) from None
            if stopped_peer(error):
                raise RunError(peer_failure_message(error, run_dir)) from None
        raise
    return progress.epoch[-1] + 1 if progress.epoch else initial_epoch


def keep_owed_epoch(keeper: cb.CheckpointKeeper) -> None:
    """After an error stopped training: write its last finished epoch for --resume (never a
    NaN one: the keeper skips those). A write that fails too (a full disk) is a warning, so
    the error that stopped training stays the one reported."""
    try:
        keeper.save_owed()
    except Exception as failed:
        newest = checkpoint_files.newest_epoch(keeper.directory)
        kept = f"the newest kept is epoch {newest}" if newest else "none is kept"
        warnings.warn(
            f"the checkpoint of the last finished epoch could not be written "
            f"({first_line(failed)}); {kept}",
            stacklevel=2,
        )


def changed_data_message(failure: RunError, run_dir: Path) -> str:
    """A read that failed during training: the file read well before it started (the
    statistics pass read every example), so it changed; what the run keeps, how to go on."""
    newest = checkpoint_files.newest_epoch(run_dir / "checkpoints")
    if not newest:
        return (
            f"{failure} (it changed after training started, before its first checkpoint); "
            "restore it and train again"
        )
    return (
        f"{failure} (it changed after training started); {run_dir} keeps its checkpoint "
        f"of epoch {newest}: restore the file, then continue with {resume_command(run_dir)}"
    )


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in `run_dir`: the generated project's own when
    the user ran its train.py (`python -m PKG.train`), else gencompile's (with the
    `--workers N` of the launcher that started this worker, if one did)."""
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = str(getattr(main, "name", "") or "")
    if name.endswith(".train") and not name.startswith("gencompile."):
        return f"`python -m {name} --run-dir {quoted(run_dir)} --resume`"
    workers = cluster.launched_workers()
    more = f" --workers {workers}" if workers else ""
    return f"`gencompile train --resume {quoted(run_dir)}{more}`"


# What a collective operation raises on a worker whose peer died, hung or was preempted.
PEER_FAILURES = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
)


def stopped_peer(error: tf.errors.OpError) -> bool:
    """Whether `error` is a peer's stop in a cluster started by hand (TF_CONFIG): under
    `gencompile train --workers N` the launcher, which sees every worker, says it."""
    if not isinstance(error, PEER_FAILURES) or cluster.launched_workers() is not None:
        return False
    try:
        return cluster.task_count(cluster.cluster_spec()) > 1
    except RunError:  # a bad TF_CONFIG never got as far as training
        return False


def peer_failure_message(error: tf.errors.OpError, run_dir: Path) -> str:
    """A worker of a hand-started cluster stopped: TensorFlow's error in one line (as the
    launcher says it), what the run keeps and how every worker goes on."""
    message = error.message or str(error)
    summary, hung = tf_summary(message), unhealthy(message)
    who = " and ".join(f"worker {index}" for index in hung) if hung else "a worker"
    what = f"{who} of the cluster stopped ({type(error).__name__}: {summary})"
    newest = checkpoint_files.newest_epoch(run_dir / "checkpoints")
    if not newest:
        return f"{what}; no epoch was checkpointed: start the training again on every worker"
    return (
        f"{what}; {run_dir} keeps its checkpoint of epoch {newest}: continue with "
        f"{resume_command(run_dir)} on every worker"
    )


def fit_callbacks(
    model: keras.Model,
    data: Any,
    training: TrainingConfig,
    output: OutputConfig,
    run_dir: Path,
    guard: cb.NaNGuard,
    clock: TrainingClock,
    initial_epoch: int = 0,
) -> list[keras.callbacks.Callback]:
    """The callbacks of every fit, in the order their logs need (the progress bar aside)."""
    checkpoint = training["checkpoint"]
    multi_worker = training["distribution"]["strategy"] == "multi_worker"
    stopping = None
    if training["early_stopping"] is not None:  # resumed from its checkpoint's state
        options = training["early_stopping"]
        stopping = cb.EarlyStopping(initial_epoch, **options)
    keeper = cb.CheckpointKeeper(
        run_dir / "checkpoints",
        checkpoint["every_epochs"],
        checkpoint["keep"],
        # By epochs alone on several workers: their clocks differ, their checkpoints must not.
        every_seconds=0.0 if multi_worker else checkpoint.get("every_seconds", 0.0),
        timing=clock.timing,
        stopping=stopping,  # each checkpoint records its state
    )
    callbacks: list[keras.callbacks.Callback] = [
        # The model's own first: what they add to an epoch's logs (a GAN's diversity)
        # reaches the checks, history.csv and the progress bar.
        *model.training_callbacks(),
        *fine_tune.callbacks(model, training),  # learning-rate factors, set each epoch
        guard,
        cb.GradientMonitor(),
        *([] if stopping is None else [stopping]),  # before the keeper: it records its state
        keeper,
        cb.HistoryCSV(run_dir / "history.csv", initial_epoch, resumed_row(run_dir, initial_epoch)),
    ]
    board = None
    if output.get("tensorboard", False):  # projects built before the switch: none
        board = tensorboard.TensorBoardLog(run_dir / tensorboard.LOG_FOLDER, initial_epoch)
        callbacks.append(board)
    every = output["samples"]["every_epochs"]
    if every:
        callbacks.append(
            cb.SamplePictures(
                run_dir / "progress",
                every,
                draw=lambda: samples_in_data_units(model, data, 64),
                save=lambda samples, path: save_picture(samples, path, data),
                log=None if board is None else board.image,
            )
        )
    return callbacks


def resumed_row(run_dir: Path, initial_epoch: int) -> dict[str, str] | None:
    """The history.csv row the checkpoint a fit resumes from recorded (None: a fresh fit)."""
    if not initial_epoch:
        return None
    return checkpoint_files.history_row(
        checkpoint_files.paths(run_dir / "checkpoints", initial_epoch)
    )


def samples_in_data_units(model: keras.Model, data: Any, count: int) -> np.ndarray:
    """Samples mapped back through the preprocessing, for pictures and files."""
    samples = np.asarray(keras.ops.convert_to_numpy(model.sample(count)), dtype=np.float32)
    return data.preprocessor.inverse(samples)


def drawn_samples(model: keras.Model, data: Any, metrics: Any, count: int) -> np.ndarray:
    """The run's `count` samples: the first of those the evaluation scored when it drew
    enough (a diffusion model's 2000 cost seconds to draw again), else fresh ones."""
    scored = getattr(metrics, "samples", None)
    if scored is not None and len(scored) >= count:
        return scored[:count]
    return samples_in_data_units(model, data, count)


def write_artifacts(
    model: keras.Model,
    data: Any,
    fitted: FitResult,
    metrics: dict[str, float],
    output: OutputConfig,
    run_dir: Path,
) -> dict[str, Path]:
    """Weights, exports, samples, metrics.json and curves.png, each written atomically,
    into the run folder, or a pending continuation's `final/` folder (`final_files`).
    A file that cannot be written (a full disk) is an OSError that says what the run keeps
    and how to go on (a pending continuation says it in its own note)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = final_files.final_folder(run_dir)
    try:
        return write_final_files(model, data, fitted, metrics, output, folder)
    except OSError as error:
        if folder != run_dir or error.errno is None:
            raise
        raise UnwrittenRunFile(error, kept_advice(run_dir)) from error


def kept_advice(run_dir: Path) -> str:
    """What a run whose final files could not be written keeps, and how to go on."""
    newest = checkpoint_files.newest_epoch(run_dir / "checkpoints")
    if not newest:
        return "once that is fixed, train it again"
    return (
        f"{run_dir} keeps its checkpoint of epoch {newest}: once that is fixed, continue "
        f"with {resume_command(run_dir)}"
    )


def write_final_files(
    model: keras.Model,
    data: Any,
    fitted: FitResult,
    metrics: dict[str, float],
    output: OutputConfig,
    run_dir: Path,
) -> dict[str, Path]:
    """`write_artifacts` into `run_dir`, the folder they go to."""
    paths: dict[str, Path] = {}
    paths["weights"] = atomic_save_weights(run_dir / "model.weights.h5", model)
    if "keras" in output["export"]:
        paths["keras"] = atomic_save(run_dir / "model.keras", model.save)
    if "saved_model" in output["export"]:
        from gencompile.runtime.export import export_saved_model  # serve, sample, log_prob..

        export = lambda folder: export_saved_model(model, data, folder)  # noqa: E731
        paths["saved_model"] = atomic_save(run_dir / "saved_model", export)
    if data.kind == "text":  # a language model: its samples are text
        texts = model.sample_text(output["samples"]["count"])
        paths["samples"] = write_text_samples(texts, run_dir / "samples.txt")
    else:
        samples = drawn_samples(model, data, metrics, output["samples"]["count"])
        paths["samples"] = write_samples(samples, run_dir, output["samples"]["format"], data)
    history = fitted.history
    epochs = fitted.epochs
    logged = history_record(history)
    restored = cb.restored_epoch(model)
    if restored is not None and restored < epochs:
        # Early stopping kept an earlier epoch's weights: `validated` is that epoch's (the
        # values of the saved model), or absent when that epoch was not validated.
        kept = history_record({key: values[:restored] for key, values in history.items()})
        at_restored = kept.get("validated", {}).get("epoch") == restored
        logged = {
            "final": logged["final"],
            "restored_epoch": restored,
            **({"validated": kept["validated"]} if at_restored else {}),
        }
    record = {
        "metrics": dict(metrics),
        # What each number was computed with (a family's `evaluate` answers a `Metrics`).
        "computed_with": getattr(metrics, "computed_with", {}),
        **logged,
        "epochs": epochs,
        "train_seconds": round(fitted.seconds, 3),
        **({"untimed_epochs": fitted.untimed_epochs} if fitted.untimed_epochs else {}),
        "weights_sha256": repro.weights_sha256(model),
        "data_fingerprint": data.fingerprint,
        # The fitted preprocessing (`Preprocessor.to_dict`), so the data's units are known
        # without the data.
        "data_statistics": data.preprocessor.to_dict(),
    }
    repro.atomic_write_json(run_dir / "metrics.json", record)
    paths["metrics"] = run_dir / "metrics.json"
    if epochs and history:  # (a history.csv that lost every row has nothing to draw)
        paths["curves"] = pictures.save_curves(history, run_dir / "curves.png")
    return paths


def history_record(history: dict[str, list[float]]) -> dict[str, Any]:
    """metrics.json's `final`, the last epoch's own values (`val_*` only if that epoch was
    validated), and `validated`, the last validated epoch's `val_*` values with its epoch:
    validation skips epochs (`validation_every_epochs`), and a value of an earlier epoch
    must not read as the last one's.

    >>> history_record({"loss": [3.0, 2.0], "val_loss": [2.5, math.nan]})
    {'final': {'loss': 2.0}, 'validated': {'epoch': 1, 'val_loss': 2.5}}
    """
    final = {k: v[-1] for k, v in history.items() if v and math.isfinite(v[-1])}
    validation = {k: v for k, v in history.items() if k.startswith("val_")}
    longest = max(map(len, validation.values()), default=0)
    for epoch in range(longest, 0, -1):  # the newest epoch with a finite validation value
        values = {k: v[epoch - 1] for k, v in validation.items() if len(v) >= epoch}
        if finite := {k: x for k, x in values.items() if math.isfinite(x)}:
            return {"final": final, "validated": {"epoch": epoch, **finite}}
    return {"final": final}


def write_text_samples(texts: list[str], path: Path) -> Path:
    """Text samples, each under a `### sample i` line (i from 1)."""
    blocks = [f"### sample {i}\n{text.strip(chr(10))}\n" for i, text in enumerate(texts, 1)]
    repro.atomic_write_text(path, "\n".join(blocks))
    return path


def write_samples(samples: np.ndarray, run_dir: Path, fmt: str, data: Any) -> Path:
    if fmt == "npz":
        path = run_dir / "samples.npz"
        buffer = npz_bytes(samples=samples)
        repro.atomic_write_bytes(path, buffer)
        return path
    return save_picture(samples, run_dir / "samples.png", data)


# Rows of a split a picture reads (its first, a seeded random subset): the training images
# whose range a grid shows, the real points under a scatter. Never a whole streamed split.
RANGE_EXAMPLES = 1000
SCATTER_EXAMPLES = 10_000


def save_picture(samples: np.ndarray, path: Path, data: Any) -> Path:
    """An image grid in the data's value range, or a scatter over held-out data."""
    if data.kind == "image":
        raw = data.preprocessor.inverse(head(data.x_train, RANGE_EXAMPLES))
        return pictures.save_samples(
            samples, path, "image", value_range=(float(raw.min()), float(raw.max()))
        )
    split = data.x_val if len(data.x_val) else data.x_train
    reference = data.preprocessor.inverse(head(split, SCATTER_EXAMPLES))
    return pictures.save_samples(samples, path, data.kind, reference)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class OtherArchitecture(RunError):
    """Weights that load as a file but not into this model: trained from another spec."""


def load_weights(model: keras.Model, run_dir: Path) -> None:
    """The run's final weights into `model`, every failure one line: an unreadable file
    ("may be corrupt") apart from a readable one whose layers or shapes differ from the
    model's (trained for another architecture: `OtherArchitecture`)."""
    path = run_dir / "model.weights.h5"
    if not path.exists():
        raise RunError(f"{run_dir} has no trained weights (model.weights.h5); train it first")
    if not final_files.readable_hdf5(path):
        raise RunError(f"cannot load {path}: not a readable HDF5 file; the file may be corrupt")
    try:
        with warnings.catch_warnings():  # Keras warns of each layer it skips, then raises
            warnings.filterwarnings("ignore", category=UserWarning, module="keras")
            model.load_weights(path)
    except ValueError as err:  # missing layers or variables, other shapes
        raise OtherArchitecture(
            f"cannot load {path}: the weights were trained for another architecture (a "
            f"different spec?) and do not fit this model ({first_line(err)}): retrain the "
            "project, or rebuild it from the spec its weights were trained with"
        ) from err
    except Exception as err:  # h5py/keras raise many types for a damaged file
        raise RunError(f"cannot load {path}: {first_line(err)}; the file may be corrupt") from err


def first_line(error: BaseException) -> str:
    """The first sentence of an exception's message (Keras' run over many lines).

    >>> first_line(ValueError("A total of 3 objects could not be loaded. Example: ...\\n..."))
    'A total of 3 objects could not be loaded'
    """
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line.split(". ")[0].rstrip(".:")
