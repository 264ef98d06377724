"""The `evaluation:` and `output:` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gencompile.spec.base import NonNegativeInt, PositiveInt, StrictModel

# Metrics of generated samples against real data, available to every family
# (computed by gencompile.runtime.metrics.samples).
SAMPLE_METRICS = (
    "fd_digits",
    "fid",
    "kid",
    "inception_score",
    "precision_recall",
    "energy_distance",
    "mode_coverage",
)
# Metrics of a classifier trained on a conditional model's labelled samples and tested on
# the real held-out split (computed by gencompile.runtime.metrics.tstr).
LABELLED_SAMPLE_METRICS = ("tstr", "tstr_augmentation")
# Metrics of the held-out split: they need data.validation_split > 0.
HELDOUT_METRICS = (
    *LABELLED_SAMPLE_METRICS,
    "elbo",
    "iwae_nll",
    "bits_per_dim",
    "nll",
    "perplexity",
    "bits_per_char",
    "bleu",
    "denoising_loss",
    "mig",
    # vq_vae
    "reconstruction_nll",
    "prior_nll",
    "nll_bound",
    "codebook_perplexity",
)
IMAGE_ONLY_METRICS = ("fid", "inception_score")
VECTOR_ONLY_METRICS = ("energy_distance",)
# Built-in data sets a metric needs (fd_digits's classifier knows only the digits).
METRIC_DATA = {
    "fd_digits": ("digits",),
    "mode_coverage": ("ring8", "grid25"),
    "mig": ("shapes2d",),  # needs the data's generative factors
}
# What to do instead, for the metrics of METRIC_DATA whose advice is not the default's.
METRIC_DATA_ADVICE = {
    "mig": "mig scores latents against known generative factors: train on "
    "data.source: {type: builtin, name: shapes2d}, or drop mig from evaluation.metrics",
}
# What a family without a likelihood reports by default on each built-in data set: the
# sample-quality metrics that need no download.
BUILTIN_SAMPLE_METRICS = {
    "digits": ("fd_digits",),
    "ring8": ("mode_coverage", "energy_distance"),
    "grid25": ("mode_coverage", "energy_distance"),
    "moons": ("energy_distance",),
    "circles": ("energy_distance",),
    "swiss_roll": ("energy_distance",),
    "blobs": ("energy_distance",),
}


DEFAULT_NUM_SAMPLES = 2000
# FID compares 2048 x 2048 covariances of InceptionV3's pool features: with fewer samples
# (or real examples) than features the sample covariance is singular and FID heavily
# biased, so fid refuses fewer; TTUR recommends 10000, the default when fid is asked.
FID_FEATURES = 2048
FID_NUM_SAMPLES = 10_000


class EvaluationSpec(StrictModel):
    """Metrics computed after training and by `gencompile evaluate`."""

    metrics: list[str] | None = Field(
        None, description="Metric names; default: the family's standard metrics."
    )
    num_samples: PositiveInt | None = Field(
        None,
        description=f"Samples drawn for the sample-quality metrics; default "
        f"{DEFAULT_NUM_SAMPLES}, or {FID_NUM_SAMPLES} when fid is among the metrics (fid "
        f"needs at least {FID_FEATURES}, one per InceptionV3 feature; TTUR recommends "
        f"{FID_NUM_SAMPLES}).",
    )
    importance_samples: PositiveInt = Field(1000, description="k of the IWAE bound (iwae_nll).")
    inception_weights: str | None = Field(
        None,
        min_length=1,
        description="Local file of InceptionV3's ImageNet weights for fid, kid and "
        "inception_score on images; default: keras.applications' download (needs network).",
    )


class SamplesSpec(StrictModel):
    """Samples drawn at the end of training."""

    count: PositiveInt = Field(64, description="Number of samples.")
    format: Literal["png", "npz", "txt"] = Field(
        "png", description="png picture or npz arrays; txt for text (its default there)."
    )
    every_epochs: NonNegativeInt = Field(
        0, description="Sample pictures during training (0 = off)."
    )


ExportFormat = Literal["keras", "saved_model"]


class ReportSpec(StrictModel):
    """What the run's report (report.md, report.html) shows besides metrics and samples."""

    latent_pictures: bool = Field(
        True,
        description="Draw the latent space at the end of training into the run's latent/ "
        "folder and show it in the report, where the family has one: reconstructions, a "
        "map of held-out codes, a traversal and interpolations (VAE); a map, a traversal "
        "and interpolations (flow); interpolations between draws (GAN); a map of "
        "components (mixture). Diffusion and autoregressive models draw none.",
    )


class OutputSpec(StrictModel):
    """What a run writes besides checkpoints and metrics."""

    samples: SamplesSpec = Field(default_factory=SamplesSpec)
    export: list[ExportFormat] = Field(
        default_factory=lambda: list[ExportFormat](["keras"]),
        description="Formats the trained model is saved in.",
    )
    tensorboard: bool = Field(
        True,
        description="Write TensorBoard logs into the run's tensorboard/ folder: every "
        "epoch's metrics and learning rate, the sample pictures, the networks' graphs.",
    )
    report: ReportSpec = Field(default_factory=ReportSpec)
