"""What a spec's runs log each epoch (history.csv): the generated model's trackers, their
validation versions, and the logs of the family's callbacks. One list, for every check
that names a per-epoch log (early stopping's monitor, a sweep's metric)."""

from __future__ import annotations

from typing import Any


def logged_metrics(spec: Any, validated: bool | None = None) -> list[str]:
    """The per-epoch logs of this spec's runs: its family's trackers, those only some
    models of the family have when this spec's model is one (a beta-TC VAE's tc), their
    val_ versions when the run holds data out (`validated`: whether to list them;
    default: when the spec's validation_split is above 0), then the logs of the family's
    callbacks (a GAN's diversity), which are never validated."""
    model = spec.model
    optional = model.optional_trackers() if hasattr(model, "optional_trackers") else ()
    trackers = [*model.trackers, *optional]
    if validated is None:
        validated = spec.data.validation_split > 0
    unvalidated = getattr(model, "training_only_trackers", ())
    checked = [t for t in trackers if not t.endswith("grad_norm") and t not in unvalidated]
    return [
        *trackers,
        *(f"val_{t}" for t in checked if validated),
        *getattr(model, "callback_logs", ()),
    ]


# The per-epoch logs whose improvement is a fall or a rise (early stopping's `mode: auto`).
FALLING = frozenset({"kl", "reconstruction", "tc", "gradient_penalty"})
RISING = frozenset({"lower_bound", "log_likelihood", "diversity"})


def log_direction(name: str) -> str | None:
    """ "min" if a lower value of per-epoch log `name` (or of X for val_X) is better, "max"
    if a higher one is, None when the log has no better side (a gradient norm, augment_p)."""
    base = name.removeprefix("val_")
    if base.endswith("loss") or base in FALLING:
        return "min"
    if base in RISING or base.endswith("accuracy"):
        return "max"
    return None
