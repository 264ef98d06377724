"""The vq_vae family in the spec language: validation located at the spec line, the
lowering's shapes, and what `explain` says (no TensorFlow here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import Problem, SpecError
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "vq_vae_digits.yaml"
TEXT = SPEC.read_text()


def problems(text: str) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        lower(load_spec_text(text, "spec.yaml"))
    return caught.value.problems


def line_of(text: str, snippet: str) -> int:
    assert text.count(snippet) == 1, snippet
    return text[: text.index(snippet)].count("\n") + 1


def test_the_example_spec_lowers_to_a_4x4_grid_of_64_codes() -> None:
    plan = lower(load_spec(SPEC))
    model = plan.model
    assert plan.family == "vq_vae"
    assert model.grid_shape == (4, 4)
    assert model.quantizer == {
        "type": "vq",
        "codebook_size": 64,
        "embedding_dim": 16,
        "commitment": 0.25,
    }
    assert not model.ema
    names = [network.name for network in plan.networks]
    assert names == ["encoder", "decoder", "prior_network"]
    encoder, decoder, prior = plan.networks
    assert encoder.layers[-1].name == "pre_quantization"
    assert encoder.layers[-1].output_shape == (4, 4, 16)
    assert decoder.inputs[0].shape == (4, 4, 16)
    assert decoder.layers[-1].output_shape == (8, 8, 1)
    assert prior.inputs[0].dtype == "int32" and prior.inputs[0].shape == (4, 4)
    assert prior.layers[-1].output_shape == (4, 4, 64)  # logits over the codebook
    # the codebook's weights live outside the networks: counted in the total
    assert plan.extra["total_params"] == sum(n.params for n in plan.networks) + 64 * 16


def test_loss_in_words_states_both_stages_and_every_term() -> None:
    words = lower(load_spec(SPEC)).loss_in_words
    assert "stage 1 (60 epochs)" in words and "stage 2 (40 epochs" in words
    assert "z_e + sg(z_q - z_e)" in words  # the straight-through estimator
    assert "||sg(z_e) - z_q||^2" in words and "0.25 x ||z_e - sg(z_q)||^2" in words
    assert "PixelCNN" in words


def test_ema_quantizer_has_no_codebook_term_and_keeps_its_decay() -> None:
    text = TEXT.replace("{type: vq, codebook_size: 64", "{type: ema, decay: 0.9, codebook_size: 64")
    plan = lower(load_spec_text(text))
    assert plan.model.ema and plan.model.quantizer["decay"] == 0.9
    assert "moving averages (decay 0.9)" in plan.loss_in_words
    assert "||sg(z_e) - z_q||^2" not in plan.loss_in_words


def test_an_unknown_quantizer_type_is_located_with_a_suggestion() -> None:
    text = TEXT.replace("{type: vq, codebook", "{type: vqq, codebook")
    (problem,) = problems(text)
    assert problem.path.startswith("model.quantizer")
    assert problem.line == line_of(text, "  quantizer:")
    assert "'vq'" in str(problem)


def test_an_even_prior_kernel_is_refused_at_its_field() -> None:
    text = TEXT.replace("kernel_size: 3, epochs: 40", "kernel_size: 4, epochs: 40")
    (problem,) = problems(text)
    assert problem.path == "model.prior.kernel_size"
    assert "must be odd" in problem.message
    assert problem.line == line_of(text, "  prior:")


def test_a_codebook_of_one_code_is_refused() -> None:
    (problem,) = problems(TEXT.replace("codebook_size: 64", "codebook_size: 1"))
    assert problem.path == "model.quantizer.codebook_size"
    assert problem.message == "must be >= 2 (got 1)"
    assert problem.line == line_of(TEXT, "  quantizer:")


def test_a_flat_encoder_is_refused_at_its_last_layer_with_advice() -> None:
    text = TEXT.replace(
        "      - {type: conv2d, filters: 64, kernel_size: 3, activation: relu}\n  quantizer",
        "      - {type: flatten}\n  quantizer",
    )
    (problem,) = problems(text)
    assert problem.path == "model.encoder.layers[1]"
    assert problem.line == line_of(text, "{type: flatten}")
    assert "must end in an image" in problem.message
    assert "strides: 2" in (problem.hint or "")


def test_a_decoder_that_misses_the_data_shape_is_refused() -> None:
    text = TEXT.replace(
        "      - {type: conv2d_transpose, filters: 32, kernel_size: 3, strides: 2, "
        "activation: relu}\n",
        "",
    )
    (problem,) = problems(text)
    assert problem.path == "model.decoder.layers[0]"
    assert "(4, 4, 64)" in problem.message and "(8, 8, 1)" in problem.message


def test_progress_pictures_are_refused_before_the_prior_exists() -> None:
    text = TEXT.replace(
        "samples: {count: 64, format: png}", "samples: {count: 64, every_epochs: 5}"
    )
    (problem,) = problems(text)
    assert problem.path == "output.samples.every_epochs"
    assert "prior" in problem.message and "remove" in (problem.hint or "")


def test_vector_data_is_refused() -> None:
    text = TEXT.replace("name: digits}", "name: moons}").replace(", fd_digits]", "]")
    (problem,) = problems(text)
    assert problem.path == "model.family"
    assert "quantizes a grid of vectors computed from images" in problem.message
    assert "family: vae" in (problem.hint or "")


def test_default_metrics_are_the_held_out_ones_and_fd_digits() -> None:
    text = TEXT.replace(
        "  metrics: [reconstruction_nll, prior_nll, nll_bound, codebook_perplexity, fd_digits]\n",
        "  num_samples: 500\n",
    )
    plan = lower(load_spec_text(text))
    assert plan.evaluation["metrics"] == [
        "reconstruction_nll",
        "prior_nll",
        "nll_bound",
        "codebook_perplexity",
        "fd_digits",
    ]


def test_a_metric_of_another_family_is_refused() -> None:
    text = TEXT.replace("metrics: [reconstruction_nll,", "metrics: [elbo, reconstruction_nll,")
    (problem,) = problems(text)
    assert problem.path == "evaluation.metrics[0]"
    assert "elbo" in problem.message


def test_mixed_precision_is_refused_at_its_field_and_strategies_are_accepted() -> None:
    text = TEXT.replace(
        "  checkpoint: {every_epochs: 10, keep: 2}\n",
        "  checkpoint: {every_epochs: 10, keep: 2}\n  mixed_precision: true\n"
        "  distribution: {strategy: mirrored}\n",
    )
    (problem,) = problems(text)
    assert problem.path == "training.mixed_precision"
    assert "not available for the vq_vae family" in problem.message
    assert problem.line == line_of(text, "  mixed_precision:")
