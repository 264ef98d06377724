"""A run's report, as `report.md` and a self-contained `report.html`, and `compare`.

Both reports are rendered from one `Report` read off the run directory's files (lock,
metrics.json, history.csv, pictures, text samples), so they need no TensorFlow. The HTML
embeds its pictures as data URIs (it can be mailed or attached on its own) and links
each to its file beside it.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencompile.errors import RunError
from gencompile.files import atomic_write_text, read_json
from gencompile.markdown import markdown_text
from gencompile.provenance import parent_label, report_lines
from gencompile.run_status import epochs_phrase
from gencompile.runtime import history_file

# name: (unit, how to read it)
METRIC_UNITS = {
    "elbo": ("nats / example", "higher is better"),
    "iwae_nll": ("nats / example", "lower is better"),
    "nll": ("nats / example", "lower is better"),
    "bits_per_dim": ("bits / dimension", "lower is better"),
    "bic": ("nats, training split", "lower is better"),
    "aic": ("nats, training split", "lower is better"),
    "fd_digits": ("digits-classifier feature units", "lower is better"),
    "fd_digits_classifier_accuracy": ("fraction of held-out digits", "feature extractor"),
    "fid": ("InceptionV3 feature units", "lower is better"),
    "kid": ("squared MMD, feature units", "lower is better"),
    "kid_std": ("over 100 subsets", ""),
    "inception_score": ("classes (1 to 1000)", "higher is better"),
    "inception_score_std": ("over 10 splits", ""),
    "precision": ("fraction of samples", "higher is better"),
    "recall": ("fraction of real data", "higher is better"),
    "energy_distance": ("data units", "lower is better"),
    "modes_captured": ("modes", "higher is better"),
    "high_quality": ("fraction within 3 sigma of a mode", "higher is better"),
    "perplexity": ("per token", "lower is better"),
    "bits_per_char": ("bits / character", "lower is better"),
    "bleu": ("BLEU (sacrebleu), 0-100", "higher is better"),
    "validity": ("fraction of sampled lines", "higher is better"),
    "denoising_loss": ("mean squared error, model space", "lower is better"),
    "mig": ("normalised gap, 0 to 1", "higher is better"),
    "tstr_accuracy": ("fraction of real held-out examples", "higher is better"),
    "trtr_accuracy": ("fraction of real held-out examples", "reference: real training data"),
    "tstr_ratio": ("tstr / trtr accuracy", "higher is better"),
    "subset_accuracy": ("fraction of real held-out examples", "reference: 10 % of the labels"),
    "augmented_accuracy": ("fraction of real held-out examples", "higher is better"),
    # vq_vae
    "reconstruction_nll": ("nats / example", "lower is better"),
    "prior_nll": ("nats / example (codes)", "lower is better"),
    "nll_bound": ("nats / example, bound on -log p(x)", "lower is better"),
    "codebook_perplexity": ("codes in use", "higher is better"),
}
# A second fit after the run's own (a VQ-VAE's prior): its last epoch is shown too.
SECOND_STAGE_HISTORY = "prior_history.csv"

PICTURES = (("Samples", "samples.png"), ("Training curves", "curves.png"))
# Pictures of the latent space drawn at the end of training, listed with their captions
# (gencompile.runtime.report_pictures writes this file; its titles by picture name).
LATENT_MANIFEST = "latent/pictures.json"
LATENT_TITLES = {
    "reconstructions": "Reconstructions",
    "map": "Latent map",
    "traversal": "Latent traversal",
    "interpolations": "Interpolations",
}
TEXT_SAMPLES = "samples.txt"
TEXT_SAMPLE_LINES = 40  # lines of samples.txt shown in the reports


@dataclass(frozen=True)
class Report:
    """What a run's report says, independent of its format."""

    title: str
    description: str
    summary: str
    metrics: dict[str, float]
    last_epoch: dict[str, float]  # the epoch whose weights the run keeps, as history.csv has it
    pictures: list[tuple[str, Path]]
    text_samples: list[str]
    spec_lines: list[str]
    hashes: list[tuple[str, str]]
    versions: str
    spec_source: str = ""
    notes: list[str] = field(default_factory=list)
    computed_with: dict[str, str] = field(default_factory=dict)  # metric -> in brief
    latent: list[LatentPicture] = field(default_factory=list)
    latent_skipped: list[str] = field(default_factory=list)  # "map, traversal (why)"
    epoch_heading: str = "Last epoch"  # or "Epoch K (kept by early stopping)"
    # The epoch table's units when they are not the data's (see `model_units_note`)
    epoch_note: str = ""


@dataclass(frozen=True)
class LatentPicture:
    title: str
    path: Path
    caption: str  # what the picture shows, in one line


def _latent_pictures(run_dir: Path) -> tuple[list[LatentPicture], list[str]]:
    """The latent pictures training drew (those whose file is there) and those it skipped."""
    manifest = read_json(run_dir / LATENT_MANIFEST)
    # Files by known name only: the manifest names no other path to embed.
    named = [(e["name"], e["caption"]) for e in manifest.get("pictures", [])]
    drawn = [
        LatentPicture(LATENT_TITLES[name], run_dir / "latent" / f"{name}.png", caption)
        for name, caption in named
        if name in LATENT_TITLES and (run_dir / "latent" / f"{name}.png").exists()
    ]
    reasons: dict[str, list[str]] = {}  # why -> the pictures it kept from being drawn
    for entry in manifest.get("skipped", []):
        reasons.setdefault(entry["why"], []).append(entry["name"])
    return drawn, [f"{', '.join(names)} ({why})" for why, names in reasons.items()]


def _last_epoch(
    run_dir: Path, name: str = "history.csv", epoch: int | None = None
) -> dict[str, float]:
    """The values of `epoch` (default: the last) in a history file ({}: none)."""
    rows = history_file.read_numbers(run_dir / name)
    if not rows:
        return {}
    return rows.get(epoch, {}) if epoch is not None else rows[max(rows)]


def _restored(record: dict[str, Any]) -> int | None:
    """The epoch whose weights early stopping restored (metrics.json's restored_epoch)."""
    epoch = record.get("restored_epoch")
    return epoch if isinstance(epoch, int) else None


def _kept(epoch: int | None, training: dict[str, Any]) -> str:
    """' Early stopping kept epoch K's weights ...' for a run whose model is not its last
    epoch's (restore_best_weights)."""
    if epoch is None:
        return ""
    monitor = (training.get("early_stopping") or {}).get("monitor", "its monitor")
    return (
        f" Early stopping kept the weights of epoch {epoch}, its best {monitor}: the "
        "metrics and the epoch table are that model's."
    )


def _continued(lock: dict[str, Any]) -> str:
    """' Continued: 1 -> 3 epochs.' for a run trained on with `train --resume --epochs`."""
    steps = [f"{r['epochs_before']} -> {r['epochs_after']}" for r in lock.get("revisions") or []]
    return f" Continued: {', '.join(steps)} epochs." if steps else ""


def _pruned(run_dir: Path, asked: int) -> str:
    """' Pruned: ...' for a sweep trial whose fit the sweep's pruner stopped early."""
    from gencompile.run_status import pruned_epoch

    epoch = pruned_epoch(run_dir)
    if epoch is None:
        return ""
    return f" Pruned: a sweep's pruner stopped it after epoch {epoch} of the {asked} asked for."


def _untimed(record: dict[str, Any]) -> str:
    """What train_seconds leaves out: the epochs whose seconds no record kept."""
    count = record.get("untimed_epochs")
    if not count:
        return ""
    return f" (not counting {epochs_phrase(count)} of earlier processes, whose time is unknown)"


def read_report(run_dir: Path) -> Report:
    lock = read_json(run_dir / "spec.lock.json")
    if not lock:
        raise RunError(f"{run_dir} is not a run directory (no spec.lock.json)")
    record = read_json(run_dir / "metrics.json")
    resolved = lock["resolved_spec"]
    data, training = resolved["data"], resolved["training"]
    kept = _restored(record)
    last = _last_epoch(run_dir, epoch=kept)
    last.update({f"prior_{k}": v for k, v in _last_epoch(run_dir, SECOND_STAGE_HISTORY).items()})
    source = data["source"]
    samples_path = run_dir / TEXT_SAMPLES
    text = samples_path.read_text(encoding="utf-8").splitlines() if samples_path.exists() else []
    latent, latent_skipped = _latent_pictures(run_dir)
    return Report(
        title=lock["name"],
        description=resolved.get("description") or f"A {lock['family']} model.",
        summary=f"Family {lock['family']}, seed {lock['seed']}, "
        f"{record.get('epochs', '?')} epochs in {record.get('train_seconds', '?')} s"
        f"{_untimed(record)}."
        + _continued(lock)
        + _pruned(run_dir, training["epochs"])
        + _kept(kept, training),
        metrics=dict(sorted(record.get("metrics", {}).items())),
        last_epoch=last,
        epoch_heading="Last epoch" if kept is None else f"Epoch {kept} (kept by early stopping)",
        pictures=[(title, run_dir / name) for title, name in PICTURES if (run_dir / name).exists()],
        text_samples=text[:TEXT_SAMPLE_LINES]
        + (
            [f"... ({len(text) - TEXT_SAMPLE_LINES} more lines in samples.txt)"]
            if len(text) > TEXT_SAMPLE_LINES
            else []
        ),
        spec_lines=[
            f"data: {source['type']} {source.get('name', source.get('path', ''))}, batch size "
            f"{data['batch_size']}, validation split {data['validation_split']}",
            *_optimizer_lines(training),
            f"metrics: {', '.join(resolved['evaluation']['metrics']) or 'none'}",
            "full resolved spec: spec.lock.json; source: spec.yaml",
            *report_lines(run_dir, lock),  # a fine-tuned run's parent
        ],
        hashes=[
            ("spec.yaml", lock["spec_sha256"]),
            ("resolved spec", lock["resolved_spec_sha256"]),
            ("data", str(lock.get("data_fingerprint"))),
            ("weights", str(record.get("weights_sha256"))),
        ],
        versions=", ".join(f"{k} {v}" for k, v in sorted(lock["versions"].items()) if v)
        + f"; {lock['platform']}.",
        spec_source=lock.get("spec_source", ""),
        notes=_notes(record.get("metrics", {})),
        computed_with={
            name: computed_with_brief(how) for name, how in record.get("computed_with", {}).items()
        },
        latent=latent,
        latent_skipped=latent_skipped,
        epoch_note=model_units_note(
            data.get("preprocessing") or {},
            record.get("data_statistics") or lock.get("data_statistics") or {},
        ),
    )


def preprocessing_words(preprocessing: dict[str, Any]) -> str:
    """The spec's preprocessing in words ("scaled to [0.0, 1.0], then standardized"); ""
    when there is none (the model sees the data's own values)."""
    steps = []
    if preprocessing.get("scale") is not None:
        low, high = preprocessing["scale"]
        steps.append(f"scaled to [{low}, {high}]")
    if preprocessing.get("standardize"):
        steps.append("standardized")
    return ", then ".join(steps)


def model_units_note(preprocessing: dict[str, Any], statistics: dict[str, Any]) -> str:
    """Why the epoch table (history.csv: the training loop's loss and val_*) does not read
    like the held-out metrics: it is in the model's units, after the preprocessing, while
    likelihood metrics add its log-Jacobian back. "" when the model sees the data as is."""
    words = preprocessing_words(preprocessing)
    if not words:
        return ""
    shift = statistics.get("log_det_jacobian")
    jacobian = f"; log|dy/dx| = {shift:.4f} nats per example" if shift is not None else ""
    return (
        f"Training-loop values, in the model's units: computed on the data as preprocessed "
        f"({words}{jacobian}). The likelihood metrics above are in the data's units: for a "
        "continuous density (a gaussian or logistic likelihood, a flow, a mixture) a "
        "negative log-likelihood per example there is the model's minus log|dy/dx|. Do not "
        "compare the two tables directly."
    )


def _optimizer_lines(training: dict[str, Any]) -> list[str]:
    """One line per optimizer (a GAN may have one per network)."""
    named = training.get("optimizers") or {"optimizer": training.get("optimizer")}
    return [
        f"{name}: {opt['type']}, learning rate {opt['learning_rate']}"
        for name, opt in named.items()
        if opt
    ]


def _notes(metrics: dict[str, float]) -> list[str]:
    notes = [
        "Computed on the held-out split (the training split when there is none); "
        "sample-quality metrics compare generated samples with that split. "
        "metrics.json records what each number was computed with (computed_with)."
    ]
    if {"bic", "aic"} & set(metrics):
        notes.append("BIC and AIC are computed on the training split, as scikit-learn does.")
    return notes


# computed_with keys shown in brief, with how each reads
_COUNTS = (
    ("importance_samples", "k = {}"),
    ("dequantization_samples", "{} dequantizations"),
    ("prompts", "{} prompts"),
    ("sequences", "{} sequences"),
    ("subset_size", "subsets of {}"),
)


# computed_with's `decoder_means`, in words: the sample metrics of a VAE scored E[x | z].
DECODER_MEANS = "scores decoder means E[x|z], not draws from p(x|z)"


def caveats(how: dict[str, Any]) -> list[str]:
    """What a metric's number is not, as its computed_with says (a bernoulli likelihood's
    cross-entropy of non-binary data; samples that are a VAE decoder's means): shown beside
    the number in the report and under `gencompile compare`'s table."""
    found = [how["caveat"]] if how.get("caveat") else []
    return found + ([DECODER_MEANS] if how.get("decoder_means") else [])


def computed_with_brief(how: dict[str, Any]) -> str:
    """One line of what a metric was computed with: "2000 samples vs 180 validation;
    digits classifier v2 (34d6768e02e9)"; metrics.json's computed_with holds it all.
    Caveats come first."""
    parts = caveats(how)
    if "samples" in how:
        reference = how.get("reference")
        against = f" vs {reference['examples']} {reference['split']}" if reference else ""
        parts.append(f"{how['samples']} samples{against}")
    if "split" in how:
        parts.append(f"{how['examples']} {how['split']} examples")
    parts += [text.format(how[key]) for key, text in _COUNTS if key in how]
    if "marginal_over_classes" in how:  # a conditional VAE's -log sum_y p(y) p(x|y)
        parts.append(f"marginal over {how['marginal_over_classes']} classes")
    if "em_start" in how:  # a mixture's EM from the best of n_init starts
        parts.append(f"EM start {how['em_start']['chosen'] + 1} of {how['em_start']['of']}")
    if "effective_components" in how:  # a variational mixture
        parts.append(f"{how['effective_components']} effective components")
    network = how.get("features", {})
    if network.get("weights_sha256"):
        name = network["network"].split(",")[0].split(" avg_pool")[0]
        parts.append(f"{name} ({network['weights_sha256'][:12]})")
    return "; ".join(parts)


def format_value(value: Any) -> str:
    """Four decimals, or four significant digits for very large or very small numbers;
    counts (modes captured) as whole numbers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e4:
        return str(int(value))
    if isinstance(value, float):
        tiny = value != 0 and abs(value) < 1e-3
        return f"{value:.4g}" if tiny or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def epoch_value(value: float) -> str:
    """A history.csv value of the last epoch; nan is one no step of the epoch computed (a
    lazy penalty's epoch without a penalty update): said so, not shown as a number."""
    return "not computed" if math.isnan(value) else f"{value:.4f}"


# --------------------------------------------------------------------------- markdown


def render_markdown(report: Report) -> str:
    # The description and spec lines carry the spec's own text: shown, never rendered.
    description = markdown_text(report.description)
    lines = [f"# {report.title}", "", description, "", report.summary, ""]
    lines += ["## Metrics", "", *report.notes, ""]
    lines += ["| metric | value | unit | | computed with |", "|---|---:|---|---|---|"]
    for name, value in report.metrics.items():
        unit, direction = METRIC_UNITS.get(name, ("", ""))
        how = report.computed_with.get(name, "")
        lines.append(f"| {name} | {format_value(value)} | {unit} | {direction} | {how} |")
    if report.last_epoch:
        lines += ["", f"## {report.epoch_heading}", ""]
        lines += [markdown_text(report.epoch_note), ""] if report.epoch_note else []
        lines += ["| quantity | value |", "|---|---:|"]
        lines += [f"| {k} | {epoch_value(v)} |" for k, v in report.last_epoch.items()]
    for title, path in report.pictures:
        lines += ["", f"## {title}", "", f"![{title.lower()}]({path.name})"]
    if report.latent or report.latent_skipped:
        lines += ["", "## Latent space"]
    for picture in report.latent:
        href = _relative(picture.path)
        lines += ["", f"### {picture.title}", "", markdown_text(picture.caption) + ".", ""]
        lines.append(f"![{picture.title.lower()}]({href})")
    if report.latent_skipped:
        lines += ["", "Not drawn: " + markdown_text("; ".join(report.latent_skipped)) + "."]
    if report.text_samples:
        lines += ["", "## Text samples", "", "```", *report.text_samples, "```"]
    lines += ["", "## Spec", "", *(f"- {markdown_text(line)}" for line in report.spec_lines)]
    lines += ["", "## Reproducibility", "", "| | sha256 |", "|---|---|"]
    lines += [f"| {name} | `{digest}` |" for name, digest in report.hashes]
    lines += ["", f"Versions: {report.versions}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d2330; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #dde; }
table { border-collapse: collapse; } td, th { padding: 0.25rem 0.8rem; text-align: left; }
tr:nth-child(even) { background: #f4f5f8; } td.num { text-align: right;
  font-variant-numeric: tabular-nums; } .muted { color: #667; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #dde; }
pre, code { font: 13px/1.4 ui-monospace, monospace; } pre { background: #f4f5f8;
  padding: 0.8rem; overflow-x: auto; }
"""


def _table(header: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    def cell(i: int, text: str) -> str:
        kind = ' class="num"' if i in numeric else ""
        return f"<td{kind}>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _relative(path: Path) -> str:
    """A picture's path from the run directory: `samples.png`, `latent/map.png`."""
    return f"{path.parent.name}/{path.name}" if path.parent.name == "latent" else path.name


def _embedded_picture(title: str, path: Path, caption: str = "") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(_relative(path))
    said = f"{html.escape(caption)}. " if caption else ""
    return (
        f'<figure><a href="{name}"><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(title)} ({name})"></a>'
        f'<figcaption class="muted">{said}{name}</figcaption></figure>'
    )


def render_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}: gencompile report</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(report.title)}</h1><p>{e(report.description)}</p>",
        f'<p class="muted">{e(report.summary)}</p>',
        "<h2>Metrics</h2>",
        *(f'<p class="muted">{e(note)}</p>' for note in report.notes),
    ]
    rows = [
        [
            name,
            format_value(value),
            *METRIC_UNITS.get(name, ("", "")),
            report.computed_with.get(name, ""),
        ]
        for name, value in report.metrics.items()
    ]
    header = ["metric", "value", "unit", "", "computed with"]
    parts.append(_table(header, rows, {1}) if rows else "<p>None.</p>")
    for title, path in report.pictures:
        parts += [f"<h2>{e(title)}</h2>", _embedded_picture(title, path)]
    if report.latent or report.latent_skipped:
        parts.append("<h2>Latent space</h2>")
    for picture in report.latent:
        parts += [
            f"<h3>{e(picture.title)}</h3>",
            _embedded_picture(picture.title, picture.path, picture.caption),
        ]
    if report.latent_skipped:
        parts.append(f'<p class="muted">Not drawn: {e("; ".join(report.latent_skipped))}.</p>')
    if report.text_samples:
        parts += ["<h2>Text samples</h2>", f"<pre>{e(chr(10).join(report.text_samples))}</pre>"]
    if report.last_epoch:
        rows = [[k, epoch_value(v)] for k, v in report.last_epoch.items()]
        parts.append(f"<h2>{e(report.epoch_heading)}</h2>")
        if report.epoch_note:
            parts.append(f'<p class="muted">{e(report.epoch_note)}</p>')
        parts.append(_table(["quantity", "value"], rows, {1}))
    parts += ["<h2>Spec</h2><ul>", *(f"<li>{e(line)}</li>" for line in report.spec_lines), "</ul>"]
    if report.spec_source:
        parts.append(
            f"<details><summary>spec.yaml</summary><pre>{e(report.spec_source)}</pre></details>"
        )
    rows = [[name, digest] for name, digest in report.hashes]
    parts += ["<h2>Reproducibility</h2>", _table(["", "sha256"], rows, set())]
    parts += [f'<p class="muted">Versions: {e(report.versions)}</p>', "</body></html>", ""]
    return "\n".join(parts)


def write_report(run_dir: Path | str) -> Path:
    """Write report.md and report.html; return the path of report.md."""
    run_dir = Path(run_dir)
    report = read_report(run_dir)
    atomic_write_text(run_dir / "report.html", render_html(report))
    path = run_dir / "report.md"
    atomic_write_text(path, render_markdown(report))
    return path


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Comparison:
    runs: list[str]  # a short label per run
    rows: list[tuple[str, list[str], str]]  # metric, value per run ("" if absent), unit
    # metrics whose runs computed them differently (other networks, sample counts, splits)
    not_alike: list[str] = field(default_factory=list)


# computed_with entries that are not settings of the metric, so runs that differ in them
# still compare: seeds, and what the run's fit or the metric found (EM's starts, a
# variational mixture's used components, the free parameters of the model, MIG's gap per
# factor, whether a classifier converged, the epochs a VQ-VAE's prior trained).
SEED_KEYS = ("evaluation_seed", "importance_seed", "subset_seed")
RESULT_KEYS = (
    "em_start",
    "effective_components",
    "free_parameters",
    "gap_per_factor",
    "converged",
    "prior_epochs",
)
NOT_SETTINGS = frozenset(SEED_KEYS + RESULT_KEYS)


def _settings(how: dict[str, Any]) -> str:
    """What a metric was computed with, without NOT_SETTINGS, as comparable text."""
    return json.dumps({k: v for k, v in how.items() if k not in NOT_SETTINGS}, sort_keys=True)


def compare_runs(run_dirs: list[Path | str]) -> Comparison:
    """One table of several runs' metrics: a row per metric, a column per run.

    The first row is each run's status, so a run that failed or was interrupted shows as
    such (with the metrics it has, if any) instead of passing for a finished one. A metric
    the runs computed with other settings is marked "(computed differently)".
    """
    from gencompile.lockfile import read_lock
    from gencompile.run_status import read_status

    labels, metrics, statuses, hows, parents = [], [], [], [], []
    for run_dir in map(Path, run_dirs):
        lock = read_lock(run_dir)  # a damaged lock is one clear line, not a traceback
        record = read_json(run_dir / "metrics.json")
        status = read_status(run_dir) or ("finished" if "metrics" in record else "unknown")
        labels.append(f"{lock['name']}/{run_dir.name}")
        metrics.append(record.get("metrics", {}))
        statuses.append(status)
        hows.append(record.get("computed_with", {}))
        parents.append(parent_label(lock))
    names = sorted({name for m in metrics for name in m})
    not_alike = [
        name for name in names if len({_settings(how[name]) for how in hows if name in how}) > 1
    ]
    rows = [("status", statuses, "")]
    if any(parents):  # fine-tuned runs: where each started from
        rows.append(("parent", parents, ""))
    rows += [
        (
            f"{name} (computed differently)" if name in not_alike else name,
            [format_value(m[name]) if name in m else "" for m in metrics],
            METRIC_UNITS.get(name, ("", ""))[0],
        )
        for name in names
    ]
    return Comparison(labels, rows, not_alike)
