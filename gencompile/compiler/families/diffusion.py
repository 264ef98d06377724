"""Lowering of the `diffusion` family: the denoiser network and the diffusion's settings.

The denoiser maps (x_t, t) -- and a class y for conditional models -- to the output of its
parameterisation (epsilon, v or x_0), shaped like the data. Two builders:

- `mlp`: sinusoidal features of t (plus a class embedding) concatenated with x_t, then
  dense layers (images are flattened in and reshaped out);
- `unet`: a stem convolution, per level `blocks` residual blocks (group norm, the time
  embedding added per channel, optional self-attention) with a skip connection each, a
  strided convolution down between levels, a middle block, the mirror path up (nearest
  upsampling + convolution, skips concatenated), and a zero-initialised output convolution.

Every check that relates fields to each other or to the data is made here, located at the
field at fault with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gencompile import noise_schedules
from gencompile.compiler.data_classes import check_data_classes
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import Capabilities, Family
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.networks import NetworkBuilder, freeze_preset
from gencompile.compiler.plan import LayerPlan, NetworkPlan, ProjectPlan, Shape
from gencompile.compiler.shapes import known, size
from gencompile.spec.base import Activation
from gencompile.spec.families.diffusion import (
    DDPMSampler,
    DiffusionModel,
    DPMSolverSampler,
    MLPDenoiser,
    UNetDenoiser,
)
from gencompile.spec.networks import (
    ActivationLayer,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    GroupNorm,
    Reshape,
    UpSampling2D,
)

TARGET_WORDS = {
    "epsilon": "the noise eps",
    "v": "v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0",
    "x0": "the clean example x_0",
}


SAMPLER_NAMES = {
    "ddpm": "DDPM",
    "ddim": "DDIM",
    "dpm_solver": "DPM-Solver++",
    "euler": "Euler",
    "heun": "Heun",
}
SPACING_WORDS = {
    "log_snr": "evenly spaced in log-SNR",
    "karras": "at Karras' sigmas (rho 7)",
    "time_uniform": "evenly spaced",
}


@dataclass(frozen=True)
class DiffusionPlan:
    data_shape: Shape
    data_axes: tuple[int, ...]  # the axes of one example in a batch (averaged in the loss)
    num_classes: int | None
    timesteps: int
    schedule: dict[str, Any]
    prediction: str  # epsilon | v | x0
    loss: dict[str, Any]  # {"type": "simple"} | {"type": "min_snr", "gamma": ...}
    sampler: dict[str, Any]  # resolved model.sampler
    sampling_steps: int  # denoiser evaluations per sample
    ema: float
    clip_range: tuple[float, float] | None
    guidance_scale: float | None
    label_dropout: float | None
    denoiser_type: str  # mlp | unet
    denoiser: NetworkPlan
    process_words: str
    sampling_words: str


# --------------------------------------------------------------------------- checks


# Where a schedule whose start (alpha_bar_0) or end (alpha_bar_{T-1}) float32 cannot hold
# is reported, by its type, and what to change.
SCHEDULE_FIXES = {
    ("linear", "start"): ("beta_start", "raise beta_start to at least 3e-08 (usually 1.0e-4)"),
    ("linear", "end"): (
        "beta_end",
        "use fewer timesteps or a smaller beta_end: alpha_bar_{T-1} = prod(1 - beta_t) must "
        "stay above 1.2e-38",
    ),
    ("cosine", "start"): ("offset", "raise offset (usually 0.008) or use fewer timesteps"),
    ("cosine", "end"): ("max_beta", "lower max_beta (usually 0.999) or use fewer timesteps"),
    ("sigmoid", "start"): ("start", "raise start (usually -3) or use fewer timesteps"),
    ("sigmoid", "end"): ("end", "lower end or raise tau (usually end: 3, tau: 1)"),
}


def _check(low: Lowering, data_shape: Shape, kind: str) -> None:
    """Cross-field and data checks; each problem is reported where the spec wrote it."""
    model = low.family_model(DiffusionModel)
    denoiser = model.denoiser
    alpha_bars = _check_schedule(low, model)
    if alpha_bars is not None:
        _check_steps(low, model, alpha_bars)
    conditional = model.conditional
    if conditional and conditional.label_dropout == 0 and conditional.guidance_scale != 1:
        scale = conditional.guidance_scale
        low.report(
            ("model", "conditional", "guidance_scale"),
            f"guidance_scale {scale:g} samples with unconditional + {scale:g} x (conditional - "
            "unconditional), but with label_dropout: 0 the unconditional denoiser (the null "
            "class) is never trained",
            "use guidance_scale: 1 (conditional samples, no guidance), or label_dropout > 0 "
            "(e.g. 0.1) to train the null class",
        )
    if denoiser.time_embedding % 2:
        low.report(
            ("model", "denoiser", "time_embedding"),
            f"sinusoidal features come in sin/cos pairs, so time_embedding must be even "
            f"(got {denoiser.time_embedding})",
            f"use {denoiser.time_embedding + 1}",
        )
    if isinstance(denoiser, UNetDenoiser):
        _check_unet(low, denoiser, data_shape, kind)


def _check_schedule(low: Lowering, model: DiffusionModel) -> list[float] | None:
    """The schedule's fields relate as they must, and float32, the precision the model
    samples in, holds both ends of its alpha_bar (`noise_schedules.float32_trouble`; the
    Min-SNR weights are finite with them). Its alpha_bars, or None when it is refused."""
    schedule = model.schedule
    if schedule.type == "linear" and not schedule.beta_start < schedule.beta_end:
        low.report(
            ("model", "schedule", "beta_end"),
            f"beta_end ({schedule.beta_end:g}) must be larger than beta_start "
            f"({schedule.beta_start:g}): the noise grows with t",
            "the usual values are beta_start: 1.0e-4, beta_end: 0.02",
        )
        return None
    if schedule.type == "sigmoid" and not schedule.start < schedule.end:
        low.report(
            ("model", "schedule", "end"),
            f"end ({schedule.end:g}) must be larger than start ({schedule.start:g}): "
            "alpha_bar falls from start to end",
            "the usual values are start: -3, end: 3 (Chen 2023 also uses start: 0)",
        )
        return None
    config = schedule.model_dump(mode="json")
    betas = noise_schedules.betas_of(config, model.timesteps)
    alpha_bars = noise_schedules.alpha_bars_of(betas)
    wrong = next((t for t, beta in enumerate(betas) if not 0.0 < beta < 1.0), None)
    if wrong is not None:  # alpha_bar stops falling near 1 or 0 (beta 0), or is 0 (NaN)
        end = "start" if alpha_bars[wrong] >= 0.5 else "end"
        field, hint = SCHEDULE_FIXES[(schedule.type, end)]
        low.report(
            ("model", "schedule", field),
            f"this {schedule.type} schedule's beta_{wrong} is {betas[wrong]:g} in float64: "
            "every beta must lie in (0, 1)",
            hint,
        )
        return None
    trouble = noise_schedules.float32_trouble(alpha_bars)
    if trouble is not None:
        field, hint = SCHEDULE_FIXES[(schedule.type, trouble[0])]
        low.report(("model", "schedule", field), trouble[1], hint)
        return None
    return alpha_bars


def _check_steps(low: Lowering, model: DiffusionModel, alpha_bars: list[float]) -> None:
    """DDIM's and the solvers' steps fit between the noisiest usable timestep and 0
    (`noise_schedules.max_sampling_steps`, the rule the runtime and `gencompile sample`
    apply); DDPM visits every timestep, from T - 1, on any schedule."""
    sampler = model.sampler
    if isinstance(sampler, DDPMSampler):
        return
    most = noise_schedules.max_sampling_steps(alpha_bars)
    if sampler.steps <= most:
        return
    name = SAMPLER_NAMES[sampler.type]
    if isinstance(sampler, DPMSolverSampler):
        name += f" {sampler.order}M"
    if most == model.timesteps:
        low.report(
            ("model", "sampler", "steps"),
            f"{name} cannot take {sampler.steps} steps through {model.timesteps} timesteps",
            f"use at most {model.timesteps} steps (or raise model.timesteps)",
        )
        return
    low.report(
        ("model", "sampler", "steps"),
        f"{name} cannot take {sampler.steps} steps on this {model.schedule.type} schedule of "
        f"{model.timesteps} timesteps: {noise_schedules.steps_limit_reason(most, model.timesteps)}",
        f"use at most {most} steps ({{type: ddpm}} visits all {model.timesteps} timesteps)",
    )


def _check_unet(low: Lowering, denoiser: UNetDenoiser, data_shape: Shape, kind: str) -> None:
    path = ("model", "denoiser")
    if kind != "image":
        low.report(
            (*path, "type"),
            f"a U-Net denoises images, but the data is {kind} data of shape {data_shape}",
            "use denoiser: {type: mlp} for vector data",
        )
        return
    widths = denoiser.widths
    if denoiser.attention is not None and len(denoiser.attention) != len(widths):
        low.report(
            (*path, "attention"),
            f"attention needs one entry per level: {len(widths)} widths but "
            f"{len(denoiser.attention)} attention flags",
            f"give {len(widths)} true/false values, one per width",
        )
    for i, width in enumerate(widths):
        if width % denoiser.groups:
            low.report(
                (*path, "widths", i),
                f"group norm splits channels into {denoiser.groups} groups, "
                f"but width {width} is not divisible by {denoiser.groups}",
                f"use a multiple of {denoiser.groups} or set denoiser.groups",
            )
    factor = 2 ** (len(widths) - 1)
    sizes = known(data_shape, "a U-Net")
    height, width = sizes[0], sizes[1]
    if height % factor or width % factor:
        low.report(
            (*path, "widths"),
            f"{len(widths)} levels halve the resolution {len(widths) - 1} times, so the "
            f"images' height and width must be divisible by {factor}, but they are "
            f"{height} x {width}",
            f"use at most {_max_levels(height, width)} widths",
        )


def _max_levels(height: int, width: int) -> int:
    levels = 1
    while height % 2 == 0 and width % 2 == 0:
        height, width, levels = height // 2, width // 2, levels + 1
    return levels


# --------------------------------------------------------------------------- networks


def _inputs(net: NetworkBuilder, data_shape: Shape, num_classes: int | None) -> tuple[str, ...]:
    x = net.input("x", data_shape)
    t = net.input("t", (), "int32")
    if num_classes is None:
        return x, t
    return x, t, net.input("y", (), "int32")


def _class_embedding(net: NetworkBuilder, var: str, y: str, num_classes: int, dim: int) -> str:
    """Add a learned embedding of the class (index num_classes: no class) to `var`."""
    layer = Embedding(
        type="embedding", input_dim=num_classes + 1, output_dim=dim, name="class_embedding"
    )
    embedding = net.synth(layer, (), kind="embedding")
    class_embedding = net.add("class_embedding", embedding, (y,))
    add = net.layer("add", "layers.Add", (), (dim,), 0, name="with_class")
    return net.add(var, add, (var, class_embedding), packed=True)


def _sinusoidal(net: NetworkBuilder, t: str, dim: int) -> str:
    layer = net.layer(
        "time_features",
        "diffusion_layers.SinusoidalEmbedding",
        (("dim", dim),),
        (dim,),
        0,
        name="time_features",
        positional=1,
    )
    return net.add("time_features", layer, (t,))


def _dense(
    net: NetworkBuilder, units: int, fan_in: int, activation: Activation | None, name: str
) -> LayerPlan:
    layer = Dense(type="dense", units=units, activation=activation, name=name)
    return net.synth(layer, (fan_in,), kind="dense")


def _mlp(
    low: Lowering, denoiser: MLPDenoiser, data_shape: Shape, num_classes: int | None
) -> NetworkPlan:
    net = NetworkBuilder(
        "denoiser", low.regularizer(), low.report, mixed_precision=low.spec.training.mixed_precision
    )
    freeze_preset(net, denoiser, ("model", "denoiser"), low)
    inputs = _inputs(net, data_shape, num_classes)
    features = _sinusoidal(net, inputs[1], denoiser.time_embedding)
    if num_classes is not None:
        features = _class_embedding(net, features, inputs[2], num_classes, denoiser.time_embedding)
    h, width = inputs[0], size(data_shape)
    if len(data_shape) > 1:
        flatten = net.synth(Flatten(type="flatten", name="flatten"), data_shape, kind="flatten")
        h = net.add("h", flatten, (h,))
    width += denoiser.time_embedding
    concat = net.layer("concat", "layers.Concatenate", (), (width,), 0, name="with_time")
    h = net.add("h", concat, (h, features), packed=True)
    for i, units in enumerate(denoiser.hidden):
        h = net.add("h", _dense(net, units, width, denoiser.activation, f"dense_{i + 1}"), (h,))
        width = units
    out = size(data_shape)
    if len(data_shape) == 1:
        net.add("prediction", _dense(net, out, width, None, "prediction"), (h,))
    else:
        h = net.add("h", _dense(net, out, width, None, "prediction"), (h,))
        reshape = Reshape(
            type="reshape", target_shape=list(known(data_shape, "reshape")), name="to_data_shape"
        )
        net.add("prediction", net.synth(reshape, (out,), kind="reshape"), (h,))
    return net.build(_doc(low, "an MLP on [x_t, sinusoidal features of t]"), ("prediction",))


def _residual_params(channels: int, width: int, embedding: int) -> int:
    """GroupNorm, conv 3x3, time projection, GroupNorm, conv 3x3, and the 1x1 skip conv."""
    params = 2 * channels + 9 * channels * width + width
    params += embedding * width + width
    params += 2 * width + 9 * width * width + width
    if channels != width:
        params += channels * width + width
    return params


class _UNet:
    """Accumulates the U-Net's steps, tracking the current variable and its shape."""

    def __init__(
        self, net: NetworkBuilder, denoiser: UNetDenoiser, embedding: str, embedding_dim: int
    ):
        self.net, self.denoiser = net, denoiser
        self.embedding, self.embedding_dim = embedding, embedding_dim
        self.h = "h"
        self.shape: Shape = (0, 0, 0)
        self.skips: list[tuple[str, Shape]] = []

    @property
    def channels(self) -> int:
        return known(self.shape, "a U-Net block")[2]

    def add(self, layer: Any, kind: str, extra: tuple[tuple[str, Any], ...] = ()) -> None:
        """One spec-like layer of one input, through the layer records."""
        plan = self.net.synth(layer, self.shape, kind=kind, extra=extra)
        self.h, self.shape = self.net.add("h", plan, (self.h,)), plan.output_shape

    def conv(
        self, filters: int, name: str, strides: int = 1, extra: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        conv = Conv2D(type="conv2d", filters=filters, kernel_size=3, strides=strides, name=name)
        self.add(conv, "conv2d", extra)

    def residual(self, width: int, name: str) -> None:
        args: tuple[tuple[str, Any], ...] = (("width", width), ("groups", self.denoiser.groups))
        if self.denoiser.dropout:
            args += (("dropout", self.denoiser.dropout),)
        shape = (*self.shape[:2], width)
        params = _residual_params(self.channels, width, self.embedding_dim)
        layer = self.net.layer(
            "residual_block",
            "diffusion_layers.ResidualBlock",
            args,
            shape,
            params,
            name,
            positional=1,
            regularize=True,
        )
        self.h = self.net.add("h", layer, (self.h, self.embedding), packed=True)
        self.shape = shape

    def attention(self, name: str) -> None:
        channels = self.channels
        params = 2 * channels + 4 * channels * channels + 4 * channels
        layer = self.net.layer(
            "attention_block",
            "diffusion_layers.AttentionBlock",
            (("groups", self.denoiser.groups),),
            self.shape,
            params,
            name,
            regularize=True,
        )
        self.h = self.net.add("h", layer, (self.h,))

    def push_skip(self) -> None:
        var = f"skip_{len(self.skips) + 1}"
        self.skips.append((self.net.add(var, None, (self.h,)), self.shape))

    def concat_skip(self, name: str) -> None:
        skip, skip_shape = self.skips.pop()
        shape = (*self.shape[:2], self.channels + known(skip_shape, "concat")[2])
        layer = self.net.layer("concat", "layers.Concatenate", (), shape, 0, name)
        self.h = self.net.add("h", layer, (self.h, skip), packed=True)
        self.shape = shape


def _unet(
    low: Lowering, denoiser: UNetDenoiser, data_shape: Shape, num_classes: int | None
) -> NetworkPlan:
    widths = list(denoiser.widths)
    attention = list(denoiser.attention or [False] * len(widths))
    net = NetworkBuilder(
        "denoiser", low.regularizer(), low.report, mixed_precision=low.spec.training.mixed_precision
    )
    freeze_preset(net, denoiser, ("model", "denoiser"), low)
    inputs = _inputs(net, data_shape, num_classes)
    embedding, dim = _time_embedding(net, denoiser, inputs, num_classes, 4 * widths[0])
    unet = _UNet(net, denoiser, embedding, dim)
    unet.h, unet.shape = inputs[0], data_shape
    unet.conv(widths[0], "stem")
    _down(unet, widths, attention)
    unet.residual(widths[-1], "middle_block_1")
    if attention[-1]:
        unet.attention("middle_attention")
    unet.residual(widths[-1], "middle_block_2")
    _up(unet, widths, attention)
    unet.add(GroupNorm(type="group_norm", groups=denoiser.groups, name="out_norm"), "group_norm")
    unet.add(ActivationLayer(type="activation", activation="silu", name="out_silu"), "activation")
    unet.conv(known(data_shape, "conv2d")[-1], "out_conv", extra=(("kernel_initializer", "zeros"),))
    net.steps[-1] = replace(net.steps[-1], target="prediction")
    levels = ", ".join(
        f"{w}{' (attention)' if a else ''}" for w, a in zip(widths, attention, strict=True)
    )
    blocks = f"{denoiser.blocks} block{'s' if denoiser.blocks > 1 else ''}"
    doc = _doc(low, f"a U-Net, widths {levels}, {blocks} per level")
    if len(doc) > DOC_LENGTH:  # the widths are in the code below it
        doc = _doc(low, f"a U-Net of {len(widths)} levels, {blocks} per level")
    return net.build(doc, ("prediction",))


def _time_embedding(
    net: NetworkBuilder,
    denoiser: UNetDenoiser,
    inputs: tuple[str, ...],
    num_classes: int | None,
    dim: int,
) -> tuple[str, int]:
    """Sinusoidal features of t through two dense layers (+ the class embedding)."""
    features = _sinusoidal(net, inputs[1], denoiser.time_embedding)
    first = _dense(net, dim, denoiser.time_embedding, "silu", "time_dense_1")
    embedding = net.add("embedding", first, (features,))
    embedding = net.add("embedding", _dense(net, dim, dim, None, "time_dense_2"), (embedding,))
    if num_classes is not None:
        embedding = _class_embedding(net, embedding, inputs[2], num_classes, dim)
    return embedding, dim


def _down(unet: _UNet, widths: list[int], attention: list[bool]) -> None:
    """Residual blocks per level, each leaving a skip, then a strided convolution."""
    last = len(widths) - 1
    for i, width in enumerate(widths):
        for b in range(unet.denoiser.blocks):
            unet.residual(width, f"down_{i + 1}_block_{b + 1}")
            if attention[i]:
                unet.attention(f"down_{i + 1}_attention_{b + 1}")
            unet.push_skip()
        if i < last:
            unet.conv(width, f"downsample_{i + 1}", strides=2)


def _up(unet: _UNet, widths: list[int], attention: list[bool]) -> None:
    """The mirror image of `_down`, consuming the skips; upsampling by 2 between levels."""
    for i in reversed(range(len(widths))):
        for b in range(unet.denoiser.blocks):
            unet.concat_skip(f"up_{i + 1}_skip_{b + 1}")
            unet.residual(widths[i], f"up_{i + 1}_block_{b + 1}")
            if attention[i]:
                unet.attention(f"up_{i + 1}_attention_{b + 1}")
        if i > 0:
            channels = unet.channels
            upsample = UpSampling2D(type="upsampling2d", size=2, name=f"upsample_{i + 1}")
            unet.add(upsample, "upsampling2d")
            unet.conv(channels, f"upsample_{i + 1}_conv")


SHORT_TARGETS = {"epsilon": "the noise eps", "v": "v", "x0": "x_0"}
# The longest builder docstring on one line of 100 columns: 4 of indent and two """.
DOC_LENGTH = 100 - 4 - 6


def _doc(low: Lowering, what: str) -> str:
    model = low.family_model(DiffusionModel)
    given = "x_t, t, y" if model.conditional else "x_t, t"
    return f"Predicts {SHORT_TARGETS[model.prediction]} from ({given}): {what}."


# --------------------------------------------------------------------------- words


def _schedule_words(schedule: Any, timesteps: int) -> str:
    if schedule.type == "linear":
        return (
            f"{timesteps} steps of a linear beta schedule "
            f"({schedule.beta_start:g} to {schedule.beta_end:g})"
        )
    if schedule.type == "sigmoid":
        return (
            f"{timesteps} steps of a sigmoid schedule (from {schedule.start:g} to "
            f"{schedule.end:g}, tau {schedule.tau:g})"
        )
    return f"{timesteps} steps of a cosine schedule (offset {schedule.offset:g})"


def _sampling_words(model: Any, clip_range: tuple[float, float] | None) -> str:
    sampler = model.sampler
    if sampler.type == "ddpm":
        words = f"DDPM ancestral sampling through all {model.timesteps} timesteps"
    elif sampler.type == "ddim":
        kind = "deterministic" if sampler.eta == 0 else f"eta {sampler.eta:g}"
        words = f"DDIM with {sampler.steps} of the {model.timesteps} timesteps ({kind})"
    elif sampler.type == "dpm_solver":
        order = "second-order" if sampler.order == 2 else "Lu et al.'s order-3"
        words = (
            f"DPM-Solver++ {sampler.order}M ({order} multistep solver of the "
            f"probability-flow ODE) with {sampler.steps} of the {model.timesteps} timesteps, "
            f"{SPACING_WORDS[sampler.spacing]} (deterministic)"
        )
    else:
        order = "first" if sampler.type == "euler" else "second"
        calls = sampler.steps if sampler.type == "euler" else 2 * sampler.steps - 1
        words = (
            f"{SAMPLER_NAMES[sampler.type]}'s method ({order} order) on the probability-flow "
            f"ODE in sigma space, {sampler.steps} noise levels spaced with rho "
            f"{sampler.rho:g} ({calls} denoiser calls, deterministic)"
        )
    words += ", from the " + ("EMA weights" if model.ema else "trained weights")
    if clip_range is not None:
        words += f", clipping each x_0 estimate to [{clip_range[0]:g}, {clip_range[1]:g}]"
    if model.conditional:
        words += (
            f"; classifier-free guidance with scale {model.conditional.guidance_scale:g} "
            "(0: unconditional, 1: conditional)"
        )
    return words


def _loss_words(low: Lowering) -> str:
    model = low.family_model(DiffusionModel)
    given = "x_t, t, y" if model.conditional else "x_t, t"
    words = (
        f"squared error between the denoiser's output at ({given}) and "
        f"{TARGET_WORDS[model.prediction]}, averaged over the data's dimensions"
    )
    if model.loss.type == "min_snr":
        words += (
            f" and weighted per example by Min-SNR-{model.loss.gamma:g} "
            "(the x_0 error weighted by min(SNR_t, gamma))"
        )
    words += (
        ", where x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps with eps ~ N(0, I) "
        f"and t uniform over {_schedule_words(model.schedule, model.timesteps)}; "
        "averaged over the batch"
    )
    if model.conditional:
        words += (
            f"; {model.conditional.label_dropout:g} of the labels are replaced by a null "
            "class, so one network is conditional and unconditional"
        )
    return words + low.kernel_penalty_words(joiner="; plus ")


# --------------------------------------------------------------------------- lowering


def check_diffusion(low: Lowering, data: DataShape) -> None:
    """Cross-field and data checks (see `_check`)."""
    _check(low, data.shape, data.kind)
    check_data_classes(low)


def _num_classes(model: DiffusionModel) -> int | None:
    return model.conditional.num_classes if model.conditional else None


def diffusion_networks(low: Lowering, data: DataShape, facts: None) -> NetworkPlan:
    """The denoiser, an MLP or a U-Net, with its prediction head."""
    model = low.family_model(DiffusionModel)
    num_classes = _num_classes(model)
    if isinstance(model.denoiser, UNetDenoiser):
        return _unet(low, model.denoiser, data.shape, num_classes)
    return _mlp(low, model.denoiser, data.shape, num_classes)


def plan_diffusion(
    low: Lowering, data: DataShape, facts: None, denoiser: NetworkPlan
) -> ProjectPlan[DiffusionPlan]:
    """The diffusion's plan (schedule, sampler, clipping, guidance) and its loss in words."""
    spec, model = low.spec, low.family_model(DiffusionModel)
    num_classes = _num_classes(model)
    preprocessing = spec.data.preprocessing
    clip_range = (
        (float(preprocessing.scale[0]), float(preprocessing.scale[1]))
        if model.clip_denoised and preprocessing.scale is not None
        else None
    )
    sampler = model.sampler.model_dump(mode="json")
    steps = model.timesteps if sampler["type"] == "ddpm" else sampler["steps"]
    if sampler["type"] == "heun":
        steps = 2 * steps - 1  # a second call at the end of every step but the last
    plan = DiffusionPlan(
        data_shape=data.shape,
        data_axes=tuple(range(1, len(data.shape) + 1)),
        num_classes=num_classes,
        timesteps=model.timesteps,
        schedule=model.schedule.model_dump(mode="json"),
        prediction=model.prediction,
        loss=model.loss.model_dump(mode="json"),
        sampler=sampler,
        sampling_steps=steps,
        ema=model.ema,
        clip_range=clip_range,
        guidance_scale=model.conditional.guidance_scale if model.conditional else None,
        label_dropout=model.conditional.label_dropout if model.conditional else None,
        denoiser_type=model.denoiser.type,
        denoiser=denoiser,
        process_words=_schedule_words(model.schedule, model.timesteps),
        sampling_words=_sampling_words(model, clip_range),
    )
    return low.project_plan(
        data,
        plan,
        (denoiser,),
        _loss_words(low),
        num_classes=num_classes,
        extra={
            "sampling": plan.sampling_words,
            **({"ema_copy": "denoiser"} if model.ema > 0 else {}),
        },
    )


FAMILY = Family(
    "diffusion",
    DiffusionModel,
    check_diffusion,
    diffusion_networks,
    plan_diffusion,
    Capabilities(),  # its SavedModel samples with the compiled sampler (runtime/export.py)
)
