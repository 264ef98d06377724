"""Bad specs: every problem names its field path, its file:line:column, and says what is wrong.

Each case edits a small valid base spec (close to specs/vae_digits.yaml) in one place and
states where the problem must be reported. The location is given by `at`: a snippet that
occurs exactly once in the case's YAML text, with `^` marking the expected column (no `^`:
the snippet's first character). Line and column are computed from the case's own text, so
every case stays readable and does not depend on hand-counted line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import Problem, SpecError
from gencompile.spec import Spec, load_spec, load_spec_text
from gencompile.spec.families.flow import AffineCoupling
from gencompile.spec.loader import dump_yaml

FILE = "spec.yaml"

BASE = """\
spec_version: 1
name: vae-digits
seed: 42
data:
  source:
    type: builtin
    name: digits
  validation_split: 0.1
  preprocessing:
    scale: [0.0, 1.0]
  batch_size: 64
model:
  family: vae
  latent_dim: 8
  prior:
    type: normal
  encoder:
    mlp: [256, 128]
    activation: relu
  decoder:
    mlp: [128, 256]
    activation: relu
  likelihood:
    type: bernoulli
  losses:
    kl: {weight: 1.0, warmup_epochs: 5}
training:
  epochs: 60
  optimizer: {type: adam, learning_rate: 1.0e-3, clipnorm: 5.0}
evaluation:
  metrics: [elbo, iwae_nll]
"""

ENCODER_BODY = "    mlp: [256, 128]\n    activation: relu\n"
DECODER_BODY = "    mlp: [128, 256]\n    activation: relu\n"
SOURCE = "    type: builtin\n    name: digits\n"


def edit(old: str, new: str, text: str = BASE) -> str:
    """`text` with the one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def layers(*items: str) -> str:
    return "    layers:\n" + "".join(f"      - {item}\n" for item in items)


def encoder(*items: str, text: str = BASE) -> str:
    """The base with the encoder's body replaced by explicit layers."""
    return edit(ENCODER_BODY, layers(*items), text)


def decoder(*items: str, text: str = BASE) -> str:
    return edit(DECODER_BODY, layers(*items), text)


def vector_data(source: str) -> str:
    """The base on non-image data: a gaussian likelihood on standardized features."""
    text = edit(SOURCE, source)
    text = edit("    scale: [0.0, 1.0]\n", "    standardize: true\n", text)
    return edit("    type: bernoulli\n", "    type: gaussian\n", text)


MOONS = vector_data("    type: builtin\n    name: moons\n")

# An autoregressive language model of the built-in arithmetic language, and a PixelCNN.
LM = """\
spec_version: 1
name: charlm
seed: 42
data:
  source:
    type: builtin
    name: arithmetic
  batch_size: 64
model:
  family: autoregressive
  tokenizer: {type: char}
  context_length: 32
  network: {type: lstm, units: 64}
evaluation:
  metrics: [perplexity, validity]
"""
PIXELS = """\
spec_version: 1
name: pixels
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: autoregressive
  network:
    type: pixelcnn
    filters: 16
    likelihood: {type: categorical, bins: 17}
evaluation:
  metrics: [nll, bits_per_dim]
"""
TEXT_FILE = "    type: text\n    path: corpus.txt\n"
VQ_DIGITS = """\
spec_version: 1
name: vq-digits
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: vq_vae
  encoder:
    layers:
      - {type: conv2d, filters: 8, kernel_size: 3, strides: 2, activation: relu}
  quantizer: {type: vq, codebook_size: 8, embedding_dim: 4}
  decoder:
    layers:
      - {type: conv2d_transpose, filters: 8, kernel_size: 3, strides: 2, activation: relu}
  likelihood: {type: bernoulli}
"""


GAN_BASE = """\
spec_version: 1
name: gan-digits
seed: 42
data:
  source:
    type: builtin
    name: digits
  preprocessing:
    scale: [-1.0, 1.0]
  batch_size: 64
model:
  family: gan
  latent_dim: 16
  generator:
    mlp: [64]
  discriminator:
    mlp: [64]
  loss: {type: non_saturating}
training:
  epochs: 3
"""
GENERATOR_BODY = "  generator:\n    mlp: [64]\n"
DISCRIMINATOR_BODY = "  discriminator:\n    mlp: [64]\n"


def gan(*edits: tuple[str, str]) -> str:
    """The GAN base with each (old, new) edit applied."""
    text = GAN_BASE
    for old, new in edits:
        text = edit(old, new, text)
    return text


def network(name: str, *items: str) -> str:
    return f"  {name}:\n" + layers(*items)


def location(text: str, at: str) -> tuple[int, int]:
    """1-based (line, column) of the `^` in `at` (or of its start) within `text`."""
    needle = at.replace("^", "")
    assert text.count(needle) == 1, f"{needle!r} must occur exactly once in the case text"
    offset = text.index(needle) + (at.index("^") if "^" in at else 0)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


@dataclass
class Case:
    id: str
    text: str
    path: str  # the problem's field path, exactly
    at: str | None  # where it is reported (see `location`); None: no line is expected
    words: tuple[str, ...]  # must all occur in the message
    hint: tuple[str, ...] = ()  # must all occur in the hint (empty: not checked)
    count: int = 1  # problems reported in all
    lower: bool = False  # found when compiling (lower), not when validating
    check_column: bool = True
    marks: tuple = field(default_factory=tuple)


CASES = [
    # -- unknown keys and misspelled kinds ---------------------------------------------------
    Case(
        "unknown-top-level-key",
        BASE + "trainig:\n  epochs: 3\n",
        "trainig",
        "^trainig:",
        ("unknown key 'trainig'",),
        ("did you mean 'training'?",),
    ),
    Case(
        "unknown-nested-key",
        edit("  batch_size: 64", "  batch_sise: 64"),
        "data.batch_sise",
        "^batch_sise",
        ("unknown key 'batch_sise'",),
        ("did you mean 'batch_size'?",),
    ),
    Case(
        "unknown-key-no-close-match-lists-fields",
        edit("kl: {weight: 1.0, warmup_epochs: 5}", "kl: {weight: 1.0, zzz: 5}"),
        "model.losses.kl.zzz",
        "^zzz",
        ("unknown key 'zzz'",),
        ("expected one of", "weight", "warmup_epochs", "free_bits"),
    ),
    Case(
        "unknown-key-in-optimizer",
        edit("clipnorm: 5.0}", "clipnorm: 5.0, beta1: 0.5}"),
        "training.optimizer.beta1",
        "^beta1",
        ("unknown key 'beta1'",),
        ("did you mean 'beta_1'?",),
    ),
    Case(
        "unknown-key-in-layer-did-you-mean",
        encoder("{type: dense, units: 64, actvation: relu}"),
        "model.encoder.layers[0].actvation",
        "^actvation",
        ("unknown key 'actvation'",),
        ("did you mean 'activation'?",),
    ),
    Case(
        "key-named-like-its-type-tag",
        edit(SOURCE, "    type: npz\n    npz: x.npz\n"),
        "data.source.npz",
        "^npz: x.npz",
        ("unknown key 'npz'",),
        count=2,  # and data.source.path is required
    ),
    Case(
        "misspelled-family",
        edit("family: vae", "family: vea"),
        "model.family",
        "family: ^vea",
        ("unknown family 'vea'", "expected one of vae, mixture"),
        ("did you mean 'vae'?",),
    ),
    Case(
        "misspelled-layer-type",
        encoder("{type: dense, units: 64}", "{type: dens, units: 32}"),
        "model.encoder.layers[1].type",
        "type: ^dens,",
        ("unknown type 'dens'", "dense", "conv2d"),
        ("did you mean 'dense'?",),
    ),
    Case(
        "misspelled-likelihood",
        edit("type: bernoulli", "type: bernouli"),
        "model.likelihood.type",
        "type: ^bernouli",
        ("unknown type 'bernouli'", "gaussian", "logistic"),
        ("did you mean 'bernoulli'?",),
    ),
    Case(
        "misspelled-prior",
        edit("    type: normal", "    type: normall"),
        "model.prior.type",
        "type: ^normall",
        ("unknown type 'normall'", "mixture_of_gaussians"),
        ("did you mean 'normal'?",),
    ),
    Case(
        "misspelled-optimizer",
        edit("type: adam,", "type: adamm,"),
        "training.optimizer.type",
        "type: ^adamm",
        ("unknown type 'adamm'", "rmsprop", "sgd"),
        ("did you mean 'adam'?",),
    ),
    Case(
        "misspelled-schedule",
        edit("  epochs: 60\n", "  epochs: 60\n  schedule: {type: cosine_decy}\n"),
        "training.schedule.type",
        "type: ^cosine_decy",
        ("unknown type 'cosine_decy'", "piecewise_constant"),
        ("did you mean 'cosine_decay'?",),
    ),
    Case(
        "misspelled-data-source-type",
        edit("    type: builtin", "    type: buildin"),
        "data.source.type",
        "type: ^buildin",
        ("unknown type 'buildin'", "npz", "csv"),
        ("did you mean 'builtin'?",),
    ),
    Case(
        "misspelled-builtin-name",
        edit("    name: digits", "    name: digit"),
        "data.source.name",
        "name: ^digit",
        ("must be one of", "moons", "'digit'"),
        ("did you mean 'digits'?",),
    ),
    Case(
        "misspelled-activation",
        edit(DECODER_BODY, "    mlp: [128, 256]\n    activation: rleu\n"),
        "model.decoder.activation",
        "activation: ^rleu",
        ("must be one of", "gelu", "'rleu'"),
        ("did you mean 'relu'?",),
    ),
    Case(
        "misspelled-augmentation",
        edit("  batch_size: 64\n", "  batch_size: 64\n  augmentation:\n    - {type: random_flp}\n"),
        "data.augmentation[0].type",
        "type: ^random_flp",
        ("unknown type 'random_flp'", "random_rotation"),
        ("did you mean 'random_flip'?",),
    ),
    Case(
        "missing-type-tag",
        edit("    type: bernoulli\n", "    sigma: 0.5\n"),
        "model.likelihood",
        "^sigma: 0.5",
        ("needs a `type:` key",),
    ),
    # -- values out of range and of the wrong type --------------------------------------------
    Case(
        "negative-units",
        encoder("{type: dense, units: 64}", "{type: dense, units: -3}"),
        "model.encoder.layers[1].units",
        "units: ^-3",
        ("must be > 0", "(got -3)"),
    ),
    Case(
        "zero-batch-size",
        edit("batch_size: 64", "batch_size: 0"),
        "data.batch_size",
        "batch_size: ^0",
        ("must be > 0", "(got 0)"),
    ),
    Case(
        "dropout-rate-one",
        encoder("{type: dense, units: 64}", "{type: dropout, rate: 1.0}"),
        "model.encoder.layers[1].rate",
        "{type: dropout, rate: ^1.0}",
        ("must be < 1", "(got 1.0)"),
    ),
    Case(
        "validation-split-above-one",
        edit("validation_split: 0.1", "validation_split: 1.5"),
        "data.validation_split",
        "validation_split: ^1.5",
        ("must be < 1", "(got 1.5)"),
    ),
    Case(
        "negative-seed",
        edit("seed: 42", "seed: -1"),
        "seed",
        "seed: ^-1",
        ("must be >= 0", "(got -1)"),
    ),
    Case(
        "mixture-prior-one-component",
        edit("    type: normal\n", "    type: mixture_of_gaussians\n    components: 1\n"),
        "model.prior.components",
        "components: ^1",
        ("must be >= 2", "(got 1)"),
    ),
    Case(
        "string-for-int",
        edit("latent_dim: 8", "latent_dim: eight"),
        "model.latent_dim",
        "latent_dim: ^eight",
        ("must be an integer", "'eight'"),
    ),
    Case(
        "string-in-mlp-list",
        edit("mlp: [256, 128]", "mlp: [256, abc]"),
        "model.encoder.mlp[1]",
        "mlp: [256, ^abc]",
        ("must be an integer", "'abc'"),
    ),
    Case(
        "not-a-bool",
        edit("  epochs: 60\n", "  epochs: 60\n  mixed_precision: maybe\n"),
        "training.mixed_precision",
        "mixed_precision: ^maybe",
        ("must be true or false", "'maybe'"),
    ),
    Case(
        "list-expected",
        edit("metrics: [elbo, iwae_nll]", "metrics: elbo"),
        "evaluation.metrics",
        "metrics: ^elbo",
        ("must be a list", "'elbo'"),
    ),
    Case(
        "mapping-expected",
        edit("  encoder:\n" + ENCODER_BODY, "  encoder: [256]\n"),
        "model.encoder",
        "encoder: ^[256]",
        ("must be a mapping",),
    ),
    Case(
        "kernel-pair-with-zero",
        encoder("{type: conv2d, filters: 8, kernel_size: [3, 0]}"),
        "model.encoder.layers[0].kernel_size[1]",
        "kernel_size: [3, ^0]",
        ("must be > 0", "(got 0)"),
    ),
    Case(
        "zero-strides",
        encoder("{type: conv2d, filters: 8, kernel_size: 3, strides: 0}"),
        "model.encoder.layers[0].strides",
        "strides: ^0",
        ("must be > 0", "(got 0)"),
    ),
    Case(
        "custom-args-mapping-value",
        encoder("{type: custom, ref: 'pkg.mod:Block', args: {width: {a: 1}}, output_shape: [8]}"),
        "model.encoder.layers[0].args.width",
        "width: ^{a: 1}",
        ("(got {'a': 1})",),
    ),
    # -- versions, required fields, names -----------------------------------------------------
    Case(
        "wrong-spec-version",
        edit("spec_version: 1", "spec_version: 2"),
        "spec_version",
        "spec_version: ^2",
        ("unsupported spec_version 2", "reads spec_version 1"),
    ),
    Case(
        "missing-spec-version",
        edit("spec_version: 1\n", ""),
        "spec_version",
        "^name: vae-digits",
        ("is required",),
    ),
    Case(
        "missing-required-encoder",
        edit("  encoder:\n" + ENCODER_BODY, ""),
        "model.encoder",
        "^model:",
        ("is required",),
        check_column=False,
    ),
    Case(
        "uppercase-name",
        edit("name: vae-digits", "name: VAE-Digits"),
        "name",
        "name: ^VAE-Digits",
        ("lowercase identifier", "[a-z][a-z0-9_-]*", "'VAE-Digits'"),
    ),
    Case(
        "python-keyword-name",
        edit("name: vae-digits", "name: class"),
        "name",
        "name: ^class",
        ("'class' is a Python keyword",),
    ),
    Case(
        "reserved-name-keras",
        edit("name: vae-digits", "name: keras"),
        "name",
        "name: ^keras",
        ("'keras' would shadow the module keras",),
    ),
    Case(
        "reserved-name-of-the-generated-test",
        edit("name: vae-digits", "name: test-model"),
        "name",
        "name: ^test-model",
        ("'test-model' would shadow the module test_model",),
    ),
    Case(
        "bad-layer-name",
        encoder("{type: dense, units: 64, name: Hidden1}"),
        "model.encoder.layers[0].name",
        "name: ^Hidden1",
        ("lowercase identifier", "'Hidden1'"),
    ),
    Case(
        "duplicate-layer-names",
        encoder("{type: dense, units: 64, name: hidden}", "{type: dense, units: 32, name: hidden}"),
        "model.encoder.layers[1].name",
        "units: 32, name: ^hidden",
        ("layer name 'hidden' is used twice",),
        ("unique name",),
    ),
    # -- networks: one form only ---------------------------------------------------------------
    Case(
        "both-mlp-and-layers",
        edit(ENCODER_BODY, "    mlp: [256, 128]\n    layers: [{type: flatten}]\n"),
        "model.encoder.mlp",
        "^mlp: [256, 128]\n    layers",
        ("exactly one of `layers:` or `mlp:`, not both",),
    ),
    Case(
        "neither-mlp-nor-layers",
        edit(ENCODER_BODY, "    activation: relu\n"),
        "model.encoder",
        "^activation: relu\n  decoder",
        ("exactly one of `layers:` or `mlp:`",),
    ),
    Case(
        "activation-with-layers",
        edit(ENCODER_BODY, "    layers: [{type: flatten}]\n    activation: relu\n"),
        "model.encoder.activation",
        "^activation: relu\n  decoder",
        ("`activation` applies only to the `mlp:` shorthand",),
        check_column=False,
    ),
    Case(
        "dropout-with-layers",
        edit(ENCODER_BODY, "    layers: [{type: flatten}]\n    dropout: 0.1\n"),
        "model.encoder.dropout",
        "^dropout: 0.1",
        ("`dropout` applies only to the `mlp:` shorthand",),
        check_column=False,
    ),
    Case(
        "custom-layer-bad-ref",
        encoder("{type: custom, ref: 'pkg.mod.Block', output_shape: [8]}"),
        "model.encoder.layers[0].ref",
        "ref: ^'pkg.mod.Block'",
        ("must look like 'package.module:ClassName'", "'pkg.mod.Block'"),
    ),
    Case(
        "custom-layer-ref-module-is-a-keyword",
        encoder("{type: custom, ref: 'mylib.class:Block', output_shape: [8]}"),
        "model.encoder.layers[0].ref",
        "ref: ^'mylib.class:Block'",
        ("'class' in 'mylib.class:Block' is a Python keyword",),
        ("rename that module or class",),
    ),
    Case(
        "custom-layer-ref-class-is-a-keyword",
        encoder("{type: custom, ref: 'mylib.layers:None', output_shape: [8]}"),
        "model.encoder.layers[0].ref",
        "ref: ^'mylib.layers:None'",
        ("'None' in 'mylib.layers:None' is a Python keyword",),
    ),
    Case(
        "custom-layer-arg-is-a-keyword",
        encoder("{type: custom, ref: 'mylib.layers:Block', args: {lambda: 1}, output_shape: [8]}"),
        "model.encoder.layers[0].args.lambda",
        "args: {^lambda: 1}",
        ("argument name 'lambda' is a Python keyword", "give the class's argument another name"),
    ),
    # -- training options ----------------------------------------------------------------------
    Case(
        "piecewise-lengths-mismatch",
        edit(
            "  epochs: 60\n",
            "  epochs: 60\n"
            "  schedule: {type: piecewise_constant, boundaries: [100, 200], values: [0.1, 0.01]}\n",
        ),
        "training.schedule.values",
        "^values: [0.1, 0.01]",
        ("one more value than boundaries", "2 boundaries and 2 values"),
    ),
    Case(
        "two-clip-options",
        edit("clipnorm: 5.0}", "clipnorm: 5.0, clipvalue: 1.0}"),
        "training.optimizer.clipvalue",
        "^clipvalue: 1.0}",
        ("one of clipnorm, clipvalue, global_clipnorm", "'clipnorm', 'clipvalue'"),
    ),
    Case(
        "scale-and-standardize",
        edit("    scale: [0.0, 1.0]\n", "    scale: [0.0, 1.0]\n    standardize: true\n"),
        "data.preprocessing.standardize",
        "^standardize: true",
        ("either `scale` or `standardize`",),
    ),
    Case(
        "early-stopping-unknown-monitor",
        edit("  epochs: 60\n", "  epochs: 60\n  early_stopping: {monitor: val_los, patience: 5}\n"),
        "training.early_stopping.monitor",
        "monitor: ^val_los",
        ("'val_los' is not a logged metric", "val_kl"),
        ("did you mean 'val_loss'?",),
    ),
    Case(
        "early-stopping-validated-every-3-epochs",
        edit(
            "  epochs: 60\n",
            "  epochs: 60\n  validation_every_epochs: 3\n  early_stopping: {monitor: val_loss}\n",
        ),
        "training.validation_every_epochs",
        "^validation_every_epochs: 3",
        ("early_stopping watches val_loss, which needs validation every epoch (got 3)",),
    ),
    Case(
        "early-stopping-val-without-split",
        edit(
            "validation_split: 0.1",
            "validation_split: 0.0",
            edit("  epochs: 60\n", "  epochs: 60\n  early_stopping: {monitor: val_loss}\n"),
        ),
        "training.early_stopping.monitor",
        "monitor: ^val_loss",
        ("needs a validation split",),
        ("validation_split",),
        count=2,  # and the held-out metrics need a split too
    ),
    # -- cross-field checks --------------------------------------------------------------------
    Case(
        "builtin-argument-not-taken",
        edit(SOURCE, SOURCE + "    noise: 0.1\n"),
        "data.source.noise",
        "noise: ^0.1",
        ("builtin data set 'digits' takes no argument 'noise'",),
        ("no arguments",),
    ),
    Case(
        "builtin-argument-did-you-mean",
        MOONS.replace("    name: moons\n", "    name: moons\n    nosie: 0.1\n"),
        "data.source.nosie",
        "^nosie",
        ("unknown key 'nosie'",),
        ("did you mean 'noise'?",),
    ),
    Case(
        "conditional-on-unlabelled-npy",
        vector_data("    type: npy\n    path: x.npy\n").replace(
            "  losses:", "  conditional: {num_classes: 10}\n  losses:"
        ),
        "model.conditional",
        "conditional: ^{num_classes: 10}",
        ("conditional vae needs labelled data", "(npy) has no labels"),
        ("labelled source",),
    ),
    Case(
        "conditional-num-classes-mismatch",
        edit("  losses:", "  conditional:\n    num_classes: 3\n  losses:"),
        "model.conditional.num_classes",
        "num_classes: ^3",
        ("the data has 10 classes but num_classes is 3",),
        ("set num_classes: 10",),
    ),
    Case(
        "bernoulli-on-standardized-data",
        edit("    scale: [0.0, 1.0]\n", "    standardize: true\n"),
        "model.likelihood.type",
        "type: ^bernoulli",
        ("bernoulli likelihood models values in [0, 1]", "not scaled to [0, 1]"),
        ("scale: [0, 1]",),
    ),
    Case(
        "bits-per-dim-of-a-bernoulli-on-grey-digits",
        edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, bits_per_dim]"),
        "evaluation.metrics[1]",
        "^bits_per_dim]",
        ("bits_per_dim needs a normalised likelihood", "'digits' data (its 17 grey levels"),
        ("{type: categorical, bins: 17}", "drop bits_per_dim"),
    ),
    Case(
        "bits-per-dim-of-a-bernoulli-on-moons",
        edit("    type: gaussian\n", "    type: bernoulli\n", MOONS)
        .replace("    standardize: true\n", "    scale: [0.0, 1.0]\n")
        .replace("metrics: [elbo, iwae_nll]", "metrics: [bits_per_dim]"),
        "evaluation.metrics[0]",
        "^bits_per_dim]",
        ("'moons' data (its continuous values, not 0 and 1) is a cross-entropy",),
        ("{type: gaussian} or {type: logistic}",),
    ),
    Case(
        "unknown-metric",
        edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, iwae_nl]"),
        "evaluation.metrics[1]",
        "^iwae_nl]",
        ("metric 'iwae_nl' is not available for family vae", "bits_per_dim"),
        ("did you mean 'iwae_nll'?",),
    ),
    Case(
        "metric-for-another-data-set",
        edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, mode_coverage]"),
        "evaluation.metrics[1]",
        "^mode_coverage]",
        ("'mode_coverage' is defined for the built-in ring8 or grid25 data", "'digits'"),
        ("kid or precision_recall",),
    ),
    Case(
        "fd-digits-on-moons",
        MOONS.replace("metrics: [elbo, iwae_nll]", "metrics: [fd_digits]"),
        "evaluation.metrics[0]",
        "^fd_digits]",
        ("'fd_digits' is defined for the built-in digits data, not the built-in 'moons'",),
        ("energy_distance (vectors)",),
    ),
    Case(
        "vector-metric-on-images",
        edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, energy_distance]"),
        "evaluation.metrics[1]",
        "^energy_distance]",
        ("'energy_distance' is computed on low-dimensional vectors", "image data"),
        ("fd_digits (digits), fid or kid",),
        lower=True,
    ),
    Case(
        "image-metric-on-vectors",
        MOONS.replace("metrics: [elbo, iwae_nll]", "metrics: [elbo, inception_score]"),
        "evaluation.metrics[1]",
        "^inception_score]",
        ("'inception_score' compares images through InceptionV3", "vector data"),
        ("energy_distance",),
        lower=True,
    ),
    # -- YAML itself ---------------------------------------------------------------------------
    Case(
        "duplicate-yaml-key",
        edit("  latent_dim: 8\n", "  latent_dim: 8\n  latent_dim: 4\n"),
        "model.latent_dim",
        "^latent_dim: 4",
        ("duplicate key 'latent_dim'",),
    ),
    Case(
        "invalid-yaml-indentation",
        edit("  latent_dim: 8\n", "  latent_dim: 8\n bad_indent: 1\n"),
        "",
        "^ bad_indent",
        ("invalid YAML",),
        check_column=False,
    ),
    Case(
        "invalid-yaml-tab",
        edit("  latent_dim: 8\n", "\tlatent_dim: 8\n"),
        "",
        "^\tlatent_dim",
        ("invalid YAML", "'\\t'"),
    ),
    Case(
        "invalid-yaml-unclosed-quote",
        edit("name: vae-digits", "name: 'vae-digits"),
        "",
        None,
        ("invalid YAML",),
    ),
    Case("empty-file", "", "", None, ("spec is empty",)),
    Case("only-comments", "# a spec\n# to be written\n", "", None, ("spec is empty",)),
    Case(
        "list-document",
        "- spec_version: 1\n- name: x\n",
        "",
        "^- spec_version",
        ("must be a mapping",),
    ),
    Case("scalar-document", "vae\n", "", "^vae", ("must be a mapping",)),
    Case(
        "unsafe-yaml-tag",
        edit("seed: 42", "seed: !!python/name:os.getpid ''"),
        "",
        "seed: ^!!python",
        ("invalid YAML", "python/name:os.getpid"),
    ),
    # -- found by the compiler (shapes, data) ---------------------------------------------------
    Case(
        "reshape-changes-size",
        decoder("{type: dense, units: 256}", "{type: reshape, target_shape: [3, 3, 64]}"),
        "model.decoder.layers[1]",
        "- ^{type: reshape",
        ("reshape to (3, 3, 64) (576 values) from (256,) (256 values)", "preserve"),
        lower=True,
    ),
    Case(
        "decoder-body-not-projectable",
        decoder("{type: dense, units: 256}", "{type: reshape, target_shape: [4, 4, 16]}"),
        "model.decoder.layers[1]",
        "- ^{type: reshape",
        ("ends with shape (4, 4, 16)", "cannot be projected", "(8, 8, 1)"),
        ("conv2d_transpose",),
        lower=True,
    ),
    Case(
        "conv-kernel-larger-than-input",
        encoder(
            "{type: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: valid}",
            "{type: conv2d, filters: 8, kernel_size: 5, padding: valid}",
        ),
        "model.encoder.layers[1]",
        "- ^{type: conv2d, filters: 8, kernel_size: 5",
        ("kernel 5 is larger than the input's size 3", "padding valid"),
        lower=True,
    ),
    Case(
        "residual-changes-shape",
        encoder("{type: dense, units: 32}", "{type: residual, layers: [{type: dense, units: 16}]}"),
        "model.encoder.layers[1]",
        "- ^{type: residual",
        ("residual block must keep its input's shape (32,)", "ends with (16,)"),
        lower=True,
    ),
    Case(
        "shape-error-inside-residual",
        encoder(
            "{type: dense, units: 32}",
            "{type: residual, layers: [{type: dense, units: 32},"
            " {type: reshape, target_shape: [4, 9]}]}",
        ),
        "model.encoder.layers[1].layers[1]",
        "^{type: reshape",
        ("reshape to (4, 9) (36 values) from (32,)",),
        lower=True,
    ),
    Case(
        "group-norm-groups-do-not-divide",
        encoder("{type: conv2d, filters: 12, kernel_size: 3}", "{type: group_norm, groups: 8}"),
        "model.encoder.layers[1]",
        "- ^{type: group_norm",
        ("group_norm with 8 groups", "divisible by 8", "has 12"),
        lower=True,
    ),
    Case(
        "recurrent-layer-on-images",
        encoder("{type: lstm, units: 16}"),
        "model.encoder.layers[0]",
        "- ^{type: lstm",
        ("lstm needs a sequence", "(8, 8, 1)"),
        lower=True,
    ),
    Case(
        "augmentation-on-moons",
        MOONS.replace(
            "  batch_size: 64\n", "  batch_size: 64\n  augmentation:\n    - {type: random_flip}\n"
        ),
        "data.augmentation",
        "^- {type: random_flip}",
        ("augmentation layers apply to images", "vector data of shape (2,)"),
        ("remove data.augmentation",),
        lower=True,
    ),
    Case(
        "free-bits-with-mixture-prior",
        edit(
            "    type: normal\n",
            "    type: mixture_of_gaussians\n",
            edit("kl: {weight: 1.0, warmup_epochs: 5}", "kl: {weight: 1.0, free_bits: 0.5}"),
        ),
        "model.losses.kl.free_bits",
        "free_bits: ^0.5",
        ("free bits apply to the analytic", "normal prior"),
        ("free_bits: 0",),
        lower=True,
    ),
    Case(
        "npz-file-not-found",
        vector_data("    type: npz\n    path: no/such/dir/x.npz\n"),
        "data.source.path",
        "path: ^no/such",
        ("file not found: no/such/dir/x.npz",),
        ("relative to the working directory",),
        lower=True,
    ),
    # -- the autoregressive family ---------------------------------------------------------------
    Case(
        "ar-pixelcnn-on-text",
        edit("{type: lstm, units: 64}", "{type: pixelcnn}", LM),
        "model.network.type",
        "type: ^pixelcnn",
        ("a pixelcnn models images", "is text"),
        ("lstm",),
    ),
    Case(
        "ar-lstm-on-images",
        edit("    type: pixelcnn\n", "    type: lstm\n", PIXELS).replace(
            "    filters: 16\n    likelihood: {type: categorical, bins: 17}\n", "    units: 16\n"
        ),
        "model.network.type",
        "type: ^lstm",
        ("an lstm network models token sequences", "builtin digits", "not text"),
        ("pixelcnn",),
    ),
    Case(
        "ar-misspelled-network",
        edit("{type: lstm, units: 64}", "{type: lstn, units: 64}", LM),
        "model.network.type",
        "type: ^lstn",
        ("unknown type 'lstn'", "transformer", "pixelcnn"),
        ("did you mean 'lstm'?",),
    ),
    Case(
        "ar-validity-on-a-text-file",
        edit("    type: builtin\n    name: arithmetic\n", TEXT_FILE, LM),
        "evaluation.metrics[1]",
        "^validity]",
        ("'validity' checks sums of the built-in arithmetic language", "text"),
        ("name: arithmetic",),
    ),
    Case(
        "ar-image-metric-on-text",
        edit("metrics: [perplexity, validity]", "metrics: [perplexity, bits_per_dim]", LM),
        "evaluation.metrics[1]",
        "^bits_per_dim]",
        ("metric 'bits_per_dim' does not apply to text",),
        ("perplexity", "bits_per_char"),
    ),
    Case(
        "ar-text-metric-on-images",
        edit("metrics: [nll, bits_per_dim]", "metrics: [nll, perplexity]", PIXELS),
        "evaluation.metrics[1]",
        "^perplexity]",
        ("metric 'perplexity' does not apply to images",),
        ("bits_per_dim",),
    ),
    Case(
        "ar-tokenizer-on-images",
        edit("  network:\n", "  tokenizer: {type: word}\n  network:\n", PIXELS),
        "model.tokenizer",
        "tokenizer: ^{type: word}",
        ("`tokenizer` applies to text data", "not text"),
        ("remove model.tokenizer",),
    ),
    Case(
        "ar-pixelcnn-on-unscaled-images",
        edit("  preprocessing: {scale: [0.0, 1.0]}\n", "", PIXELS),
        "model.network.likelihood",
        "likelihood: ^{type: categorical",
        ("read from data scaled to [0, 1]",),
        ("scale: [0, 1]",),
    ),
    Case(
        "ar-pixelcnn-even-kernel",
        edit("    filters: 16\n", "    filters: 16\n    kernel_size: 4\n", PIXELS),
        "model.network.kernel_size",
        "^kernel_size: 4",
        ("must be odd (got 4)",),
    ),
    Case(
        "ar-transformer-heads-do-not-divide",
        edit("{type: lstm, units: 64}", "{type: transformer, d_model: 30, heads: 4}", LM),
        "model.network.heads",
        "^heads: 4}",
        ("d_model (30) must be divisible by heads (4)",),
    ),
    Case(
        "ar-teacher-forcing-zero",
        edit("  context_length: 32\n", "  context_length: 32\n  teacher_forcing: 0\n", LM),
        "model.teacher_forcing",
        "teacher_forcing: ^0",
        ("must be > 0", "(got 0)"),
    ),
    Case(
        "ar-scaled-text",
        edit("  batch_size: 64\n", "  batch_size: 64\n  preprocessing: {standardize: true}\n", LM),
        "data.preprocessing",
        "preprocessing: ^{standardize: true}",
        ("text is tokenized, not scaled",),
        ("remove data.preprocessing",),
    ),
    Case(
        "ar-png-samples-of-text",
        LM + "output:\n  samples: {count: 4, format: png}\n",
        "output.samples.format",
        "format: ^png}",
        ("samples of text are written as text, not png",),
        ("format: txt",),
    ),
    Case(
        "ar-arithmetic-argument-not-taken",
        edit("    name: arithmetic\n", "    name: arithmetic\n    noise: 0.1\n", LM),
        "data.source.noise",
        "noise: ^0.1",
        ("builtin data set 'arithmetic' takes no argument 'noise'",),
        ("n_samples, max_operand",),
    ),
    Case(
        "vae-on-text",
        edit("    type: builtin\n    name: digits\n", TEXT_FILE).replace(
            "  preprocessing:\n    scale: [0.0, 1.0]\n", ""
        ),
        "model.family",
        "family: ^vae",
        ("data.source is text, which the vae family does not model",),
        ("family: autoregressive",),
        count=2,  # and the bernoulli likelihood's data is not scaled to [0, 1]
    ),
    Case(
        "ar-text-file-not-found",
        edit("    type: builtin\n    name: arithmetic\n", TEXT_FILE, LM).replace(
            "[perplexity, validity]", "[perplexity]"
        ),
        "data.source.path",
        "path: ^corpus.txt",
        ("file not found: corpus.txt",),
        lower=True,
    ),
    Case(
        "ar-mixed-precision",
        LM + "training:\n  mixed_precision: true\n",
        "training.mixed_precision",
        "mixed_precision: ^true",
        ("mixed precision is not available for the autoregressive family",),
        lower=True,
    ),
    Case(
        "ar-bits-per-char-of-word-tokens",
        edit("{type: char}", "{type: word, vocab_size: 50}", LM).replace(
            "[perplexity, validity]", "[perplexity, bits_per_char]"
        ),
        "evaluation.metrics[1]",
        "^bits_per_char]",
        ("'bits_per_char' needs the model's probability of every held-out character", "<unk>"),
        ("use perplexity", "{type: char}", "{type: byte}"),
    ),
    # -- likelihoods that must hold each of the data's levels ------------------------------
    Case(
        "ar-pixelcnn-bins-do-not-fit-the-levels",
        edit("bins: 17", "bins: 5", PIXELS),
        "model.network.likelihood.bins",
        "bins: ^5}",
        ("the data has 17 levels (0..16), which 5 bins cannot hold exactly",),
        ("use bins: 17",),
        lower=True,
    ),
    Case(
        "ar-bernoulli-pixelcnn-nll-of-grey-levels",
        edit("{type: categorical, bins: 17}", "{type: bernoulli}", PIXELS),
        "evaluation.metrics[0]",
        "[^nll,",
        ("metric 'nll' would score the images thresholded at 0.5", "has 17 levels"),
        ("likelihood: {type: categorical, bins: 17}", "remove 'nll'"),
        count=2,  # and bits_per_dim
        lower=True,
    ),
    Case(
        "ar-bernoulli-pixelcnn-default-metrics-of-grey-levels",
        edit(
            "{type: categorical, bins: 17}",
            "{type: bernoulli}",
            PIXELS.replace("evaluation:\n  metrics: [nll, bits_per_dim]\n", ""),
        ),
        "model.network.likelihood",
        "likelihood: ^{type: bernoulli}",
        ("the default metrics nll and bits_per_dim would score the images thresholded",),
        ("bins: 17", "list evaluation.metrics without them"),
        lower=True,
    ),
    Case(
        "ar-pixelcnn-bins-on-shapes2d",
        edit("name: digits}", "name: shapes2d}", PIXELS).replace("bins: 17", "bins: 256"),
        "model.network.likelihood.bins",
        "bins: ^256}",
        ("the data has 5 levels (0..4), which 256 bins cannot hold exactly",),
        ("use bins: 5",),
        lower=True,
    ),
    Case(
        "vae-categorical-bins-do-not-fit-the-levels",
        edit("    type: bernoulli\n", "    type: categorical\n    bins: 5\n"),
        "model.likelihood.bins",
        "bins: ^5",
        ("the data has 17 levels (0..16), which 5 bins cannot hold exactly",),
        ("use bins: 17",),
        lower=True,
    ),
    Case(
        "vq-vae-categorical-bins-do-not-fit-the-levels",
        VQ_DIGITS.replace("{type: bernoulli}", "{type: categorical, bins: 5}"),
        "model.likelihood.bins",
        "bins: ^5}",
        ("the data has 17 levels (0..16), which 5 bins cannot hold exactly",),
        ("use bins: 17",),
        lower=True,
    ),
    Case(
        "csv-file-not-found",
        vector_data("    type: csv\n    path: no/such/table.csv\n"),
        "data.source.path",
        "path: ^no/such",
        ("file not found: no/such/table.csv",),
        lower=True,
    ),
    # -- the gan family ---------------------------------------------------------------------------
    Case(
        "gan-conditional-on-unlabelled-data",
        gan(
            ("    name: digits\n", "    name: swiss_roll\n"),
            ("    scale: [-1.0, 1.0]\n", "    standardize: true\n"),
            ("  loss: {type: non_saturating}\n", "  conditional: {num_classes: 10}\n"),
        ),
        "model.conditional",
        "conditional: ^{num_classes: 10}",
        ("a conditional gan needs labelled data",),
        ("labelled source",),
    ),
    Case(
        "gan-embedding-dim-with-one-hot",
        gan(
            (
                "  loss: {type: non_saturating}\n",
                "  conditional: {num_classes: 10, embedding_dim: 8}\n",
            )
        ),
        "model.conditional.embedding_dim",
        None,
        ("applies only to encoding: embedding",),
    ),
    Case(
        "gan-unknown-loss",
        gan(("{type: non_saturating}", "{type: hinge_loss}")),
        "model.loss.type",
        "type: ^hinge_loss",
        ("must be one of", "wasserstein"),
        ("did you mean 'hinge'?",),
    ),
    Case(
        "gan-uniform-prior-bounds",
        gan(
            (
                "  latent_dim: 16\n",
                "  latent_dim: 16\n  prior: {type: uniform, low: 1.0, high: 0.0}\n",
            )
        ),
        "model.prior.high",
        None,
        ("must be greater than low",),
    ),
    Case(
        "optimizers-for-a-one-optimizer-family",
        edit(
            "  optimizer: {type: adam",
            "  optimizers: {generator: {type: sgd}}\n  optimizer: {type: adam",
        ),
        "training.optimizers",
        "optimizers: ^{generator",
        ("the vae family trains with one optimizer",),
        ("use training.optimizer",),
    ),
    Case(
        "gan-optimizer-unused",
        gan(
            (
                "  epochs: 3\n",
                "  epochs: 3\n  optimizer: {type: adam}\n  optimizers:\n"
                "    generator: {type: adam}\n    discriminator: {type: sgd}\n",
            )
        ),
        "training.optimizer",
        "optimizer: ^{type: adam}",
        ("unused: training.optimizers sets the generator and the discriminator optimizers",),
        ("remove training.optimizer",),
    ),
    Case(
        "gan-conv-generator-ends-too-small",
        gan(
            (
                GENERATOR_BODY,
                network(
                    "generator",
                    "{type: dense, units: 128}",
                    "{type: reshape, target_shape: [2, 2, 32]}",
                    "{type: conv2d_transpose, filters: 16, kernel_size: 3, strides: 2}",
                ),
            )
        ),
        "model.generator.layers[2]",
        "- ^{type: conv2d_transpose",
        ("the generator's body ends with shape (4, 4, 16)", "the data's shape (8, 8, 1)"),
        ("conv2d_transpose with strides 2",),
        lower=True,
    ),
    Case(
        "gan-generator-ends-in-a-sequence",
        gan((GENERATOR_BODY, network("generator", "{type: reshape, target_shape: [4, 4]}"))),
        "model.generator.layers[0]",
        "- ^{type: reshape",
        ("ends with shape (4, 4)",),
        ("flat vector",),
        lower=True,
    ),
    Case(
        "gan-sigmoid-head-with-wgan-gp",
        gan(
            ("{type: non_saturating}", "{type: wasserstein}\n  gradient_penalty: {type: wgan_gp}"),
            (
                DISCRIMINATOR_BODY,
                network(
                    "discriminator",
                    "{type: dense, units: 64, activation: relu}",
                    "{type: dense, units: 1, activation: sigmoid}",
                ),
            ),
        ),
        "model.discriminator.layers[1]",
        "- ^{type: dense, units: 1",
        ("ends in a single unit with a sigmoid", "appends the output layer", "unbounded"),
        ("remove this layer",),
        lower=True,
    ),
    Case(
        "gan-label-smoothing-with-hinge",
        gan(("{type: non_saturating}", "{type: hinge}\n  label_smoothing: 0.1")),
        "model.label_smoothing",
        "label_smoothing: ^0.1",
        ("the hinge loss has no labels",),
        ("set label_smoothing: 0",),
        lower=True,
    ),
    Case(
        "gan-unconstrained-wasserstein-critic",
        gan(("{type: non_saturating}", "{type: wasserstein}")),
        "model.loss.type",
        "type: ^wasserstein",
        ("must be kept 1-Lipschitz",),
        ("wgan_gp", "spectral_norm: true"),
        lower=True,
    ),
    Case(
        "gan-wgan-gp-with-batch-norm",
        gan(
            ("{type: non_saturating}", "{type: wasserstein}\n  gradient_penalty: {type: wgan_gp}"),
            (
                DISCRIMINATOR_BODY,
                network("discriminator", "{type: dense, units: 64}", "{type: batch_norm}"),
            ),
        ),
        "model.discriminator.layers[1]",
        "- ^{type: batch_norm}",
        ("batch normalisation mixes the examples", "WGAN-GP"),
        ("layer_norm",),
        lower=True,
    ),
    Case(
        "gan-sigmoid-output-on-data-in-minus-one-one",
        gan(("  loss: {type: non_saturating}\n", "  output_activation: sigmoid\n")),
        "model.output_activation",
        "output_activation: ^sigmoid",
        ("a sigmoid output lies in (0, 1)", "data is scaled to [-1, 1]"),
        ("scale: [0, 1]", "output_activation: auto"),
        lower=True,
    ),
]

# -- the diffusion family ----------------------------------------------------------------------

DIFFUSION = """\
spec_version: 1
name: diffusion-digits
data:
  source:
    type: builtin
    name: digits
  preprocessing:
    scale: [-1.0, 1.0]
model:
  family: diffusion
  timesteps: 100
  schedule: {type: linear, beta_start: 1.0e-4, beta_end: 0.02}
  prediction: epsilon
  denoiser:
    type: unet
    widths: [16, 32]
    attention: [false, true]
  sampler: {type: ddim, steps: 20, eta: 0.0}
"""


def diffusion(old: str, new: str, text: str = DIFFUSION) -> str:
    return edit(old, new, text)


DIFFUSION_ON_MOONS = diffusion(
    SOURCE,
    "    type: builtin\n    name: moons\n",
    diffusion("scale: [-1.0, 1.0]", "standardize: true"),
)

CASES += [
    Case(
        "diffusion-misspelled-denoiser",
        diffusion("type: unet", "type: unnet"),
        "model.denoiser.type",
        "type: ^unnet",
        ("unknown type 'unnet'", "mlp"),
        ("did you mean 'unet'?",),
    ),
    Case(
        "diffusion-misspelled-prediction",
        diffusion("prediction: epsilon", "prediction: epsilom"),
        "model.prediction",
        "prediction: ^epsilom",
        ("must be one of epsilon, v, x0",),
        ("did you mean 'epsilon'?",),
    ),
    Case(
        "diffusion-eta-above-one",
        diffusion("eta: 0.0", "eta: 1.5"),
        "model.sampler.eta",
        "eta: ^1.5",
        ("must be <= 1", "(got 1.5)"),
    ),
    Case(
        "diffusion-unknown-key",
        diffusion("  timesteps: 100", "  timestep: 100"),
        "model.timestep",
        "^timestep: 100",
        ("unknown key 'timestep'",),
        ("did you mean 'timesteps'?",),
    ),
    Case(
        "diffusion-metric-of-another-family",
        DIFFUSION + "evaluation:\n  metrics: [elbo]\n",
        "evaluation.metrics[0]",
        "metrics: [^elbo]",
        ("metric 'elbo' is not available for family diffusion", "denoising_loss"),
    ),
    Case(
        "diffusion-conditional-on-unlabelled-data",
        diffusion(
            "    name: moons\n",
            "    name: swiss_roll\n",
            DIFFUSION_ON_MOONS.replace("  sampler:", "  conditional: {num_classes: 2}\n  sampler:"),
        ),
        "model.conditional",
        "conditional: ^{num_classes: 2}",
        ("conditional diffusion needs labelled data", "(builtin) has no labels"),
        ("labelled source",),
    ),
    Case(
        "diffusion-ddim-steps-above-timesteps",
        diffusion("steps: 20", "steps: 200"),
        "model.sampler.steps",
        "steps: ^200",
        ("DDIM cannot take 200 steps through 100 timesteps",),
        ("at most 100 steps",),
        lower=True,
    ),
    Case(
        "diffusion-unet-on-vector-data",
        DIFFUSION_ON_MOONS,
        "model.denoiser.type",
        "type: ^unet",
        ("a U-Net denoises images", "vector data of shape (2,)"),
        ("{type: mlp}",),
        lower=True,
    ),
    Case(
        "diffusion-unet-levels-do-not-divide-the-image",
        diffusion("widths: [16, 32]", "widths: [8, 8, 8, 8, 8]").replace(
            "attention: [false, true]", "attention: [false, false, false, false, true]"
        ),
        "model.denoiser.widths",
        "widths: ^[8, 8, 8, 8, 8]",
        ("halve the resolution 4 times", "divisible by 16", "8 x 8"),
        ("at most 4 widths",),
        lower=True,
    ),
    Case(
        "diffusion-unet-groups-do-not-divide-a-width",
        diffusion("widths: [16, 32]", "widths: [16, 36]"),
        "model.denoiser.widths[1]",
        "widths: [16, ^36]",
        ("width 36 is not divisible by 8",),
        ("multiple of 8",),
        lower=True,
    ),
    Case(
        "diffusion-unet-attention-per-level",
        diffusion("attention: [false, true]", "attention: [true]"),
        "model.denoiser.attention",
        "attention: ^[true]",
        ("one entry per level: 2 widths but 1 attention flags",),
        ("give 2 true/false values",),
        lower=True,
    ),
    Case(
        "diffusion-odd-time-embedding",
        diffusion(
            "    attention: [false, true]\n",
            "    attention: [false, true]\n    time_embedding: 33\n",
        ),
        "model.denoiser.time_embedding",
        "time_embedding: ^33",
        ("time_embedding must be even (got 33)",),
        ("use 34",),
        lower=True,
    ),
    Case(
        "diffusion-linear-betas-decreasing",
        diffusion("beta_start: 1.0e-4, beta_end: 0.02", "beta_start: 0.02, beta_end: 1.0e-4"),
        "model.schedule.beta_end",
        "beta_end: ^1.0e-4",
        ("beta_end (0.0001) must be larger than beta_start (0.02)",),
        ("beta_start: 1.0e-4, beta_end: 0.02",),
        lower=True,
    ),
]


# -- the flow family ---------------------------------------------------------------------------

FLOW_MOONS = """\
spec_version: 1
name: flow-moons
data:
  source: {type: builtin, name: moons}
  preprocessing: {standardize: true}
model:
  family: flow
  transforms:
    - {type: affine_coupling, hidden: [16], mask: alternating}
"""

FLOW_DIGITS = """\
spec_version: 1
name: flow-digits
data:
  source: {type: builtin, name: digits}
  preprocessing: {scale: [0.0, 1.0]}
model:
  family: flow
  dequantization: {type: uniform, bins: 17}
  transforms:
    - {type: affine_coupling, hidden: [16], mask: checkerboard}
"""

GMM = """\
spec_version: 1
name: gmm
data:
  source: {type: builtin, name: moons, n_samples: 20}
  preprocessing: {standardize: true}
model:
  family: mixture
  components: 32
"""

COUPLING = "    - {type: affine_coupling, hidden: [16], mask: alternating}\n"
CHECKERBOARD = "    - {type: affine_coupling, hidden: [16], mask: checkerboard}\n"


def flow_moons(transforms: str) -> str:
    """The moons flow with its transform list replaced."""
    return edit(COUPLING, transforms, FLOW_MOONS)


def flow_digits(transforms: str) -> str:
    return edit(CHECKERBOARD, transforms, FLOW_DIGITS)


CASES += [
    Case(
        "flow-misspelled-transform",
        flow_moons("    - {type: afine_coupling, hidden: [16]}\n"),
        "model.transforms[0].type",
        "type: ^afine_coupling",
        ("unknown type 'afine_coupling'", "actnorm", "invertible_dense", "maf"),
        ("did you mean 'affine_coupling'?",),
    ),
    Case(
        "flow-unknown-key-in-transform",
        flow_moons(COUPLING + "    - {type: actnorm, scale: 2.0}\n"),
        "model.transforms[1].scale",
        "actnorm, ^scale",
        ("unknown key 'scale'",),
    ),
    Case(
        "flow-negative-clamp",
        flow_moons("    - {type: affine_coupling, hidden: [16], clamp: -1.0}\n"),
        "model.transforms[0].clamp",
        "clamp: ^-1.0",
        ("must be > 0", "(got -1.0)"),
    ),
    Case(
        "flow-repeat-block-zero-times",
        flow_moons("    - {type: repeat, times: 0, transforms: [{type: actnorm}]}\n"),
        "model.transforms[0].times",
        "times: ^0",
        ("must be >= 1", "(got 0)"),
    ),
    Case(
        "flow-maf-without-hidden-layers",
        flow_moons("    - {type: maf, hidden: []}\n"),
        "model.transforms[0].hidden",
        "hidden: ^[]",
        ("at least 1",),
    ),
    Case(
        "flow-unknown-dequantization",
        edit("{type: uniform, bins: 17}", "{type: unifrom, bins: 17}", FLOW_DIGITS),
        "model.dequantization.type",
        "type: ^unifrom",
        ("must be one of uniform", "'unifrom'"),
        ("did you mean 'uniform'?",),
    ),
    Case(
        "flow-metric-of-another-family",
        FLOW_MOONS + "evaluation:\n  metrics: [nll, elbo]\n",
        "evaluation.metrics[1]",
        "^elbo]",
        ("metric 'elbo' is not available for family flow", "bits_per_dim"),
    ),
    Case(
        "flow-checkerboard-on-vectors",
        flow_moons("    - {type: affine_coupling, hidden: [16], mask: checkerboard}\n"),
        "model.transforms[0].mask",
        "mask: ^checkerboard",
        ("checkerboard mask needs image data", "vector (2,)"),
        ("mask: alternating",),
        lower=True,
    ),
    Case(
        "flow-alternating-on-images",
        flow_digits("    - {type: affine_coupling, hidden: [16], mask: alternating}\n"),
        "model.transforms[0].mask",
        "mask: ^alternating",
        ("alternating mask splits the features of vectors", "image (8, 8, 1)"),
        ("mask: checkerboard", "mask: channel"),
        lower=True,
    ),
    Case(
        "flow-channel-mask-on-one-channel",
        flow_digits("    - {type: affine_coupling, hidden: [16], mask: channel}\n"),
        "model.transforms[0].mask",
        "mask: ^channel",
        ("channel mask splits the channels", "(8, 8, 1)"),
        ("squeeze",),
        lower=True,
    ),
    Case(
        "flow-dequantization-of-continuous-data",
        edit("  family: flow\n", "  family: flow\n  dequantization: {type: uniform}\n", FLOW_MOONS),
        "model.dequantization",
        "dequantization: ^{type: uniform}",
        ("dequantization turns discrete data into a density", "'moons' is continuous"),
        ("remove model.dequantization",),
        lower=True,
    ),
    Case(
        "flow-dequantization-bins-do-not-fit-the-levels",
        edit("bins: 17", "bins: 256", FLOW_DIGITS),
        "model.dequantization.bins",
        "bins: ^256",
        ("the data has 17 levels (0..16)", "256 bins"),
        ("use bins: 17",),
        lower=True,
    ),
    Case(
        "flow-dequantization-of-standardized-data",
        edit("scale: [0.0, 1.0]}", "standardize: true}", FLOW_DIGITS),
        "model.dequantization",
        "dequantization: ^{type: uniform",
        ("not scaled to [0, 1]",),
        ("scale: [0, 1]",),
        lower=True,
    ),
    Case(
        "flow-squeeze-on-vectors",
        flow_moons(COUPLING + "    - {type: squeeze}\n"),
        "model.transforms[1]",
        "- ^{type: squeeze}",
        ("squeeze reshapes images", "vector (2,)"),
        lower=True,
    ),
    Case(
        "flow-squeeze-of-an-odd-size",
        flow_digits(CHECKERBOARD + "    - {type: squeeze, repeat: 4}\n"),
        "model.transforms[1]",
        "- ^{type: squeeze, repeat: 4}",
        ("even height and width", "(1, 1, 64)"),
        lower=True,
    ),
    Case(
        "flow-permutation-of-one-channel",
        flow_digits(CHECKERBOARD + "    - {type: permutation}\n"),
        "model.transforms[1]",
        "- ^{type: permutation}",
        ("permutation of a single channel does nothing",),
        ("squeeze",),
        lower=True,
    ),
    Case(
        "flow-logit-not-first",
        flow_digits(CHECKERBOARD + "    - {type: logit}\n"),
        "model.transforms[1].type",
        "{type: ^logit}",
        ("must be the first transform",),
        lower=True,
    ),
    Case(
        "flow-hidden-body-not-projectable",
        flow_digits(
            "    - type: affine_coupling\n"
            "      mask: checkerboard\n"
            "      hidden: {layers: [{type: conv2d, filters: 8, kernel_size: 3, strides: 2}]}\n"
        ),
        "model.transforms[0].hidden.layers[0]",
        "[^{type: conv2d",
        ("ends with shape (4, 4, 8)", "shift and scale of shape (8, 8, 1)"),
        ("conv2d, padding same",),
        lower=True,
    ),
    Case(
        "flow-coupling-activation-beside-an-mlp-network",
        flow_moons(
            "    - type: affine_coupling\n      hidden: {mlp: [64, 64]}\n      activation: tanh\n"
        ),
        "model.transforms[0].activation",
        "^activation: tanh",
        ("applies to a `hidden` list of widths", "`activation` inside hidden"),
    ),
    Case(
        "flow-coupling-activation-beside-layers",
        flow_moons(
            "    - type: affine_coupling\n"
            "      hidden: {layers: [{type: dense, units: 8}]}\n"
            "      activation: gelu\n"
        ),
        "model.transforms[0].activation",
        "^activation: gelu",
        ("this hidden is a network", "each layer's activation"),
    ),
    Case(
        "mixture-more-components-than-training-examples",
        GMM,
        "model.components",
        "components: ^32",
        ("32 components need at least 32 training examples", "the data leaves 18"),
        ("use at most 18 components",),
    ),
    Case(
        "mixture-more-components-than-a-fraction-of-digits",
        edit("moons, n_samples: 20}", "digits, fraction: 0.01}", GMM),
        "model.components",
        "components: ^32",
        ("the data leaves 16 (18 examples, 2 held out by data.validation_split)",),
    ),
    Case(
        "mixture-em-with-an-optimizer",
        edit("components: 32", "components: 2", GMM)
        + "training:\n  optimizer: {type: sgd, learning_rate: 0.5, clipnorm: 1.0}\n",
        "training.optimizer",
        "optimizer: ^{type: sgd",
        ("has no effect on this mixture", "EM re-estimates the parameters in closed form"),
        ("remove training.optimizer", "algorithm: {type: gradient}"),
        lower=True,
    ),
    Case(
        "mixture-variational-with-a-schedule",
        edit("  components: 32\n", "  components: 3\n  algorithm: {type: variational}\n", GMM)
        + "training:\n  schedule: {type: cosine_decay}\n",
        "training.schedule",
        "schedule: ^{type: cosine_decay}",
        ("variational EM re-estimates the parameters in closed form",),
        ("remove training.schedule",),
        lower=True,
    ),
    Case(
        "mixture-gradient-with-regularization",
        edit("  components: 32\n", "  components: 3\n  algorithm: {type: gradient}\n", GMM)
        + "training:\n  regularization: {l2: 0.1}\n",
        "training.regularization",
        "regularization: ^{l2: 0.1}",
        ("a mixture has no layer kernels to penalise",),
        ("remove training.regularization",),
        lower=True,
    ),
    Case(
        "mixture-em-with-optimizers",
        edit("components: 32", "components: 3", GMM)
        + "training:\n  optimizers: {generator: {type: adam}}\n",
        "training.optimizers",
        "optimizers: ^{generator",
        ("this mixture's algorithm (em) fits it in closed form, with no optimizer",),
        ("remove training.optimizers",),
    ),
    Case(
        "flow-hidden-layer-named-twice",
        flow_moons(
            "    - type: affine_coupling\n"
            "      hidden: {layers: [{type: dense, units: 8, name: a}, "
            "{type: dense, units: 8, name: a}]}\n"
        ),
        "model.transforms[0].hidden.layers[1].name",
        "units: 8, name: a}]}",
        ("layer name 'a' is used twice",),
        lower=True,
        check_column=False,
    ),
    Case(
        "flow-mixed-precision",
        FLOW_MOONS + "training:\n  mixed_precision: true\n",
        "training.mixed_precision",
        "mixed_precision: ^true",
        ("mixed precision is not available for the flow family",),
        ("mixed_precision: false",),
        lower=True,
    ),
    Case(
        "bits-per-dim-of-a-gaussian-vae-on-digits",
        edit("    type: bernoulli\n", "    type: gaussian\n").replace(
            "metrics: [elbo, iwae_nll]", "metrics: [elbo, bits_per_dim]"
        ),
        "evaluation.metrics[1]",
        "^bits_per_dim]",
        ("data's 17 levels", "a gaussian likelihood gives a density at them"),
        ("model.likelihood: {type: categorical, bins: 17}",),
    ),
    Case(
        "bits-per-dim-of-a-flow-without-dequantization-on-digits",
        edit("  dequantization: {type: uniform, bins: 17}\n", "", FLOW_DIGITS)
        + "evaluation:\n  metrics: [nll, bits_per_dim]\n",
        "evaluation.metrics[1]",
        "^bits_per_dim]",
        ("data's 17 levels", "a flow without dequantization gives a density"),
        ("add model.dequantization: {type: uniform, bins: 17}",),
    ),
    Case(
        "bits-per-dim-of-a-mixture-on-digits",
        GMM.replace("name: moons, n_samples: 20}", "name: digits}").replace(
            "components: 32", "components: 4"
        )
        + "evaluation:\n  metrics: [nll, bits_per_dim]\n",
        "evaluation.metrics[1]",
        "^bits_per_dim]",
        ("data's 17 levels", "a Gaussian mixture gives a density"),
        ("remove bits_per_dim: a Gaussian mixture has no discrete form", "labelled as a density"),
    ),
]


def problems_of(case: Case) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        loaded = load_spec_text(case.text, FILE)
        assert case.lower, "the spec validated, but this problem should be found when validating"
        lower(loaded)
    return info.value.problems


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_spec(case: Case) -> None:
    problems = problems_of(case)
    listing = "\n".join(str(p) for p in problems)
    assert len(problems) == case.count, listing
    matching = [p for p in problems if p.path == case.path]
    assert len(matching) == 1, f"expected one problem at {case.path!r}:\n{listing}"
    problem = matching[0]
    assert problem.file == FILE
    for word in case.words:
        assert word in problem.message, listing
    for word in case.hint:
        assert problem.hint is not None and word in problem.hint, listing
    if case.at is None:
        return
    line, column = location(case.text, case.at)
    assert problem.line == line, listing
    if case.check_column:
        assert problem.column == column, listing


def test_the_bad_specs_are_many_and_distinct() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.text for c in CASES}) == len(CASES)


def test_base_is_valid_and_lowers() -> None:
    lower(load_spec_text(BASE, FILE))
    lower(load_spec_text(MOONS, FILE))


@pytest.mark.parametrize(
    "text",
    [
        PIXELS,
        edit("bins: 17", "bins: 33", PIXELS),  # two bins per level: each level on a bin
        edit("{type: categorical, bins: 17}", "{type: bernoulli}", PIXELS).replace(
            "[nll, bits_per_dim]", "[fd_digits]"
        ),
        edit("    type: bernoulli\n", "    type: categorical\n    bins: 17\n"),
        VQ_DIGITS.replace("{type: bernoulli}", "{type: categorical, bins: 17}"),
        edit("bins: 17", "bins: 5", FLOW_DIGITS).replace("name: digits}", "name: shapes2d}"),
    ],
    ids=["pixelcnn-17", "pixelcnn-33", "bernoulli-no-nll", "vae-17", "vq-vae-17", "flow-shapes2d"],
)
def test_likelihoods_that_hold_each_data_level_lower(text: str) -> None:
    lower(load_spec_text(text, FILE))


def test_bits_per_dim_of_a_categorical_likelihood_on_the_digits_validates() -> None:
    text = edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, bits_per_dim]")
    categorical = edit("    type: bernoulli\n", "    type: categorical\n    bins: 17\n", text)
    lower(load_spec_text(categorical, FILE))


def test_problem_prints_as_file_line_column_path_message() -> None:
    text = encoder("{type: dense, units: 64}", "{type: dense, units: -3}")
    with pytest.raises(SpecError) as info:
        load_spec_text(text, FILE)
    # "    layers:" replaces lines 18-19 of the base; "      - {type: dense, units: -3}" is line 20.
    assert str(info.value) == "spec.yaml:20:30: model.encoder.layers[1].units: must be > 0 (got -3)"
    assert info.value.exit_code == 2


def test_hint_is_printed_in_parentheses() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(edit("  batch_size: 64", "  batch_sise: 64"), FILE)
    assert str(info.value) == (
        "spec.yaml:11:3: data.batch_sise: unknown key 'batch_sise' (did you mean 'batch_size'?)"
    )


def test_several_problems_are_reported_at_once_sorted_by_line() -> None:
    text = BASE
    text = edit("name: vae-digits", "name: VAE", text)  # line 2
    text = edit("epochs: 60", "epochs: sixty", text)  # line 28
    text = edit("batch_size: 64", "batch_size: 0", text)  # line 11
    text = edit("activation: relu\n  likelihood", "activation: rleu\n  likelihood", text)  # line 22
    text = edit("latent_dim: 8", "latent_dim: -8", text)  # line 14
    text = edit("type: bernoulli", "type: bernouli", text)  # line 24
    with pytest.raises(SpecError) as info:
        load_spec_text(text, FILE)
    problems = info.value.problems
    assert [(p.line, p.path) for p in problems] == [
        (2, "name"),
        (11, "data.batch_size"),
        (14, "model.latent_dim"),
        (22, "model.decoder.activation"),
        (24, "model.likelihood.type"),
        (28, "training.epochs"),
    ]
    assert len(str(info.value).splitlines()) == 6


def test_several_cross_field_problems_are_reported_at_once() -> None:
    text = edit("metrics: [elbo, iwae_nll]", "metrics: [elbo, mode_coverage]")
    text = edit("    name: digits\n", "    name: digits\n    n_samples: 100\n", text)
    text = edit("  losses:", "  conditional: {num_classes: 5}\n  losses:", text)
    with pytest.raises(SpecError) as info:
        load_spec_text(text, FILE)
    problems = info.value.problems
    assert [p.path for p in problems] == [
        "data.source.n_samples",
        "model.conditional.num_classes",
        "evaluation.metrics[1]",
    ]
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_shape_problems_of_both_networks_are_reported_at_once() -> None:
    text = encoder("{type: conv2d, filters: 8, kernel_size: 9, padding: valid}")
    text = decoder(
        "{type: dense, units: 256}", "{type: reshape, target_shape: [3, 3, 64]}", text=text
    )
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, FILE))
    problems = info.value.problems
    assert [(p.path, p.line) for p in problems] == [
        ("model.encoder.layers[0]", location(text, "{type: conv2d")[0]),
        ("model.decoder.layers[1]", location(text, "{type: reshape")[0]),
    ]


# -- data files the compiler inspects ----------------------------------------------------------


def _write_data_files(root: Path) -> None:
    (root / "corrupt.npz").write_bytes(b"this is not a zip archive")
    (root / "corrupt.npy").write_bytes(b"this is not an npy file")
    (root / "latin1.csv").write_bytes("caf\xe9,th\xe9\n1,2\n".encode("latin-1"))
    (root / "empty.csv").write_bytes(b"")
    (root / "folder.npy").mkdir()
    np.save(root / "flat.npy", np.zeros(10, dtype=np.float32))
    np.savez(root / "good.npz", x=np.zeros((5, 3), dtype=np.float32))


BUG_DATA = (
    "data_shapes.infer_data_shape lets this file's error escape as a traceback "
    "instead of a SpecError at data.source.path"
)

DATA_FILE_CASES = [
    pytest.param(
        "npz",
        "good.npz",
        "    key: pixels\n",
        "data.source.key",
        ("no array 'pixels'", "x"),
        id="npz-missing-key",
    ),
    pytest.param(
        "npz",
        "corrupt.npz",
        "",
        "data.source.path",
        ("corrupt.npz",),
        id="npz-not-a-zip",
    ),
    pytest.param(
        "npy",
        "corrupt.npy",
        "",
        "data.source.path",
        ("corrupt.npy",),
        id="npy-not-an-array",
    ),
    pytest.param(
        "npy",
        "folder.npy",
        "",
        "data.source.path",
        ("folder.npy",),
        id="npy-is-a-directory",
    ),
    pytest.param(
        "csv",
        "latin1.csv",
        "",
        "data.source.path",
        ("latin1.csv",),
        id="csv-not-utf8",
    ),
    pytest.param(
        "csv",
        "empty.csv",
        "",
        "data.source.path",
        ("empty.csv",),
        id="csv-empty",
    ),
]


@pytest.mark.parametrize("kind, name, extra, path, words", DATA_FILE_CASES)
def test_bad_data_file(
    tmp_path: Path, kind: str, name: str, extra: str, path: str, words: tuple
) -> None:
    _write_data_files(tmp_path)
    file_path = tmp_path / name
    text = vector_data(f"    type: {kind}\n    path: {file_path}\n{extra}")
    loaded = load_spec_text(text, FILE)
    with pytest.raises(SpecError) as info:
        lower(loaded)
    problems = info.value.problems
    assert [p.path for p in problems] == [path], str(info.value)
    for word in words:
        assert word in problems[0].message, str(info.value)
    assert problems[0].line == location(text, f"{path.rsplit('.', 1)[1]}: ")[0]


def test_spec_file_on_disk_reports_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(edit("batch_size: 64", "batch_size: -1"))
    with pytest.raises(SpecError) as info:
        load_spec("bad.yaml")
    assert str(info.value) == "bad.yaml:11:15: data.batch_size: must be > 0 (got -1)"


def test_one_dimensional_npy_is_data_of_one_feature(tmp_path: Path) -> None:
    _write_data_files(tmp_path)
    text = vector_data(f"    type: npy\n    path: {tmp_path / 'flat.npy'}\n")
    plan = lower(load_spec_text(text, FILE))
    assert plan.data_shape == (1,) and plan.data_kind == "vector"


def test_text_metrics_by_default_leave_bits_per_char_out_for_word_tokens() -> None:
    defaults = LM.replace("evaluation:\n  metrics: [perplexity, validity]\n", "")
    words = edit("{type: char}", "{type: word, vocab_size: 50}", defaults)
    chars_plan = lower(load_spec_text(defaults, FILE))
    assert chars_plan.evaluation["metrics"] == ["perplexity", "bits_per_char", "validity"]
    assert lower(load_spec_text(words, FILE)).evaluation["metrics"] == ["perplexity", "validity"]


@pytest.mark.parametrize("metrics", ["[perplexity, bits_per_char]", None])
def test_bits_per_char_is_refused_when_held_out_characters_are_unknown(
    tmp_path: Path, metrics: str | None
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcd efgh\n" * 60 + "naïve café\n" * 6, encoding="utf-8")
    text = edit(
        "    type: builtin\n    name: arithmetic\n", f"    type: text\n    path: {corpus}\n", LM
    )
    text = (
        text.replace("[perplexity, validity]", metrics)
        if metrics
        else text.replace("evaluation:\n  metrics: [perplexity, validity]\n", "")
    )
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, FILE))
    [problem] = info.value.problems
    assert problem.path == ("evaluation.metrics[1]" if metrics else "data.source"), str(problem)
    assert "character(s) the training text never shows" in problem.message
    assert "'ï'" in problem.message and "<unk>" in problem.message
    assert problem.hint is not None and "{type: byte}" in problem.hint
    # A byte tokenizer reads them, and without bits_per_char nothing is refused.
    lower(load_spec_text(edit("{type: char}", "{type: byte}", text), FILE))
    if metrics:
        lower(load_spec_text(text.replace(metrics, "[perplexity]"), FILE))


def test_a_coupling_network_keeps_its_own_activation_and_a_list_the_coupling_one() -> None:
    network = flow_moons("    - {type: affine_coupling, hidden: {mlp: [8], activation: tanh}}\n")
    [coupling] = load_spec_text(network, FILE).spec.model.transforms
    assert isinstance(coupling, AffineCoupling) and coupling.hidden.activation == "tanh"
    widths = flow_moons("    - {type: affine_coupling, hidden: [8], activation: tanh}\n")
    assert load_spec_text(widths, FILE).spec.model.transforms[0].activation == "tanh"
    # The lock's resolved spec writes the default activation out beside a network.
    dumped = load_spec_text(network, FILE).spec.model_dump(mode="json")
    assert dumped["model"]["transforms"][0]["activation"] == "relu"
    assert Spec.model_validate(dumped).model.transforms[0].hidden.activation == "tanh"


@pytest.mark.parametrize(
    "edits",
    [
        (("components: 32", "components: 18"),),  # one example each
        (("n_samples: 20}", "n_samples: 20, classes: [0]}"),),  # a count the draw decides
        (
            ("components: 32", "components: 20"),
            ("  preprocessing", "  validation_split: 0\n  preprocessing"),
        ),
    ],
    ids=["as-many-as-examples", "classes-left-to-the-runtime", "no-split"],
)
def test_mixture_components_up_to_the_training_examples_validate(edits) -> None:
    text = GMM
    for old, new in edits:
        text = edit(old, new, text)
    load_spec_text(text, FILE)


def test_a_mixture_fitted_by_gradient_takes_an_optimizer_and_a_schedule() -> None:
    text = edit("  components: 32\n", "  components: 3\n  algorithm: {type: gradient}\n", GMM)
    text += "training:\n  optimizer: {type: sgd, clipnorm: 1.0}\n  schedule: {type: cosine_decay}\n"
    plan = lower(load_spec_text(text, FILE))
    assert plan.training["optimizer"]["type"] == "sgd" and plan.training["schedule"] is not None


@pytest.mark.parametrize("algorithm", ["em", "variational", "gradient"])
def test_a_mixture_locks_resolved_spec_lowers_again(algorithm: str) -> None:
    # The lock writes every default out, training.optimizer and regularization included.
    text = edit("  components: 32\n", f"  components: 3\n  algorithm: {{type: {algorithm}}}\n", GMM)
    resolved = lower(load_spec_text(text, FILE)).resolved_spec
    assert "optimizer" in resolved["training"] and "regularization" in resolved["training"]
    lower(load_spec_text(dump_yaml(resolved), FILE))


def test_a_mixtures_refusals_are_reported_at_once_when_validating() -> None:
    # Components against examples and every unused training setting, one problem each
    # (training.optimizers gets the mixture's reason, not "trains with one optimizer").
    text = GMM + (
        "training:\n"
        "  optimizer: {type: sgd, learning_rate: 0.5}\n"
        "  schedule: {type: cosine_decay}\n"
        "  regularization: {l2: 0.1}\n"
        "  optimizers: {generator: {type: adam}}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(text, FILE)
    problems = info.value.problems
    assert [(p.path, p.line) for p in problems] == [
        ("model.components", 8),
        ("training.optimizer", 10),
        ("training.schedule", 11),
        ("training.regularization", 12),
        ("training.optimizers", 13),
    ]
    assert problems[-1].message == (
        "this mixture's algorithm (em) fits it in closed form, with no optimizer"
    )


@pytest.mark.parametrize("algorithm", ["em", "variational"])
def test_a_mixtures_loss_words_give_the_iterations_training_runs(algorithm: str) -> None:
    text = edit(
        "  components: 32\n",
        f"  components: 3\n  algorithm: {{type: {algorithm}, max_iter: 7}}\n",
        GMM,
    )
    capped = lower(load_spec_text(text + "training:\n  epochs: 3\n", FILE))
    assert capped.training["epochs"] == 3
    assert "at most 3 iterations" in capped.loss_in_words
    assert "at most 3)" in capped.extra["fitting"]  # the model card's fitting row
    assert "at most 7 iterations" in lower(load_spec_text(text, FILE)).loss_in_words
