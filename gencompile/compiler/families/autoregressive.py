"""Lowering of the `autoregressive` family: a next-token network over text or pixels.

Text: the compiler reads the training text and fits the tokenizer's vocabulary, so the
generated model knows its size; the vocabulary is written beside the model as
`vocabulary.json` (hashed in the lock like every generated file), and the runtime checks
that the text it trains on gives the same vocabulary. The network maps token ids of any
length up to `context_length` to next-token logits: embedding, a causal body (LSTM, GRU
or transformer blocks with a causal mask), and a dense projection to the vocabulary.

Images: a PixelCNN. A type-A masked convolution (each pixel sees only the pixels before
it in raster order), residual blocks of type-B masked convolutions (which may also see
the pixel's own features from the layer below), and 1x1 convolutions to the logits of
each pixel's grey level (categorical) or of its being on (Bernoulli).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from gencompile.compiler.data_levels import check_bins, data_levels
from gencompile.compiler.data_shapes import DataShape
from gencompile.compiler.family import Capabilities, Family, Refusal
from gencompile.compiler.lowering import Lowering
from gencompile.compiler.networks import NetworkBuilder, freeze_preset
from gencompile.compiler.pixelcnn_body import PixelCNNLayers, pixelcnn_body
from gencompile.compiler.plan import ExtraPlan, LayerPlan, NetworkPlan, ProjectPlan, Shape
from gencompile.compiler.shapes import fmt, known
from gencompile.datafiles import DataFileError, encoding_advice
from gencompile.spec.families.autoregressive import (
    AutoregressiveModel,
    CategoricalPixels,
    PixelCNNNetwork,
)
from gencompile.spec.networks import (
    GRU,
    LSTM,
    Dense,
    Dropout,
    Embedding,
    LayerNorm,
    Reshape,
    TransformerBlock,
)
from gencompile.text import Tokenizer, fit_tokenizer, source_text, split_text, unknown_prompt

DEFAULT_CONTEXT_LENGTH = 128


@dataclass(frozen=True)
class AutoregressivePlan:
    kind: str  # "text" | "image"
    class_name: str  # LanguageModel | PixelCNN
    network_type: str  # lstm | gru | transformer | pixelcnn
    data_shape: Shape  # text: one window of context_length + 1 tokens
    context_length: int | None
    vocab_size: int | None
    tokenizer: dict[str, Any] | None
    levels: int | None  # pixels: grey levels (categorical bins; 2 for bernoulli)
    likelihood: str | None  # pixels: categorical | bernoulli
    teacher_forcing: float
    sampling: dict[str, Any]
    network: NetworkPlan
    num_params: int


def _text_network(low: Lowering, vocab: int, context_length: int) -> NetworkPlan:
    spec_net = low.family_model(AutoregressiveModel).network
    net = NetworkBuilder("network", low.regularizer(), low.report)
    freeze_preset(net, spec_net, ("model", "network"), low)
    tokens = net.input("tokens", (None,), "int32")
    if spec_net.type == "transformer":
        h, shape = _transformer_body(net, spec_net, tokens, vocab, context_length)
    else:
        h, shape = _recurrent_body(net, spec_net, tokens, vocab)
    head = net.synth(Dense(type="dense", units=vocab, name="logits"), shape)
    net.add("logits", head, (h,))
    body = {"lstm": "LSTM", "gru": "GRU", "transformer": "causal transformer"}[spec_net.type]
    doc = f"Token ids -> next-token logits at every position ({body} over {vocab} tokens)."
    return net.build(doc, ("logits",))


def _token_embedding(net: NetworkBuilder, tokens: str, vocab: int, dim: int) -> tuple[str, Shape]:
    layer = Embedding(type="embedding", input_dim=vocab, output_dim=dim, name="token_embedding")
    embedding = net.synth(layer, (None,), kind="embedding")
    return net.add("h", embedding, (tokens,)), embedding.output_shape


def _transformer_body(
    net: NetworkBuilder, spec_net: Any, tokens: str, vocab: int, context_length: int
) -> tuple[str, Shape]:
    """Token and position embeddings, causal transformer blocks, a final layer norm."""
    d = spec_net.d_model
    h, shape = _token_embedding(net, tokens, vocab, d)
    h = net.add("h", _positions(net, spec_net.positions, context_length, d), (h,))
    if spec_net.dropout:
        dropout = Dropout(type="dropout", rate=spec_net.dropout, name="embedding_dropout")
        h = net.add("h", net.synth(dropout, shape, kind="dropout"), (h,))
    for i in range(spec_net.layers):
        block = TransformerBlock(
            type="transformer_block",
            num_heads=spec_net.heads,
            key_dim=d // spec_net.heads,
            ff_dim=spec_net.ff_dim or 4 * d,
            dropout=spec_net.dropout,
            causal=True,
            name=f"block_{i + 1}",
        )
        h = net.add("h", net.synth(block, shape, kind="transformer_block"), (h,))
    norm = LayerNorm(type="layer_norm", epsilon=1e-5, name="final_norm")
    return net.add("h", net.synth(norm, shape, kind="layer_norm"), (h,)), shape


def _positions(net: NetworkBuilder, positions: str, context_length: int, d: int) -> LayerPlan:
    """The runtime's position layers: learned (one vector per position) or sinusoidal."""
    if positions == "learned":
        return net.layer(
            "positions",
            "gencompile_layers.PositionEmbedding",
            (("max_length", context_length),),
            (None, d),
            context_length * d,
            name="position_embedding",
            positional=1,
        )
    return net.layer(
        "positions",
        "gencompile_layers.SinusoidalPositions",
        (),
        (None, d),
        0,
        name="sinusoidal_positions",
    )


def _recurrent_body(
    net: NetworkBuilder, spec_net: Any, tokens: str, vocab: int
) -> tuple[str, Shape]:
    """A token embedding and stacked LSTM or GRU layers returning every step."""
    h, shape = _token_embedding(net, tokens, vocab, spec_net.embedding_dim)
    recurrent = LSTM if spec_net.type == "lstm" else GRU
    for i in range(spec_net.layers):
        layer = recurrent(
            type=spec_net.type,
            units=spec_net.units,
            return_sequences=True,
            dropout=spec_net.dropout,
            name=f"{spec_net.type}_{i + 1}",
        )
        plan = net.synth(layer, shape, kind=spec_net.type)
        h, shape = net.add("h", plan, (h,)), plan.output_shape
    return h, shape


def _pixelcnn_network(
    low: Lowering, spec_net: PixelCNNNetwork, shape: Shape, levels: int, bernoulli: bool
) -> NetworkPlan:
    net = NetworkBuilder("network", low.regularizer(), low.report)
    freeze_preset(net, spec_net, ("model", "network"), low)
    h_, w_, c = known(shape, "pixelcnn")
    f = spec_net.filters
    x = net.input("x", shape)
    cells = PixelCNNLayers(net, h_, w_)
    h = pixelcnn_body(cells, x, c, f, spec_net.kernel_size, spec_net.layers)
    if bernoulli:
        net.add("logits", cells.pointwise(1, f, "logits", activation=None), (h,))
    else:
        h = net.add("h", cells.pointwise(c * levels, f, "logits", activation=None), (h,))
        reshape = Reshape(type="reshape", target_shape=[h_, w_, c, levels], name="to_levels")
        net.add("logits", net.synth(reshape, (h_, w_, c * levels), kind="reshape"), (h,))
    what = "logit of being on" if bernoulli else f"logits over {levels} grey levels"
    doc = f"Image -> each pixel's {what}, given the pixels before it (raster order)."
    return net.build(doc, ("logits",))


def _text_tokenizer(low: Lowering, context_length: int) -> Tokenizer | None:
    """Fit the vocabulary on the training part of the text; None if it cannot be read."""
    spec, model = low.spec, low.family_model(AutoregressiveModel)
    source = low.data_config(False)["source"]
    try:
        text = source_text(source, spec.seed)
    except DataFileError as err:
        low.report(("data", "source", "path"), str(err).removeprefix("data.source.path: "))
        return None
    except (OSError, UnicodeDecodeError, LookupError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        low.report(
            ("data", "source", "path"),
            f"cannot read {source.get('path')}: {reason}",
            encoding_advice(err, source.get("encoding")),
        )
        return None
    train_text, held_out = split_text(text, spec.data.validation_split)
    config = (model.tokenizer or _char()).model_dump(mode="json")
    tokenizer = fit_tokenizer(config, train_text)
    for part, name, field in ((train_text, "training", "source"), (held_out, "held-out", None)):
        if field is None and spec.data.validation_split == 0:
            continue
        count = len(tokenizer.encode(part))
        if count < context_length + 1:
            where = ("data", "source") if field else ("data", "validation_split")
            low.report(
                where,
                f"the {name} text holds {count} {config['type']} tokens, fewer than "
                f"context_length + 1 = {context_length + 1}",
                "use more text or a shorter model.context_length",
            )
    _check_unknown_characters(low, tokenizer, held_out)
    # The prompt samples continue: a character (word) the vocabulary lacks would silently
    # become <unk>, as `gencompile sample --prompt` refuses it.
    unknown = unknown_prompt(tokenizer, model.sampling.prompt)
    if unknown is not None and not low.loaded.opened:  # a run trained before: as it was
        low.report(("model", "sampling", "prompt"), *unknown)
    return tokenizer


def _check_unknown_characters(low: Lowering, tokenizer: Tokenizer, held_out: str) -> None:
    """bits_per_char scores every held-out character; a char tokenizer reads the ones its
    training text never shows as <unk>, one token for any of them, so refuse it there."""
    if tokenizer.type != "char":
        return
    unknown = sorted(set(held_out) - set(tokenizer.tokens[1:]))
    listed = low.spec.evaluation.metrics
    metrics = low.default_metrics() if listed is None else listed
    if not unknown or "bits_per_char" not in metrics:
        return
    shown = ", ".join(repr(c) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    problem = (
        f"the held-out text has {len(unknown)} character(s) the training text never shows "
        f"({shown}), which the char tokenizer reads as <unk>, so bits per character would not "
        "score them"
    )
    hint = "use tokenizer: {type: byte}, which reads every character"
    if listed is None:
        low.report(
            ("data", "source"),
            f"{problem} (bits_per_char is a default metric for text)",
            f"{hint}, or list evaluation.metrics without bits_per_char, e.g. [perplexity]",
        )
        return
    low.report(
        ("evaluation", "metrics", listed.index("bits_per_char")),
        f"metric 'bits_per_char': {problem}",
        f"{hint}, or remove 'bits_per_char'",
    )


def _char() -> Any:
    from gencompile.spec.families.autoregressive import CharTokenizer

    return CharTokenizer(type="char")


class _Sections(TypedDict):
    """The family-independent sections a text or pixel model changes (`project_plan`'s
    keyword arguments)."""

    data_config: dict[str, Any]
    output: dict[str, Any]
    resolved: dict[str, Any]
    extra: ExtraPlan


@dataclass(frozen=True)
class TextFacts:
    """A text model's window and the tokenizer fitted on the training text."""

    context_length: int
    tokenizer: Tokenizer


def check_autoregressive(low: Lowering, data: DataShape) -> TextFacts | None:
    """Text: fit the tokenizer (the text must hold a window); images: one channel."""
    model = low.family_model(AutoregressiveModel)
    if data.kind == "text":
        context_length = model.context_length or DEFAULT_CONTEXT_LENGTH
        tokenizer = _text_tokenizer(low, context_length)
        return None if tokenizer is None else TextFacts(context_length, tokenizer)
    if len(data.shape) != 3 or data.shape[-1] != 1:
        low.report(
            ("model", "network", "type"),
            f"a pixelcnn here models single-channel images, but the data has shape "
            f"{fmt(data.shape)}",
            "use grayscale images (images: {color: grayscale})",
        )
    _check_pixel_levels(low)
    return None


EXACT_IMAGE_METRICS = ("nll", "bits_per_dim")


def _check_pixel_levels(low: Lowering) -> None:
    """A PixelCNN's NLL is the data's only if each pixel value is a category of its own:
    categorical bins that hold the data's levels; Bernoulli pixels on binary data only
    (on other data it is the NLL of the image thresholded at 0.5)."""
    spec_net = low.family_model(AutoregressiveModel).network
    if not isinstance(spec_net, PixelCNNNetwork):  # text networks on images: reported
        return
    likelihood = ("model", "network", "likelihood")
    if isinstance(spec_net.likelihood, CategoricalPixels):
        check_bins(low, (*likelihood, "bins"), spec_net.likelihood.bins)
        return
    levels = data_levels(low.spec.data.source)
    if levels is None or levels <= 2:
        return
    problem = (
        "would score the images thresholded at 0.5 (bernoulli pixels), not the data, which "
        f"has {levels} levels"
    )
    hint = f"use likelihood: {{type: categorical, bins: {levels}}} for the data's exact NLL"
    listed = low.spec.evaluation.metrics
    if listed is None:
        if set(EXACT_IMAGE_METRICS) & set(low.default_metrics()):
            low.report(
                likelihood,
                f"the default metrics nll and bits_per_dim {problem}",
                f"{hint}, or list evaluation.metrics without them",
            )
        return
    for i, name in enumerate(listed):
        if name in EXACT_IMAGE_METRICS:
            low.report(
                ("evaluation", "metrics", i),
                f"metric '{name}' {problem}",
                f"{hint}, or remove '{name}'",
            )


def autoregressive_networks(low: Lowering, data: DataShape, text: TextFacts | None) -> NetworkPlan:
    """The next-token network over the vocabulary, or the PixelCNN over grey levels."""
    if text is not None:
        return _text_network(low, text.tokenizer.vocab_size, text.context_length)
    spec_net = low.family_model(AutoregressiveModel).network
    if not isinstance(spec_net, PixelCNNNetwork):  # the validated spec pairs images with it
        raise TypeError(f"a {spec_net.type} network cannot model images")
    levels, likelihood = _pixel_levels(spec_net)
    return _pixelcnn_network(low, spec_net, data.shape, levels, likelihood == "bernoulli")


def _pixel_levels(spec_net: PixelCNNNetwork) -> tuple[int, str]:
    """The grey levels a pixel takes (2 for Bernoulli pixels) and the likelihood's type."""
    pixels = spec_net.likelihood
    return (pixels.bins if isinstance(pixels, CategoricalPixels) else 2), pixels.type


def plan_autoregressive(
    low: Lowering, data: DataShape, text: TextFacts | None, network: NetworkPlan
) -> ProjectPlan[AutoregressivePlan]:
    """The text or pixel model's plan, with the sections it changes, and its loss in words."""
    # The sections a text or pixel model changes: its tokenizer, sample format, vocabulary.
    sections: _Sections = {
        "data_config": low.data_config(with_labels=False),
        "output": low.spec.output.model_dump(mode="json"),
        "resolved": low.resolved_spec(),
        "extra": ExtraPlan(),
    }
    if text is not None:
        plan, words = _plan_text(low, text, network, sections)
    else:
        plan, words = _plan_pixels(low, data.shape, network, sections)
    words += ", averaged over the batch" + low.kernel_penalty_words()
    return low.project_plan(
        data, plan, (plan.network,), words, data_shape=plan.data_shape, **sections
    )


def _plan_text(
    low: Lowering, text: TextFacts, network: NetworkPlan, sections: _Sections
) -> tuple[AutoregressivePlan, str]:
    """A language model over windows of tokens; the vocabulary is written beside it."""
    model = low.family_model(AutoregressiveModel)
    context_length, tokenizer = text.context_length, text.tokenizer
    vocab = tokenizer.vocab_size
    tokenizer_config = (model.tokenizer or _char()).model_dump(mode="json")
    tokenizer_info = {**tokenizer_config, "size": vocab, "sha256": tokenizer.sha256}
    data_config, resolved = sections["data_config"], sections["resolved"]
    data_config.update(tokenizer=tokenizer_info, context_length=context_length)
    data_config["drop_remainder"] = False
    resolved["model"]["tokenizer"] = tokenizer_config
    resolved["model"]["context_length"] = context_length
    sections["output"]["samples"]["format"] = "txt"
    resolved["output"]["samples"]["format"] = "txt"
    sections["extra"]["files"] = {"vocabulary.json": tokenizer.to_json()}
    forcing = (
        "the true previous tokens as inputs (teacher forcing)"
        if model.teacher_forcing == 1
        else f"the true previous token as input with probability {model.teacher_forcing:g}, "
        "else the model's own sample of it from a first, gradient-free pass (parallel "
        "scheduled sampling)"
    )
    words = (
        f"mean cross-entropy -log p(x_t | x_<t) of every next token (nats per token), a "
        f"softmax over the {vocab} {tokenizer_config['type']} tokens, on windows of "
        f"{context_length + 1} tokens with {forcing}"
    )
    plan = _plan(
        low,
        "text",
        network,
        model.sampling.model_dump(mode="json"),
        data_shape=(context_length + 1,),
        context_length=context_length,
        vocab_size=vocab,
        tokenizer=tokenizer_info,
    )
    return plan, words


def _plan_pixels(
    low: Lowering, shape: Shape, network: NetworkPlan, sections: _Sections
) -> tuple[AutoregressivePlan, str]:
    """A PixelCNN over single-channel images; text-only settings leave the lock."""
    model = low.family_model(AutoregressiveModel)
    spec_net = model.network
    if not isinstance(spec_net, PixelCNNNetwork):  # checked by the networks part
        raise TypeError(f"a {spec_net.type} network cannot model images")
    levels, likelihood = _pixel_levels(spec_net)
    sampling = model.sampling.model_dump(mode="json")
    resolved = sections["resolved"]
    for key in ("length", "prompt"):
        sampling.pop(key)
        resolved["model"]["sampling"].pop(key)
    resolved["model"].pop("tokenizer")
    resolved["model"].pop("context_length")
    what = (
        "Bernoulli pixels (data thresholded at 0.5)"
        if likelihood == "bernoulli"
        else f"a categorical over {levels} grey levels"
    )
    words = (
        "negative log-likelihood of each pixel given the pixels before it in raster order "
        f"(masked convolutions), {what}, summed over the image's pixels (nats per image)"
    )
    plan = _plan(
        low, "image", network, sampling, data_shape=shape, levels=levels, likelihood=likelihood
    )
    return plan, words


def _plan(
    low: Lowering, kind: str, network: NetworkPlan, sampling: dict[str, Any], **fields: Any
) -> AutoregressivePlan:
    """The model plan; `fields` are the text-only or pixel-only ones (the rest are None)."""
    unset = dict.fromkeys(("context_length", "vocab_size", "tokenizer", "levels", "likelihood"))
    return AutoregressivePlan(
        kind=kind,
        class_name="LanguageModel" if kind == "text" else "PixelCNN",
        network_type=low.family_model(AutoregressiveModel).network.type,
        teacher_forcing=low.family_model(AutoregressiveModel).teacher_forcing,
        sampling=sampling,
        network=network,
        num_params=network.params,
        **{**unset, **fields},
    )


FAMILY = Family(
    "autoregressive",
    AutoregressiveModel,
    check_autoregressive,
    autoregressive_networks,
    plan_autoregressive,
    Capabilities(mixed_precision=Refusal("not supported yet", "remove training.mixed_precision")),
)
