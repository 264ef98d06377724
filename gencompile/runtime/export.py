"""The SavedModel export (`output.export: [saved_model]`): signatures that generate.

Besides `serve` (the model's call on one batch of the data, as `model.export` writes it) a
SavedModel gets, where the family defines them:

- `sample(num, seed)` (conditional models: `sample(num, seed, label)`): `num` samples in the
  data's original units, the same for the same seed (float32, or float64 for a run whose
  outputs are, as `Preprocessor.output_dtype` says; `x` below alike). A language model
  answers `tokens` and `text` continuing its default prompt;
- `log_prob(x)` (flow, mixture, PixelCNN) and `score(x)` (those, and a GAN's negated
  discriminator), for `x` in the data's units, as `gencompile score` computes them;
- `encode(x)` -> `z_mean`, `z_log_var` and `decode(z)` (the likelihood's mean, data units)
  for a VAE. A flow posterior (IAF, planar, radial) is not Gaussian, so its `encode` gives
  only `code`, the flow applied to the base mean (the code `gencompile latent` uses): no
  log-variance describes it.

The data's affine preprocessing is part of the graph, so a consumer needs only TensorFlow.
Seeds work as `gencompile sample --seed` uses them: the model's generators restart from
their seeds moved by (seed - the run's seed), or (diffusion) the sampler's stateless seed
is [seed, 0]; both are assigned inside the graph at every call.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

from gencompile.runtime.contract import Imputer, LanguageModel
from gencompile.runtime.diffusion import Sampler
from gencompile.runtime.evaluation import evaluation_seed, seed_states

Endpoint = tuple[Callable[..., Any], list[tf.TensorSpec]]


@runtime_checkable
class Autoencoder(Protocol):
    """A VAE: an encoder to the posterior's code (and parameters, when it is Gaussian), a
    decoder to the likelihood's parameters."""

    likelihood: Any

    def encode(self, x: Any, y: Any = None, training: bool = False) -> Any: ...

    def decode(self, z: Any, y: Any = None, training: bool = False) -> Any: ...


@runtime_checkable
class PixelModel(Protocol):
    """PixelCNN: exact per-image NLL and a compiled pixel-by-pixel sampler."""

    def image_nll(self, x: Any, training: bool = False) -> Any: ...

    def generate(self, *args: Any) -> Any: ...


@runtime_checkable
class Adversarial(Protocol):
    discriminator: Any


def export_saved_model(model: keras.Model, data: Any, folder: Path) -> list[str]:
    """Write the SavedModel of `model` to `folder`; the names of its signatures."""
    archive = keras.export.ExportArchive()
    archive.track_and_add_endpoint("serve", model, input_signature=[_call_signature(model, data)])
    found = endpoints(model, data)
    for name, (function, signature) in found.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(str(folder), verbose=False)
    return ["serve", *found]


def _call_signature(model: keras.Model, data: Any) -> Any:
    """What `serve` (the model's call) takes: one batch of the data, (x) or (x, y) for a
    conditional model; a diffusion model's call is its denoiser's, on [x_t, t(, y)]."""
    if isinstance(getattr(model, "sampler", None), Sampler):
        return [tf.TensorSpec(i.shape, i.dtype) for i in model.denoiser.inputs]
    return tf.nest.map_structure(
        lambda spec: tf.TensorSpec(spec.shape, spec.dtype), data.train.element_spec
    )


class Units:
    """The data's affine preprocessing, in the graph: data units <-> the model's units.

    Data units are `Preprocessor.output_dtype`: float64 when a feature is wide (timestamps),
    so samples equal `gencompile sample`'s and inputs reach the float64 map unrounded."""

    def __init__(self, preprocessor: Any) -> None:
        self.dtype = tf.as_dtype(np.dtype(preprocessor.output_dtype))
        self.center = tf.constant(preprocessor.center, tf.float64)
        self.factor = tf.constant(preprocessor.factor, tf.float64)
        self.offset = tf.constant(preprocessor.offset, tf.float64)
        self.log_det_jacobian = float(preprocessor.log_det_jacobian)

    def to_model(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.cast(x, tf.float64)
        return tf.cast((x - self.center) * self.factor + self.offset, tf.float32)

    def to_data(self, y: tf.Tensor) -> tf.Tensor:
        y = tf.cast(y, tf.float64)
        return tf.cast((y - self.offset) / self.factor + self.center, self.dtype)


def endpoints(model: keras.Model, data: Any) -> dict[str, Endpoint]:
    """The generating signatures of `model` (see the module's docstring)."""
    units = Units(data.preprocessor)
    conditional = isinstance(data.train.element_spec, tuple)
    x = tf.TensorSpec((None, *data.element_shape), units.dtype, name="x")
    labels = tf.TensorSpec((None,), tf.int32, name="labels")
    found: dict[str, Endpoint] = {"sample": _sample(model, data, units, conditional)}
    if isinstance(model, PixelModel):
        found["log_prob"] = (lambda xb: -model.image_nll(units.to_model(xb)), [x])
        found["score"] = (lambda xb: model.image_nll(units.to_model(xb)), [x])
    elif isinstance(model, Adversarial):
        negated = _negated_discriminator(model, units, conditional)
        found["score"] = (negated, [x, labels] if conditional else [x])
    elif isinstance(model, Imputer) or getattr(model, "dequantization", "n/a") is None:
        # A mixture, or a flow over continuous data: an exact density in data units.
        shift = units.log_det_jacobian

        def log_prob(xb: tf.Tensor) -> tf.Tensor:
            return tf.cast(model.log_prob(units.to_model(xb)), tf.float64) + shift

        found["log_prob"] = (log_prob, [x])
        found["score"] = (lambda xb: -log_prob(xb), [x])
    if isinstance(model, Autoencoder) and not isinstance(model, LanguageModel):
        found.update(_autoencoder(model, units, conditional, x, labels))
    return found


def _seed_spec(conditional: bool) -> list[tf.TensorSpec]:
    specs = [tf.TensorSpec((), tf.int32, name="num"), tf.TensorSpec((), tf.int32, name="seed")]
    return [*specs, tf.TensorSpec((), tf.int32, name="label")] if conditional else specs


def _restart_generators(model: keras.Model) -> Callable[[tf.Tensor], None]:
    """`restart(seed)`: every generator of the model at (its seed + seed - the run's, 0),
    the state `gencompile sample --seed` draws from."""
    states = seed_states(model)
    seeds = [int(np.asarray(v.numpy())[0]) for v in states]
    run_seed = evaluation_seed(model)

    def restart(seed: tf.Tensor) -> None:
        moved = tf.cast(seed, tf.int64) - run_seed
        for variable, own in zip(states, seeds, strict=True):
            state = tf.stack([tf.constant(own, tf.int64) + moved, tf.constant(0, tf.int64)])
            variable.assign(tf.cast(state, variable.dtype))

    return restart


def _sample(model: keras.Model, data: Any, units: Units, conditional: bool) -> Endpoint:
    restart = _restart_generators(model)
    if isinstance(model, LanguageModel):
        return _text_sample(model, restart)
    if isinstance(getattr(model, "sampler", None), Sampler):
        return _diffusion_sample(model, data, units, conditional)
    if isinstance(model, PixelModel):
        options = importlib.import_module(type(model).__module__).SAMPLING

        def pixels(num: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            restart(seed)  # the seed `model.sample` draws from its generator
            draw = keras.random.randint((2,), 0, 2**30, seed=model.sample_seed_generator)
            images = model.generate(
                num, float(options["temperature"]), int(options["top_k"]),
                float(options["top_p"]), tf.cast(draw, tf.int32),
            )  # fmt: skip
            return units.to_data(images)

        return pixels, _seed_spec(False)
    if conditional:

        def sample_of(num: tf.Tensor, seed: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
            restart(seed)
            return units.to_data(model.sample(num, labels=tf.fill([num], label)))

        return sample_of, _seed_spec(True)

    def sample(num: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        restart(seed)
        return units.to_data(model.sample(num))

    return sample, _seed_spec(False)


def _diffusion_sample(model: Any, data: Any, units: Units, conditional: bool) -> Endpoint:
    """The compiled sampler from x_T ~ N(0, I) drawn with the stateless seed [seed, 0], as
    `model.sample(num, seed=seed)` draws."""
    shape = [int(d) for d in data.element_shape]
    scale = inspect.signature(model.sample).parameters.get("guidance_scale")
    guidance = float(scale.default) if scale is not None else 0.0

    def run(num: tf.Tensor, seed: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        pair = tf.stack([seed, tf.constant(0, tf.int32)])
        x_T = tf.random.stateless_normal(tf.concat([[num], shape], axis=0), seed=pair)
        return units.to_data(model.sampler(x_T, pair, labels, guidance))

    if conditional:
        return (lambda num, seed, label: run(num, seed, tf.fill([num], label))), _seed_spec(True)
    return (lambda num, seed: run(num, seed, tf.zeros([num], tf.int32))), _seed_spec(False)


def _text_sample(model: Any, restart: Callable[[tf.Tensor], None]) -> Endpoint:
    """`num` continuations of the default prompt: token ids and their text."""
    module = importlib.import_module(type(model).__module__)
    tokenizer, options = module.TOKENIZER, module.SAMPLING
    prompt = tf.constant(tokenizer.encode(options["prompt"]), tf.int32)
    vocabulary = tf.constant([tokenizer.decode([i]) for i in range(tokenizer.vocab_size)])
    separator = " " if tokenizer.type == "word" else ""

    def sample(num: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        restart(seed)
        draw = keras.random.randint((2,), 0, 2**30, seed=model.sample_seed_generator)
        tokens = model.generate(
            tf.tile(prompt[None], tf.stack([num, 1])), int(options["length"]),
            float(options["temperature"]), int(options["top_k"]), float(options["top_p"]),
            tf.cast(draw, tf.int32),
        )  # fmt: skip
        text = tf.strings.reduce_join(tf.gather(vocabulary, tokens), axis=1, separator=separator)
        return {"tokens": tokens, "text": text}

    return sample, _seed_spec(False)


def _negated_discriminator(model: Any, units: Units, conditional: bool) -> Callable[..., Any]:
    def score(xb: tf.Tensor, yb: tf.Tensor | None = None) -> tf.Tensor:
        inputs = [units.to_model(xb), yb] if conditional else units.to_model(xb)
        output = tf.cast(model.discriminator(inputs, training=False), tf.float32)
        return -tf.reshape(output, (tf.shape(xb)[0], -1))[:, 0]

    return score


def _autoencoder(
    model: Any, units: Units, conditional: bool, x: tf.TensorSpec, labels: tf.TensorSpec
) -> dict[str, Endpoint]:
    latent = int(model.decoder.inputs[0].shape[-1])
    z = tf.TensorSpec((None, latent), tf.float32, name="z")

    # A flow posterior's `encode` gives f(base mean) beside the *base* Gaussian's
    # log-variance, which is not q(z | x)'s (the flow moves and reshapes it): only the code.
    flowing = hasattr(model, "posterior_flow")

    def encode(xb: tf.Tensor, yb: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        z_mean, z_log_var = model.encode(units.to_model(xb), yb)
        if flowing:
            return {"code": z_mean}
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode(zb: tf.Tensor, yb: tf.Tensor | None = None) -> tf.Tensor:
        return units.to_data(model.likelihood.mean(model.decode(zb, yb)))

    if conditional:
        return {"encode": (encode, [x, labels]), "decode": (decode, [z, labels])}
    return {"encode": (lambda xb: encode(xb), [x]), "decode": (lambda zb: decode(zb), [z])}
