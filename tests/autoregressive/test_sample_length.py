"""A generated language model's `sample(length=...)`: None is SAMPLING's length, and a
length below 1 is refused by name (as `gencompile sample --length` refuses it)."""

from __future__ import annotations

import pytest


def test_sample_length_none_is_the_default_and_below_one_is_refused(generated) -> None:
    module = generated("gru")
    model = module.build_model()
    prompt = len(module.TOKENIZER.encode(module.SAMPLING["prompt"]))
    assert model.sample(2).shape == (2, prompt + module.SAMPLING["length"])
    assert model.sample(2, length=3).shape == (2, prompt + 3)
    for length in (0, -1):
        with pytest.raises(ValueError, match=rf"^length must be >= 1. Received: length={length}$"):
            model.sample(2, length=length)
