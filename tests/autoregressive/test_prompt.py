"""A model.sampling.prompt the training text's vocabulary cannot spell: refused by validate
(the compiler, which reads the text once its path is checked: the built-in arithmetic, a
text file), and by a generated training before its first epoch otherwise, in the words of
`gencompile sample --prompt`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from gencompile.compiler.lower import lower
from gencompile.errors import RunError, SpecError
from gencompile.spec import load_spec_text
from gencompile.text import Tokenizer, unknown_prompt_message

ARITHMETIC = """\
spec_version: 1
name: tiny
data:
  source: {type: builtin, name: arithmetic, n_samples: 400}
model:
  family: autoregressive
  context_length: 16
  network: {type: gru, units: 16, embedding_dim: 8}
  sampling: {prompt: "PROMPT"}
"""


def refused_prompt(text: str) -> str:
    """The one problem of `text`, which must be at model.sampling.prompt, as one line."""
    with pytest.raises(SpecError) as info:
        lower(load_spec_text(text, "spec.yaml"))
    [problem] = info.value.problems
    assert problem.path == "model.sampling.prompt"
    lines = text.splitlines()
    assert problem.line == 1 + next(i for i, t in enumerate(lines) if "{prompt:" in t)
    return f"{problem.message}; {problem.hint}"


def test_validate_refuses_a_prompt_outside_the_arithmetic_vocabulary() -> None:
    line = refused_prompt(ARITHMETIC.replace("PROMPT", "12+ZZ"))
    vocabulary = Tokenizer("char", ("<unk>", "\n", "+", *"0123456789", "="))
    assert line == unknown_prompt_message(vocabulary, "ZZ")  # as `sample --prompt` says it
    assert line.startswith("the prompt has characters the model never saw: 'Z'; write it")
    lower(load_spec_text(ARITHMETIC.replace("PROMPT", "12+")))


def test_validate_checks_a_text_files_prompt_and_the_word_vocabulary(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox\n" * 20)
    text = ARITHMETIC.replace(
        "{type: builtin, name: arithmetic, n_samples: 400}", f"{{type: text, path: {corpus}}}"
    )
    assert refused_prompt(text.replace("PROMPT", "the QUICK")).startswith(
        "the prompt has characters the model never saw: 'Q', 'U', 'I', 'C', 'K'; "
    )
    lower(load_spec_text(text.replace("PROMPT", "the quick")))
    words = ARITHMETIC.replace(
        "  context_length", "  tokenizer: {type: word, vocab_size: 1000}\n  context_length"
    )
    assert refused_prompt(words.replace("PROMPT", "+ plus =")).startswith(
        "the prompt has words the model never saw: 'plus'; "
    )
    byte = ARITHMETIC.replace("  context_length", "  tokenizer: {type: byte}\n  context_length")
    lower(load_spec_text(byte.replace("PROMPT", "ZZ")))  # bytes spell every text


def test_training_refuses_the_prompt_before_its_first_epoch() -> None:
    """A project whose prompt validate did not see refused (its `evaluate.check`, which a
    generated train.py runs before fitting)."""
    from gencompile.runtime import autoregressive

    assert autoregressive.check_prompt in autoregressive.evaluate.checks
    vocabulary = Tokenizer("char", ("<unk>", "\n", "+", *"0123456789", "="))
    data = SimpleNamespace(kind="text", text=SimpleNamespace(tokenizer=vocabulary))
    model = SimpleNamespace(default_prompt=lambda: "ZZZ")
    with pytest.raises(RunError) as err:
        autoregressive.check_prompt(model, data, {"metrics": []})
    assert str(err.value) == "model.sampling.prompt: " + str(
        unknown_prompt_message(vocabulary, "ZZZ")
    )
    autoregressive.check_prompt(SimpleNamespace(default_prompt=lambda: "1+"), data, {})
    autoregressive.check_prompt(model, SimpleNamespace(kind="image"), {})  # pixels: no prompt


WORDS = Tokenizer("word", ("<unk>", "\n", "+", "=", "1"))


def test_a_prompt_of_no_token_is_refused_by_validate_and_training() -> None:
    """A word tokenizer reads no token in spaces: nothing to continue. Refused where the
    prompt is given, not as a traceback while the finished run writes its samples."""
    from gencompile.runtime import autoregressive

    words = ARITHMETIC.replace(
        "  context_length", "  tokenizer: {type: word, vocab_size: 1000}\n  context_length"
    )
    line = refused_prompt(words.replace("PROMPT", " "))
    assert line == unknown_prompt_message(WORDS, " ")
    assert line.startswith("the prompt holds no token: a word tokenizer reads none in spaces; give")
    data = SimpleNamespace(kind="text", text=SimpleNamespace(tokenizer=WORDS))
    with pytest.raises(
        RunError, match=r"^model\.sampling\.prompt: the prompt holds no token: a word"
    ):
        autoregressive.check_prompt(SimpleNamespace(default_prompt=lambda: "\t "), data, {})


@pytest.mark.parametrize(
    "tokenizer", [WORDS, Tokenizer("char", ("<unk>", "1")), Tokenizer("byte", ())]
)
def test_sample_refuses_a_prompt_of_no_token(tokenizer: Tokenizer, tmp_path: Path) -> None:
    """`sample --prompt ''` (or spaces, for words): one line, read from the run's vocabulary
    before TensorFlow starts; the server answers the same words."""
    from gencompile.sampling import _check_prompt

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "vocabulary.json").write_text(tokenizer.to_json(), encoding="utf-8")
    lock = {"files": {"pkg/vocabulary.json": "sha"}}
    prompts = ["", "  "] if tokenizer.type == "word" else [""]
    for prompt in prompts:
        with pytest.raises(RunError) as err:
            _check_prompt(tmp_path, lock, prompt)
        assert str(err.value) == f"--prompt: {unknown_prompt_message(tokenizer, prompt)}"
        assert "the prompt holds no token" in str(err.value) and "at least one token" in str(
            err.value
        )
    _check_prompt(tmp_path, lock, "1")
