"""Normalizing-flow posteriors of a VAE: steps that refine a Gaussian draw z0 ~ q0(z | x).

Each step maps a latent batch `z` `[B, D]` to `(z', log_det)` with `log_det` =
log |det dz'/dz| per example (`[B]`). After K steps the posterior density is

    log q(z_K | x) = log q0(z_0 | x) - sum_k log_det_k,

which is what a generated VAE subtracts in its Monte Carlo KL and its importance weights.

- `IAFStep`: inverse autoregressive flow (Kingma et al. 2016). A MADE network reads z and
  the encoder's context h and outputs m and s; the numerically stable update is
  z' = sigma * z + (1 - sigma) * m with sigma = sigmoid(s), so log_det = sum log sigma.
  The Jacobian is triangular in the MADE ordering; consecutive steps reverse the ordering.
- `PlanarStep`: z' = z + u_hat tanh(w . z + b) (Rezende & Mohamed 2015), u_hat constrained
  so that w . u_hat >= -1, which keeps the step invertible.
- `RadialStep`: z' = z + beta h(alpha, r) (z - z0), h = 1 / (alpha + r), r = |z - z0|,
  with alpha > 0 and beta >= -alpha (invertible).

Planar and radial steps carry global learned parameters (they ignore the context); IAF
steps are amortized through h. All steps compute in float32, also under mixed precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from gencompile.runtime.flows import MaskedDense, made_masks

Tensor = tf.Tensor

__all__ = ["IAFStep", "PlanarStep", "RadialStep", "repeat_draws"]


def _f32(x: Any) -> Tensor:
    return tf.cast(x, tf.float32)


@keras.saving.register_keras_serializable(package="gencompile")
class IAFStep(layers.Layer):
    """One IAF step: z' = sigma * z + (1 - sigma) * m, [m, s] = MADE(z, h), sigma = sigmoid(s).

    `forget_bias` is added to s so sigma starts near 1 (z' ~ z): the step starts close to
    the identity, as the paper recommends. `reverse` flips the autoregressive ordering.
    """

    def __init__(
        self,
        latent_dim: int,
        context_dim: int,
        hidden: Sequence[int] = (64, 64),
        reverse: bool = False,
        activation: str = "elu",
        forget_bias: float = 2.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(latent_dim) < 1 or int(context_dim) < 1 or not hidden:
            raise ValueError(
                "IAFStep needs latent_dim >= 1, context_dim >= 1 and at least one hidden "
                f"layer. Received: latent_dim={latent_dim!r}, context_dim={context_dim!r}, "
                f"hidden={hidden!r}"
            )
        self.latent_dim, self.context_dim = int(latent_dim), int(context_dim)
        self.hidden = tuple(int(u) for u in hidden)
        self.reverse, self.activation = bool(reverse), activation
        self.forget_bias = float(forget_bias)
        masks = made_masks(self.latent_dim, self.hidden, self.reverse)
        # The first masked layer stays linear: the context's projection is added before
        # the activation (h enters every hidden unit of the first layer).
        self.masked = [
            MaskedDense(units, mask, dtype="float32", name=f"masked_dense_{i + 1}")
            for i, (units, mask) in enumerate(zip(self.hidden, masks[:-1], strict=True))
        ]
        self.context_projection = layers.Dense(
            self.hidden[0], use_bias=False, dtype="float32", name="context_projection"
        )
        self.output_layer = MaskedDense(
            2 * self.latent_dim,
            masks[-1],
            kernel_initializer="zeros",
            dtype="float32",
            name="m_and_s",
        )
        self.act = keras.activations.get(activation)
        width = self.latent_dim
        for layer in [*self.masked, self.output_layer]:
            layer.build((None, width))
            width = layer.units
        self.context_projection.build((None, self.context_dim))
        self.built = True

    def call(self, z: Any, context: Any) -> tuple[Tensor, Tensor]:
        z = _f32(z)
        h = self.act(self.masked[0](z) + self.context_projection(_f32(context)))
        for layer in self.masked[1:]:
            h = self.act(layer(h))
        out = self.output_layer(h)
        m, s = out[:, : self.latent_dim], out[:, self.latent_dim :] + self.forget_bias
        sigma = tf.sigmoid(s)
        z_new = sigma * z + (1.0 - sigma) * m
        return z_new, tf.reduce_sum(tf.math.log_sigmoid(s), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "context_dim": self.context_dim,
            "hidden": list(self.hidden),
            "reverse": self.reverse,
            "activation": self.activation,
            "forget_bias": self.forget_bias,
        }


@keras.saving.register_keras_serializable(package="gencompile")
class PlanarStep(layers.Layer):
    """One planar step z' = z + u_hat tanh(w . z + b), log_det = log |1 + u_hat . psi(z)|.

    u_hat = u + (m(w . u) - w . u) w / |w|^2 with m(a) = -1 + softplus(a): then
    w . u_hat = m(w . u) > -1, the condition for invertibility (Rezende & Mohamed, app. A).
    """

    def __init__(self, latent_dim: int, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.latent_dim, self.seed = int(latent_dim), int(seed)
        scale = self.latent_dim**-0.5  # |w| ~ 1 at the start, so u_hat stays small
        self.u = self.add_weight(
            shape=(self.latent_dim,),
            initializer=keras.initializers.RandomNormal(stddev=0.01, seed=self.seed),
            name="u",
        )
        self.w = self.add_weight(
            shape=(self.latent_dim,),
            initializer=keras.initializers.RandomNormal(stddev=scale, seed=self.seed + 1),
            name="w",
        )
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")
        self.built = True

    def u_hat(self) -> Tensor:
        wu = tf.reduce_sum(self.w * self.u)
        m = -1.0 + tf.nn.softplus(wu)
        return self.u + (m - wu) * self.w / (tf.reduce_sum(tf.square(self.w)) + 1e-12)

    def call(self, z: Any, context: Any = None) -> tuple[Tensor, Tensor]:
        z = _f32(z)
        u_hat = self.u_hat()
        t = tf.tanh(tf.linalg.matvec(z, self.w) + self.b)  # [B]
        z_new = z + t[:, None] * u_hat
        psi_u = (1.0 - tf.square(t)) * tf.reduce_sum(self.w * u_hat)  # psi(z) . u_hat
        return z_new, tf.math.log(tf.abs(1.0 + psi_u) + 1e-12)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "seed": self.seed}


@keras.saving.register_keras_serializable(package="gencompile")
class RadialStep(layers.Layer):
    """One radial step z' = z + beta h (z - z0), h = 1 / (alpha + r), r = |z - z0|.

    alpha = softplus(raw) > 0 and beta = -alpha + softplus(raw') >= -alpha (invertible);
    log_det = (D - 1) log(1 + beta h) + log(1 + beta h - beta h^2 r).
    """

    def __init__(self, latent_dim: int, seed: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.latent_dim, self.seed = int(latent_dim), int(seed)
        self.z0 = self.add_weight(
            shape=(self.latent_dim,),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
            name="z0",
        )
        self.alpha_raw = self.add_weight(shape=(), initializer="zeros", name="alpha_raw")
        self.beta_raw = self.add_weight(shape=(), initializer="zeros", name="beta_raw")
        self.built = True

    def call(self, z: Any, context: Any = None) -> tuple[Tensor, Tensor]:
        z = _f32(z)
        alpha = tf.nn.softplus(self.alpha_raw)
        beta = -alpha + tf.nn.softplus(self.beta_raw)
        diff = z - self.z0
        r = tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1) + 1e-12)  # [B]
        h = 1.0 / (alpha + r)
        z_new = z + (beta * h)[:, None] * diff
        log_det = (self.latent_dim - 1) * tf.math.log1p(beta * h) + tf.math.log1p(
            beta * h - beta * tf.square(h) * r
        )
        return z_new, log_det

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "seed": self.seed}


def repeat_draws(t: Any, draws: int) -> Tensor:
    """Stack `draws` copies of a batch, draw-major: `[B, ...]` -> `[draws * B, ...]`, row
    d * B + i being copy d of example i (how generated VAEs lay out importance samples)."""
    t = tf.convert_to_tensor(t)
    multiples = tf.concat([[draws], tf.ones([tf.rank(t) - 1], tf.int32)], axis=0)
    return tf.tile(t, multiples)
