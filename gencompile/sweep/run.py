"""Running a sweep: each trial an ordinary run in the sweep folder, kept in an Optuna study
(loaded if it exists, so the same command continues the sweep)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencompile.errors import RunError
from gencompile.files import atomic_write_json, read_json
from gencompile.report import format_value
from gencompile.spec.sweep import Choice, IntRange, LogUniformRange, Parameter
from gencompile.sweep.plan import SWEEP_FILE, Sweep, combinations, overrides_of
from gencompile.sweep.summary import TrialRow, best_row, metric_value, trial_rows, write_summary

if TYPE_CHECKING:  # optuna is imported by the functions that use it: `--help` stays fast
    import optuna


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
    _claim(sweep)
    study = optuna.create_study(
        study_name=sweep.name,
        storage=sweep.storage,
        direction=sweep.direction,
        sampler=optuna.samplers.TPESampler(seed=sweep.seed),
        pruner=optuna.pruners.NopPruner()
        if sweep.pruning_off
        else optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        load_if_exists=True,
    )
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


def _claim(sweep: Sweep) -> None:
    """Create the sweep folder, or check that it holds this same sweep."""
    sweep.folder.mkdir(parents=True, exist_ok=True)
    path = sweep.folder / SWEEP_FILE
    found = read_json(path)
    wanted = sweep.identity()
    if found and found != wanted:
        differ = ", ".join(key for key in wanted if found.get(key) != wanted[key])
        raise RunError(
            f"{sweep.folder} holds another sweep (its {differ} differ): give --name for a "
            "new sweep, or delete the folder to start this one over"
        )
    if not found:
        atomic_write_json(path, wanted)


@contextmanager
def _interrupt_message(sweep: Sweep) -> Iterator[None]:
    from gencompile.run_status import RunInterrupted

    try:
        yield
    except RunInterrupted:
        raise RunInterrupted(
            f"interrupted: the sweep {sweep.folder} keeps its finished trials; run the same "
            "sweep command again to continue it"
        ) from None


def _encode(value: Any) -> Any:
    """A value Optuna can store as a categorical choice (lists and mappings as JSON)."""
    return (
        value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)
    )


def _decode(value: Any, choices: list[Any]) -> Any:
    return next(choice for choice in choices if _encode(choice) == value)


def _run_grid(sweep: Sweep, study: optuna.Study, echo: Callable[[str], None]) -> tuple[int, int]:
    import optuna

    done = {
        json.dumps(t.params, sort_keys=True)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    }
    todo = [
        combination
        for combination in combinations(sweep.grid)
        if json.dumps({k: _encode(v) for k, v in combination.items()}, sort_keys=True) not in done
    ]
    skipped = len(combinations(sweep.grid)) - len(todo)
    if skipped:
        echo(f"{skipped} grid combination(s) finished before: skipped")
    for combination in todo:
        study.enqueue_trial({k: _encode(v) for k, v in combination.items()})
        trial = study.ask()
        values = {
            path: _decode(trial.suggest_categorical(path, [_encode(v) for v in choices]), choices)
            for path, choices in sweep.grid.items()
        }
        try:
            value = _train_trial(sweep, trial, values, echo)
        except RunError as error:  # a diverging trial does not stop the others
            _failed(trial, error, echo)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        study.tell(trial, value)
    return len(todo), skipped


def _failed(trial: optuna.Trial, error: Exception, echo: Callable[[str], None]) -> None:
    trial.set_user_attr("error", str(error)[:500])
    echo(f"trial {trial.number} failed: {error}")


def _run_search(sweep: Sweep, study: optuna.Study, echo: Callable[[str], None]) -> int:
    import optuna

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    have = len(study.get_trials(deepcopy=False, states=finished))
    remaining = max(0, sweep.trials - have)
    if have:
        echo(f"{have} trial(s) finished before; {remaining} to go")

    def objective(trial: optuna.Trial) -> float:
        values = {path: _suggest(trial, path, p) for path, p in sweep.parameters.items()}
        try:
            return _train_trial(sweep, trial, values, echo)
        except RunError as error:
            _failed(trial, error, echo)
            raise

    if remaining:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(RunError,),
            # several machines on one database stop at the sweep's number of trials
            callbacks=[optuna.study.MaxTrialsCallback(sweep.trials, states=finished)],
        )
    return remaining


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

    from gencompile.runs import train

    run_dir = sweep.folder / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("values", values)
    shown = " ".join(f"{path}={json.dumps(value)}" for path, value in values.items())
    echo(f"trial {trial.number}: {shown}")
    pruned: list[int] = []
    listener = _pruning_listener(sweep, trial, pruned)
    with listener:
        result = train(
            sweep.spec, [*sweep.overrides, *overrides_of(values)], None, run_dir=run_dir, quiet=True
        )
    value = metric_value(result.run_dir, sweep.metric)
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("value", value)  # a pruned trial's too, which Optuna does not keep
    if pruned:
        trial.set_user_attr("pruned_at_epoch", pruned[0])
        echo(f"trial {trial.number}: pruned after epoch {pruned[0]} ({sweep.metric} {value:.6g})")
        raise optuna.TrialPruned(f"{sweep.metric} {value:.6g} after epoch {pruned[0]}")
    echo(f"trial {trial.number}: {sweep.metric} {format_value(value)}  ({run_dir})")
    return value


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
