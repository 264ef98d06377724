"""Tokenizers, text splitting and the arithmetic language (gencompile.text: no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from gencompile.text import (
    UNKNOWN,
    arithmetic_lines,
    arithmetic_text,
    arithmetic_validity,
    fit_tokenizer,
    source_text,
    split_text,
    unknown_prompt_message,
    windows,
)

TEXT = "the cat sat on the mat.\nthe dog sat.\n"


def test_char_tokenizer_round_trips_and_maps_unseen_characters_to_unknown() -> None:
    tokenizer = fit_tokenizer({"type": "char"}, TEXT)
    assert tokenizer.tokens[0] == UNKNOWN
    assert list(tokenizer.tokens[1:]) == sorted(set(TEXT))
    ids = tokenizer.encode(TEXT)
    assert ids.dtype == np.int32 and len(ids) == len(TEXT) and ids.min() >= 1
    assert tokenizer.decode(ids) == TEXT
    unseen = tokenizer.encode("cat!Z")
    assert list(unseen[3:]) == [0, 0]  # '!' and 'Z' are not in the training text
    assert tokenizer.decode(unseen) == "cat\ufffd\ufffd"


def test_char_vocabulary_is_the_training_texts_only() -> None:
    train, held_out = split_text("abcabcabcXYZ", 0.25)
    assert (train, held_out) == ("abcabcabc", "XYZ")
    tokenizer = fit_tokenizer({"type": "char"}, train)
    assert tokenizer.vocab_size == 4  # <unk> a b c
    assert list(tokenizer.encode(held_out)) == [0, 0, 0]


def test_byte_tokenizer_covers_every_byte() -> None:
    tokenizer = fit_tokenizer({"type": "byte"}, "")
    text = "héllo ✓"
    ids = tokenizer.encode(text)
    assert tokenizer.vocab_size == 256
    assert list(ids) == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text


def test_word_tokenizer_keeps_the_most_frequent_words() -> None:
    tokenizer = fit_tokenizer({"type": "word", "vocab_size": 4}, TEXT)
    # counts: the 3, sat 2, . 2, \n 2 -> ties broken alphabetically: "\n" < "."
    assert tokenizer.tokens == (UNKNOWN, "the", "\n", ".")
    ids = tokenizer.encode("the cow sat.\n")
    assert list(ids) == [1, 0, 0, 3, 2]
    assert tokenizer.decode(ids) == f"the {UNKNOWN} {UNKNOWN} .\n"


def test_vocabulary_hash_changes_with_the_vocabulary() -> None:
    first = fit_tokenizer({"type": "char"}, "abc")
    assert first.sha256 == fit_tokenizer({"type": "char"}, "cba").sha256
    assert first.sha256 != fit_tokenizer({"type": "char"}, "abd").sha256


def test_windows_overlap_by_one_token_so_each_token_is_a_target_once() -> None:
    ids = np.arange(10)
    got = windows(ids, 3)
    assert got.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    targets = np.concatenate([w[1:] for w in got])
    assert targets.tolist() == list(range(1, 10))


def test_arithmetic_language_is_seeded_and_correct() -> None:
    lines = arithmetic_lines(500, 99, seed=3)
    assert lines == arithmetic_lines(500, 99, seed=3)
    assert lines != arithmetic_lines(500, 99, seed=4)
    assert arithmetic_validity(lines) == (500, 500)
    operands = [int(v) for line in lines for v in line.split("=")[0].split("+")]
    assert min(operands) >= 0 and max(operands) <= 99
    text = arithmetic_text(500, 99, seed=3)
    assert text == "\n".join(lines) + "\n"
    assert source_text({"type": "builtin", "name": "arithmetic", "n_samples": 500,
                        "max_operand": 99}, 3) == text  # fmt: skip


@pytest.mark.parametrize(
    "line, valid",
    [
        ("12+7=19", True),
        ("0+0=0", True),
        ("99+99=198", True),
        ("12+7=18", False),
        ("12+7=", False),
        ("12+=19", False),
        ("12+7=19+1", False),
        ("", False),
        ("twelve", False),
    ],
)
def test_arithmetic_validity_checks_each_line(line: str, valid: bool) -> None:
    assert arithmetic_validity([line]) == (int(valid), 1)


@pytest.mark.parametrize(
    "line, valid",
    [
        ("85 + 63 = 148", True),  # word tokens as decoded: a space between tokens
        ("85 + 63 = 147", False),
        ("8 5 + 63 = 148", False),  # two number tokens are not the number 85
        ("85+63=148", False),  # not a decoding of word tokens
        ("<unk> + 63 = 148", False),
    ],
)
def test_arithmetic_validity_of_decoded_word_tokens(line: str, valid: bool) -> None:
    assert arithmetic_validity([line], words=True) == (int(valid), 1)


def test_word_tokens_of_correct_sums_decode_to_valid_lines() -> None:
    text = arithmetic_text(200, 99, 0)
    tokenizer = fit_tokenizer({"type": "word", "vocab_size": 500}, text)
    lines = tokenizer.decode(tokenizer.encode(text)).split("\n")[:-1]
    assert arithmetic_validity(lines, words=True) == (200, 200)


def test_text_file_source_is_read_as_utf8(tmp_path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("naïve ☃\n", encoding="utf-8")
    assert source_text({"type": "text", "path": str(path)}, seed=0) == "naïve ☃\n"


def test_a_prompt_outside_the_vocabulary_is_named_with_the_vocabulary() -> None:
    tokenizer = fit_tokenizer({"type": "char"}, arithmetic_text(200, 99, 0))
    assert unknown_prompt_message(tokenizer, "12+3") is None
    message = unknown_prompt_message(tokenizer, "abca1+")
    assert message is not None
    assert "characters the model never saw: 'a', 'b', 'c';" in message
    assert message.endswith("its vocabulary: \\n + 0-9 =")
    words = fit_tokenizer({"type": "word", "vocab_size": 10}, TEXT)
    assert unknown_prompt_message(words, "the cat") is None
    message = unknown_prompt_message(words, "the zebra")
    assert message is not None and "words the model never saw: 'zebra'" in message
    assert unknown_prompt_message(fit_tokenizer({"type": "byte"}, TEXT), "zebra\u00e9") is None
