"""The `gencompile` command line: parse arguments, call the library, render with rich.

Exit codes: 0 success, 1 failed run, 2 bad spec or usage. `--debug` shows tracebacks.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from gencompile.errors import GencompileError, SpecError

if TYPE_CHECKING:  # rich.table is imported by the commands that print one
    from rich.table import Table

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) is noise on a command line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(
    help="Compile declarative specs of generative models into readable Keras projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
DEBUG = {"on": False}

SetOption = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here on Python 3.10
    typer.Option("--set", help="Override a field: key.path=value (value parsed as YAML)."),
]
CustomCodeOption = Annotated[
    bool,
    typer.Option(
        "--allow-custom-code",
        help="Let the spec's custom layers import and run their code (only code you trust).",
    ),
]


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    DEBUG["on"] = debug


@app.command()
def validate(
    specs: Annotated[list[Path], typer.Argument(help="Spec files to check.")],
    set_: SetOption = None,
) -> None:
    """Check specs; print every problem as file:line:col: field: message."""
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec

    failed = 0
    for path in specs:
        try:
            lower(load_spec(path, set_ or []))
            out.print(f"[green]ok[/green] {path}")
        except SpecError as error:
            failed += 1
            for problem in error.problems:
                err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if failed:
        err.print(f"{failed} of {len(specs)} spec(s) have problems", style="red")
        raise typer.Exit(2)


@app.command()
def explain(spec: Path, set_: SetOption = None) -> None:
    """Show the resolved spec, each network's layers with shapes and parameters, and the loss."""
    from gencompile.compiler.lower import lower
    from gencompile.spec import load_spec
    from gencompile.spec.loader import dump_yaml  # YAML this loader reads back as printed

    plan = lower(load_spec(spec, set_ or []))
    out.rule(f"{plan.name} ({plan.family})")
    out.print(dump_yaml(plan.resolved_spec), markup=False, highlight=False)
    for network in plan.networks:
        table = _table(f"{network.name}: {network.doc}")
        table.add_column("layer")
        table.add_column("type")
        table.add_column("output shape")
        table.add_column("params", justify="right")
        for layer in network.layers:
            params = "?" if layer.params is None else f"{layer.params:,}"
            shape = "(batch, " + ", ".join(str(d) for d in layer.output_shape) + ")"
            table.add_row(layer.name, layer.cls.split(".")[-1], shape, params)
        table.add_section()
        table.add_row("total", "", "", f"{network.params:,}")
        out.print(table)
    out.print(f"[bold]Loss:[/bold] {plan.loss_in_words}.")
    from gencompile.compiler.resources import estimate_memory

    out.print(f"[bold]Memory:[/bold] {estimate_memory(plan).summary()}.", highlight=False)


@app.command()
def schema(
    output: Annotated[Optional[Path], typer.Option("-o", "--output")] = None,  # noqa: UP045
) -> None:
    """Write the JSON Schema of the spec language (for editor completion)."""
    from gencompile.files import atomic_write_text
    from gencompile.spec import Spec

    text = json.dumps(Spec.model_json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    refusal = _unwritable(output)
    if refusal is not None:
        err.print(f"error: cannot write {output}: {refusal}", markup=False, soft_wrap=True)
        raise typer.Exit(2)
    try:
        atomic_write_text(output, text)  # replaced whole, never half-written
    except OSError as error:
        reason = error.strerror or str(error)
        err.print(f"error: cannot write {output}: {reason}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"wrote {output}", highlight=False)


def _unwritable(output: Path) -> str | None:
    """Why `output` cannot take a new file (with what to do instead), or None."""
    if output.is_dir():
        return f"it is a folder (give a file path, e.g. {output / 'gencompile.schema.json'})"
    if output.exists() and not output.is_file():
        return "it is not a regular file (give the path of a .json file)"
    if output.parent.exists() and not output.parent.is_dir():
        return f"{output.parent} is not a folder (give a path in an existing folder)"
    if not output.parent.is_dir():
        return f"the folder {output.parent} does not exist (create it first, or omit -o)"
    return None


@app.command()
def build(
    spec: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Spec file (or use --locked)."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--output", help="Project folder (default: build/<name>)."),
    ] = None,
    set_: SetOption = None,
    allow_custom_code: CustomCodeOption = False,
    locked: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Rebuild exactly the project this spec.lock.json pins."),
    ] = None,
    allow_drift: Annotated[
        bool, typer.Option(help="With --locked: build even if versions or data differ.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Write into a folder that holds other files (may overwrite).")
    ] = False,
) -> None:
    """Generate the Keras project of a spec (or, with --locked, of a lock file)."""
    from gencompile.spec.base import python_name

    if locked is not None:
        if spec is not None or set_:
            raise typer.BadParameter("--locked rebuilds the lock's spec: give no spec or --set")
        from gencompile.lockfile import build_locked, read_lock

        directory = output or Path("build") / python_name(read_lock(locked)["name"])
        result = build_locked(locked, directory, allow_drift, allow_custom_code, force)
    else:
        if spec is None:
            raise typer.BadParameter("give a spec file, or --locked spec.lock.json")
        from gencompile.compiler.project import build as build_project
        from gencompile.spec import load_spec

        loaded = load_spec(spec, set_ or [])
        directory = output or Path("build") / python_name(loaded.spec.name)
        result = build_project(loaded, directory, allow_custom_code=allow_custom_code, force=force)
    out.print(f"built {result.plan.family} project [bold]{result.directory}[/bold]")
    for path in sorted(result.lock["files"]):
        out.print(f"  {result.directory / path}", highlight=False)
    out.print(f"  {result.directory / 'spec.lock.json'}", highlight=False)


@app.command()
def reproduce(
    run: Path,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--output", help="Where the re-run goes (default: beside RUN)."),
    ] = None,
    allow_drift: Annotated[
        bool, typer.Option(help="Re-run even if versions or data differ from the lock.")
    ] = False,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Re-run a finished run from its lock; exit 0 if weights and metrics are identical."""
    from gencompile.reproduction import reproduce as reproduce_run

    result = reproduce_run(run, output, allow_drift, allow_custom_code)
    table = _table(f"{run} vs {result.run_dir}")
    for column in ("", "original", "reproduced", ""):
        table.add_column(column)
    for row in result.rows:
        mark = "[green]same[/green]" if row.same else "[red]differs[/red]"
        mark = "[yellow]not compared[/yellow]" if row.skipped else mark
        table.add_row(row.name, _cell(row.original), _cell(row.reproduced), mark)
    out.print(table)
    for row in result.rows:
        if row.skipped:
            out.print(f"{row.name}: {row.skipped}", highlight=False, markup=False)
    if not result.identical:
        err.print("the re-run differs from the original", style="red")
        raise typer.Exit(1)
    skipped = sum(1 for row in result.rows if row.skipped)
    scope = "every metric computed in training" if skipped else "every metric"
    out.print(f"[green]identical[/green]: weights and {scope} match bit for bit")


def _table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left")


def _cell(value: object) -> str:
    if isinstance(value, str) and len(value) > 16:
        return value[:16] + "..."
    return repr(value) if isinstance(value, float) else str(value)


@app.command()
def train(
    spec: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Spec file (default: the embedded specs/vae_digits.yaml)."),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,  # noqa: UP045
    set_: SetOption = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    allow_custom_code: CustomCodeOption = False,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Continue this interrupted run from its newest checkpoint."),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Train with N local worker processes (the multi_worker strategy, each "
            "worker on a loopback port).",
        ),
    ] = None,
) -> None:
    """Build a spec into runs/<name>/<id>/ and train it there (or --resume a run)."""
    from gencompile.runs import resume as resume_run
    from gencompile.runs import train as train_run

    if resume is not None:
        if spec is not None or set_ or epochs is not None:
            raise typer.BadParameter("--resume continues a run as it was locked: give no spec")
        result = resume_run(
            resume, quiet=quiet, allow_custom_code=allow_custom_code, workers=workers
        )
    else:
        result = train_run(
            spec,
            set_ or [],
            epochs,
            runs_dir,
            quiet=quiet,
            allow_custom_code=allow_custom_code,
            workers=workers,
        )
    _print_metrics(result.metrics)
    out.print(f"{'run:':<13} {result.run_dir}", highlight=False)
    for name in ("samples.png", "samples.npz", "samples.txt", "report.md", "report.html"):
        if (result.run_dir / name).exists():
            out.print(f"{name + ':':<13} {result.run_dir / name}", highlight=False)


@app.command()
def sample(
    run: Path,
    n: Annotated[int, typer.Option("-n", min=1, help="How many samples.")] = 64,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            help=".png, .npz or .csv (language models: .txt); default samples.png/.txt",
        ),
    ] = None,
    label: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Class of every sample (conditional models)."),
    ] = None,
    balanced: Annotated[
        bool, typer.Option(help="Equal counts of every class (conditional models).")
    ] = False,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Seed of the draws (default: the run's); same seed, same file."),
    ] = None,
    prompt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Text that every sample continues (language models; .txt output)."),
    ] = None,
    length: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Tokens to generate (language models)."),
    ] = None,
    temperature: Annotated[Optional[float], typer.Option(min=1e-6)] = None,  # noqa: UP045
    top_k: Annotated[Optional[int], typer.Option(min=0)] = None,  # noqa: UP045
    top_p: Annotated[Optional[float], typer.Option(min=1e-6, max=1.0)] = None,  # noqa: UP045
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Draw samples from a trained run into a PNG picture, an NPZ or a CSV file (a language
    model: a .txt file of continuations of --prompt); a conditional model's labels are saved
    with the arrays (`labels`) and rows (`label` column)."""
    from gencompile.sampling import sample as sample_run

    options = {"length": length, "temperature": temperature, "top_k": top_k, "top_p": top_p}
    given = {key: value for key, value in options.items() if value is not None}
    with _progress_bar("sampling") as progress:
        path = sample_run(
            run, n, output, label, prompt, allow_custom_code, progress, seed, balanced, **given
        )
    out.print(f"wrote {path}", highlight=False)


@contextmanager
def _progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (nothing in pipes, logs and tests)."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def evaluate(
    run: Path,
    metrics: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Comma-separated metric names (default: the spec's)."),
    ] = None,
    inception_weights: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Local InceptionV3 weights file for fid, kid, inception_score."),
    ] = None,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Compute metrics of a trained run; update metrics.json, report.md and report.html."""
    from gencompile.runs import evaluate as evaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    weights = str(inception_weights) if inception_weights else None
    _print_metrics(evaluate_run(run, names, weights, allow_custom_code))
    out.print(f"report: {run / 'report.html'}", highlight=False)


@app.command()
def compare(runs: Annotated[list[Path], typer.Argument(help="Run directories.")]) -> None:
    """Print one table of several runs' metrics (a column per run)."""
    from gencompile.report import compare_runs

    comparison = compare_runs(runs)
    table = _table("metrics")
    table.add_column("metric")
    for label in comparison.runs:
        table.add_column(label, justify="right", overflow="fold")
    table.add_column("unit")
    for name, values, unit in comparison.rows:
        table.add_row(name, *values, unit)
    out.print(table)
    if comparison.not_alike:
        out.print(
            f"computed differently: {', '.join(comparison.not_alike)} (other networks, sample "
            "counts or splits; see computed_with in each run's metrics.json)",
            highlight=False,
            markup=False,
        )


@app.command()
def impute(
    run: Path,
    input_csv: Annotated[
        Path,
        typer.Option(
            "--input",
            help="CSV whose header names the training features in order (a CSV source's "
            "columns; x0,x1,... for data without names); empty cells are imputed.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where the filled CSV goes.")],
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Fill missing cells (empty or NaN) of a CSV with a trained mixture's conditional means."""
    from gencompile.imputation import impute as impute_run

    result = impute_run(run, input_csv, output, allow_custom_code)
    out.print(
        f"filled {result.cells_filled} cell(s) in {result.rows_filled} row(s): {result.path}",
        highlight=False,
    )


@app.command()
def score(
    run: Path,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where the scores CSV goes.")],
    input_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--input",
            help=".npy, .npz (x, labels), .csv (the training features' header) or an image, "
            "in the training data's units.",
        ),
    ] = None,
    split: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Score the run's own held-out split instead: --split heldout."),
    ] = None,
    threshold_quantile: Annotated[
        float, typer.Option(help="Flag scores above this quantile of the held-out scores.")
    ] = 0.99,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """One anomaly score per example (higher = less like the training data), and a flag."""
    from gencompile.scoring import score as score_run

    result = score_run(run, output, input_file, split, threshold_quantile, allow_custom_code)
    out.print(f"score: {result.kind}: {result.description}", highlight=False, markup=False)
    out.print(
        f"threshold {result.threshold:.6g} (quantile {result.quantile:g} of the held-out "
        f"scores): {result.flagged} of {result.count} flagged",
        highlight=False,
    )
    out.print(f"wrote {result.path}", highlight=False)


@app.command()
def serve(
    run: Path,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    max_samples: Annotated[int, typer.Option(min=1, help="Largest n of one /sample.")] = 1024,
    max_examples: Annotated[
        int, typer.Option(min=1, help="Most examples (rows) of one /score or /impute.")
    ] = 4096,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] = 8 << 20,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Serve a trained run over HTTP: /sample, /score, /impute (mixtures), /healthz, and
    its API page at /docs. No authentication: keep it on loopback or behind a proxy."""
    from gencompile.serving import Limits
    from gencompile.serving.server import serve as serve_run

    limits = Limits(max_samples=max_samples, max_examples=max_examples,
                    max_body_bytes=max_body_bytes)  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: listening on {host}: anyone who can reach it can use the model")
    announce = lambda line: out.print(line, highlight=False, soft_wrap=True)  # noqa: E731
    serve_run(run, host, port, limits, allow_custom_code, announce)


@app.command()
def eject(
    run: Annotated[Path, typer.Argument(help="A run folder or a built project.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder of the owned project.")],
    allow_custom_code: CustomCodeOption = False,
    force: Annotated[
        bool, typer.Option(help="Write into a folder that holds other files (may overwrite).")
    ] = False,
) -> None:
    """Copy a generated project out as yours: no DO NOT EDIT, no lock, the runtime vendored."""
    from gencompile.eject import eject as eject_project

    result = eject_project(run, output, allow_custom_code, force)
    out.print(f"ejected {result.package} into [bold]{result.directory}[/bold]")
    weights = ", ".join(result.weights) or "none (not a finished run)"
    out.print(f"  trained weights: {weights}", highlight=False)
    out.print(f"  try: cd {result.directory} && python -m pytest tests", highlight=False)


@app.command()
def wheel(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder the wheel goes into.")
    ] = Path("wheels"),
) -> None:
    """Build this gencompile's own wheel, for installing generated projects offline."""
    from gencompile.wheel import build_wheel

    out.print(f"wrote {build_wheel(output)}", highlight=False)


def _print_metrics(metrics: dict[str, float]) -> None:
    from gencompile.report import METRIC_UNITS, format_value

    table = _table("metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, value in sorted(metrics.items()):
        table.add_row(name, format_value(value), METRIC_UNITS.get(name, ("",))[0])
    out.print(table)


def main() -> None:
    """Console entry point: turn gencompile's errors into messages and exit codes."""
    try:
        app()  # click handles usage errors and exits itself
    except SpecError as error:
        if DEBUG["on"]:
            raise
        for problem in error.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except GencompileError as error:
        if DEBUG["on"]:
            raise
        err.print(f"{error.prefix}{error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        if DEBUG["on"]:
            raise
        err.print("interrupted", highlight=False)
        sys.exit(130)
    except OSError as error:  # a folder that cannot be written, a full disk, ...
        if DEBUG["on"]:
            raise
        err.print(f"error: {_os_message(error)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


def _os_message(error: OSError) -> str:
    """`cannot write runs/x: Permission denied (...)`: the path, the reason, what to do."""
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    reason = error.strerror or str(error)
    hints = {
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.EROFS: "the file system is read-only: choose another folder",
        errno.ENOSPC: "the disk is full: free space or choose another disk",
        errno.ENOTDIR: "a file stands where a folder is needed",
        errno.EISDIR: "a folder stands where a file is needed",
    }
    hint = hints.get(error.errno or -1, "check the path")
    return f"{where or 'a file operation'}: {reason} ({hint})"


if __name__ == "__main__":
    main()
