"""The `gencompile` command line: parse arguments, call the library, render with rich.

Exit codes: 0 success, 1 failed run, 2 bad spec or usage. `--debug` shows tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console

from gencompile.errors import GencompileError, SpecError, UsageRefusal, quoted
from gencompile.sample_options import SEED_MAX, out_of_range
from gencompile.usage_errors import OneLineUsageGroup

if TYPE_CHECKING:  # rich.table is imported by the commands that print one
    from rich.table import Table

    from gencompile.latent import LatentResult

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) is noise on a command line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(
    cls=OneLineUsageGroup,  # usage errors as one line, as every refusal
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
    from rich.markup import escape  # the plan's texts are printed as written, [x] included

    from gencompile.compiler.lower import lower
    from gencompile.compiler.project import parameter_words
    from gencompile.spec import load_spec
    from gencompile.spec.loader import dump_yaml  # YAML this loader reads back as printed

    plan = lower(load_spec(spec, set_ or []))
    out.rule(escape(f"{plan.name} ({plan.family})"))
    out.print(dump_yaml(plan.resolved_spec), markup=False, highlight=False)
    for network in plan.networks:
        copies = f" ({network.copies} copies)" if network.copies > 1 else ""
        table = _table(escape(f"{network.name}{copies}: {network.doc}"))
        table.add_column("layer")
        table.add_column("type")
        table.add_column("output shape")
        table.add_column("params", justify="right")
        for layer in network.layers:
            params = "?" if layer.params is None else f"{layer.params:,}"
            shape = "(batch, " + ", ".join(str(d) for d in layer.output_shape) + ")"
            kind = layer.cls.split(".")[-1] + ("" if layer.trainable else " (frozen)")
            table.add_row(layer.name, kind, shape, params)
        table.add_section()
        table.add_row("total", "", "", f"{network.params:,}")
        table.add_row("trainable", "", "", f"{network.trainable_params:,}")
        table.add_row("frozen", "", "", f"{network.frozen_params:,}")
        table.add_row("non-trainable state", "", "", f"{network.state_params:,}")
        if network.copies > 1:  # each copy has its own weights
            every = f"{network.copies * network.params:,}"
            table.add_row(f"all {network.copies} copies", "", "", every)
        out.print(table)
    words = parameter_words(plan)  # "N in the model" unless an EMA copy is counted apart
    words += "" if "ema_copy" in plan.extra else " in the model"
    out.print(f"[bold]Parameters:[/bold] {words}.", highlight=False)
    out.print(f"[bold]Loss:[/bold] {escape(plan.loss_in_words)}.")
    if "sampling" in plan.extra:  # a diffusion model's sampler, its steps and solver
        out.print(f"[bold]Sampling:[/bold] {escape(plan.extra['sampling'])}.")
    from gencompile.compiler.resources import estimate_memory

    memory = escape(estimate_memory(plan).summary())
    out.print(f"[bold]Memory:[/bold] {memory}.", highlight=False)


@app.command()
def schema(
    output: Annotated[Optional[Path], typer.Option("-o", "--output")] = None,  # noqa: UP045
) -> None:
    """Write the JSON Schema of the spec language (for editor completion)."""
    from gencompile.files import atomic_write_text
    from gencompile.spec.reference import editor_schema

    text = json.dumps(editor_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    _check_output(output, _schema_target(output))
    try:
        atomic_write_text(output, text)  # replaced whole, never half-written
    except OSError as error:
        reason = error.strerror or str(error)
        err.print(f"error: cannot write {output}: {reason}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"wrote {output}", highlight=False)


def _schema_target(output: Path) -> str | None:
    """Why `output` cannot be the schema's file (with what to do instead), or None."""
    if output.is_dir():
        return f"it is a folder (give a file path, e.g. {output / 'gencompile.schema.json'})"
    if output.exists() and not output.is_file():
        return "it is not a regular file (give the path of a .json file)"
    return None


def _unwritable(output: Path | str, folder: bool = False) -> str | None:
    """Why nothing can be written at `output`, or None: the rule of every `-o`. A file's
    folder must already exist and be writable (a mistyped path is refused rather than
    grown). A folder output (`build`, `reproduce`, `eject`, `wheel`) is created with its
    missing parents, below an existing folder that is writable."""
    output = Path(output)
    parent = output.parent
    if folder:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} is not a folder (give a path in an existing folder)"
    if not parent.is_dir():
        return f"the folder {parent} does not exist (create it first, or omit -o)"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the folder {parent} is not writable (choose a folder you can write to)"
    return None


def _usage_error(message: str) -> NoReturn:
    """A usage error as every other refusal: one line on stderr, exit code 2."""
    raise UsageRefusal(message)


def _check_output(
    output: Path | str | None, refusal: str | None = None, folder: bool = False
) -> None:
    """Refuse an unwritable `-o` before any work, as one line and exit code 1 (the README's
    "a folder that cannot be written"); `refusal`: the command's own reason, if any;
    `folder`: the output is a folder the command creates (with its missing parents)."""
    if output is None:
        return
    refusal = refusal or _unwritable(output, folder)
    if refusal is not None:
        err.print(f"error: cannot write {output}: {refusal}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def build(
    spec: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Spec file (or use --locked)."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            help="Project folder (default: build/<package>, the spec name with - as _).",
        ),
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
    _check_output(output, folder=True)
    from gencompile.spec.base import python_name

    if locked is not None:
        if spec is not None or set_:
            _usage_error("--locked rebuilds the lock's spec: give no spec or --set")
        from gencompile.lockfile import build_locked, read_lock

        directory = output or Path("build") / python_name(read_lock(locked, locked=True)["name"])
        result = build_locked(locked, directory, allow_drift, allow_custom_code, force)
    else:
        if spec is None:
            _usage_error("give a spec file, or --locked spec.lock.json")
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
    _check_output(output, folder=True)
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
    epochs: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Epochs to train (default: the spec's). With --resume: the new total, "
            "more than the run has, to continue a finished run.",
        ),
    ] = None,
    set_: SetOption = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    allow_custom_code: CustomCodeOption = False,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Continue this run in place: an interrupted one from its newest checkpoint, "
            "a finished one to --epochs N in total (a spec or --set given must equal the "
            "run's except for training.epochs)."
        ),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Train with N local worker processes (the multi_worker strategy, each "
            "worker on a loopback port).",
        ),
    ] = None,
    allow_drift: Annotated[
        bool,
        typer.Option(
            help="With --resume: resume even if versions or data differ from the run's "
            "(its weights then differ from an uninterrupted run's)."
        ),
    ] = False,
    discard_continuation: Annotated[
        bool,
        typer.Option(
            help="With --resume: give up the run's interrupted or failed continuation to "
            "more epochs (its checkpoints, history.csv rows and TensorBoard events after "
            "the finished epochs); the run is again its finished training, which can be "
            "continued to any --epochs."
        ),
    ] = False,
) -> None:
    """Build a spec into runs/<name>/<id>/ and train it there (or --resume a run)."""
    from gencompile.runs import resume as resume_run
    from gencompile.runs import train as train_run

    if discard_continuation:
        others = {"--epochs": epochs, "SPEC": spec, "--set": set_, "--workers": workers}
        given = [name for name, value in others.items() if value] + (
            ["--allow-drift"] if allow_drift else []
        )
        if resume is None or given:
            _usage_error(
                "--discard-continuation goes with --resume RUN alone"
                + (f" (not with {', '.join(given)})" if given else "")
                + "; continue the run afterwards with `gencompile train --resume RUN --epochs N`"
            )
        _discard(resume)
        return
    if resume is not None:
        result = resume_run(
            resume,
            quiet=quiet,
            allow_custom_code=allow_custom_code,
            workers=workers,
            epochs=epochs,
            spec=spec,
            overrides=set_ or [],
            allow_drift=allow_drift,
        )
    else:
        if allow_drift:
            _usage_error("--allow-drift goes with --resume RUN")
        result = train_run(
            spec,
            set_ or [],
            epochs,
            runs_dir,
            quiet=quiet,
            allow_custom_code=allow_custom_code,
            workers=workers,
        )
    _print_metrics(result.metrics, result.record.get("computed_with"))
    out.print(f"{'run:':<13} {result.run_dir}", highlight=False)
    for name in ("samples.png", "samples.npz", "samples.txt", "report.md", "report.html"):
        if (result.run_dir / name).exists():
            out.print(f"{name + ':':<13} {result.run_dir / name}", highlight=False)


def _discard(run: Path) -> None:
    from gencompile.continuation import discard
    from gencompile.run_status import epochs_phrase

    done = discard(run)
    target = f"to {done.target} epochs " if done.target else ""
    out.print(
        f"discarded the continuation {target}of {run} (it had reached epoch {done.reached}); "
        f"the run is its finished training of {epochs_phrase(done.epochs)} again",
        highlight=False,
        soft_wrap=True,
    )
    if done.continuable:
        out.print(
            f"continue it with `gencompile train --resume {quoted(run)} --epochs N` "
            f"(N > {done.epochs})",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            f"note: the checkpoint of its epoch {done.epochs} is gone, so it cannot be "
            "continued; train a new run with the total --epochs instead",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def sample(
    run: Path,
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    output: Annotated[
        Optional[str],  # noqa: UP045 (a str: Path would drop the trailing slash of a folder)
        typer.Option(
            "-o",
            "--output",
            help=".png (a picture), .npz, .csv or .parquet (rows; the source's column names, "
            "a label column for conditional models), or DIR/ (one PNG per sample, in class "
            "folders DIR/<label>/ for conditional models); language models: .txt. Default "
            "samples.png/.txt",
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
        typer.Option(
            help="Seed of the draws (default: the run's); same seed, same file.",
        ),
    ] = None,
    temperature: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="VAE, flow, mixture: scale of the prior's (base's, components') standard "
            "deviation; GAN: scale of z; language models and PixelCNN: softmax temperature. "
            "Below 1: more typical, less varied samples; at most 100.",
        ),
    ] = None,
    truncation: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="GAN truncation trick: a normal z has every coordinate beyond PSI standard "
            "deviations redrawn; a uniform z is scaled toward the middle of its range by PSI. "
            "At most 100.",
            metavar="PSI",
        ),
    ] = None,
    sampler: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Diffusion: ddpm, ddim, dpm_solver, euler or heun (default: the spec's)."
        ),
    ] = None,
    steps: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Diffusion: denoising steps (at most the model's timesteps; fewer on a "
            "schedule ending near alpha_bar = 0, e.g. 996 of a cosine schedule's 1000).",
        ),
    ] = None,
    eta: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Diffusion, ddim: noise of each step (0: none)."),
    ] = None,
    guidance: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="Conditional diffusion: classifier-free guidance scale (0 unconditional, 1 "
            "conditional, > 1 guided); trained without label dropout: 1 only.",
        ),
    ] = None,
    prompt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Text that every sample continues (language models; .txt output)."),
    ] = None,
    length: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Tokens to generate (language models)."),
    ] = None,
    top_k: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Autoregressive: draw from the k likeliest tokens (0: all)."),
    ] = None,
    top_p: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Autoregressive: draw from the likeliest tokens of mass p."),
    ] = None,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Draw samples from a trained run into a PNG picture, an NPZ, CSV or Parquet file, or a
    folder of PNG images (a language model: a .txt file of continuations of --prompt); a
    conditional model's labels are saved with the arrays (`labels`), the rows (`label`
    column) and as class folders. Sample-time options apply where they have a meaning
    (see each); elsewhere they are refused."""
    _check_output(output)
    from gencompile.sampling import sample as sample_run

    options = {
        "length": length,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "truncation": truncation,
        "sampler": sampler,
        "steps": steps,
        "eta": eta,
        "guidance": guidance,
    }
    given = {key: value for key, value in options.items() if value is not None}
    # Checked here, not by typer's min/max, whose usage error is a boxed paragraph.
    wrong = out_of_range({"n": n, "seed": seed, **given})
    if wrong is not None:
        _usage_error(wrong)
    from gencompile.progress import progress_bar

    with progress_bar("sampling", n, "samples") as progress:
        path = sample_run(
            run, n, output, label, prompt, allow_custom_code, progress, seed, balanced, **given
        )
    out.print(f"wrote {path}", highlight=False)


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
    num_samples: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Samples the sample metrics draw (default: the spec's)."),
    ] = None,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Compute metrics of a trained run; update metrics.json, report.md and report.html."""
    from gencompile.runs import evaluate as evaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    weights = str(inception_weights) if inception_weights else None
    if run.is_dir():  # refused before minutes of evaluation, not after (a missing run: below)
        _check_output(run / "metrics.json")
    results = evaluate_run(run, names, weights, allow_custom_code, num_samples)
    _print_metrics(results, getattr(results, "computed_with", None))
    out.print(f"report: {run / 'report.html'}", highlight=False)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories, or sweep folders.")],
    sort: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Order by this metric (best first where known) or spec field."),
    ] = None,
    descending: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--descending/--ascending", help="Override the order --sort infers."),
    ] = None,
    format_: Annotated[
        str, typer.Option("--format", help="table, csv or markdown (to stdout).")
    ] = "table",
    plot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Also draw the runs' differing fields against the metric (.png)."),
    ] = None,
) -> None:
    """One row per run: its status, the spec fields that differ between the runs, and every
    metric. A sweep folder stands for its trials."""
    from gencompile.comparison import compare as compare_runs
    from gencompile.comparison import to_csv, to_markdown

    if format_ not in ("table", "csv", "markdown"):
        _usage_error(f"--format {format_}: choose table, csv or markdown")
    _check_output(plot)  # before the table is printed
    table = compare_runs(runs, sort, descending)
    for problem in [*table.unreadable, *table.warnings]:  # (unreadable rows: here is why)
        err.print(f"warning: {problem}", markup=False, highlight=False, soft_wrap=True)
    if format_ == "csv":
        sys.stdout.write(to_csv(table))
    elif format_ == "markdown":
        sys.stdout.write(to_markdown(table))
    else:
        _print_run_table(table)
    if plot is not None:
        from gencompile.comparison_plot import plot_runs

        metric = table.sort if table.sort in table.metrics else next(iter(table.metrics), "")
        err.print(f"wrote {plot_runs(table, metric, plot)}", highlight=False)


def _print_run_table(table: Any) -> None:
    """The comparison on the terminal, with the order, units and caveats spelled out.

    A run's label and a number are never folded over lines (what one copies or greps); on
    a terminal too narrow for them the table is cropped, and piped or redirected it is as
    wide as it needs."""
    from gencompile.comparison import not_alike_note
    from gencompile.report import METRIC_UNITS

    order = ""
    if table.sort:
        order = f", by {table.sort} {'descending' if table.descending else 'ascending'}"
    rich_table = _table(f"{len(table.entries)} runs{order}")
    for column, title in zip(table.columns, table.header, strict=True):
        numeric = column in table.metrics
        rich_table.add_column(
            title,
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=numeric or column == "run",
        )
    for entry in table.entries:
        rich_table.add_row(*table.cells(entry))
    _print_whole(rich_table)
    units = [f"{name}: {METRIC_UNITS[name][0]}" for name in table.metrics if name in METRIC_UNITS]
    if units:
        out.print("units: " + "; ".join(units), highlight=False, markup=False, soft_wrap=True)
    for caveat in table.caveats:  # what a metric's numbers are not
        out.print(f"caveat: {caveat}", highlight=False, markup=False, soft_wrap=True)
    if table.not_alike:
        out.print(not_alike_note(table), highlight=False, markup=False, soft_wrap=True)


def _print_whole(table: Any) -> None:
    """`table` on stdout; piped or redirected, as wide as it needs (rich's 80 columns
    would fold or crop it, and nobody's terminal width is in a file)."""
    if out.is_terminal:
        out.print(table)
        return
    width = out.width
    out.width = max(width, out.measure(table, options=out.options.update_width(10_000)).maximum)
    try:
        out.print(table)
    finally:
        out.width = width


@app.command(name="tensorboard")
def tensorboard_(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to watch.")],
    port: Annotated[int, typer.Option(min=1, max=65535)] = 6006,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Start TensorBoard on the runs' logs (each named <spec>/<run id>); Ctrl-C stops it."""
    from gencompile import board

    argv = board.command(runs, host, port)
    out.print(f"TensorBoard: {board.url(host, port)}  (Ctrl-C stops it)", highlight=False)
    code = board.serve(argv)
    if code:
        raise typer.Exit(1)


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="The base spec of every trial.")],
    grid: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="A grid field: path=v1,v2,... (values YAML); trials: every combination."),
    ] = None,
    search: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="grid (with --grid) or optuna (the spec's sweep: ranges)."),
    ] = None,
    trials: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Finished trials an optuna search runs in all."),
    ] = None,
    metric: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="metrics.json name or per-epoch val_* log (default: the spec's)."),
    ] = None,
    direction: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="minimize or maximize (default: from the metric)."),
    ] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,  # noqa: UP045
    set_: SetOption = None,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="The sweep's folder and study name (default: the spec's name)."),
    ] = None,
    sweeps_dir: Annotated[Path, typer.Option(help="Where sweep folders go.")] = Path("sweeps"),
    storage: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Optuna database URL (default: SQLite in the sweep folder)."),
    ] = None,
    pruning: Annotated[bool, typer.Option(help="Prune trials by a per-epoch val_* metric.")] = True,
) -> None:
    """Train a spec many times over a grid or an Optuna search; print the best trial.

    Re-running the same command continues the sweep."""
    from gencompile.errors import RunError
    from gencompile.report import format_value
    from gencompile.sweep import plan_sweep, run_sweep
    from gencompile.sweep.summary import no_finished_trial

    planned = plan_sweep(
        spec,
        grid,
        search,
        trials,
        metric,
        direction,
        set_,
        epochs,
        name,
        sweeps_dir,
        storage,
        pruning,
    )

    def echo(line: str) -> None:
        out.print(line, highlight=False, markup=False, soft_wrap=True)

    result = run_sweep(planned, echo)
    table = _table(f"sweep {planned.name}: {planned.direction} {planned.metric}")
    paths = list(planned.grid or planned.parameters)
    for column in ("trial", "state", planned.metric, *paths):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        value = "" if row.value is None else format_value(row.value)
        fields = [json.dumps(row.values[p]) if p in row.values else "" for p in paths]
        table.add_row(str(row.number), row.state, value, *fields)
    out.print(table)
    out.print(f"summary: {result.summary}", highlight=False)
    if result.best is None:  # one line, like any failure
        raise RunError(no_finished_trial(planned, result.rows, result.summary))
    best = result.best
    shown = " ".join(f"{p}={json.dumps(v)}" for p, v in best.values.items())
    out.print(
        f"best: trial {best.number}, {planned.metric} {format_value(best.value)}: {shown}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    out.print(f"run: {best.run_dir}", highlight=False)


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
    iterations: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="VAE: pseudo-Gibbs iterations (50); flow: Adam steps (200)."),
    ] = None,
    learning_rate: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Flow: Adam's learning rate, in the model's units (0.05)."),
    ] = None,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=0,
            max=SEED_MAX,
            help="VAE: seed of the latent draws (0); the same seed, the same file.",
        ),
    ] = None,
    allow_custom_code: CustomCodeOption = False,
) -> None:
    """Fill missing cells (empty or NaN) of a CSV with a trained mixture (conditional means),
    VAE (pseudo-Gibbs sampling) or flow (MAP completion)."""
    _check_output(output)
    from gencompile.imputation import impute as impute_run

    result = impute_run(
        run, input_csv, output, allow_custom_code,
        iterations=iterations, learning_rate=learning_rate, seed=seed,
    )  # fmt: skip
    out.print(
        f"filled {result.cells_filled} cell(s) in {result.rows_filled} row(s) with "
        f"{result.method}: {result.path}",
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
    _check_output(output)
    from gencompile.scoring import score as score_run

    result = score_run(run, output, input_file, split, threshold_quantile, allow_custom_code)
    out.print(f"score: {result.kind}: {result.description}", highlight=False, markup=False)
    excluded = result.held_out_outside
    held_out = f"{result.held_out_count - excluded} held-out scores inside the support"
    out.print(
        f"threshold {result.threshold:.6g} (quantile {result.quantile:g} of the "
        f"{held_out if excluded else 'held-out scores'}): {result.flagged} of {result.count} "
        "flagged",
        highlight=False,
    )
    if excluded:
        err.print(
            f"{excluded} of {result.held_out_count} held-out example(s) outside the data's "
            "support (scored inf): left out of the threshold, which is the quantile of the "
            "others",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if result.outside:
        err.print(
            f"{result.outside} of {result.count} example(s) outside the data's support: "
            f"{result.support}, so -log p is infinite: scored inf and flagged; {result.advice}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    out.print(f"wrote {result.path}", highlight=False)


latent_app = typer.Typer(
    help="Walk a trained run's latent space: interpolate, traverse, reconstruct, "
    "arithmetic, map (a .png picture, or arrays with -o FILE.npz).",
    no_args_is_help=True,
)
app.add_typer(latent_app, name="latent")
LatentOutput = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("-o", "--output", help=".png picture (default <action>.png) or .npz arrays."),
]
LabelOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        help="Class to decode with (conditional models); also the class of the examples of "
        "a --from/--to file that gives none."
    ),
]


@latent_app.callback()
def _latent_run(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A finished run folder.")],
    allow_custom_code: CustomCodeOption = False,
) -> None:
    ctx.obj = {"run": run, "allow_custom_code": allow_custom_code}


def _latent_done(result: LatentResult) -> None:
    out.print(result.description, highlight=False, markup=False)
    out.print(f"wrote {result.path}", highlight=False)


@latent_app.command("interpolate")
def latent_interpolate(
    ctx: typer.Context,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="Held-out index (3 or 3,5), or a file (.npy/.npz/.csv/image)."),
    ] = None,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--to", help="Held-out index (17 or 17,9), or a file, as --from."),
    ] = None,
    random: Annotated[bool, typer.Option("--random", help="Between random draws.")] = False,
    n: Annotated[int, typer.Option("-n", min=1, help="Pairs of random draws.")] = 1,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=0, max=SEED_MAX, help="Seed of the draws."),
    ] = None,
    path: Annotated[str, typer.Option(help="linear or slerp.")] = "linear",
    steps: Annotated[int, typer.Option(min=2, help="Points on each path, ends included.")] = 8,
    label: LabelOption = None,
    output: LatentOutput = None,
) -> None:
    """Decode a path between two codes (examples, random draws, or mixture components)."""
    _check_output(output)
    from gencompile.latent import interpolate

    target = output or Path("interpolate.png")
    result = interpolate(ctx.obj["run"], target, start, end, random, n, seed, path, steps, label,
                         ctx.obj["allow_custom_code"])  # fmt: skip
    _latent_done(result)


@latent_app.command("traverse")
def latent_traverse(
    ctx: typer.Context,
    dims: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Comma-separated latent dimensions (default: the first 10)."),
    ] = None,
    value_range: Annotated[
        tuple[float, float], typer.Option("--range", help="Values each dimension takes.")
    ] = (-3.0, 3.0),
    steps: Annotated[int, typer.Option(min=2, help="Values per dimension.")] = 7,
    example: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Held-out example whose code is varied (default: the prior's centre)."),
    ] = None,
    label: LabelOption = None,
    output: LatentOutput = None,
) -> None:
    """Vary one latent dimension at a time around a code: a grid of dims x values."""
    _check_output(output)
    from gencompile.latent import traverse

    chosen = [int(d) for d in dims.split(",") if d.strip()] if dims else None
    target = output or Path("traverse.png")
    result = traverse(ctx.obj["run"], target, chosen, value_range, steps, example, label,
                      ctx.obj["allow_custom_code"])  # fmt: skip
    _latent_done(result)


@latent_app.command("reconstruct")
def latent_reconstruct(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", min=1, help="Held-out examples.")] = 8,
    output: LatentOutput = None,
) -> None:
    """Held-out examples beside their reconstructions (decode of their codes)."""
    _check_output(output)
    from gencompile.latent import reconstruct

    target = output or Path("reconstruct.png")
    _latent_done(reconstruct(ctx.obj["run"], target, n, ctx.obj["allow_custom_code"]))


@latent_app.command("arithmetic")
def latent_arithmetic(
    ctx: typer.Context,
    add: Annotated[int, typer.Option("--add", help="Class whose mean code is added.")],
    subtract: Annotated[int, typer.Option("--subtract", help="Class whose mean is taken off.")],
    n: Annotated[int, typer.Option("-n", min=1, help="Held-out examples of --subtract.")] = 8,
    steps: Annotated[int, typer.Option(min=2, help="Strengths from 0 to 1.")] = 5,
    output: LatentOutput = None,
) -> None:
    """Add z_mean(--add) - z_mean(--subtract) to codes of held-out --subtract examples."""
    _check_output(output)
    from gencompile.latent import arithmetic

    target = output or Path("arithmetic.png")
    result = arithmetic(ctx.obj["run"], target, add, subtract, n, steps,
                        ctx.obj["allow_custom_code"])  # fmt: skip
    _latent_done(result)


@latent_app.command("map")
def latent_map(
    ctx: typer.Context,
    method: Annotated[str, typer.Option(help="pca or tsne (codes of more than 2 dims).")] = "pca",
    output: LatentOutput = None,
) -> None:
    """The held-out codes in 2-D, coloured by label (a mixture: by component)."""
    _check_output(output)
    from gencompile.latent import latent_map as map_run

    target = output or Path("map.png")
    _latent_done(map_run(ctx.obj["run"], target, method, ctx.obj["allow_custom_code"]))


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
    keep_edits: Annotated[
        bool, typer.Option(help="Eject generated files you edited as they are (else refused).")
    ] = False,
) -> None:
    """Copy a generated project out as yours: no DO NOT EDIT, no lock, the runtime vendored."""
    _check_output(output, folder=True)
    from gencompile.eject import eject as eject_project

    result = eject_project(run, output, allow_custom_code, force, keep_edits)
    out.print(f"ejected {result.package} into [bold]{result.directory}[/bold]")
    if result.edited:
        out.print(f"  kept your edits: {', '.join(result.edited)}", highlight=False)
    weights = ", ".join(result.weights) or "none (not a finished run)"
    out.print(f"  trained weights: {weights}", highlight=False)
    out.print(f"  try: cd {quoted(result.directory)} && python -m pytest tests", highlight=False)


@app.command()
def wheel(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder the wheel goes into.")
    ] = Path("wheels"),
) -> None:
    """Build this gencompile's own wheel, for installing generated projects offline."""
    _check_output(output, folder=True)
    from gencompile.wheel import build_wheel

    out.print(f"wrote {build_wheel(output)}", highlight=False)


def _print_metrics(metrics: dict[str, float], computed_with: dict[str, Any] | None = None) -> None:
    """The metrics with their units, then what any of them is not (computed_with's caveats)."""
    from gencompile.report import METRIC_UNITS, caveats, format_value

    table = _table("metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, value in sorted(metrics.items()):
        table.add_row(name, format_value(value), METRIC_UNITS.get(name, ("",))[0])
    out.print(table)
    noted: dict[str, list[str]] = {}  # caveat -> the metrics it concerns
    for name in sorted(metrics):
        for caveat in caveats((computed_with or {}).get(name, {})):
            noted.setdefault(caveat, []).append(name)
    for caveat, names in noted.items():
        line = f"caveat: {', '.join(names)}: {caveat}"  # one line, as compare's
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    """Console entry point: turn gencompile's errors into messages and exit codes, and
    warnings into `warning: ...` lines (Python's own format under --debug)."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line(warnings.showwarning)
        _main()


def _warning_line(python_format: Any) -> Any:
    def show(message: Warning | str, category: type[Warning], *where: Any, **kw: Any) -> None:
        if DEBUG["on"]:  # where it came from, for a bug report
            python_format(message, category, *where, **kw)
            return
        err.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    return show


def _main() -> None:
    from gencompile.run_status import terminate_as_interrupt

    try:
        # SIGTERM (kill, timeout, a scheduler) stops every command as Ctrl-C does: a file
        # being written is removed, not left behind under its hidden temporary name.
        with terminate_as_interrupt():
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
    except SystemExit as stop:
        # typer turns Ctrl-C into a silent `exit 130`; say so, or show it under --debug.
        interrupt = _interrupt_behind(stop)
        if interrupt is None:
            raise
        if DEBUG["on"]:
            raise interrupt from None
        err.print("interrupted", highlight=False)
        sys.exit(130)
    except OSError as error:  # a folder that cannot be written, a full disk, ...
        if DEBUG["on"]:
            raise
        err.print(f"error: {_os_message(error)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


def _interrupt_behind(stop: SystemExit) -> KeyboardInterrupt | None:
    """The Ctrl-C that typer converted into this exit, if any (its cause or context chain)."""
    seen: BaseException | None = stop
    for _ in range(4):  # SystemExit <- typer's Exit(130) <- KeyboardInterrupt
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _os_message(error: OSError) -> str:
    """`cannot write runs/x: Permission denied (...)`: the path, the reason on one line
    (never a library's multi-line report), what to do."""
    from gencompile.files import os_error_text

    return os_error_text(error)


if __name__ == "__main__":
    main()
