"""Invertible transforms of normalizing flows, as Keras layers, and their base distributions.

Every transform maps data towards the base distribution: `forward(x) -> (y, log_det)` with
`log_det = log |det dy/dx|` per example (`[B]`), and `inverse(y) -> x` undoes it exactly.
A flow is a list of transforms: log p(x) = log p_base(z) + sum of the log-dets on the way
from x to z, and sampling runs the inverses in reverse order from z ~ p_base. A `Split`
(multi-scale flows) is the one step that is not a `Transform`: half the channels leave the
flow there, `forward(x) -> (kept, eps, log_det)` and `inverse(kept, eps) -> x`.

Shapes: vectors are `[B, D]`, images `[B, H, W, C]`. Transforms that act per channel
(actnorm, permutation, invertible_dense) act on the last axis at every pixel, so on images
`invertible_dense` is Glow's invertible 1x1 convolution.

Generated code builds the transforms (`build_transforms(transforms, shape)`) before use and
calls `forward`/`inverse` directly, so a transform runs inside the model's `tf.function` as
plain TensorFlow ops. Masks, permutations and the fixed parts of the LU factorisation are
derived from literal arguments (kind, parity, seed), so a model rebuilds identically.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf
from keras import layers, ops

from gencompile.runtime import replicas

Tensor = tf.Tensor
Shape = tuple[int | None, ...]
LOG_2PI = math.log(2.0 * math.pi)

__all__ = [
    "MAF",
    "ActNorm",
    "AffineCoupling",
    "InvertibleDense",
    "Logit",
    "MaskedDense",
    "Permutation",
    "Split",
    "Squeeze",
    "StandardLogistic",
    "StandardNormal",
    "Transform",
    "UniformDequantization",
    "bound_log_scale",
    "build_transforms",
    "coupling_mask",
    "flatten_parts",
    "initialize_actnorm",
    "made_masks",
    "make_base",
    "unflatten_parts",
]


def _sum_except_batch(values: Any) -> Tensor:
    """Sum over every axis but the first (the static rank is known in generated models)."""
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


def _per_example(value: Any, x: Any) -> Tensor:
    """A log-det that is the same for every example, as a `[B]` tensor."""
    return ops.ones((ops.shape(x)[0],), dtype="float32") * value


def _positions(shape: Shape) -> int:
    """Pixels per example (1 for vectors): a per-channel transform acts once at each."""
    return math.prod(int(d) for d in shape[1:-1]) if len(shape) > 2 else 1


def bound_log_scale(raw: Any, scale: str, clamp: float) -> Tensor:
    """A raw network output -> a log-scale in (-clamp, clamp), near the identity around 0.

    `tanh`: clamp * tanh(raw / clamp); `soft_clamp`: clamp * (2 / pi) * atan(raw / clamp)
    (slower saturation). Bounding the log-scale keeps exp(log_scale) and the inverse finite.
    `sigmoid`: Glow's scale sigmoid(raw + 2), a log-scale log sigmoid(raw + 2) in (-inf, 0)
    (`clamp` unused); the + 2 starts it near 1 (0.88) when raw starts near 0.
    """
    if scale == "tanh":
        return clamp * ops.tanh(raw / clamp)
    if scale == "soft_clamp":
        return (2.0 * clamp / math.pi) * ops.arctan(raw / clamp)
    if scale == "sigmoid":
        return ops.log_sigmoid(raw + 2.0)
    raise ValueError(f"scale must be 'tanh', 'soft_clamp' or 'sigmoid'. Received: scale={scale!r}")


class Transform(layers.Layer):
    """An invertible map with a tractable log-determinant (base of every flow layer)."""

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        """x -> (y, log |det dy/dx|) with the log-det per example, shape `[B]`."""
        raise NotImplementedError

    def inverse(self, y: Any) -> Tensor:
        """y -> x, the exact inverse of `forward`."""
        raise NotImplementedError

    def call(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        return self.forward(x, training=training)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


# ------------------------------------------------------------------------- affine coupling


def coupling_mask(kind: str, shape: Shape, parity: int) -> np.ndarray:
    """1 where the coupling passes its input through (and conditions on it), else 0.

    `alternating`: every other feature of a vector; `checkerboard`: pixels with
    (row + column) even; `channel`: the first half of the channels. An odd `parity` flips
    the mask, so consecutive couplings transform each other's pass-through part.
    """
    shape = tuple(int(d) for d in shape)
    if kind == "alternating":
        mask = np.arange(shape[-1]) % 2 == 0
        mask = np.broadcast_to(mask, shape)
    elif kind == "checkerboard":
        if len(shape) != 3:
            raise ValueError(f"a checkerboard mask needs images (H, W, C). Received: {shape}")
        rows, cols = np.indices(shape[:2])
        mask = np.broadcast_to(((rows + cols) % 2 == 0)[..., None], shape)
    elif kind == "channel":
        if len(shape) != 3:
            raise ValueError(f"a channel mask needs images (H, W, C). Received: {shape}")
        mask = np.broadcast_to(np.arange(shape[-1]) < shape[-1] // 2, shape)
    else:
        raise ValueError(f"unknown mask {kind!r}; expected alternating, checkerboard or channel")
    mask = mask.astype("float32")
    return 1.0 - mask if parity % 2 else mask


@keras.saving.register_keras_serializable(package="gencompile")
class AffineCoupling(Transform):
    """RealNVP's affine coupling: y = x * exp(s) + t on the masked-out part, x elsewhere.

    `network` maps the masked input x * mask to (shift, raw log-scale), each shaped like x;
    the log-scale is bounded (`bound_log_scale`). The pass-through part is left unchanged,
    so the Jacobian is triangular and log |det| is the sum of the log-scales it applies.
    """

    def __init__(
        self,
        network: keras.Model,
        mask: str = "alternating",
        parity: int = 0,
        scale: str = "tanh",
        clamp: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if clamp <= 0:
            raise ValueError(f"clamp must be > 0. Received: clamp={clamp!r}")
        bound_log_scale(0.0, scale, 1.0)  # rejects an unknown scale now
        self.network = network
        self.mask_kind, self.parity = mask, int(parity)
        self.scale, self.clamp = scale, float(clamp)

    def build(self, input_shape: Shape) -> None:
        # NumPy arrays, so traced steps embed them as constants (not captured tensors).
        self.mask = coupling_mask(self.mask_kind, input_shape[1:], self.parity)
        self.inverse_mask = 1.0 - self.mask
        self.built = True

    def _shift_log_scale(self, x_masked: Any, training: bool) -> tuple[Tensor, Tensor]:
        shift, raw = self.network(x_masked, training=training)
        log_scale = bound_log_scale(raw, self.scale, self.clamp) * self.inverse_mask
        return shift * self.inverse_mask, log_scale

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_log_scale(x * self.mask, training)
        # On the pass-through part shift = log_scale = 0, so y = x there.
        return x * ops.exp(log_scale) + shift, _sum_except_batch(log_scale)

    def inverse(self, y: Any) -> Tensor:
        shift, log_scale = self._shift_log_scale(y * self.mask, False)
        return (y - shift) * ops.exp(-log_scale)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "mask": self.mask_kind,
            "parity": self.parity,
            "scale": self.scale,
            "clamp": self.clamp,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AffineCoupling:
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


# ------------------------------------------------------------------------- actnorm


@keras.saving.register_keras_serializable(package="gencompile")
class ActNorm(Transform):
    """Glow's activation normalisation: y = (x + bias) * exp(log_scale), per channel.

    Starts as the identity; `initialize(x)` sets bias and log-scale so that the batch `x`
    comes out with zero mean and unit variance per channel (data-dependent initialisation).
    """

    def build(self, input_shape: Shape) -> None:
        channels = int(input_shape[-1])
        self.positions = _positions(input_shape)
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.log_scale = self.add_weight(shape=(channels,), initializer="zeros", name="log_scale")
        self.built = True

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        y = (x + self.bias) * ops.exp(self.log_scale)
        return y, _per_example(self.positions * ops.sum(self.log_scale), x)

    def inverse(self, y: Any) -> Tensor:
        return y * ops.exp(-self.log_scale) - self.bias

    def initialize(self, x: Any, epsilon: float = 1e-6) -> None:
        """Standardise the batch `x`: bias = -mean, log_scale = -log(std), per channel.

        Generated models call it before `fit`, outside the replicas' steps, on the whole
        first batch. Inside a replica's step the moments are those of the global batch
        (all-reduced sums), and every replica's copy gets the same start.
        """
        axes = tuple(range(len(x.shape) - 1))
        if replicas.replica_context() is None:
            mean = ops.mean(x, axis=axes)
            std = ops.sqrt(ops.var(x, axis=axes))
        else:
            mean, std = _global_moments(x, axes)
        replicas.assign([self.bias, self.log_scale], [-mean, -ops.log(std + epsilon)])


def _global_moments(x: Any, axes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation over `axes` of the batch all replicas hold together."""
    x = tf.cast(x, tf.float32)
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), tf.float32)
    count, total = replicas.sum_over_replicas([count, tf.reduce_sum(x, axis=axes)])
    mean = total / count
    squares = replicas.sum_over_replicas(tf.reduce_sum(tf.square(x - mean), axis=axes))
    return mean, tf.sqrt(squares / count)


def initialize_actnorm(transforms: Sequence[Transform | Split], x: Any) -> None:
    """Data-dependent initialisation: each actnorm standardises what reaches it from `x`
    (past a split, the half that stays in the flow)."""
    h = ops.convert_to_tensor(x, dtype="float32")
    for transform in transforms:
        if isinstance(transform, ActNorm):
            transform.initialize(h)
        if isinstance(transform, Split):
            h, _, _ = transform.forward(h)
        else:
            h, _ = transform.forward(h, training=False)


# ------------------------------------------------------------------------- permutation


@keras.saving.register_keras_serializable(package="gencompile")
class Permutation(Transform):
    """A fixed reordering of the features (of the channels, for images); log |det| = 0.

    `order="random"` draws the permutation from `seed` (NumPy's PCG64, stable across
    platforms); `order="reverse"` reverses the order.
    """

    def __init__(self, order: str = "random", seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if order not in ("random", "reverse"):
            raise ValueError(f"order must be 'random' or 'reverse'. Received: order={order!r}")
        self.order, self.seed = order, int(seed)

    def build(self, input_shape: Shape) -> None:
        n = int(input_shape[-1])
        if self.order == "reverse":
            permutation = np.arange(n)[::-1].copy()
        else:
            permutation = np.random.default_rng(self.seed).permutation(n)
        self.permutation = permutation.astype("int32")
        self.inverse_permutation = np.argsort(permutation).astype("int32")
        self.built = True

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        return ops.take(x, self.permutation, axis=-1), _per_example(0.0, x)

    def inverse(self, y: Any) -> Tensor:
        return ops.take(y, self.inverse_permutation, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "order": self.order, "seed": self.seed}


# ------------------------------------------------------------------------- invertible dense


@keras.saving.register_keras_serializable(package="gencompile")
class InvertibleDense(Transform):
    """y = x W with W = P L (U + diag(sign * exp(log_s))), LU-parameterised (Glow).

    P (a permutation) and the signs are fixed; L (unit lower triangular), U (strictly upper)
    and log_s are trained, so log |det W| = sum(log_s) costs nothing. W starts as a random
    rotation drawn from `seed`. On images it is an invertible 1x1 convolution: the same W
    mixes the channels of every pixel, and log |det| is H * W * sum(log_s).
    """

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape: Shape) -> None:
        c = int(input_shape[-1])
        self.positions = _positions(input_shape)
        rotation, _ = np.linalg.qr(np.random.default_rng(self.seed).standard_normal((c, c)))
        p, lower, upper = scipy.linalg.lu(rotation)
        diagonal = np.diag(upper)

        def weight(name: str, value: np.ndarray, trainable: bool = True) -> keras.Variable:
            variable = self.add_weight(
                shape=value.shape, initializer="zeros", trainable=trainable, name=name
            )
            variable.assign(value.astype("float32"))
            return variable

        self.p = weight("permutation", p, trainable=False)
        self.sign = weight("sign", np.sign(diagonal), trainable=False)
        self.lower = weight("lower", np.tril(lower, -1))
        self.upper = weight("upper", np.triu(upper, 1))
        self.log_s = weight("log_s", np.log(np.abs(diagonal)))
        self.lower_mask = np.tril(np.ones((c, c)), -1).astype("float32")
        self.upper_mask = np.triu(np.ones((c, c)), 1).astype("float32")
        self.eye = np.eye(c, dtype="float32")
        self.built = True

    def kernel(self) -> Tensor:
        """W = P L U, assembled from the trained factors."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.upper_mask + ops.diag(self.sign * ops.exp(self.log_s))
        return ops.matmul(self.p, ops.matmul(lower, upper))

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        y = ops.matmul(x, self.kernel())
        return y, _per_example(self.positions * ops.sum(self.log_s), x)

    def inverse(self, y: Any) -> Tensor:
        return ops.matmul(y, ops.inv(self.kernel()))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


# ------------------------------------------------------------------------- MADE / MAF


@keras.saving.register_keras_serializable(package="gencompile")
class MaskedDense(layers.Dense):
    """A Dense layer whose kernel is multiplied by a fixed 0/1 mask (MADE's building block)."""

    def __init__(self, units: int, mask: Any, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.mask = np.asarray(mask, dtype="float32")

    def call(self, inputs: Any) -> Tensor:
        outputs = ops.matmul(inputs, self.kernel * self.mask)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask": self.mask.tolist()}


def made_masks(dims: int, hidden: Sequence[int], reverse: bool = False) -> list[np.ndarray]:
    """MADE's connectivity masks (Germain et al. 2015), inputs first, output layer last.

    Inputs get degrees 1..D (reversed with `reverse`), hidden units the cyclic degrees
    1..D-1; a unit sees only units of lower or equal degree, and output d (one for the
    shift and one for the log-scale, in that order) only hidden units of degree < d's. So
    output d depends on the inputs before d in the ordering, never on d itself or later.
    """
    inputs = np.arange(1, dims + 1)
    if reverse:
        inputs = inputs[::-1].copy()
    degrees = [inputs]
    for units in hidden:
        degrees.append(np.arange(units) % max(1, dims - 1) + 1)
    masks = [
        (later[None, :] >= earlier[:, None]).astype("float32")
        for earlier, later in itertools.pairwise(degrees)
    ]
    outputs = np.concatenate([inputs, inputs])
    masks.append((outputs[None, :] > degrees[-1][:, None]).astype("float32"))
    return masks


@keras.saving.register_keras_serializable(package="gencompile")
class MAF(Transform):
    """Masked autoregressive flow (Papamakarios et al. 2017), one MADE per layer.

    Density direction (one pass): z_d = (x_d - mu_d(x_<d)) * exp(-alpha_d(x_<d)), with
    log |det| = -sum_d alpha_d. Sampling inverts it one dimension at a time: D passes.
    Images are flattened to D = H * W * C. The output layer starts at zero (identity map).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        reverse: bool = False,
        scale: str = "tanh",
        clamp: float = 2.0,
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        bound_log_scale(0.0, scale, 1.0)
        self.hidden = tuple(int(u) for u in hidden)
        self.activation = activation
        self.reverse, self.scale, self.clamp = bool(reverse), scale, float(clamp)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape: Shape) -> None:
        self.dims = math.prod(int(d) for d in input_shape[1:])
        masks = made_masks(self.dims, self.hidden, self.reverse)
        self.hidden_layers = [
            MaskedDense(
                units,
                mask,
                activation=self.activation,
                kernel_regularizer=self.kernel_regularizer,
                name=f"masked_dense_{i + 1}",
            )
            for i, (units, mask) in enumerate(zip(self.hidden, masks[:-1], strict=True))
        ]
        self.output_layer = MaskedDense(
            2 * self.dims,
            masks[-1],
            kernel_initializer="zeros",
            kernel_regularizer=self.kernel_regularizer,
            name="shift_and_log_scale",
        )
        width = self.dims
        for layer in [*self.hidden_layers, self.output_layer]:
            layer.build((None, width))
            width = layer.units
        self.built = True

    def _shift_log_scale(self, flat: Any) -> tuple[Tensor, Tensor]:
        h = flat
        for layer in self.hidden_layers:
            h = layer(h)
        out = self.output_layer(h)
        shift, raw = out[:, : self.dims], out[:, self.dims :]
        return shift, bound_log_scale(raw, self.scale, self.clamp)

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        flat = ops.reshape(x, (-1, self.dims))
        shift, log_scale = self._shift_log_scale(flat)
        z = (flat - shift) * ops.exp(-log_scale)
        return ops.reshape(z, ops.shape(x)), -ops.sum(log_scale, axis=-1)

    def inverse(self, y: Any) -> Tensor:
        z = ops.reshape(y, (-1, self.dims))
        x = ops.zeros_like(z)
        for _ in range(self.dims):  # after pass d, the first d dimensions (in order) are exact
            shift, log_scale = self._shift_log_scale(x)
            x = z * ops.exp(log_scale) + shift
        return ops.reshape(x, ops.shape(y))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "reverse": self.reverse,
            "scale": self.scale,
            "clamp": self.clamp,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)
            if self.kernel_regularizer is not None
            else None,
        }


# ------------------------------------------------------------------------- squeeze, logit


@keras.saving.register_keras_serializable(package="gencompile")
class Squeeze(Transform):
    """Space to depth: (H, W, C) -> (H/2, W/2, 4C), each 2x2 patch stacked into channels.

    A volume-preserving reshuffle (log |det| = 0) that lets later channel masks, channel
    permutations and 1x1 convolutions mix neighbouring pixels (RealNVP's multi-scale step).
    """

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        return tf.nn.space_to_depth(x, 2), _per_example(0.0, x)

    def inverse(self, y: Any) -> Tensor:
        return tf.nn.depth_to_space(y, 2)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        batch, h, w, c = input_shape
        return (batch, h // 2, w // 2, 4 * c)


@keras.saving.register_keras_serializable(package="gencompile")
class Logit(Transform):
    """y = logit(alpha + (1 - 2 alpha) x): data in [0, 1] to the real line (RealNVP).

    `alpha` keeps the boundary values 0 and 1 finite.
    """

    def __init__(self, alpha: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5). Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: Any, training: bool = False) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        log_p, log_q = ops.log(p), ops.log1p(-p)
        log_det = math.log(1.0 - 2.0 * self.alpha) - log_p - log_q
        return log_p - log_q, _sum_except_batch(log_det)

    def inverse(self, y: Any) -> Tensor:
        return (ops.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


# ------------------------------------------------------------------------- multi-scale split


@keras.saving.register_keras_serializable(package="gencompile")
class Split(layers.Layer):
    """Multi-scale factor-out (RealNVP, Glow): half the channels of an image leave the flow.

    `forward(x) -> (kept, eps, log_det)`: x's channels are split into the first half `kept`,
    which continues through the flow, and the second half `z`, modelled by the Gaussian
    prior N(mean(kept), exp(log_scale(kept))^2). `eps = (z - mean) * exp(-log_scale)` is z
    standardised by its prior, so eps ~ N(0, I) under the model, and `log_det =
    -sum(log_scale)`: log N(eps; 0, I) + log_det is the prior's log-density of z, exactly.
    `inverse(kept, eps)` puts z = mean + exp(log_scale) * eps back beside `kept`.

    `network` maps `kept` to (mean, log_scale) shaped like z (Glow's zero-initialised 3x3
    convolution: the prior starts as N(0, I)); without one the prior is N(0, I).
    """

    def __init__(self, network: keras.Model | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network

    def build(self, input_shape: Shape) -> None:
        channels = int(input_shape[-1])
        if len(input_shape) != 4 or channels % 2:
            raise ValueError(
                "a split factors out half the channels of images (batch, H, W, C) with C "
                f"even. Received: input_shape={tuple(input_shape)}"
            )
        self.kept = channels // 2
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], int(input_shape[-1]) // 2)

    def prior(self, kept: Any) -> tuple[Tensor, Tensor]:
        """Mean and log-scale of the factored half's Gaussian, given the half kept."""
        if self.network is None:
            zeros = ops.zeros_like(kept)
            return zeros, zeros
        mean, log_scale = self.network(kept)
        return mean, log_scale

    def forward(self, x: Any) -> tuple[Tensor, Tensor, Tensor]:
        kept, z = x[..., : self.kept], x[..., self.kept :]
        mean, log_scale = self.prior(kept)
        eps = (z - mean) * ops.exp(-log_scale)
        return kept, eps, -_sum_except_batch(log_scale)

    def inverse(self, kept: Any, eps: Any) -> Tensor:
        mean, log_scale = self.prior(kept)
        return ops.concatenate([kept, mean + ops.exp(log_scale) * eps], axis=-1)

    def get_config(self) -> dict[str, Any]:
        network = self.network
        config = None if network is None else keras.saving.serialize_keras_object(network)
        return {**super().get_config(), "network": config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Split:
        config = dict(config)
        if config.get("network") is not None:
            config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


def flatten_parts(parts: Sequence[Any]) -> Tensor:
    """Tensors `[B, ...]` side by side as one `[B, D]` code (a multi-scale flow's z)."""
    return ops.concatenate([ops.reshape(part, (ops.shape(part)[0], -1)) for part in parts], -1)


def unflatten_parts(z: Any, shapes: Sequence[Sequence[int]]) -> list[Tensor]:
    """The inverse of `flatten_parts`: a `[B, D]` code cut into parts of the given shapes."""
    parts, start = [], 0
    for shape in shapes:
        size = math.prod(int(d) for d in shape)
        parts.append(ops.reshape(z[:, start : start + size], (-1, *shape)))
        start += size
    return parts


def build_transforms(transforms: Sequence[Transform | Split], shape: Shape) -> Shape:
    """Build each transform for the shape that reaches it; returns the shape leaving the last
    one (z's, or past splits the shape of the part that stayed to the end)."""
    current: Shape = (None, *shape)
    for transform in transforms:
        transform.build(current)
        current = tuple(transform.compute_output_shape(current))
    return current[1:]


# ------------------------------------------------------------------------- base distributions


class StandardNormal:
    """p(z) = N(0, I) over every non-batch axis."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(d) for d in shape)

    def log_prob(self, z: Any) -> Tensor:
        return _sum_except_batch(-0.5 * (ops.square(z) + LOG_2PI))

    def sample(self, num_samples: int, seed: Any) -> Tensor:
        return keras.random.normal((num_samples, *self.shape), seed=seed)


class StandardLogistic:
    """p(z) = prod_d logistic(z_d; 0, 1): heavier tails than the normal (NICE's base)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(d) for d in shape)

    def log_prob(self, z: Any) -> Tensor:
        # log f(z) = -z - 2 softplus(-z), symmetric and overflow-free for either sign of z
        return _sum_except_batch(-z - 2.0 * ops.softplus(-z))

    def sample(self, num_samples: int, seed: Any) -> Tensor:
        u = keras.random.uniform((num_samples, *self.shape), 1e-6, 1.0 - 1e-6, seed=seed)
        return ops.log(u) - ops.log1p(-u)


BASES = {"normal": StandardNormal, "logistic": StandardLogistic}


def make_base(kind: str, shape: Sequence[int]) -> StandardNormal | StandardLogistic:
    if kind not in BASES:
        raise ValueError(f"unknown base {kind!r}; expected one of {sorted(BASES)}")
    return BASES[kind](shape)


# ------------------------------------------------------------------------- dequantization


class UniformDequantization:
    """Discrete data as a density: value k / (bins - 1) in [0, 1] becomes (k + u) / bins.

    With u ~ U[0, 1)^D, log P(k) >= E_u[log p((k + u) / bins)] - D log(bins): the model's
    density on the dequantized cube bounds the probability of the discrete value from below
    (Theis et al. 2016). `quantize` maps a sample back to the data's discrete values.
    """

    def __init__(self, bins: int) -> None:
        if int(bins) < 2:
            raise ValueError(f"bins must be >= 2. Received: bins={bins!r}")
        self.bins = int(bins)

    def rounded(self, x: Any) -> Tensor:
        """round(x * (bins - 1)), not yet clipped: a value that rounds outside 0..bins-1 is
        none of the levels (the flow's support, `runtime.scores`)."""
        return ops.round(x * (self.bins - 1))

    def levels(self, x: Any) -> Tensor:
        """The discrete level k in 0..bins-1 of each value (float): `rounded`, clipped."""
        return ops.clip(self.rounded(x), 0.0, self.bins - 1.0)

    def dequantize(self, x: Any, seed: Any, split: replicas.BatchSplit | None = None) -> Tensor:
        """x plus uniform noise, over the bins. Under a strategy the noise is this replica's
        rows of one draw for the whole global batch, placed by the step's `split`
        (`replicas.split`; None: by a gather of the counts)."""
        count, *rest = ops.shape(x)
        rows = count if split is None else split
        noise = replicas.draw(lambda n: keras.random.uniform((n, *rest), seed=seed), rows)
        return self.from_noise(x, noise)

    def from_noise(self, x: Any, u: Any) -> Tensor:
        """x dequantized by the uniform noise `u` (same shape, values in [0, 1)): the
        level of each value plus its noise, over the bins."""
        return (self.levels(x) + u) / self.bins

    def quantize(self, y: Any) -> Tensor:
        k = ops.clip(ops.floor(y * self.bins), 0.0, self.bins - 1.0)
        return k / (self.bins - 1)

    def log_jacobian(self, dims: int) -> float:
        """log of the volume of one bin's cube: add to log p(y) for log P(k)."""
        return -dims * math.log(self.bins)
