"""The `diffusion` family: a denoiser learns to undo a fixed Gaussian noising process.

The forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) follows a
noise schedule over `timesteps` steps; the denoiser is trained to predict epsilon, v or x_0
from (x_t, t); a sampler (DDPM ancestral or DDIM) runs the learned reverse process from
pure noise, with the exponential moving average (EMA) of the weights; DPM-Solver++, Euler
and Heun solve the probability-flow ODE of the same model in fewer steps. Checks that relate
fields to each other or to the data are made when lowering (`compiler/families/diffusion`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from gencompile.sampler_configs import SETTINGS  # the samplers' defaults, shared with the runtime
from gencompile.spec.base import (
    Activation,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)
from gencompile.spec.evaluation import LABELLED_SAMPLE_METRICS, SAMPLE_METRICS
from gencompile.spec.networks import Freezable
from gencompile.spec.transfer import InitFrom

UnitFloat = Annotated[float, Field(gt=0, lt=1)]


class LinearSchedule(StrictModel):
    """beta_t rising linearly from beta_start to beta_end (Ho et al. 2020)."""

    type: Literal["linear"]
    beta_start: UnitFloat = Field(1.0e-4, description="beta of the first step.")
    beta_end: UnitFloat = Field(0.02, description="beta of the last step (> beta_start).")


class CosineSchedule(StrictModel):
    """alpha_bar_t = cos^2(((t / T + s) / (1 + s)) pi / 2), normalised (Nichol & Dhariwal 2021)."""

    type: Literal["cosine"]
    offset: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.008, description="s: keeps beta small near t = 0."
    )
    max_beta: UnitFloat = Field(0.999, description="betas are clipped to at most this.")


class SigmoidSchedule(StrictModel):
    """alpha_bar falls along a sigmoid of t / T between `start` and `end` (Jabri et al. 2023,
    Chen 2023): alpha_bar = (v(end) - v(t / T (end - start) + start)) / (v(end) - v(start)),
    v(z) = sigmoid(z / tau)."""

    type: Literal["sigmoid"]
    start: float = Field(-3.0, description="Sigmoid input at t = 0 (< end).")
    end: float = Field(3.0, description="Sigmoid input at t = T.")
    tau: PositiveFloat = Field(
        1.0, description="Temperature: larger spreads the noise more evenly over t."
    )
    max_beta: UnitFloat = Field(0.999, description="betas are clipped to at most this.")


Schedule = Annotated[LinearSchedule | CosineSchedule | SigmoidSchedule, Field(discriminator="type")]


class MLPDenoiser(Freezable):
    """Dense layers on [x_t, sinusoidal features of t] (vector data; images are flattened)."""

    type: Literal["mlp"]
    hidden: list[PositiveInt] = Field(
        default_factory=lambda: [256, 256, 256],
        min_length=1,
        description="Widths of the dense layers.",
    )
    time_embedding: PositiveInt = Field(32, description="Sinusoidal features of t (even).")
    activation: Activation = "silu"


class UNetDenoiser(Freezable):
    """A small U-Net: residual blocks with group norm and the time embedding, per level."""

    type: Literal["unet"]
    widths: list[PositiveInt] = Field(
        default_factory=lambda: [32, 64],
        min_length=1,
        description="Channels per level; the resolution halves between levels.",
    )
    attention: list[bool] | None = Field(
        None, description="Self-attention after the blocks of each level (default: none)."
    )
    blocks: PositiveInt = Field(2, description="Residual blocks per level, down and up.")
    groups: PositiveInt = Field(8, description="Group norm groups (must divide every width).")
    time_embedding: PositiveInt = Field(
        64, description="Sinusoidal features of t (even); projected to 4 x widths[0]."
    )
    dropout: Probability = 0.0


Denoiser = Annotated[MLPDenoiser | UNetDenoiser, Field(discriminator="type")]


class DDPMSampler(StrictModel):
    """Ancestral sampling through every timestep, with the posterior variance."""

    type: Literal["ddpm"]


STEPS_WORDS = (
    "at most timesteps, or on a schedule ending near alpha_bar = 0 as many as fit from the "
    "noisiest timestep with log(alpha / sigma) >= -5.1 (cosine, 1000 timesteps: 996)"
)


class DDIMSampler(StrictModel):
    """DDIM over `steps` evenly spaced timesteps from the noisiest whose log(alpha / sigma)
    is at least -5.1, where the ODE solvers start (T - 1 on a linear schedule; the cosine
    and sigmoid ones end near alpha = 0, where a first step would amplify the denoiser's
    error); eta = 0 is deterministic, 1 is DDPM-like."""

    type: Literal["ddim"]
    steps: PositiveInt = Field(
        SETTINGS["ddim"]["steps"], description=f"Sampling steps: {STEPS_WORDS}."
    )
    eta: Annotated[float, Field(ge=0, le=1)] = Field(
        SETTINGS["ddim"]["eta"], description="Noise of each step."
    )


class DPMSolverSampler(StrictModel):
    """DPM-Solver++ (Lu et al. 2022): a multistep solver of the probability-flow ODE in the
    data prediction, one denoiser call per step; 2M (second order) by default, steps evenly
    spaced in log-SNR."""

    type: Literal["dpm_solver"]
    steps: PositiveInt = Field(
        SETTINGS["dpm_solver"]["steps"], description=f"Sampling steps (10-25): {STEPS_WORDS}."
    )
    order: Annotated[int, Field(ge=2, le=3)] = Field(
        SETTINGS["dpm_solver"]["order"],
        description="2: DPM-Solver++ 2M; 3: 3M (Lu et al.'s multistep order 3 as diffusers' "
        "solver_order=3 writes it; first and second order on its first two steps, second "
        "order before the last of fewer than 15 steps).",
    )
    spacing: Literal["log_snr", "karras", "time_uniform"] = Field(
        SETTINGS["dpm_solver"]["spacing"],
        description="The noise levels visited: evenly spaced in log-SNR (Lu et al.), Karras' "
        "sigmas with rho 7 (diffusers' use_karras_sigmas, 'DPM++ 2M Karras'), or evenly "
        "spaced timesteps (Lu et al.'s time_uniform).",
    )


class EulerSampler(StrictModel):
    """Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022), one
    denoiser call per step, at Karras' rho-spaced noise levels."""

    type: Literal["euler"]
    steps: PositiveInt = Field(
        SETTINGS["euler"]["steps"], description=f"Sampling steps: {STEPS_WORDS}."
    )
    rho: PositiveFloat = Field(
        SETTINGS["euler"]["rho"],
        description="Spacing of the sigmas: larger is denser at low noise.",
    )


class HeunSampler(StrictModel):
    """Heun's second-order method on the probability-flow ODE in sigma space (Karras et al.
    2022): two denoiser calls per step (2 steps - 1 in all), at rho-spaced noise levels."""

    type: Literal["heun"]
    steps: PositiveInt = Field(
        SETTINGS["heun"]["steps"], description=f"Noise levels visited: {STEPS_WORDS}."
    )
    rho: PositiveFloat = Field(
        SETTINGS["heun"]["rho"], description="Spacing of the sigmas: larger is denser at low noise."
    )


Sampler = Annotated[
    DDPMSampler | DDIMSampler | DPMSolverSampler | EulerSampler | HeunSampler,
    Field(discriminator="type"),
]


class SimpleLoss(StrictModel):
    """Mean squared error between the denoiser's output and its target (Ho et al.'s L_simple)."""

    type: Literal["simple"]


class MinSNRLoss(StrictModel):
    """Min-SNR-gamma weighting (Hang et al. 2023): the x_0 error weighted by min(SNR_t, gamma)."""

    type: Literal["min_snr"]
    gamma: PositiveFloat = Field(5.0, description="Cap of the SNR weight.")


Loss = Annotated[SimpleLoss | MinSNRLoss, Field(discriminator="type")]


class GuidedConditional(StrictModel):
    """Class-conditional with classifier-free guidance (Ho & Salimans 2022)."""

    num_classes: Annotated[int, Field(ge=2)] = Field(
        description="Number of classes; every label of the data must be below it (checked "
        "when building where the labels are quick to read, always when the data is read)."
    )
    guidance_scale: NonNegativeFloat = Field(
        2.0,
        description="Sampling uses unconditional + scale x (conditional - unconditional): "
        "0 is unconditional, 1 conditional, > 1 guided; with label_dropout 0 (no "
        "unconditional denoiser trained) only 1.",
    )
    label_dropout: Probability = Field(
        0.1,
        description="Share of training labels replaced by the null class (trains the "
        "unconditional denoiser guidance needs).",
    )


class DiffusionModel(StrictModel):
    """Denoising diffusion model."""

    family: Literal["diffusion"]
    timesteps: Annotated[int, Field(ge=2, le=100000)] = Field(
        1000, description="Steps T of the noising process."
    )
    schedule: Schedule = Field(
        default_factory=lambda: CosineSchedule(type="cosine"),
        description="Noise schedule: the betas of the T steps (in float32, alpha_bar_0 must "
        "stay below 1 and alpha_bar_{T-1} above 1.2e-38).",
    )
    prediction: Literal["epsilon", "v", "x0"] = Field(
        "epsilon", description="What the denoiser outputs: the noise, v, or x_0."
    )
    loss: Loss = Field(
        default_factory=lambda: SimpleLoss(type="simple"), description="The denoiser's loss."
    )
    denoiser: Denoiser = Field(description="Network from (x_t, t) to the prediction.")
    sampler: Sampler = Field(
        default_factory=lambda: DDIMSampler(type="ddim"), description="The reverse process."
    )
    ema: Probability = Field(
        0.999, description="Decay of the weights' moving average used for sampling (0 = off)."
    )
    clip_denoised: bool = Field(
        True,
        description="Clip each sampling step's x_0 estimate to data.preprocessing.scale's range "
        "(only when the data is min-max scaled).",
    )
    conditional: GuidedConditional | None = None
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    metrics_available: ClassVar[tuple[str, ...]] = (
        "denoising_loss",
        *SAMPLE_METRICS,
        *LABELLED_SAMPLE_METRICS,
    )
    metrics_default: ClassVar[tuple[str, ...]] = ("denoising_loss",)
    # No likelihood to report: by default also the data set's sample-quality metrics.
    sample_metrics_by_default: ClassVar[bool] = True
    trackers: ClassVar[tuple[str, ...]] = ("loss", "grad_norm")
