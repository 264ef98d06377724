"""Layers generated code uses that Keras does not ship as one layer."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="gencompile")
class TransformerBlock(layers.Layer):
    """Pre-norm transformer block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        ff_dim: int,
        dropout: float = 0.0,
        causal: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.ff_dim = num_heads, key_dim, ff_dim
        self.dropout, self.causal = dropout, causal
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5)
        self.attention = layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout)
        self.feed_forward_norm = layers.LayerNormalization(epsilon=1e-5)
        self.dropout_layer = layers.Dropout(dropout)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = input_shape[-1]
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.feed_forward_norm.build(input_shape)
        self.hidden = layers.Dense(self.ff_dim, activation="gelu")
        self.hidden.build(input_shape)
        self.output_projection = layers.Dense(features)
        self.output_projection.build((*input_shape[:-1], self.ff_dim))
        self.built = True

    def call(self, x, training: bool = False):
        h = self.attention_norm(x)
        h = self.attention(h, h, use_causal_mask=self.causal, training=training)
        x = x + self.dropout_layer(h, training=training)
        h = self.output_projection(self.hidden(self.feed_forward_norm(x)))
        return x + self.dropout_layer(h, training=training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
            "causal": self.causal,
        }


@keras.saving.register_keras_serializable(package="gencompile")
class PositionEmbedding(layers.Layer):
    """Add a learned vector per position 0..T-1 to a sequence (batch, T, d), T <= max_length."""

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = int(max_length)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.embeddings = self.add_weight(
            shape=(self.max_length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embeddings",
        )
        self.built = True

    def call(self, x):
        steps = ops.shape(x)[1]
        return x + ops.cast(self.embeddings[:steps], x.dtype)[None]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="gencompile")
class SinusoidalPositions(layers.Layer):
    """Add the fixed sinusoidal position code of "Attention is all you need" to (batch, T, d)."""

    def call(self, x):
        steps, width = ops.shape(x)[1], x.shape[-1]
        positions = ops.cast(ops.arange(steps), "float32")[:, None]
        rates = ops.exp(ops.arange(0, width, 2, dtype="float32") * (-math.log(10000.0) / width))
        angles = positions * rates[None]
        code = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (steps, -1))
        return x + ops.cast(code[:, :width], x.dtype)[None]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


def causal_mask(kernel_size: int, in_channels: int, filters: int, mask_type: str) -> np.ndarray:
    """PixelCNN kernel mask (k, k, in, out): rows above the centre, and the centre row left of
    the centre; type B also keeps the centre (the pixel's own features from the layer below).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B'. Received: mask_type={mask_type!r}")
    centre = kernel_size // 2
    mask = np.zeros((kernel_size, kernel_size, in_channels, filters), dtype="float32")
    mask[:centre] = 1.0
    mask[centre, : centre + (1 if mask_type == "B" else 0)] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="gencompile")
class MaskedConv2D(layers.Layer):
    """A 'same' convolution whose kernel is masked so that each output pixel depends only on
    the input pixels before it in raster order (type A) or up to it (type B)."""

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        mask_type: str = "B",
        activation: str | None = None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd. Received: kernel_size={kernel_size}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B'. Received: mask_type={mask_type!r}")
        self.filters, self.kernel_size, self.mask_type = int(filters), int(kernel_size), mask_type
        self.activation = keras.activations.get(activation)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_channels = input_shape[-1]
        shape = (self.kernel_size, self.kernel_size, in_channels, self.filters)
        self.kernel = self.add_weight(
            shape=shape,
            initializer="glorot_uniform",
            regularizer=self.kernel_regularizer,
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.mask = causal_mask(self.kernel_size, in_channels, self.filters, self.mask_type)
        self.built = True

    def call(self, x):
        kernel = self.kernel * ops.convert_to_tensor(self.mask, dtype=self.kernel.dtype)
        return self.activation(ops.conv(x, kernel, padding="same") + self.bias)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "mask_type": self.mask_type,
            "activation": keras.activations.serialize(self.activation),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


@keras.saving.register_keras_serializable(package="gencompile")
class SpectralNormalization(layers.SpectralNormalization):
    """Keras' spectral normalization, frozen like Keras' batch norm: a training call of a
    layer that is not trainable neither re-normalises its kernel nor steps the power
    iteration's vector u (Keras' own rewrites both whatever `trainable` says)."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        return super().call(inputs, training=bool(training) and self.trainable)
