"""Networks: a list of typed layers, or the `mlp:` shorthand for a stack of dense layers.

Specs describe only a network's hidden body; the compiler infers shapes and appends the
heads a family needs (see `gencompile.compiler.layers`).
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from gencompile.spec.applications import APPLICATIONS, application_weights, refuse_imagenet
from gencompile.spec.base import (
    Activation,
    AsTuple,
    FieldError,
    HintedError,
    Identifier,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)
from gencompile.spec.diagnostics import did_you_mean
from gencompile.spec.loader import NETWORK_FORMS

IntOrPair = PositiveInt | Annotated[tuple[PositiveInt, PositiveInt], AsTuple]
Padding = Literal["same", "valid"]


class LayerBase(StrictModel):
    name: Identifier | None = Field(None, description="Layer name in generated code.")
    trainable: bool = Field(
        True,
        description="false: the layer's weights are frozen (no gradient step changes them; "
        "a frozen batch_norm normalises with its moving statistics).",
    )


class Dense(LayerBase):
    """keras.layers.Dense."""

    type: Literal["dense"]
    units: PositiveInt = Field(description="Output size.")
    activation: Activation | None = None
    use_bias: bool = True


class Conv1D(LayerBase):
    """keras.layers.Conv1D."""

    type: Literal["conv1d"]
    filters: PositiveInt
    kernel_size: PositiveInt
    strides: PositiveInt = 1
    padding: Padding = "same"
    dilation_rate: PositiveInt = 1
    activation: Activation | None = None

    @model_validator(mode="after")
    def _stride_or_dilation(self) -> Conv1D:
        if self.strides > 1 and self.dilation_rate > 1:
            raise FieldError("dilation_rate", "Keras refuses strides > 1 with dilation_rate > 1")
        return self


class Conv2D(LayerBase):
    """keras.layers.Conv2D: an int or [height, width] for sizes."""

    type: Literal["conv2d"]
    filters: PositiveInt
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "same"
    activation: Activation | None = None


class Conv2DTranspose(LayerBase):
    """keras.layers.Conv2DTranspose: an int or [height, width] for sizes."""

    type: Literal["conv2d_transpose"]
    filters: PositiveInt
    kernel_size: IntOrPair
    strides: IntOrPair = 1
    padding: Padding = "same"
    activation: Activation | None = None


class UpSampling2D(LayerBase):
    """keras.layers.UpSampling2D."""

    type: Literal["upsampling2d"]
    size: IntOrPair = 2
    interpolation: Literal["nearest", "bilinear"] = "nearest"


class MaxPool2D(LayerBase):
    """keras.layers.MaxPooling2D; strides default to pool_size."""

    type: Literal["max_pool2d"]
    pool_size: IntOrPair = 2
    strides: IntOrPair | None = None
    padding: Padding = "valid"


class AvgPool2D(LayerBase):
    """keras.layers.AveragePooling2D; strides default to pool_size."""

    type: Literal["avg_pool2d"]
    pool_size: IntOrPair = 2
    strides: IntOrPair | None = None
    padding: Padding = "valid"


class GlobalAvgPool2D(LayerBase):
    """keras.layers.GlobalAveragePooling2D."""

    type: Literal["global_avg_pool2d"]


class Flatten(LayerBase):
    """keras.layers.Flatten."""

    type: Literal["flatten"]


class Reshape(LayerBase):
    type: Literal["reshape"]
    target_shape: list[PositiveInt] = Field(
        min_length=1, max_length=4, description="Shape of one example, batch axis left out."
    )


class Dropout(LayerBase):
    """keras.layers.Dropout."""

    type: Literal["dropout"]
    rate: Probability = Field(description="Fraction of the inputs dropped in training.")


class BatchNorm(LayerBase):
    """keras.layers.BatchNormalization."""

    type: Literal["batch_norm"]
    momentum: Probability = 0.99
    epsilon: PositiveFloat = 1e-3


class LayerNorm(LayerBase):
    """keras.layers.LayerNormalization."""

    type: Literal["layer_norm"]
    epsilon: PositiveFloat = 1e-3


class GroupNorm(LayerBase):
    """keras.layers.GroupNormalization."""

    type: Literal["group_norm"]
    groups: PositiveInt = 8
    epsilon: PositiveFloat = 1e-3


class ActivationLayer(LayerBase):
    """keras.layers.Activation."""

    type: Literal["activation"]
    activation: Activation


class Embedding(LayerBase):
    """keras.layers.Embedding."""

    type: Literal["embedding"]
    input_dim: PositiveInt = Field(description="Number of token ids.")
    output_dim: PositiveInt = Field(description="Size of each embedding vector.")


class LSTM(LayerBase):
    """keras.layers.LSTM."""

    type: Literal["lstm"]
    units: PositiveInt
    return_sequences: bool = False
    dropout: Probability = 0.0


class GRU(LayerBase):
    """keras.layers.GRU."""

    type: Literal["gru"]
    units: PositiveInt
    return_sequences: bool = False
    dropout: Probability = 0.0


class MultiHeadAttention(LayerBase):
    """Self-attention over a sequence (rank-2 input: steps x features)."""

    type: Literal["multi_head_attention"]
    num_heads: PositiveInt
    key_dim: PositiveInt
    dropout: Probability = 0.0
    causal: bool = False


class TransformerBlock(LayerBase):
    """Pre-norm self-attention + feed-forward block with residual connections."""

    type: Literal["transformer_block"]
    num_heads: PositiveInt
    key_dim: PositiveInt
    ff_dim: PositiveInt
    dropout: Probability = 0.0
    causal: bool = False


class SpectralNorm(LayerBase):
    """Spectral normalisation of a wrapped dense or convolutional layer."""

    type: Literal["spectral_norm"]
    layer: Annotated[Dense | Conv1D | Conv2D | Conv2DTranspose, Field(discriminator="type")] = (
        Field(description="The wrapped layer.")
    )
    power_iterations: PositiveInt = 1


class KerasApplication(LayerBase):
    """A keras.applications network without its classifier (include_top=False), as the body
    of an encoder (vae) or a discriminator (gan): its first layer, reading the data's images.
    """

    type: Literal["keras_application"]
    application: str = Field(description=f"One of {', '.join(APPLICATIONS)}.")
    weights: str | None = Field(
        description="none: random initial weights; or a local weights file (.h5 or "
        ".weights.h5, e.g. keras' `..._notop.h5` ImageNet file; relative to the working "
        "directory) loaded when a run starts. `imagenet` (a download) is refused: builds "
        "work offline."
    )
    pooling: Literal["avg", "max"] | None = Field(
        "avg", description="Global pooling of the last feature map; null: keep the map."
    )
    resize: Annotated[tuple[PositiveInt, PositiveInt], AsTuple] | None = Field(
        None,
        description="[height, width] the images are resized to first (keras.layers.Resizing); "
        "the applications need at least 32x32.",
    )

    @field_validator("application")
    @classmethod
    def _known_application(cls, value: str) -> str:
        if value not in APPLICATIONS:
            hint = did_you_mean(value, APPLICATIONS) or f"use one of {', '.join(APPLICATIONS)}"
            raise HintedError(
                f"unknown application '{value}'; expected one of {', '.join(APPLICATIONS)}", hint
            )
        return value

    @field_validator("weights")
    @classmethod
    def _local_weights(cls, value: str | None) -> str | None:
        return application_weights(value)

    @model_validator(mode="before")
    @classmethod
    def _no_download(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("application"), str):
            refuse_imagenet(data["application"], data.get("weights"))
        return data


_REF_PATTERN = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
)
Scalar = bool | int | float | str | None


class Custom(LayerBase):
    """A user layer class; refused unless the build passes --allow-custom-code."""

    type: Literal["custom"]
    ref: str = Field(description="'package.module:ClassName'")
    args: dict[Identifier, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="Keyword arguments of the class."
    )
    output_shape: list[PositiveInt] = Field(
        description="Shape of one output example; the compiler cannot infer a custom layer's."
    )

    @field_validator("ref")
    @classmethod
    def _ref_is_dotted_path(cls, value: str) -> str:
        if not _REF_PATTERN.fullmatch(value):
            raise ValueError(f"must look like 'package.module:ClassName' (got {value!r})")
        # The module and class are imported by name in generated code: `import class` or
        # `from m import None` would not parse.
        taken = [part for part in re.split(r"[.:]", value) if keyword.iskeyword(part)]
        if taken:
            raise HintedError(
                f"'{taken[0]}' in {value!r} is a Python keyword, which cannot be imported by name",
                "rename that module or class",
            )
        return value

    @field_validator("args")
    @classmethod
    def _args_are_identifiers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key.isidentifier():
                raise ValueError(f"argument name {key!r} is not a Python identifier")
            if keyword.iskeyword(key):  # `Thing(lambda=1)` does not parse
                raise FieldError(
                    key,
                    f"argument name {key!r} is a Python keyword, which generated code cannot "
                    "pass by name; give the class's argument another name",
                )
            if key == "name":
                raise ValueError("`name` is set by the layer's own `name:` key, not in args")
        return value


class Residual(LayerBase):
    """`x + body(x)`; the body must keep the shape of its input."""

    type: Literal["residual"]
    layers: list[Layer] = Field(min_length=1, description="The body, in order.")


Layer = Annotated[
    Dense
    | Conv1D
    | Conv2D
    | Conv2DTranspose
    | UpSampling2D
    | MaxPool2D
    | AvgPool2D
    | GlobalAvgPool2D
    | Flatten
    | Reshape
    | Dropout
    | BatchNorm
    | LayerNorm
    | GroupNorm
    | ActivationLayer
    | Embedding
    | LSTM
    | GRU
    | MultiHeadAttention
    | TransformerBlock
    | Residual
    | SpectralNorm
    | KerasApplication
    | Custom,
    Field(discriminator="type"),
]
Residual.model_rebuild()


class Freezable(StrictModel):
    """A network preset (a denoiser, a language model) that `freeze: true` can freeze whole."""

    freeze: bool = Field(
        False,
        description="true: every weight of the network is frozen (its batch_norm layers run "
        "in inference mode); with training.fine_tune.unfreeze_after_epochs, until then.",
    )


class Network(StrictModel):
    """A hidden body: either explicit `layers` or the shorthand `mlp: [units, ...]`."""

    layers: list[Layer] | None = Field(None, description="Typed layers, in order.")
    mlp: list[PositiveInt] | None = Field(
        None, min_length=1, description="Widths of a stack of dense layers (the shorthand)."
    )
    activation: Activation = Field("relu", description="Activation of the `mlp` shorthand.")
    dropout: Probability = Field(0.0, description="Dropout after each `mlp` layer.")
    freeze: bool = Field(
        False,
        description="true: every weight of the network, heads included, is frozen (its "
        "batch_norm layers run in inference mode).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Network:
        if self.layers is None and self.mlp is None:
            raise ValueError("give exactly one of `layers:` or `mlp:`")
        if self.layers is not None and self.mlp is not None:
            raise FieldError("mlp", "give exactly one of `layers:` or `mlp:`, not both")
        shorthand_only = sorted(set(NETWORK_FORMS["mlp"][1:]) & self.model_fields_set)
        if self.layers is not None and shorthand_only:
            field = shorthand_only[0]
            raise FieldError(field, f"`{field}` applies only to the `mlp:` shorthand")
        return self

    @model_serializer(mode="wrap")
    def _dump_one_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dump only the form in use, so that a dumped network (the lock's resolved spec)
        validates again: `layers:` takes no shorthand fields."""
        data: dict[str, Any] = handler(self)
        unused = NETWORK_FORMS["mlp" if self.layers is not None else "layers"]
        for key in unused:
            data.pop(key, None)
        return data
