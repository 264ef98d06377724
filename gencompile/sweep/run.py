"""Running a sweep: each trial an ordinary run in the sweep folder, kept in an Optuna study
(loaded if it exists, so the same command continues the sweep)."""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencompile.errors import RunError
from gencompile.files import atomic_write_json, read_json
from gencompile.report import format_value
from gencompile.run_status import RunInterrupted
from gencompile.spec.sweep import Choice, IntRange, LogUniformRange, Parameter
from gencompile.sweep.plan import (
    SWEEP_FILE,
    Sweep,
    absolute_storage,
    combinations,
    overrides_of,
    shown_storage,
    sqlite_file,
)
from gencompile.sweep.summary import (
    CONTINUES,
    RETRIES,
    RUN_DIR,
    TrialRow,
    best_row,
    metric_value,
    trial_folder,
    trial_rows,
    write_summary,
)

if TYPE_CHECKING:  # optuna is imported by the functions that use it: `--help` stays fast
    import optuna

    from gencompile.runs import TrainResult


class _TrialInterrupted(RunInterrupted):
    """Ctrl-C or SIGTERM in a trial; `trial` says what the same command does with it."""

    def __init__(self, trial: str):
        super().__init__(trial)
        self.trial = trial


@dataclass(frozen=True)
class SweepResult:
    sweep: Sweep
    rows: list[TrialRow]
    best: TrialRow | None
    summary: Path
    ran: int  # trials run by this call
    skipped: int = 0  # grid combinations finished before


def run_sweep(sweep: Sweep, echo: Callable[[str], None] = print) -> SweepResult:
    """Run (or continue) the sweep's trials; write its summary; return every trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep prints its own lines
    made = not sweep.folder.exists()
    unrecorded = _claim(sweep)
    with _study_lock(sweep):  # two sweeps starting together on a new database create it once
        study = _checked_study(sweep, made)
        if unrecorded:  # only once every check passed: a refused call changes nothing
            atomic_write_json(sweep.folder / SWEEP_FILE, sweep.identity())
        _mark_gone(study)  # before a search counts its trials, and in every summary
    if sweep.kind == "optuna":
        echo(sweep.pruning_off or f"pruning by {sweep.metric} after each epoch (median rule)")
    ran = skipped = 0
    try:
        with _interrupt_message(sweep):
            if sweep.kind == "grid":
                ran, skipped = _run_grid(sweep, study, echo)
            else:
                ran = _run_search(sweep, study, echo)
    finally:  # an interrupted sweep's summary lists what it did so far
        rows = trial_rows(study, sweep)
        summary = write_summary(sweep, rows)
    return SweepResult(sweep, rows, best_row(rows, sweep.direction), summary, ran, skipped)


def _checked_study(sweep: Sweep, made: bool) -> optuna.Study:
    """The sweep's study, opened and checked against its folder; a refused call leaves
    neither the sweep folder it `made` nor a new SQLite file behind. Call under the lock."""
    file = sqlite_file(sweep.storage)
    new_file = file if file is not None and not file.exists() else None
    try:
        study = _open_study(sweep)
    except RunError:
        if made:  # nothing stored: no folder left behind
            _remove_unused(sweep.folder)
        raise
    try:
        _refuse_foreign_trials(sweep, study)
    except RunError:
        if new_file is not None:  # made by this call's opening, empty
            new_file.unlink(missing_ok=True)
        raise
    return study


def _open_study(sweep: Sweep) -> optuna.Study:
    """The sweep's study, created or loaded; a database that cannot be opened (a server
    down, a file in a missing folder) is one message, its URL without the password."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return optuna.create_study(
            study_name=sweep.name,
            storage=sweep.storage,
            direction=sweep.direction,
            pruner=optuna.pruners.NopPruner()
            if sweep.pruning_off
            else optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            load_if_exists=True,
        )
    except (SQLAlchemyError, ImportError) as error:
        shown = shown_storage(sweep.storage, sweep.folder)
        where = f"--storage {shown}" if shown else str(sweep.folder / "optuna.db")
        told = str(getattr(error, "orig", None) or error).strip().splitlines()
        reason = told[0] if told else type(error).__name__  # SQLAlchemy's first line
        raise RunError(
            f"{where}: cannot open the study's database ({reason}); check the URL and that "
            "the database can be reached"
        ) from None


def _remove_unused(folder: Path) -> None:
    """Remove a sweep folder this call made, if it holds nothing but its lock file."""
    if {path.name for path in folder.iterdir()} <= {"study.lock"}:
        (folder / "study.lock").unlink(missing_ok=True)
        folder.rmdir()


def _claim(sweep: Sweep) -> bool:
    """Create the sweep folder, or check that it holds this same sweep; True if its
    sweep.json is still to be written (new, or written before it kept the storage)."""
    sweep.folder.mkdir(parents=True, exist_ok=True)
    path = sweep.folder / SWEEP_FILE
    recorded = read_json(path)
    wanted = sweep.identity()
    # A sweep.json written before it kept the storage: its trial folders tell the rest.
    found = {"storage": wanted["storage"], **recorded} if recorded else {}
    if found.get("storage"):  # recorded relative before: as the command gives it now
        found["storage"] = absolute_storage(found["storage"])
    if found and found["storage"] != wanted["storage"]:
        raise RunError(_other_storage(sweep, found["storage"], wanted["storage"]))
    if found and found != wanted:
        differ = ", ".join(key for key in wanted if found.get(key) != wanted[key])
        raise RunError(
            f"{sweep.folder} holds another sweep (its {differ} differ): give --name for a "
            "new sweep, or delete the folder to start this one over"
        )
    return recorded != wanted


def _other_storage(sweep: Sweep, recorded: str | None, given: str | None) -> str:
    """Continuing a sweep on another database would number its trials from 0 again, over
    the trial folders of the first: refused, saying which database the sweep used."""
    own = "its own optuna.db (no --storage)"
    return (
        f"{sweep.folder} was swept with {f'--storage {recorded}' if recorded else own}, "
        f"not {f'--storage {given}' if given else own}: give the same storage to continue "
        "it, or --name for a new sweep"
    )


def _refuse_foreign_trials(sweep: Sweep, study: optuna.Study) -> None:
    """Trial folders the study does not know belong to another study (its database deleted
    or replaced): the trials to come would be numbered like them and rebuild them."""
    folders = (trial_folder(sweep.folder, t) for t in study.get_trials(deepcopy=False))
    known = {folder.name for folder in folders if folder}
    trials = (p.name for p in sweep.folder.iterdir() if re.fullmatch(r"trial-\d+", p.name))
    foreign = sorted(name for name in trials if name not in known)  # not trial-N-reproduced
    if foreign:
        raise RunError(
            f"{sweep.folder} holds trial folders ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}) that the study {sweep.name!r} in its "
            "database does not know (its database was deleted or replaced?): give the "
            "--storage of the study they belong to, or --name for a new sweep"
        )


@contextmanager
def _study_lock(sweep: Sweep) -> Iterator[None]:
    """An exclusive lock on a file in the sweep folder: sweeps of one machine creating the
    study, or claiming a grid combination, take turns."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (a grid is then for one process)
        yield
        return
    with (sweep.folder / "study.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _interrupt_message(sweep: Sweep) -> Iterator[None]:
    try:
        yield
    except RunInterrupted as error:
        trial = f" ({error.trial})" if isinstance(error, _TrialInterrupted) else ""
        raise RunInterrupted(
            f"interrupted: the sweep {sweep.folder} keeps its finished trials; run the same "
            f"sweep command again to continue it{trial}"
        ) from None


def _trial_interrupted(number: int, run_dir: Path) -> str:
    """What the same sweep command does with a trial stopped now: continues its run from
    its newest checkpoint, or, stopped before its first one, trains its values again."""
    epoch = _kept_checkpoint(run_dir)
    if epoch:
        return f"trial {number} goes on in {run_dir} from its checkpoint of epoch {epoch}"
    return (
        f"trial {number} stopped before its first checkpoint: its values are trained again "
        "from epoch 1, in a new folder"
    )


def _encode(value: Any) -> Any:
    """A value Optuna can store as a categorical choice (lists and mappings as JSON)."""
    return (
        value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)
    )


def _decode(value: Any, choices: list[Any]) -> Any:
    return next(choice for choice in choices if _encode(choice) == value)


def _key(combination: dict[str, Any]) -> str:
    return json.dumps({k: _encode(v) for k, v in combination.items()}, sort_keys=True)


def _run_grid(sweep: Sweep, study: optuna.Study, echo: Callable[[str], None]) -> tuple[int, int]:
    """Each combination not finished or running (here or in another process on this
    database) is claimed under the study lock and trained; each at most once per call."""
    import optuna

    every = combinations(sweep.grid)
    finished = {
        _key_of(t.params)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    }
    skipped = sum(_key(combination) in finished for combination in every)
    if skipped:
        echo(f"{skipped} grid combination(s) finished before: skipped")
    ran = 0
    for combination in every:
        if _key(combination) in finished:
            continue
        with _study_lock(sweep):
            if _key(combination) in _taken(study):
                echo(f"grid combination {_key(combination)} is taken by another process: skipped")
                continue
            encoded = {k: _encode(v) for k, v in combination.items()}
            trial = _ask(study, encoded, *_stopped_before(sweep, study, _key(combination)))
            values = {  # its params recorded under the lock: the combination is taken
                path: _decode(
                    trial.suggest_categorical(path, [_encode(v) for v in options]), options
                )
                for path, options in sweep.grid.items()
            }
        ran += 1
        _run_trial(sweep, study, trial, values, echo)
    return ran, skipped


def _stopped_before(
    sweep: Sweep, study: optuna.Study, key: str
) -> tuple[_Stopped | None, int | None]:
    """The grid combination `key`'s interrupted run to continue, else the number of its
    trial stopped before a checkpoint that it trains again (each None if there is none)."""
    stopped = _stopped_runs(sweep, study)
    earlier = next((s for s in stopped if _key_of(s.params) == key), None)
    if earlier is not None:
        return earlier, None
    again = next((t for t in _unstarted(sweep, study) if _key_of(t.params) == key), None)
    return None, again.number if again else None


def _key_of(params: dict[str, Any]) -> str:
    """The key of a trial's (encoded) params, as `_key` makes one of a combination."""
    return json.dumps(params, sort_keys=True)


@dataclass(frozen=True)
class _Stopped:
    """A run folder whose latest trial was interrupted after a checkpoint: a new trial of
    the same values continues it there (`gencompile.runs.resume`)."""

    trial: int  # the trial interrupted in it last
    run_dir: Path
    epoch: int  # its newest checkpoint
    params: dict[str, Any]  # as Optuna keeps them (encoded)


def _stopped_runs(sweep: Sweep, study: optuna.Study) -> list[_Stopped]:
    """Run folders to continue: each one's latest trial (a trial continuing a folder
    records it as its run_dir) interrupted (Ctrl-C, or its process killed), not running,
    the run `interrupted` with a checkpoint. Call under the study lock, after `_mark_gone`."""
    stopped = []
    for run_dir, trial in _latest_trials(sweep, study).items():
        if _stopped_trial(trial):
            epoch = _kept_checkpoint(run_dir)
            if epoch:
                stopped.append(_Stopped(trial.number, run_dir, epoch, dict(trial.params)))
    return stopped


def _latest_trials(sweep: Sweep, study: optuna.Study) -> dict[Path, optuna.trial.FrozenTrial]:
    """Each run folder's latest trial (a trial continuing a folder records it as its own)."""
    latest: dict[Path, optuna.trial.FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):  # by number: the latest wins
        run_dir = trial_folder(sweep.folder, trial)
        if run_dir:
            latest[run_dir] = trial
    return latest


def _stopped_trial(trial: optuna.trial.FrozenTrial) -> bool:
    """Interrupted (Ctrl-C, or its process killed): failed without an error (a search
    leaves a failed trial's values for new points; a grid trains its combination again)."""
    import optuna

    return trial.state == optuna.trial.TrialState.FAIL and "error" not in trial.user_attrs


def _unstarted(sweep: Sweep, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials stopped before their first checkpoint whose values no later trial trained
    again: a new trial trains them from epoch 1, in a new folder (a search would otherwise
    draw a new point). Call under the study lock, after `_mark_gone`."""
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get(RETRIES) for trial in trials}
    latest = _latest_trials(sweep, study)
    swept = set(sweep.grid or sweep.parameters)
    unstarted = []
    for trial in trials:
        run_dir = trial_folder(sweep.folder, trial)
        if not _stopped_trial(trial) or trial.number in retried or set(trial.params) != swept:
            continue  # finished, failed, trained again, or stopped before its values were drawn
        if run_dir is None or (latest[run_dir] is trial and not _kept_checkpoint(run_dir)):
            unstarted.append(trial)
    return unstarted


def _kept_checkpoint(run_dir: Path) -> int:
    """The newest checkpoint's epoch of an interrupted run; 0 for any other run."""
    from gencompile.run_status import read_status
    from gencompile.runtime.checkpoint_files import newest_epoch  # no TensorFlow

    try:
        interrupted = read_status(run_dir) == "interrupted"
    except RunError:  # an unreadable status.json: not continued
        return 0
    return newest_epoch(run_dir / "checkpoints") if interrupted else 0


def _ask(
    study: optuna.Study,
    params: dict[str, Any],
    earlier: _Stopped | None = None,
    retries: int | None = None,
) -> optuna.Trial:
    """A new trial of `params`, recorded as this process's and, if `earlier`, as continuing
    its folder (then taken: no other process continues it), or, if `retries`, as training
    that trial's values again (then no other process does). Call under the study lock."""
    study.enqueue_trial(params)
    trial = study.ask()
    trial.set_user_attr("process", [socket.gethostname(), os.getpid()])
    if earlier is not None:
        trial.set_user_attr(RUN_DIR, earlier.run_dir.name)
        trial.set_user_attr(CONTINUES, {"trial": earlier.trial, "epoch": earlier.epoch})
    if retries is not None:
        trial.set_user_attr(RETRIES, retries)
    return trial


def _taken(study: optuna.Study) -> set[str]:
    """Combinations finished, or running in a live process (a trial whose process on this
    machine is gone, killed, is marked failed instead)."""
    import optuna

    _mark_gone(study)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    trials = study.get_trials(deepcopy=False, states=states)
    return {_key_of(trial.params) for trial in trials}


def _mark_gone(study: optuna.Study) -> None:
    """A running trial whose process on this machine is gone (killed) is marked failed;
    the summary calls it interrupted, as `compare` calls its run."""
    import optuna

    running = (optuna.trial.TrialState.RUNNING,)
    for trial in study.get_trials(deepcopy=False, states=running):
        if _process_gone(trial):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _process_gone(trial: optuna.trial.FrozenTrial) -> bool:
    process = trial.user_attrs.get("process")
    if not process or process[0] != socket.gethostname():
        return False
    try:
        os.kill(int(process[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _failed(trial: optuna.Trial, error: Exception, echo: Callable[[str], None]) -> None:
    from gencompile.errors import GencompileError

    text = str(error) if isinstance(error, GencompileError) else f"{type(error).__name__}: {error}"
    trial.set_user_attr("error", text[:500])
    echo(f"trial {trial.number} failed: {text}")


def _run_search(sweep: Sweep, study: optuna.Study, echo: Callable[[str], None]) -> int:
    import optuna

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    have = len(study.get_trials(deepcopy=False, states=finished))
    remaining = max(0, sweep.trials - have)
    if have:
        echo(f"{have} trial(s) finished before; {remaining} to go")
    ran = 0
    for _ in range(remaining):  # the attempts of this call: a failure that repeats ends
        trial = _claim_trial(sweep, study)
        if trial is None:  # the others' running trials make up the rest
            _say_taken(sweep, study, echo)
            break
        values = {path: _suggest(trial, path, p) for path, p in sweep.parameters.items()}
        ran += 1
        _run_trial(sweep, study, trial, values, echo)
    return ran


def _say_taken(sweep: Sweep, study: optuna.Study, echo: Callable[[str], None]) -> None:
    """Which running trials made this process stop (one of another machine's that was
    killed stays running in the study: a larger --trials goes past it)."""
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:  # other processes finished the rest meanwhile
        echo(f"the {sweep.trials} trials are finished (some by other processes): no more here")
        return
    numbers = ", ".join(str(trial.number) for trial in running)
    echo(
        f"trial(s) {numbers} running in other processes make up the {sweep.trials} trials: "
        "no more here"
    )


def _claim_trial(sweep: Sweep, study: optuna.Study) -> optuna.Trial | None:
    """A new trial of the search, or None when its finished trials and those running
    (here or in another process on its database) make up `--trials`: claimed under the
    study lock, so that processes of one machine never start more between them."""
    import optuna

    taken = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.RUNNING,
    )
    with _study_lock(sweep):
        _mark_gone(study)  # a killed process's trial is not taken
        if len(study.get_trials(deepcopy=False, states=taken)) >= sweep.trials:
            return None
        # Seeded by the trials so far: a continuation, or another process, draws new
        # points (the spec's seed alone would replay the same draws), the same ones on
        # every replay.
        study.sampler = optuna.samplers.TPESampler(seed=sweep.seed + len(study.trials))
        stopped = _stopped_runs(sweep, study)
        if stopped:  # an interrupted trial's values again, to continue its run
            return _ask(study, stopped[0].params, stopped[0])
        unstarted = _unstarted(sweep, study)
        if unstarted:  # one stopped before its first checkpoint: its values from epoch 1
            return _ask(study, dict(unstarted[0].params), retries=unstarted[0].number)
        trial = study.ask()
        trial.set_user_attr("process", [socket.gethostname(), os.getpid()])
    return trial


def _run_trial(
    sweep: Sweep,
    study: optuna.Study,
    trial: optuna.Trial,
    values: dict[str, Any],
    echo: Callable[[str], None],
) -> None:
    """Train a claimed trial and tell the study how it ended. A failure (any error) is
    recorded and the sweep goes on; Ctrl-C stops the sweep."""
    import optuna

    failed = optuna.trial.TrialState.FAIL
    try:
        value = _train_trial(sweep, trial, values, echo)
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # its last reported value
        return
    except (KeyboardInterrupt, RunInterrupted):
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=failed)
        run_dir = trial_folder(sweep.folder, trial)
        if not run_dir:  # stopped before its folder was made
            raise
        raise _TrialInterrupted(_trial_interrupted(trial.number, run_dir)) from None
    except Exception as error:  # a failing trial does not stop the others
        _failed(trial, error, echo)
        study.tell(trial, state=failed)
        return
    except BaseException:
        study.tell(trial, state=failed)
        raise
    study.tell(trial, value)


def _suggest(trial: optuna.Trial, path: str, parameter: Parameter) -> Any:
    if isinstance(parameter, Choice):
        choices = [_encode(v) for v in parameter.values]
        return _decode(trial.suggest_categorical(path, choices), parameter.values)
    if isinstance(parameter, IntRange):
        return trial.suggest_int(
            path, parameter.low, parameter.high, step=parameter.step, log=parameter.log
        )
    log = isinstance(parameter, LogUniformRange)
    return trial.suggest_float(path, parameter.low, parameter.high, log=log)


def _train_trial(
    sweep: Sweep, trial: optuna.Trial, values: dict[str, Any], echo: Callable[[str], None]
) -> float:
    """Train one trial as an ordinary run in the sweep folder; its metric's value."""
    import optuna

    from gencompile.runs import record_pruned

    trial.set_user_attr("values", values)
    shown = " ".join(f"{path}={json.dumps(value)}" for path, value in values.items())
    echo(f"trial {trial.number}: {shown}")
    pruned: list[int] = []
    listener = _pruning_listener(sweep, trial, pruned)
    with listener:  # not quiet: each epoch shows, as in `gencompile train`
        result = _train_or_resume(sweep, trial, values, echo)
    run_dir = result.run_dir
    value = metric_value(result.run_dir, sweep.metric)
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("value", value)  # a pruned trial's too, which Optuna does not keep
    if pruned:
        record_pruned(run_dir, pruned[0])  # its run says so: stopped early, not finished
        trial.set_user_attr("pruned_at_epoch", pruned[0])
        echo(f"trial {trial.number}: pruned after epoch {pruned[0]} ({sweep.metric} {value:.6g})")
        raise optuna.TrialPruned(f"{sweep.metric} {value:.6g} after epoch {pruned[0]}")
    echo(f"trial {trial.number}: {sweep.metric} {format_value(value)}  ({run_dir})")
    return value


def _train_or_resume(
    sweep: Sweep, trial: optuna.Trial, values: dict[str, Any], echo: Callable[[str], None]
) -> TrainResult:
    """Train the trial in a new folder, or continue the interrupted run it was claimed to
    continue (`_ask`) from its newest checkpoint, as `gencompile train --resume` does."""
    from gencompile.runs import resume, train

    continues = trial.user_attrs.get(CONTINUES)
    run_dir = trial_folder(sweep.folder, trial)
    if continues and run_dir:
        echo(
            f"trial {trial.number}: continues trial {continues['trial']} ({run_dir}) from its "
            f"checkpoint of epoch {continues['epoch']}"
        )
        return resume(run_dir)
    if RETRIES in trial.user_attrs:
        echo(
            f"trial {trial.number}: trains the values of trial {trial.user_attrs[RETRIES]} "
            "again, which stopped before its first checkpoint"
        )
    run_dir = sweep.folder / f"trial-{trial.number:04d}"
    trial.set_user_attr(RUN_DIR, run_dir.name)  # its name: found from any directory
    try:  # claimed here: a trial never rebuilds a folder another run holds
        run_dir.mkdir(parents=True)
    except FileExistsError:
        raise RunError(f"{run_dir} already holds a run, of another study: left as it is") from None
    return train(sweep.spec, [*sweep.overrides, *overrides_of(values)], None, run_dir=run_dir)


def _pruning_listener(sweep: Sweep, trial: optuna.Trial, pruned: list[int]) -> Any:
    """Reports each validated epoch's metric to Optuna; stops the fit when it prunes."""
    if sweep.pruning_off:
        return nullcontext()
    from gencompile.runtime.epoch_listeners import listening

    def listener(epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(sweep.metric)
        if value is None or not math.isfinite(value):  # an epoch without validation
            return False
        trial.report(value, epoch)
        if trial.should_prune():
            pruned.append(epoch)
            return True
        return False

    return listening(listener)
