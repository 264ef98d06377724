"""The `autoregressive` family: p(x) = prod_t p(x_t | x_<t), by next-token cross-entropy.

Text (a file, or the built-in `arithmetic` language) is tokenized (char, byte or word) and
modelled by a causal transformer, an LSTM or a GRU over windows of `context_length + 1`
tokens; images are modelled pixel by pixel in raster order by a PixelCNN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from gencompile.spec.base import (
    FieldError,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    StrictModel,
)
from gencompile.spec.data import is_text_source
from gencompile.spec.evaluation import SAMPLE_METRICS
from gencompile.spec.networks import Freezable
from gencompile.spec.transfer import InitFrom


class CharTokenizer(StrictModel):
    """One token per character seen in the training text, plus `<unk>`."""

    type: Literal["char"]


class ByteTokenizer(StrictModel):
    """One token per UTF-8 byte (256 tokens); nothing is unknown."""

    type: Literal["byte"]


class WordTokenizer(StrictModel):
    """Words and punctuation; the vocab_size - 1 most frequent in training, plus `<unk>`."""

    type: Literal["word"]
    vocab_size: Annotated[int, Field(ge=2, le=1_000_000)] = Field(
        10000, description="Tokens, `<unk>` included."
    )


Tokenizer = Annotated[CharTokenizer | ByteTokenizer | WordTokenizer, Field(discriminator="type")]


class TransformerNetwork(Freezable):
    """Decoder-only transformer: causal self-attention blocks (pre-norm)."""

    type: Literal["transformer"]
    layers: PositiveInt = Field(4, description="Transformer blocks.")
    d_model: PositiveInt = Field(128, description="Width of the embeddings and blocks.")
    heads: PositiveInt = Field(4, description="Attention heads; must divide d_model.")
    ff_dim: PositiveInt | None = Field(None, description="Feed-forward width; default 4 d_model.")
    dropout: Probability = 0.1
    positions: Literal["learned", "sinusoidal"] = Field(
        "learned", description="Position embeddings: learned or fixed sinusoids."
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerNetwork:
        if self.d_model % self.heads:
            raise FieldError(
                "heads", f"d_model ({self.d_model}) must be divisible by heads ({self.heads})"
            )
        return self


class RecurrentNetwork(Freezable):
    layers: PositiveInt = Field(1, description="Stacked recurrent layers.")
    units: PositiveInt = Field(256, description="Units of each recurrent layer.")
    embedding_dim: PositiveInt = Field(64, description="Size of the token embedding.")
    dropout: Probability = Field(0.0, description="Dropout of each recurrent layer's inputs.")


class LSTMNetwork(RecurrentNetwork):
    """Token embedding, then LSTM layers."""

    type: Literal["lstm"]


class GRUNetwork(RecurrentNetwork):
    """Token embedding, then GRU layers."""

    type: Literal["gru"]


class CategoricalPixels(StrictModel):
    """Each pixel is one of `bins` grey levels (of data scaled to [0, 1])."""

    type: Literal["categorical"]
    bins: Annotated[int, Field(ge=2, le=256)] = Field(
        256,
        description="Grey levels: the data's own (17 for digits, 5 for shapes2d, 256 for 8-bit "
        "images), or any bins with bins - 1 a multiple of levels - 1.",
    )


class BernoulliPixels(StrictModel):
    """Each pixel is 0 or 1 (data scaled to [0, 1] and thresholded at 0.5)."""

    type: Literal["bernoulli"]


PixelLikelihood = Annotated[CategoricalPixels | BernoulliPixels, Field(discriminator="type")]


class PixelCNNNetwork(Freezable):
    """Masked convolutions: a type-A layer, then residual blocks of type-B layers."""

    type: Literal["pixelcnn"]
    filters: PositiveInt = Field(64, description="Channels of the masked convolutions.")
    layers: PositiveInt = Field(5, description="Residual blocks of masked (type B) convolutions.")
    kernel_size: Annotated[int, Field(ge=3, le=15)] = Field(
        7, description="Of the first (type A) masked convolution; odd."
    )
    likelihood: PixelLikelihood = Field(
        default_factory=lambda: CategoricalPixels(type="categorical"),
        description="Distribution of each pixel given the ones before it.",
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> PixelCNNNetwork:
        if self.kernel_size % 2 == 0:
            raise FieldError("kernel_size", f"must be odd (got {self.kernel_size})")
        return self


SequenceNetwork = TransformerNetwork | LSTMNetwork | GRUNetwork
ARNetwork = Annotated[
    TransformerNetwork | LSTMNetwork | GRUNetwork | PixelCNNNetwork, Field(discriminator="type")
]


class Sampling(StrictModel):
    """How samples are drawn: softmax(logits / temperature), filtered by top-k and top-p."""

    temperature: PositiveFloat = Field(
        1.0, description="Divides the logits: below 1 is more conservative."
    )
    top_k: NonNegativeInt = Field(0, description="Keep the k likeliest tokens (0: all).")
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Keep the smallest set of tokens whose probability reaches p (1: all)."
    )
    length: PositiveInt = Field(256, description="Tokens generated per text sample.")
    prompt: str = Field(
        "\n",
        min_length=1,
        max_length=1000,
        description="Text that samples continue (text data), in the vocabulary of the "
        "training text (validate checks it, for the built-in arithmetic and text files).",
    )


class AutoregressiveModel(StrictModel):
    """Autoregressive model: next-token prediction over text, or pixels in raster order."""

    family: Literal["autoregressive"]
    tokenizer: Tokenizer | None = Field(None, description="Text data only; default char.")
    context_length: Annotated[int, Field(ge=2, le=65536)] | None = Field(
        None, description="Tokens a text model sees (text data only); default 128."
    )
    network: ARNetwork = Field(description="Sequence model (text) or PixelCNN (images).")
    teacher_forcing: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0,
        description="Probability of feeding the true previous token; below 1 the rest are the "
        "model's own samples (parallel scheduled sampling).",
    )
    sampling: Sampling = Field(default_factory=Sampling)
    init_from: InitFrom | None = Field(
        None, description="Start from a trained run's or a weights file's weights."
    )

    metrics_available: ClassVar[tuple[str, ...]] = (
        "perplexity",
        "bits_per_char",
        "bleu",
        "validity",
        "nll",
        "bits_per_dim",
        *SAMPLE_METRICS,  # of PixelCNN images
    )
    metrics_default: ClassVar[tuple[str, ...]] = ("perplexity", "bits_per_char")
    trackers: ClassVar[tuple[str, ...]] = ("loss", "grad_norm")

    TEXT_METRICS: ClassVar[tuple[str, ...]] = ("perplexity", "bits_per_char", "bleu", "validity")
    IMAGE_METRICS: ClassVar[tuple[str, ...]] = ("nll", "bits_per_dim")

    def default_metrics(self, data: Any) -> list[str]:
        """Perplexity and bits/char for text (perplexity alone for word tokens, which do not
        predict every character), + validity for arithmetic; NLL for images."""
        if not is_text_source(data.source):
            return list(self.IMAGE_METRICS)
        words = self.tokenizer is not None and self.tokenizer.type == "word"
        text = [m for m in self.metrics_default if not (words and m == "bits_per_char")]
        arithmetic = data.source.type == "builtin"
        return [*text, *(["validity"] if arithmetic else [])]


# --------------------------------------------------------------------------- cross-field checks

Found = Iterator[tuple[tuple[str | int, ...], str, str | None]]
TEXT_HINT = (
    "text networks need text data: {type: text, path: ...} or {type: builtin, name: arithmetic}"
)


def check_autoregressive(spec: Any) -> Found:
    """Data against network, tokenizer, metrics and sample format (located at the field)."""
    if spec.model.family != "autoregressive":
        return
    text = is_text_source(spec.data.source)
    source = spec.data.source
    what = f"{source.type} {getattr(source, 'name', '')}".strip()
    yield from _network_for_data(spec.model.network, text, what)
    yield from (_text_data(spec) if text else _image_data(spec, what))
    yield from _metrics_for_data(spec, text, what)
    yield from _text_samples(spec) if text else ()


def _network_for_data(network: Any, text: bool, what: str) -> Found:
    if network.type == "pixelcnn" and text:
        yield (
            ("model", "network", "type"),
            f"a pixelcnn models images, but data.source ({what}) is text",
            "use network: {type: lstm}, {type: gru} or {type: transformer} for text",
        )
    elif network.type != "pixelcnn" and not text:
        yield (
            ("model", "network", "type"),
            f"{'an' if network.type == 'lstm' else 'a'} {network.type} network models token "
            f"sequences, but data.source ({what}) is "
            "not text",
            "use network: {type: pixelcnn} for images; " + TEXT_HINT,
        )


def _image_data(spec: Any, what: str) -> Found:
    """What applies to text only, set for images; a pixelcnn's data not in [0, 1]."""
    model = spec.model
    for field in ("tokenizer", "context_length"):
        if field in model.model_fields_set:
            yield (
                ("model", field),
                f"`{field}` applies to text data, but data.source ({what}) is not text",
                f"remove model.{field}",
            )
    for field in ("length", "prompt"):
        if field in model.sampling.model_fields_set:
            yield (
                ("model", "sampling", field),
                f"sampling.{field} applies to text, but data.source ({what}) is not text",
                f"remove model.sampling.{field}",
            )
    if model.teacher_forcing < 1:
        yield (
            ("model", "teacher_forcing"),
            "teacher_forcing below 1 (scheduled sampling) is available for text networks",
            "set teacher_forcing: 1.0",
        )
    if model.network.type == "pixelcnn" and spec.data.preprocessing.scale != (0.0, 1.0):
        yield (
            ("model", "network", "likelihood"),
            f"a pixelcnn's {model.network.likelihood.type} pixels are read from data scaled to "
            "[0, 1], but the data is not scaled to [0, 1]",
            "set data.preprocessing: {scale: [0, 1]}",
        )


def _text_data(spec: Any) -> Found:
    preprocessing = spec.data.preprocessing
    if preprocessing.scale is not None or preprocessing.standardize:
        yield (
            ("data", "preprocessing"),
            "text is tokenized, not scaled: preprocessing applies to numeric data",
            "remove data.preprocessing",
        )


def _metrics_for_data(spec: Any, text: bool, what: str) -> Found:
    model, source = spec.model, spec.data.source
    wrong = model.IMAGE_METRICS if text else model.TEXT_METRICS
    arithmetic = source.type == "builtin" and source.name == "arithmetic"
    for i, name in enumerate(spec.evaluation.metrics or ()):
        if name in wrong:
            kind = "text" if text else "images"
            right = model.TEXT_METRICS if text else model.IMAGE_METRICS
            yield (
                ("evaluation", "metrics", i),
                f"metric '{name}' does not apply to {kind}",
                f"for {kind} use {', '.join(right)}",
            )
        elif name == "bits_per_char" and model.tokenizer and model.tokenizer.type == "word":
            yield (
                ("evaluation", "metrics", i),
                "metric 'bits_per_char' needs the model's probability of every held-out "
                "character, but word tokens predict no whitespace and spell a word outside "
                "the vocabulary as one <unk>",
                "use perplexity (per word token), or tokenizer: {type: char} or {type: byte} "
                "for bits per character",
            )
        elif name == "validity" and not arithmetic:
            yield (
                ("evaluation", "metrics", i),
                "metric 'validity' checks sums of the built-in arithmetic language, "
                f"but data.source is {what}",
                "use data.source: {type: builtin, name: arithmetic}, or remove 'validity'",
            )


def _text_samples(spec: Any) -> Found:
    samples = spec.output.samples
    if "format" in samples.model_fields_set and samples.format != "txt":
        yield (
            ("output", "samples", "format"),
            f"samples of text are written as text, not {samples.format}",
            "set format: txt",
        )
    if samples.every_epochs:
        yield (
            ("output", "samples", "every_epochs"),
            "sample pictures during training are drawn for images, not text",
            "set every_epochs: 0",
        )
