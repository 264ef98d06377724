"""Runs: build a spec into a run directory, train it there, and evaluate it.

A run directory is a generated project plus what training wrote into it:

    runs/<name>/<YYYYmmdd-HHMMSS>-<hash>/
      README.md  pyproject.toml  spec.yaml  spec.lock.json  <package>/  tests/
      checkpoints/  history.csv  metrics.json  model.weights.h5  model.keras
      samples.png  curves.png  report.md  status.json

Continuing a finished run to more epochs (`resume` with `epochs`) is in `continuation`.
Using a finished run lives beside this module: `sampling`, `imputation`, `reproduction`;
importing a run's generated package safely, in `generated`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gencompile.compiler.lower import lower
from gencompile.compiler.project import build, sha256_text, write_lock
from gencompile.compiler.resources import check_memory
from gencompile.data_paths import WORKING_DIRECTORY, trained_in
from gencompile.errors import Problem, RunError, SpecError, quoted
from gencompile.generated import (
    import_generated,
    load_trained_model,
    read_record,
    trained_fingerprint,
    verified_lock,
)
from gencompile.local_cluster import run_workers
from gencompile.lockfile import where_trained
from gencompile.package_data import package_folder
from gencompile.report import write_report
from gencompile.run_status import (
    STATUS_NAME,
    RunInterrupted,
    epochs_phrase,
    interrupted_message,
    not_training,
    pruned_epoch,
    read_status,
    recorded,
    refuse_if_training,
    terminate_as_interrupt,
)
from gencompile.runtime.replica_batches import check_batch_split  # no TensorFlow
from gencompile.spec import LoadedSpec, load_spec, load_spec_text
from gencompile.spec.base import python_name
from gencompile.spec.checks import EVALUATION_RULES, run_checks

DEFAULT_SPEC = "vae_digits.yaml"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    metrics: dict[str, float]
    record: dict[str, Any]


def default_spec_path() -> Path:
    """The embedded default spec (`specs/`, a package resource)."""
    return package_folder("specs") / DEFAULT_SPEC


def new_run_dir(root: Path, loaded: LoadedSpec, spec_sha256: str) -> Path:
    """A new, empty run folder `root/<name>/<UTC time>-<spec hash>[-n]`, created here.

    Creating it is the claim: `mkdir` fails if another training took the name first (two
    started in the same second), and the next suffix is tried.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return claim_folder(root / loaded.spec.name / f"{stamp}-{spec_sha256[:8]}")


def claim_folder(base: Path) -> Path:
    """Create `base`, or `base-2`, `base-3`, ... whichever is free first; return it."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError(f"{base.parent} holds 10,000 folders named {base.name}-*; clean it up")


def train(
    spec: Path | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    epochs: int | None = None,
    runs_root: Path | str = "runs",
    run_dir: Path | str | None = None,
    quiet: bool = False,
    allow_custom_code: bool = False,
    workers: int | None = None,
) -> TrainResult:
    """Build `spec` into a new run directory and train it there (with `workers` local
    worker processes: the multi_worker strategy, recorded in the lock)."""
    overrides = list(overrides)
    if epochs is not None:
        overrides.append(f"training.epochs={int(epochs)}")  # recorded in the lock
    if workers is not None:
        overrides.append("training.distribution.strategy=multi_worker")
    loaded = load_spec(spec if spec is not None else default_spec_path(), overrides)
    plan = lower(loaded)
    check_before_training(plan, workers)  # before anything is written
    if workers is None:
        refuse_tf_config_cluster(plan.training["distribution"]["strategy"], plan.package)
    else:  # one CPU replica a worker: what a GPU adds must split it too
        check_batch_split(plan.data["batch_size"], workers, "multi_worker")
    spec_sha = sha256_text(loaded.spec.model_dump_json())
    from gencompile.parent_runs import InitFromError, init_from_location

    # From the claim of its folder on, Ctrl-C and SIGTERM stop the command cleanly.
    with terminate_as_interrupt():
        claimed = run_dir is None or not Path(run_dir).exists()
        directory = Path(run_dir) if run_dir else new_run_dir(Path(runs_root), loaded, spec_sha)
        try:
            built = build(loaded, directory, allow_custom_code=allow_custom_code)
            # Where its relative data paths are read, by every later command on the run too.
            lock = write_lock(directory, {**built.lock, WORKING_DIRECTORY: str(Path.cwd())})
            return train_in(
                directory,
                built.plan.package,
                lock,
                quiet,
                allow=allow_custom_code,
                workers=workers,
            )
        except KeyboardInterrupt:  # not in `recorded` (which says it as RunInterrupted)
            raise stopped_before_training(directory, claimed) from None
        except InitFromError as error:  # located in the run's copy of the spec: say where
            # the user named the parent (a --set override, or their own spec file and line)
            init_from = getattr(loaded.spec.model, "init_from", None)
            where = init_from_location(loaded.marks, init_from)
            if not claimed:  # the folder was the user's: it stays, marked failed
                raise error.located(where) from None
            shutil.rmtree(directory, ignore_errors=True)  # a build that trained nothing
            raise error.located(where, removed=directory) from None


def stopped_before_training(directory: Path, claimed: bool) -> RunInterrupted:
    """Ctrl-C or SIGTERM while `train` built its run folder: nothing was trained. A folder
    this command created goes (half built, it would trouble `compare runs/NAME/*`); one it
    was given is named."""
    if (directory / STATUS_NAME).exists():  # training had started: keep what it kept
        return RunInterrupted(interrupted_message(directory))
    if claimed:
        shutil.rmtree(directory, ignore_errors=True)
        where = f"the run folder {directory} it had begun to build was removed"
    else:
        where = f"{directory} holds a half-built project: build or train into it again"
    return RunInterrupted(f"interrupted: before training started, so nothing was trained; {where}")


@where_trained  # a continuation lowers and builds its spec again: with the run's data
def resume(
    run_dir: Path | str,
    quiet: bool = False,
    allow_custom_code: bool = False,
    workers: int | None = None,
    epochs: int | None = None,
    spec: Path | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    allow_drift: bool = False,
) -> TrainResult:
    """Continue a run in place: an interrupted one from its newest whole checkpoint; a
    finished one, given a larger total `epochs`, from its last (a new lock revision).

    `spec` and `overrides` may restate the run's spec (a spec file, `--set`): any
    difference but the number of epochs is refused, naming each field. Versions or data
    other than the run's are refused (`allow_drift`: resumed anyway, with a warning; a
    continuation to more epochs is refused all the same).
    """
    from gencompile.continuation import (
        build_pending,
        check_machine,
        pending_folder,
        pending_lock,
        plan_continuation,
        refuse_other_changes,
        requested_spec,
        resolved,
        target_epochs,
        unfinished_continuation,
    )

    run_dir = Path(run_dir)
    pending = pending_lock(run_dir, allow_custom_code)
    # A continuation that has not finished goes on (its lock is the pending one); else the
    # run's own lock, verified with its files.
    lock = pending if pending is not None else verified_lock(run_dir, allow_custom_code)
    refuse_if_training(run_dir)  # before a continuation builds its project
    strategy = lock["resolved_spec"]["training"]["distribution"]["strategy"]
    if workers is None:
        refuse_tf_config_cluster(strategy, python_name(lock["name"]))
    if workers is not None and strategy != "multi_worker":
        raise RunError(
            f"{run_dir} was trained with the {strategy!r} strategy, not 'multi_worker': "
            "resume it without --workers"
        )
    workers = resumed_workers(run_dir, lock, workers)
    given = None
    if spec is not None or overrides:
        given = resolved(requested_spec(lock, spec, overrides))
        refuse_other_changes(run_dir, lock, given)
    total = target_epochs(lock, epochs, given)
    package = python_name(lock["name"])
    asked = epochs is not None or given is not None
    project = None  # where the code trained is imported from: the run itself
    if pending is not None:
        if total != lock["resolved_spec"]["training"]["epochs"]:
            raise unfinished_continuation(run_dir, pending, total)
        check_machine(pending)
        check_before_training(locked_plan(pending), workers)
        project = pending_folder(run_dir)
    # A finished run asked for its own length is refused there too ("already has K").
    elif total != lock["resolved_spec"]["training"]["epochs"] or (
        asked and read_status(run_dir) == "finished"
    ):
        continuation = plan_continuation(run_dir, lock, read_record(run_dir), total)
        check_before_training(lower(continuation.loaded), workers)
        # With the folder's lock: no other training starts on the run while it is built.
        with not_training(run_dir):
            lock = build_pending(run_dir, lock, continuation, allow_custom_code)
        project = pending_folder(run_dir)
    else:
        refuse_finished(run_dir, lock)
        check_before_training(locked_plan(lock), workers)
        refuse_drift(run_dir, lock, allow_drift)
    return train_in(
        run_dir,
        package,
        lock,
        quiet,
        "--resume",
        allow=allow_custom_code,
        workers=workers,
        project=project,
    )


def refuse_tf_config_cluster(strategy: str, package: str) -> None:
    """`gencompile train` in a cluster that TF_CONFIG names (e.g. one exported for its
    workers): each machine's command would claim a run folder of its own, and a worker
    other than the chief would write its files to a scratch folder, then fail. A cluster
    trains a built project, the same command on every machine."""
    if strategy != "multi_worker" or not os.environ.get("TF_CONFIG", "").strip():
        return
    from gencompile.runtime import cluster  # TensorFlow: only for a multi_worker run

    tasks = cluster.task_count(cluster.cluster_spec())  # a bad TF_CONFIG is said here too
    if tasks > 1:
        raise RunError(
            f"TF_CONFIG names a cluster of {tasks} tasks, which `gencompile train` does not "
            "join: on this machine, unset TF_CONFIG and pass --workers N; on a cluster, "
            "build the project (gencompile build SPEC --set "
            "training.distribution.strategy=multi_worker -o DIR) and run "
            f"`python -m {package}.train` in DIR on every machine (README, 'Scaling out')"
        )


def resumed_workers(run_dir: Path, lock: dict[str, Any], workers: int | None) -> int | None:
    """The workers a resume trains with: as many as the run started with (its lock's
    `workers`, recorded when training started; a multi_worker run whose lock records none
    was trained by this one process), by default; another number is refused, as the
    gradients would be summed in another order and no run could reproduce it."""
    trained_by = lock.get("workers")
    if not isinstance(trained_by, int):  # one process, or another strategy (refused before)
        trained_by = 1
        if workers in (None, 1):
            return workers
    elif workers in (None, trained_by):
        return trained_by
    raise RunError(
        f"{run_dir} was trained by {trained_by} worker{'s' if trained_by > 1 else ''}, "
        f"not {workers}: resume it with --workers {trained_by} (or without --workers), so "
        "that its epochs sum their gradients alike and `gencompile reproduce` can repeat it"
    )


def refuse_finished(run_dir: Path, lock: dict[str, Any]) -> None:
    """A finished run has no epoch left to train: resumed, it would only write its final
    files again (dropping the metrics `evaluate` added) and, stopped meanwhile, read as
    interrupted. Refused, but for a run whose final files are missing or damaged, which
    the resume writes again, unless the run stopped early where its checkpoint does not
    record the stop (EM converged; early stopping of an older gencompile): its resume would
    train on past where it stopped."""
    from gencompile.continuation import stop_reason
    from gencompile.runtime.checkpoint_files import stopped_early
    from gencompile.runtime.final_files import whole  # no TensorFlow

    if read_status(run_dir) != "finished" or pruned_epoch(run_dir) is not None:
        return  # a pruned sweep trial: its lock's epochs remain
    planned = lock["resolved_spec"]["training"]["epochs"]
    trained = _trained_epochs(run_dir)
    stopped = f"it stopped after {trained} of its {planned} epochs ({stop_reason(lock)})"
    early = trained is not None and trained < planned
    if whole(run_dir):
        if early:
            raise RunError(f"{run_dir} has already finished: {stopped}; there is nothing to resume")
        raise RunError(
            f"{run_dir} has already finished its {epochs_phrase(planned)}; pass --epochs M "
            f"(> {planned}) to continue it"
        )
    if early and stopped_early(run_dir / "checkpoints") != trained:
        raise RunError(
            f"{run_dir}'s final weights or metrics.json are missing or damaged, and {stopped}: "
            "a resume would train on, so they cannot be written again as they were; restore "
            "them from a copy, or train the spec again"
        )


def _trained_epochs(run_dir: Path) -> int | None:
    """The epochs a finished run trained: metrics.json's count, or (damaged) the last epoch
    of its history; None if neither says."""
    from gencompile.runtime import history_file  # no TensorFlow

    try:
        epochs = read_record(run_dir).get("epochs")
    except RunError:  # damaged: its history tells
        epochs = max(history_file.read_epochs(run_dir / "history.csv"), default=None)
    return epochs if isinstance(epochs, int) else None


def refuse_drift(run_dir: Path, lock: dict[str, Any], allow_drift: bool) -> None:
    """The epochs to come must run on the versions and data the first ones ran on, or the
    run does not end with an uninterrupted run's weights (`allow_drift`: warn instead).
    A run that never finished has no fingerprint in its lock: the one its training
    recorded when it started is compared."""
    from gencompile import lockfile
    from gencompile.runtime.checkpoint_files import started_with  # no TensorFlow

    whose, recorded = "the lock's", lock.get("data_fingerprint")
    unknown = []  # what could not be checked: said as drift is, never passed over
    if recorded is None:
        whose = "its training started on"
        try:
            recorded = started_with(run_dir / "checkpoints")
        except RunError as unreadable:
            unknown = [f"{unreadable}, so a change of the data cannot be detected"]
    versions = lockfile.version_drift(lock)
    data = lockfile.data_drift(lock, recorded, whose) + unknown
    drift = versions + data
    if drift and not allow_drift:
        if drift == unknown:  # nothing differs that is known: only unchecked
            raise RunError(
                f"cannot resume {run_dir}: {'; '.join(drift)}. If its data is unchanged, "
                "pass --allow-drift to resume (exactly as it would have)"
            )
        # Said as `reproduce` and `build --locked` say it: each cause with its own remedy.
        anyway = "to resume anyway (its weights then differ from an uninterrupted run's)"
        raise RunError(f"cannot resume {run_dir}: {lockfile.drift_refusal(versions, data, anyway)}")
    for difference in drift:
        warnings.warn(f"resuming despite drift: {difference}", stacklevel=2)


# Every metric that can need InceptionV3 (the runtime decides exactly, for the data at hand).
MAY_NEED_INCEPTION = frozenset({"fid", "kid", "inception_score", "precision_recall"})


def locked_plan(lock: dict[str, Any]) -> Any:
    """The plan of a run's locked spec (what its generated code was built from)."""
    text = json.dumps(lock["resolved_spec"])
    with trained_in(lock):  # its data files, where the run read them
        return lower(load_spec_text(text, file="spec.lock.json", opened=True))


def check_before_training(plan: Any, workers: int | None) -> None:
    """What a training (a fresh one, a resume, a continuation, a reproduction) needs, checked
    before TensorFlow starts: the memory of `workers` local processes (None: this one), and
    InceptionV3's weights if its metrics need them."""
    check_memory(plan, workers or 1)
    check_evaluation_weights(plan)


def check_evaluation_weights(plan: Any) -> None:
    """Metrics are computed after training: when they need InceptionV3's weights and none
    can be had, stop before building and training, not hours later."""
    if not MAY_NEED_INCEPTION & set(plan.evaluation["metrics"]):
        return  # the usual case: no reason to start TensorFlow for the exact check below
    from gencompile.runtime.metrics.samples import with_inception_weights

    with_inception_weights(plan.evaluation, plan.data_kind, plan.data["source"])


def train_in(
    directory: Path,
    package: str,
    lock: dict,
    quiet: bool,
    *flags: str,
    allow: bool = False,
    workers: int | None = None,
    project: Path | None = None,
) -> TrainResult:
    """Train a built run directory; record the data fingerprint in its lock; report.

    `allow`: the caller's consent to custom code. `workers`: train in that many local
    worker processes (`local_cluster`), else in this process. `project`: a continuation's
    pending project (`continuation.build_pending`), whose code trains the run and which
    replaces the run's project and lock once training finished. status.json says all along
    whether the run is running, finished, failed or interrupted.
    """
    from gencompile.continuation import promote
    from gencompile.runtime.final_files import final_folder  # no TensorFlow

    code = directory if project is None else project
    argv = ["--run-dir", str(directory), *flags] + (["--quiet"] if quiet else [])
    with recorded(directory, f" --workers {workers}" if workers else ""):
        if workers and lock.get("workers") != workers and project is None:
            # before training: a resume of a run that fails is held to as many workers
            lock = write_lock(directory, dict(lock, workers=workers))
        if workers:
            run_workers(directory, package, argv, workers, allow_custom_code=allow, project=project)
        else:
            module = import_generated(code, package, allow_custom_code=allow)
            metrics = module.main(argv)
        # A continuation's final files wait beside its project until `promote` below.
        record = json.loads((final_folder(directory) / "metrics.json").read_text())
        if workers:
            metrics = record["metrics"]
        found = {key: record.get(key) for key in ("data_fingerprint", "data_statistics")}
        if workers:
            found["workers"] = workers  # `reproduce` trains with as many
        if project is None:
            write_lock(directory, dict(lock, **found))
        else:
            promote(directory, dict(lock, **found))
        write_report(directory)
    return TrainResult(directory, metrics, record)


def checked_metrics(
    lock: dict[str, Any],
    metrics: list[str] | None,
    command: str,
    num_samples: int | None = None,
) -> list[str] | None:
    """Metric names and a sample count asked for on the command line (None: the run's),
    checked together as a spec's own are (fid and fd_digits need enough samples); problems
    are located at the option of `command` (the command line) that gave them."""
    resolved = copy.deepcopy(lock["resolved_spec"])
    if metrics:
        resolved["evaluation"]["metrics"] = metrics
    if num_samples is not None:
        resolved["evaluation"]["num_samples"] = num_samples

    def option(problem: Problem) -> str:  # the option that gave the field, if one did
        if num_samples is not None and problem.path == "evaluation.num_samples":
            return f"{command} --num-samples {num_samples}"
        return f"{command} --metrics" if metrics else command

    try:  # the run as it trained, and the evaluation rules on what is asked of it now
        loaded = load_spec_text(json.dumps(resolved), file=command, opened=True)
        problems = run_checks(loaded.spec, loaded.marks, EVALUATION_RULES)
        if problems:
            raise SpecError(problems)
        lower(loaded)
    except SpecError as error:
        located = [replace(p, file=option(p), line=None, column=None) for p in error.problems]
        raise SpecError(located) from None
    return metrics


def evaluate(
    run_dir: Path | str,
    metrics: list[str] | None = None,
    inception_weights: str | None = None,
    allow_custom_code: bool = False,
    num_samples: int | None = None,
) -> dict[str, float]:
    """Compute metrics of a trained run (default: its spec's) and store them in metrics.json.

    `inception_weights`: a local file of InceptionV3 weights for fid, kid and
    inception_score on images (overrides the spec's `evaluation.inception_weights`);
    `num_samples`: how many samples the sample metrics draw (overrides
    `evaluation.num_samples`; metrics.json's computed_with records it).
    """
    run_dir = Path(run_dir)
    # The folder's lock throughout: no training starts on the run while it is evaluated
    # (its results would be merged into the new model's metrics.json), nor runs meanwhile.
    with not_training(run_dir, then=f"evaluate it with `gencompile evaluate {quoted(run_dir)}`"):
        return _evaluate(run_dir, metrics, inception_weights, allow_custom_code, num_samples)


def _evaluate(
    run_dir: Path,
    metrics: list[str] | None,
    inception_weights: str | None,
    allow_custom_code: bool,
    num_samples: int | None,
) -> dict[str, float]:
    lock = verified_lock(run_dir, allow_custom_code)  # refuse a bad run before TensorFlow starts
    if num_samples is not None and num_samples < 1:
        raise RunError(f"--num-samples {num_samples}: draw at least one sample")
    if metrics or num_samples is not None:
        checked_metrics(lock, metrics, f"evaluate {run_dir}", num_samples)  # which run, too
    from gencompile.runtime import repro
    from gencompile.runtime.data import load_data
    from gencompile.runtime.metrics.samples import with_inception_weights

    asked: dict[str, Any] = {}
    if metrics:
        asked["metrics"] = metrics
    if inception_weights:
        asked["inception_weights"] = str(inception_weights)
    if num_samples is not None:
        asked["num_samples"] = num_samples
    # Before the model and data are loaded: no weights, no work (the family checks again).
    plan = locked_plan(lock)
    with_inception_weights({**plan.evaluation, **asked}, plan.data_kind, plan.data["source"])
    model, module = load_trained_model(run_dir, allow_custom_code=allow_custom_code)
    config = {**module.EVALUATION, **asked}
    # As training set things up; the family's `evaluate` then starts from a state derived
    # from the seed, so the same weights give the numbers training wrote.
    repro.set_seed(module.SEED, deterministic=module.TRAINING["deterministic"])
    data = load_data(module.DATA, seed=module.SEED)
    recorded = trained_fingerprint(run_dir, lock)
    if recorded is not None and recorded != data.fingerprint:  # before anything is computed
        raise RunError(
            f"the training data of {run_dir} changed since training (its fingerprint differs "
            "from the lock's), so metrics computed now would not describe the run; restore "
            "the data, or retrain"
        )
    evaluated = repro.weights_sha256(model)
    results = module.evaluate(model, data, config)
    record = read_record(run_dir)
    if record.get("weights_sha256", evaluated) != evaluated:  # trained again meanwhile
        raise RunError(
            f"{run_dir} holds other weights than the ones evaluated (trained again meanwhile), "
            "so its metrics.json was left as it was; evaluate it again"
        )
    record["metrics"] = {**record.get("metrics", {}), **results}
    computed_with = getattr(results, "computed_with", {})
    record["computed_with"] = {**record.get("computed_with", {}), **computed_with}
    repro.atomic_write_json(run_dir / "metrics.json", record)
    write_report(run_dir)
    return results


def record_pruned(run_dir: Path, epoch: int) -> None:
    """Say in a finished run's status.json and report that a sweep's pruner stopped its fit
    after `epoch` (its lock keeps the epochs asked for; `reproduce` stops there too)."""
    from gencompile.run_status import PRUNED, write_status

    write_status(run_dir, "finished", **{PRUNED: epoch})
    write_report(run_dir)
