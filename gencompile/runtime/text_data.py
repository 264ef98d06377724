"""Text data for generated language models: text -> tokens -> windows -> tf.data.

`load_data` hands a config with a `tokenizer` here. The pipeline:

1. the text of the source (`gencompile.text.source_text`: a file, or the built-in
   arithmetic language generated from the seed);
2. the last `validation_split` of its characters is held out (contiguous, so no window
   of held-out text was seen in training);
3. the tokenizer is fitted on the training text exactly as the compiler fitted it; its
   sha256 must equal the one the compiler recorded (else the text changed since the build);
4. each part becomes windows of `context_length + 1` tokens (stride `context_length`);
   the training windows are streamed per epoch in a (seed, epoch)-seeded order, like
   every other data set (`data.epoch_stream`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gencompile.datafiles import encoding_advice
from gencompile.errors import RunError
from gencompile.runtime.pipeline import DataBundle, epoch_stream, fingerprint
from gencompile.runtime.preprocessing import Preprocessor
from gencompile.runtime.sources import config_value
from gencompile.text import Tokenizer, fit_tokenizer, source_text, split_text, windows


@dataclass(frozen=True)
class TextData:
    """What text metrics and samples need besides the windows."""

    tokenizer: Tokenizer
    held_out: str  # the held-out text
    held_out_ids: np.ndarray  # its tokens (the metrics count its characters per token)
    arithmetic: bool  # the built-in arithmetic language (validity can be checked)


def read_source_text(source: dict, seed: int) -> str:
    try:
        return source_text(source, seed)
    except FileNotFoundError:
        raise RunError(
            f"text file not found: {source.get('path')} (data.source.path); relative paths "
            "are resolved against the current directory"
        ) from None
    except (OSError, UnicodeDecodeError, LookupError) as err:
        advice = encoding_advice(err, source.get("encoding"))
        raise RunError(f"cannot read {source.get('path')} as text: {err}; {advice}") from None


def load_text_data(config: dict, seed: int) -> DataBundle:
    """Tokenize the source text into windows and stream them through tf.data."""
    source = config_value(config, "source", "data")
    tokenizer_config = config_value(config, "tokenizer", "data")
    context_length = int(config_value(config, "context_length", "data"))
    fraction = float(config_value(config, "validation_split", "data"))
    batch_size = int(config_value(config, "batch_size", "data"))
    text = read_source_text(source, seed)
    train_text, held_out = split_text(text, fraction)
    tokenizer = fit_tokenizer(tokenizer_config, train_text)
    if tokenizer.sha256 != tokenizer_config["sha256"]:
        raise RunError(
            f"the text of data.source gives another {tokenizer.type} vocabulary "
            f"({tokenizer.vocab_size} tokens) than when the project was built "
            f"({tokenizer_config['size']} tokens): the text changed; rebuild the project "
            "with `gencompile build` (or train the spec again)"
        )
    x_train = windows(tokenizer.encode(train_text), context_length)
    held_out_ids = tokenizer.encode(held_out)
    x_val = windows(held_out_ids, context_length)
    if len(x_train) == 0:
        raise RunError(
            f"the training text is shorter than context_length + 1 = {context_length + 1} "
            "tokens; use more text or a shorter context"
        )
    digest = fingerprint(x_train, x_val, config)
    train_tensors = tf.constant(x_train)

    def epochs(first: int, last: int, steps: int | None = None) -> tf.data.Dataset:
        """Batches of windows for epochs first..last-1, in a (seed, epoch)-seeded order."""
        return epoch_stream(train_tensors, len(x_train), batch_size, seed, first, last, steps)

    validation = None
    if len(x_val):
        validation = (
            tf.data.Dataset.from_tensor_slices(x_val).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        )
    shape = (context_length + 1,)
    return DataBundle(
        train=epochs(0, 1),
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=-(-len(x_train) // batch_size),
        validation=validation,
        x_train=x_train,
        x_val=x_val,
        y_train=None,
        y_val=None,
        element_shape=shape,
        num_classes=None,
        kind="text",
        preprocessor=Preprocessor("vector", shape),  # identity: tokens are not rescaled
        fingerprint=digest,
        source=dict(source),
        text=TextData(
            tokenizer=tokenizer,
            held_out=held_out,
            held_out_ids=held_out_ids,
            arithmetic=source.get("type") == "builtin" and source.get("name") == "arithmetic",
        ),
    )


def held_out_lines(data: DataBundle) -> list[str]:
    """Whole lines of the held-out text (the first, possibly cut, line dropped)."""
    lines = data.text.held_out.split("\n")
    return [line for line in lines[1:] if line]
