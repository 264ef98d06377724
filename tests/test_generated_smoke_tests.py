"""The smoke test every generated project carries (`tests/test_model.py`), run in-process.

Two of its checks once could not do their job: the text test compared sampled text with the
prompt as written, which a word tokenizer spells with spaces around punctuation (`1 + 2 =`),
so it failed on a healthy model; the VQ-VAE test caught its own AssertionError in an
`except Exception`, so it passed when sampling before the prior's fit was not refused.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gencompile.compiler.project import build
from gencompile.generated import import_generated
from gencompile.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[1]

WORD_LM = """\
spec_version: 1
name: smoke-words
seed: 1
data:
  source: {type: builtin, name: arithmetic, n_samples: 200}
  batch_size: 16
model:
  family: autoregressive
  tokenizer: {type: word}
  context_length: 8
  network: {type: gru, units: 8, embedding_dim: 4}
  sampling: {prompt: "1+2=", length: 4}
training:
  epochs: 1
evaluation:
  metrics: [perplexity]
"""
VQ_TINY = [
    "name=smoke-vq",
    "model.prior.filters=8",
    "model.prior.layers=1",
    "model.quantizer.codebook_size=8",
    "model.quantizer.embedding_dim=4",
]


def smoke_test_of(directory: Path, package: str) -> ModuleType:
    """The project's tests/test_model.py, its generated package imported first."""
    import_generated(directory, package, "model")
    path = directory / "tests" / "test_model.py"
    spec = importlib.util.spec_from_file_location(f"{package}_smoke_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_text_smoke_test_passes_for_a_word_tokenizer_and_a_prompt_with_punctuation(
    tmp_path: Path,
) -> None:
    result = build(load_spec_text(WORD_LM), tmp_path / "words")
    model = import_generated(result.directory, result.plan.package, "model")
    prompt = model.SAMPLING["prompt"]
    assert model.TOKENIZER.decode(model.TOKENIZER.encode(prompt)) == "1 + 2 ="  # not the prompt
    smoke = smoke_test_of(result.directory, result.plan.package)
    smoke.test_samples_continue_the_prompt()


def test_vq_vae_smoke_test_fails_when_sampling_before_the_prior_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gencompile.runtime import vq

    spec = load_spec(ROOT / "specs" / "vq_vae_digits.yaml", VQ_TINY)
    result = build(spec, tmp_path / "vq")
    smoke = smoke_test_of(result.directory, result.plan.package)
    smoke.test_samples_have_the_data_shape()  # refused, as it should be: passes
    monkeypatch.setattr(vq, "require_trained_prior", lambda prior_epochs: None)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        smoke.test_samples_have_the_data_shape()
