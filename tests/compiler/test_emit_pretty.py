"""`pretty` lays literals out as ruff format would: a dict item whose key, value and comma
overflow the line is broken up, even when the value alone would fit."""

from __future__ import annotations

import ast

from gencompile.compiler.emit import LINE_LENGTH, pretty


def test_an_item_is_broken_up_when_its_key_makes_the_line_too_long() -> None:
    value = {"fine_tune_settings_of_this_run": {f"network_{i}": 0.25 for i in range(4)}}
    text = pretty(value)
    assert all(len(line) <= LINE_LENGTH for line in text.splitlines()), text
    assert ast.literal_eval(text) == value
    short = {"fine_tune": {"encoder": 0.25}}
    assert pretty(short) == '{"fine_tune": {"encoder": 0.25}}'  # what fits stays on one line
