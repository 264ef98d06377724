"""Layers of generated diffusion denoisers: the time embedding and the U-Net's blocks.

Generated builders call these between plain Keras layers (convolutions, pooling,
concatenation), in the style of keras.io's `examples/generative/ddim.py`; each rebuilds
from its `get_config()`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops, regularizers


@keras.saving.register_keras_serializable(package="gencompile")
class SinusoidalEmbedding(layers.Layer):
    """Features of a timestep t: [sin(t w_k), cos(t w_k)] for k < dim / 2, with the
    frequencies w_k = max_period^(-k / (dim / 2)) of the Transformer (Vaswani et al. 2017).

    (batch,) integer or float timesteps -> (batch, dim). No weights.
    """

    def __init__(self, dim: int, max_period: float = 10000.0, **kwargs: Any):
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even number >= 2. Received: dim={dim}")
        self.dim, self.max_period = int(dim), float(max_period)
        half = self.dim // 2
        self.frequencies = np.exp(-math.log(self.max_period) * np.arange(half) / half).astype(
            np.float32
        )

    def call(self, t: Any) -> Any:
        angles = ops.cast(t, "float32")[:, None] * self.frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


@keras.saving.register_keras_serializable(package="gencompile")
class ResidualBlock(layers.Layer):
    """The U-Net's residual block, conditioned on the time embedding (Ho et al. 2020):

        h = Conv3x3(SiLU(GroupNorm(x)))
        h = h + Dense(SiLU(embedding))            (one shift per channel)
        h = Conv3x3(Dropout(SiLU(GroupNorm(h))))
        out = skip(x) + h                          (skip: 1x1 conv when channels change)

    Called on [x, embedding]: (batch, h, w, c) and (batch, e) -> (batch, h, w, width).
    """

    def __init__(
        self,
        width: int,
        groups: int = 8,
        dropout: float = 0.0,
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.width, self.groups, self.dropout = int(width), int(groups), float(dropout)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        conv = {"padding": "same", "kernel_regularizer": self.kernel_regularizer}
        self.norm_1 = layers.GroupNormalization(self.groups, name="norm_1")
        self.conv_1 = layers.Conv2D(self.width, 3, name="conv_1", **conv)
        self.time_projection = layers.Dense(
            self.width, kernel_regularizer=self.kernel_regularizer, name="time_projection"
        )
        self.norm_2 = layers.GroupNormalization(self.groups, name="norm_2")
        self.dropout_layer = layers.Dropout(self.dropout)
        self.conv_2 = layers.Conv2D(self.width, 3, name="conv_2", **conv)
        self.skip: layers.Layer | None = None

    def build(self, input_shape: Any) -> None:
        x_shape, embedding_shape = input_shape
        self.norm_1.build(x_shape)
        self.conv_1.build(x_shape)
        self.time_projection.build(embedding_shape)
        h_shape = (*x_shape[:-1], self.width)
        self.norm_2.build(h_shape)
        self.conv_2.build(h_shape)
        if x_shape[-1] != self.width:
            self.skip = layers.Conv2D(
                self.width, 1, kernel_regularizer=self.kernel_regularizer, name="skip"
            )
            self.skip.build(x_shape)
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        x, embedding = inputs
        h = self.conv_1(ops.silu(self.norm_1(x)))
        h = h + self.time_projection(ops.silu(embedding))[:, None, None, :]
        h = self.dropout_layer(ops.silu(self.norm_2(h)), training=training)
        h = self.conv_2(h)
        return (x if self.skip is None else self.skip(x)) + h

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (*input_shape[0][:-1], self.width)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "width": self.width,
            "groups": self.groups,
            "dropout": self.dropout,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }


@keras.saving.register_keras_serializable(package="gencompile")
class AttentionBlock(layers.Layer):
    """Self-attention over an image's positions: x + Attention(GroupNorm(x)), one head whose
    keys have as many features as x has channels. (batch, h, w, c) -> the same shape."""

    def __init__(self, groups: int = 8, kernel_regularizer: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.norm = layers.GroupNormalization(self.groups, name="norm")
        self.attention: layers.MultiHeadAttention | None = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        _, height, width, channels = input_shape
        self.positions = int(height) * int(width)
        self.norm.build(input_shape)
        self.attention = layers.MultiHeadAttention(
            num_heads=1,
            key_dim=int(channels),
            kernel_regularizer=self.kernel_regularizer,
            name="attention",
        )
        tokens = (input_shape[0], self.positions, int(channels))
        self.attention.build(tokens, tokens)
        self.built = True

    def call(self, x: Any) -> Any:
        channels = ops.shape(x)[-1]
        tokens = ops.reshape(self.norm(x), (-1, self.positions, channels))
        attended = self.attention(tokens, tokens)
        return x + ops.reshape(attended, ops.shape(x))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "groups": self.groups,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }
