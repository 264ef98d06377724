"""Lowering of the gan family (no TensorFlow): heads, spectral normalisation, class inputs,
the output activation and the two optimizers."""

from __future__ import annotations

import pytest

from gencompile.compiler.emit import wrap_calls
from gencompile.compiler.lower import lower
from gencompile.spec import load_spec_text

BASE = """\
spec_version: 1
name: gan-lowering
data:
  source: {{type: builtin, name: {data}}}
  preprocessing: {preprocessing}
model:
  family: gan
  latent_dim: 8
  generator: {generator}
  discriminator: {discriminator}
{model}
training:
  epochs: 3
{training}
"""
CONV_D = (
    "{layers: [{type: conv2d, filters: 8, kernel_size: 3, strides: 2},"
    " {type: residual, layers: [{type: conv2d, filters: 8, kernel_size: 3}]},"
    " {type: spectral_norm, layer: {type: conv2d, filters: 4, kernel_size: 3}}]}"
)


def plan_of(
    model: str = "",
    data: str = "digits",
    preprocessing: str = "{scale: [-1.0, 1.0]}",
    generator: str = "{mlp: [32]}",
    discriminator: str = "{mlp: [32]}",
    training: str = "",
):
    text = BASE.format(
        data=data,
        preprocessing=preprocessing,
        generator=generator,
        discriminator=discriminator,
        model=model,
        training=training,
    )
    return lower(load_spec_text(text))


def test_spectral_norm_wraps_every_dense_and_conv_layer_of_the_discriminator_only() -> None:
    plan = plan_of("  spectral_norm: true", discriminator=CONV_D)
    generator, discriminator = plan.networks
    kinds = [(layer.kind, layer.cls) for layer in discriminator.layers]
    assert kinds == [
        ("spectral_norm", "gencompile_layers.SpectralNormalization"),  # the body's conv2d
        ("spectral_norm", "gencompile_layers.SpectralNormalization"),  # inside the residual block
        ("residual", "layers.Add"),
        ("spectral_norm", "gencompile_layers.SpectralNormalization"),  # already wrapped: not twice
        ("flatten", "layers.Flatten"),
        ("spectral_norm", "gencompile_layers.SpectralNormalization"),  # the output layer
    ]
    head = discriminator.layers[-1]
    inner = dict(head.args)["layer"]
    assert (head.name, inner.cls, dict(inner.args)["units"]) == ("score", "layers.Dense", 1)
    assert head.params == inner.params + 1  # + the power iteration's vector u
    assert all(layer.kind != "spectral_norm" for layer in generator.layers)


def test_spectral_norm_runs_in_float32_under_mixed_precision_only() -> None:
    """In float16 its power iteration overflows a cast and it rounds the kernels to float16."""
    mixed = plan_of(
        "  spectral_norm: true", discriminator=CONV_D, training="  mixed_precision: true"
    )
    wrappers = [w for w in mixed.networks[1].layers if w.kind == "spectral_norm"]
    assert len(wrappers) == 4
    assert all(("dtype", "float32") in layer.args for layer in wrappers)
    assert all(("dtype", "float32") not in dict(w.args)["layer"].args for w in wrappers)
    assert mixed.networks[1].float32_spectral_norm
    assert not mixed.networks[0].float32_spectral_norm  # no spectral norm in G
    plain = plan_of("  spectral_norm: true", discriminator=CONV_D)
    assert not any(("dtype", "float32") in layer.args for layer in plain.networks[1].layers)
    assert not plain.networks[1].float32_spectral_norm


def test_generator_head_projects_to_the_data_shape() -> None:
    dense = plan_of()
    generator = dense.networks[0]
    assert [layer.name for layer in generator.layers[-2:]] == ["output_dense", "to_data_shape"]
    assert generator.layers[-1].output_shape == (8, 8, 1)
    conv = plan_of(
        generator="{layers: [{type: dense, units: 64}, {type: reshape, target_shape: [4, 4, 4]},"
        " {type: upsampling2d}]}"
    )
    head = conv.networks[0].layers[-1]
    assert (head.name, head.output_shape) == ("output_conv", (8, 8, 1))
    assert ("activation", "tanh") in head.args  # data scaled to [-1, 1]


@pytest.mark.parametrize(
    "preprocessing, data, expected",
    [
        ("{scale: [-1.0, 1.0]}", "digits", "tanh"),
        ("{scale: [0.0, 1.0]}", "digits", "sigmoid"),
        ("{standardize: true}", "ring8", "linear"),
        ("{scale: [0.0, 255.0]}", "digits", "linear"),
    ],
)
def test_auto_output_activation_follows_the_data_range(preprocessing, data, expected) -> None:
    plan = plan_of(preprocessing=preprocessing, data=data)
    assert plan.model.output_activation == expected
    assert plan.resolved_spec["model"]["output_activation"] == expected
    args = dict(plan.networks[0].layers[-2 if data == "digits" else -1].args)
    assert args.get("activation", "linear") == expected


def test_class_code_joins_flat_features_and_image_channels() -> None:
    conditional = "  conditional: {num_classes: 10, encoding: embedding, embedding_dim: 3}"
    dense = plan_of(conditional)
    generator, discriminator = dense.networks
    assert [i.var for i in generator.inputs] == ["z", "y"]
    assert generator.layers[1].output_shape == (11,)  # z (8) + embedding (3)
    flatten, code, joined = discriminator.layers[:3]  # a dense body sees x flattened first
    assert (flatten.name, code.name, joined.output_shape) == ("flatten_x", "class_code", (67,))
    conv = plan_of(conditional, discriminator=CONV_D)
    layers = {layer.name: layer for layer in conv.networks[1].layers}
    assert layers["class_code_map"].output_shape == (8, 8, 3)  # the code at every pixel
    assert layers["with_class"].output_shape == (8, 8, 4)


def test_one_optimizer_sets_both_and_optimizers_set_each() -> None:
    default = plan_of()
    assert "optimizer" not in default.training
    adam = {"type": "adam", "learning_rate": 2.0e-4, "beta_1": 0.5}
    for role in ("generator", "discriminator"):
        assert default.training["optimizers"][role].items() >= adam.items()
    assert default.resolved_spec["training"]["optimizers"] == default.training["optimizers"]
    one = plan_of(training="  optimizer: {type: rmsprop, learning_rate: 0.001}")
    assert {c["type"] for c in one.training["optimizers"].values()} == {"rmsprop"}
    each = plan_of(
        training="  optimizer: {type: sgd}\n  optimizers:\n    discriminator: {type: adamw}"
    )
    roles = each.training["optimizers"]
    assert list(roles) == ["generator", "discriminator"]  # the generator's is model.optimizer
    assert (roles["generator"]["type"], roles["discriminator"]["type"]) == ("sgd", "adamw")
    assert "generator: sgd lr 0.01" in each.extra["fitting"]


def test_other_families_keep_a_single_optimizer_entry() -> None:
    text = BASE.replace("family: gan", "family: vae").format(
        data="digits",
        preprocessing="{scale: [0.0, 1.0]}",
        generator="{mlp: [8]}",
        discriminator="{mlp: [8]}",
        model="",
        training="",
    )
    text = text.replace("generator:", "encoder:").replace("discriminator:", "decoder:")
    plan = lower(load_spec_text(text))
    assert "optimizers" not in plan.training and "optimizers" not in plan.resolved_spec["training"]


def test_loss_in_words_names_both_losses_and_the_penalty() -> None:
    plan = plan_of(
        "  loss: {type: wasserstein}\n  gradient_penalty: {type: wgan_gp}\n  critic_steps: 5"
    )
    words = plan.loss_in_words
    assert "the critic minimises D(G(z)) - D(x)" in words and "generator minimises" in words
    assert "10 x E[(||grad D(x_hat)|| - 1)^2]" in words
    assert "5 discriminator updates" in words
    assert plan.model.loss.accuracy_threshold is None


def test_wrap_calls_splits_long_calls_as_ruff_format_does() -> None:
    short = "        d_loss = gan.hinge_discriminator_loss(real_scores, fake_scores)"
    assert wrap_calls(short) == short
    long = "            d_loss = gan.least_squares_discriminator_loss(real_scores, fake_scores, label_smoothing=LABEL_SMOOTHING)"  # noqa: E501
    assert wrap_calls(long) == (
        "            d_loss = gan.least_squares_discriminator_loss(\n"
        "                real_scores, fake_scores, label_smoothing=LABEL_SMOOTHING\n"
        "            )"
    )
    longer = (
        "        x = f(" + ", ".join(f"argument_number_{i}=[{i}, ({i})]" for i in range(5)) + ")"
    )
    assert (
        wrap_calls(longer)
        == "        x = f(\n"
        + "".join(f"            argument_number_{i}=[{i}, ({i})],\n" for i in range(5))
        + "        )"
    )
    comment = "        # " + "x" * 120 + "(y)"
    assert wrap_calls(comment) == comment
