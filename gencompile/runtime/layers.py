"""Layers generated code uses that Keras does not ship as one layer."""

from __future__ import annotations

import keras
from keras import layers


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
