"""Planning a sweep: the base spec, each grid value or range checked against its field,
every grid combination lowered, the metric and its direction: all before any trial."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from gencompile.errors import Problem, SpecError
from gencompile.report import METRIC_UNITS
from gencompile.spec.checks import metric_problem
from gencompile.spec.loader import Marks
from gencompile.spec.sweep import Parameter, candidates, override_text

Kind = Literal["grid", "optuna"]
Direction = Literal["minimize", "maximize"]
SWEEP_FILE = "sweep.json"
# Names a metric of evaluation.metrics writes into metrics.json when not its own.
METRIC_OUTPUTS = {"precision_recall": "precision", "mode_coverage": "modes_captured"}


@dataclass(frozen=True)
class Sweep:
    """A checked sweep: what every trial trains and what is compared."""

    name: str
    folder: Path
    spec: Path
    overrides: tuple[str, ...]  # --set of every trial (with --epochs as training.epochs)
    kind: Kind
    grid: dict[str, list[Any]]  # kind grid: field path -> its values
    parameters: dict[str, Parameter]  # kind optuna: field path -> its range
    metric: str
    direction: Direction
    trials: int  # kind optuna: finished trials wanted in all
    storage: str
    pruning_off: str | None  # why pruning is off; None: on
    seed: int

    def identity(self) -> dict[str, Any]:
        """What must match for a re-run to continue this sweep (not its trial count)."""
        return {
            "spec": str(self.spec.resolve()),
            "overrides": list(self.overrides),
            "kind": self.kind,
            "grid": self.grid,
            "parameters": {k: v.model_dump() for k, v in self.parameters.items()},
            "metric": self.metric,
            "direction": self.direction,
            "storage": shown_storage(self.storage, self.folder),
        }


def default_storage(folder: Path) -> str:
    """The study's database when no --storage is given: SQLite in the sweep folder."""
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def shown_storage(storage: str, folder: Path) -> str | None:
    """`storage` as sweep.json records it: None for the sweep folder's own database, else
    the URL without its password (the file must not keep a secret to tell databases apart)."""
    if storage == default_storage(folder):
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: Optuna refuses it when it opens it
        return storage


def sqlite_file(storage: str) -> Path | None:
    """The file of a SQLite URL as given (None for another database, one in memory, or a
    URL SQLAlchemy cannot read)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except ArgumentError:
        return None
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(database)


def absolute_storage(storage: str) -> str:
    """`storage` with a relative SQLite path made absolute: the sweep records the database
    it used, which the same command continues from any directory."""
    from sqlalchemy.engine import make_url

    file = sqlite_file(storage)
    if file is None or file.is_absolute():
        return storage
    url = make_url(storage).set(database=str(file.resolve()))
    return url.render_as_string(hide_password=False)


# The pip package of a database driver SQLAlchemy imports by another name.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
}


def check_storage(storage: str, folder: Path) -> None:
    """A --storage URL SQLAlchemy reads, of a database whose driver is installed: told
    before the sweep folder is made (a server that cannot be reached is told on opening)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = shown_storage(storage, folder)
    try:
        url = make_url(storage)
    except ArgumentError:
        message, hint = "not a database URL", "e.g. sqlite:////path/to/study.db"
    else:
        try:
            url.get_dialect().import_dbapi()
            return
        except NoSuchModuleError:
            message = f"unknown database {url.drivername!r}"
            hint = "e.g. sqlite:///... or postgresql://user@host/db"
        except ImportError as missing:
            package = DRIVER_PACKAGES.get(missing.name or "", missing.name)
            message = f"no driver for {url.get_backend_name()} is installed"
            hint = f"pip install {package}"
    raise SpecError([Problem(str(shown), message, "--storage", hint=hint)])


# --------------------------------------------------------------------------- planning


def parse_grid(options: list[str], data: dict[str, Any], marks: Any) -> dict[str, list[Any]]:
    """`--grid model.latent_dim=4,8,16` -> {"model.latent_dim": [4, 8, 16]}, each value
    checked against its field (a value is YAML: `--grid model.encoder.mlp=[64],[128,64]`)."""
    from gencompile.spec import check_trial
    from gencompile.spec.loader import parse_yaml
    from gencompile.spec.sweep import value_problems

    grid: dict[str, list[Any]] = {}
    problems: list[Problem] = []
    for text in options:
        path, sep, values_text = text.partition("=")
        path = path.strip()
        if not sep or not path or not values_text.strip():
            raise SpecError(
                [Problem("", f"--grid expects path=v1,v2,... (got {text!r})", "--grid")]
            )
        try:
            values, _ = parse_yaml(f"[{values_text}]", "--grid")
        except SpecError as err:
            problems += [replace(p, path=path, line=None, column=None) for p in err.problems]
            continue
        if path in grid:
            problems.append(Problem(path, "given twice", "--grid", hint="one --grid per field"))
        grid[path] = list(values)
        problems += _repeated_values(path, grid[path])
        for problem in value_problems(data, marks, path, grid[path], ("sweep",), check_trial):
            problems.append(replace(problem, path=path, file="--grid", line=None, column=None))
    if problems:
        raise SpecError(problems)
    return grid


def _repeated_values(path: str, values: list[Any]) -> list[Problem]:
    """A value given twice would be one combination claimed twice: refused, not trained twice."""
    seen: set[str] = set()
    problems = []
    for value in values:
        key = json.dumps(value, sort_keys=True)
        if key in seen:
            hint = "give each value once"
            problems.append(Problem(path, f"the value {key} is given twice", "--grid", hint=hint))
        seen.add(key)
    return problems


def metric_direction(metric: str, given: str | None) -> Direction:
    """`given`, else what METRIC_UNITS says of the metric (or of X for a per-epoch val_X)."""
    if given is not None:
        if given not in ("minimize", "maximize"):
            raise SpecError([Problem("", "must be minimize or maximize", "--direction")])
        return "minimize" if given == "minimize" else "maximize"
    name = metric.removeprefix("val_")
    how = METRIC_UNITS.get(name, ("", ""))[1]
    if how == "lower is better" or name.endswith("loss"):
        return "minimize"
    if how == "higher is better":
        return "maximize"
    raise SpecError(
        [
            Problem(
                "",
                f"cannot tell whether a higher or a lower {metric} is better",
                "--metric",
                hint="give --direction minimize or --direction maximize",
            )
        ]
    )


def _default_metric(plan: Any) -> str:
    metrics = [str(name) for name in plan.evaluation.get("metrics", [])]
    if not metrics:
        return "val_loss"
    return METRIC_OUTPUTS.get(metrics[0], metrics[0])


def _example_parameter(spec: Any) -> str:
    """A sweep parameter this spec has, for a hint: the model's first whole-number field
    (a VAE's latent_dim, a mixture's components), else the optimizer's learning rate."""
    model = spec.model
    for name in type(model).model_fields:
        value = getattr(model, name)
        if type(value) is int and value > 0:
            low, high = max(1, value // 2), max(2, value * 2)
            return f"model.{name}: {{type: int, low: {low}, high: {high}}}"
    return "training.optimizer.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-2}"


def _check_metric(metric: str, spec: Any) -> None:
    """A metric this spec's runs produce (metrics.json or history.csv): any other is told
    now, not after the first trial (validation checks the spec's own sweep.metric so)."""
    found = metric_problem(metric, spec)
    if found is not None:
        raise SpecError([Problem("", found[0], "--metric", hint=found[1])])


def _check_comparable(metric: str, spec: Any, swept: list[str]) -> None:
    """A training-loop metric (history.csv's loss or val_*, in the model's units) ranks
    trials that change the preprocessing or the loss by those as much as by their models:
    refused now, with the held-out metrics (metrics.json's, in the data's units) that the
    trials compute alike (compare's rule, foreseen from the swept fields) to use."""
    from gencompile.comparison import (
        comparable_metrics,
        computed_differently_across,
        sets_model_units,
    )
    from gencompile.spec.checks import written_metrics

    written = written_metrics(spec)
    changing = [path for path in swept if sets_model_units(path)]
    if metric in written or not changing:
        return
    unlike = computed_differently_across(written, swept)
    held_out = comparable_metrics(written, unlike)
    hint = (
        f"give --metric a held-out metric, in the data's units: {', '.join(held_out)}"
        if held_out
        else "add a held-out metric (in the data's units) that every trial computes alike, "
        "a sample metric, to evaluation.metrics and give it with --metric"
    )
    if unlike:  # why the spec's likelihood metrics are not advised
        hint += (
            f"; not {', '.join(unlike)}: trials with another likelihood compute them "
            "differently (a Bernoulli cross-entropy vs a density), as compare marks them"
        )
    raise SpecError(
        [
            Problem(
                metric,
                "is the training loop's, in the model's units and loss, which "
                f"{', '.join(changing)} changes: the trials would be ranked by their "
                "preprocessing or loss as much as by their models",
                "--metric",
                hint=hint,
            )
        ]
    )


def plan_sweep(
    spec: Path,
    grid_options: list[str] | None = None,
    search: str | None = None,
    trials: int | None = None,
    metric: str | None = None,
    direction: str | None = None,
    overrides: list[str] | None = None,
    epochs: int | None = None,
    name: str | None = None,
    sweeps_dir: Path = Path("sweeps"),
    storage: str | None = None,
    pruning: bool = True,
) -> Sweep:
    """Check everything a sweep needs before its first trial: the base spec, each grid
    value or range against its field, every grid combination lowered, the metric."""
    from gencompile.compiler.lower import lower
    from gencompile.spec import default_mapping, validate_raw
    from gencompile.spec.loader import read_spec

    every = list(overrides or [])
    if epochs is not None:
        every.append(f"training.epochs={int(epochs)}")
    raw = read_spec(spec, every, start_of=default_mapping)
    loaded = validate_raw(raw)
    block = loaded.spec.sweep
    kind: Kind = "grid" if (grid_options and search in (None, "grid")) else "optuna"
    if search not in (None, "grid", "optuna"):
        raise SpecError(
            [Problem("", f"unknown search {search!r}", "--search", hint="grid or optuna")]
        )
    grid: dict[str, list[Any]] = {}
    parameters: dict[str, Parameter] = {}
    if search == "grid" and not grid_options:
        raise SpecError(
            [Problem("", "a grid needs its values", "--grid", hint="--grid path=v1,v2")]
        )
    if kind == "grid":
        if trials is not None:  # a grid runs each combination once: a count means nothing
            raise SpecError(
                [
                    Problem(
                        "--grid",
                        "a grid runs each combination of its values once; --trials counts "
                        "an optuna search's trials",
                        "--trials",
                        hint="leave out --trials, or use --search optuna without --grid",
                    )
                ]
            )
        grid = parse_grid(list(grid_options or []), raw.data, raw.marks)
    elif grid_options:
        raise SpecError(
            [Problem("", "--grid gives a grid's values", "--search", hint="use --search grid")]
        )
    elif block is None:
        raise SpecError(
            [
                Problem(
                    "sweep",
                    "an optuna search draws from the spec's sweep: block, and this spec has none",
                    raw.marks.locate(()).file,
                    hint=f"add sweep: {{parameters: {{{_example_parameter(loaded.spec)}}}}} "
                    "(docs/spec.md, Sweep), or give --grid path=v1,v2",
                )
            ]
        )
    else:
        parameters = dict(block.parameters)
    chosen = metric or (block.metric if block else None)
    if (chosen or "").startswith("val_"):
        every += _validated_every_epoch(loaded.spec, raw.marks)
        loaded = validate_raw(read_spec(spec, every, start_of=default_mapping))
    plan = lower(loaded)
    chosen = chosen or _default_metric(plan)
    try:
        _check_metric(chosen, loaded.spec)
        _check_comparable(chosen, loaded.spec, [*grid, *parameters])
    except SpecError as error:
        if metric is None and block is not None and block.metric is not None:  # the spec's
            where = ("sweep", "metric")
            error = SpecError([raw.marks.problem(where, p.message, p.hint) for p in error.problems])
        raise error from None
    scored_per_epoch = chosen.startswith("val_")
    for combination in combinations(grid):  # what only compiling finds (shapes, sizes)
        _compiled(spec, every, combination, _at_grid, scored_per_epoch)
    for path, parameter in parameters.items():
        for value in candidates(parameter):
            at_parameter = functools.partial(_at, raw.marks, ("sweep", "parameters", path))
            _compiled(spec, every, {path: value}, at_parameter, scored_per_epoch)
    how = metric_direction(chosen, direction or (block.direction if block else None))
    folder = sweeps_dir / (name or loaded.spec.name)
    if storage is not None:
        check_storage(storage, folder)
    return Sweep(
        name=name or loaded.spec.name,
        folder=folder,
        spec=Path(spec),
        overrides=tuple(every),
        kind=kind,
        grid=grid,
        parameters=parameters,
        metric=chosen,
        direction=how,
        trials=trials or (block.trials if block else 20),
        storage=absolute_storage(storage) if storage else default_storage(folder),
        pruning_off=_pruning(kind, chosen, pruning),
        seed=loaded.spec.seed,
    )


def _compiled(
    spec: Path,
    every: list[str],
    values: dict[str, Any],
    locate: Callable[[Problem], Problem],
    scored_per_epoch: bool = False,
) -> None:
    """Compile the spec with `values` set; its problems located by `locate`. A val_*
    metric (`scored_per_epoch`) needs its last epoch validated with these values too."""
    from gencompile.compiler.lower import lower
    from gencompile.spec import default_mapping, validate_raw
    from gencompile.spec.loader import read_spec

    try:
        loaded = validate_raw(read_spec(spec, [*every, *overrides_of(values)], default_mapping))
        unvalidated = _unvalidated_last_epoch(loaded.spec) if scored_per_epoch else None
        if unvalidated:
            message, hint = unvalidated
            raise SpecError([Problem("training.validation_every_epochs", message, hint=hint)])
        lower(loaded)
    except SpecError as error:
        shown = ", ".join(f"{path}={json.dumps(value)}" for path, value in values.items())
        raise SpecError(
            [locate(replace(p, message=f"with {shown}: {p.message}")) for p in error.problems]
        ) from None


def _at_grid(problem: Problem) -> Problem:
    return replace(problem, file="--grid", line=None, column=None)


def _at(marks: Marks, where: tuple[str, ...], problem: Problem) -> Problem:
    """`problem` located at the sweep parameter that caused it."""
    return marks.problem(where, f"{problem.path}: {problem.message}", problem.hint, at_key=True)


def _validated_every_epoch(spec: Any, marks: Any) -> list[str]:
    """A per-epoch val_* metric needs a validation split and a validated last epoch (the
    trial's model is scored, not an earlier epoch's): where the spec lets `auto` decide, a
    validation every epoch (set in each trial's spec, so its lock says so); a spec's own
    `validation_every_epochs` must divide its epochs."""
    if spec.data.validation_split == 0:
        raise SpecError(
            [
                marks.problem(
                    ("data", "validation_split"),
                    "a val_* metric needs held-out data, and this spec has none",
                    "set data.validation_split (e.g. 0.1), or choose a metric of metrics.json",
                )
            ]
        )
    if spec.training.validation_every_epochs == "auto":
        return ["training.validation_every_epochs=1"]
    unvalidated = _unvalidated_last_epoch(spec)
    if unvalidated:
        where = ("training", "validation_every_epochs")
        raise SpecError([marks.problem(where, *unvalidated)])
    return []


def _unvalidated_last_epoch(spec: Any) -> tuple[str, str] | None:
    """(message, hint) when the spec's validations may leave out the epoch whose weights a
    trial keeps: its last, or with early stopping any epoch (where it stops, or the best
    it restores)."""
    every, epochs = spec.training.validation_every_epochs, spec.training.epochs
    if every == "auto" or every == 1:
        return None
    if spec.training.early_stopping is not None:
        return (
            f"a val_* metric scores the epoch whose weights each trial keeps, and early "
            f"stopping may keep any epoch, which validating every {every} epochs can leave out",
            "set training.validation_every_epochs to 1, e.g. --set "
            "training.validation_every_epochs=1, or choose a metric of metrics.json",
        )
    if epochs % every == 0:
        return None
    return (
        f"a val_* metric scores each trial's last epoch ({epochs}), which validating every "
        f"{every} epochs leaves out",
        "set training.validation_every_epochs to a divisor of training.epochs, e.g. --set "
        "training.validation_every_epochs=1, or choose a metric of metrics.json",
    )


def _pruning(kind: Kind, metric: str, wanted: bool) -> str | None:
    if not wanted:
        return "pruning is off (--no-pruning)"
    if kind == "grid":
        return "pruning is off: a grid runs every combination to the end"
    if not metric.startswith("val_"):
        return (
            f"pruning is off: {metric} is computed once, after training; pruning needs a "
            "per-epoch validation log (e.g. --metric val_loss)"
        )
    return None


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    paths = list(grid)
    return [dict(zip(paths, values, strict=True)) for values in itertools.product(*grid.values())]


def overrides_of(values: dict[str, Any]) -> list[str]:
    return [override_text(path, value) for path, value in values.items()]
