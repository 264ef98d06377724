"""Plain text inside Markdown: what a spec wrote is shown as written, never as markup.

A spec's description (and the paths and names it gives) land in README.md and report.md.
Markdown passes raw HTML through and turns brackets into links and images, so the text is
escaped with backslashes, which CommonMark allows before any ASCII punctuation.
"""

from __future__ import annotations

import re

# Characters that open inline markup: HTML and autolinks, links and images, emphasis,
# code, strikethrough, table cells, entities, math.
_INLINE = re.compile(r"([\\`*_\[\]<>&~|$])")
# Characters that make a line a heading, quote, list item or setext underline.
_LINE_START = re.compile(r"^([#>+=-]|\d+(?=[.)]))")


def markdown_text(text: str) -> str:
    """`text` as one Markdown paragraph that renders literally; a control character shows
    as its picture (a NUL as U+2400), as a text file holds none (a NUL reads as binary)."""
    one_line = " ".join(text.split())  # a blank line would start a block of its own
    visible = "".join(_visible(c) for c in one_line)
    escaped = _INLINE.sub(r"\\\1", visible)
    return _LINE_START.sub(_escape_start, escaped)


def _escape_start(match: re.Match[str]) -> str:
    start = match.group(1)
    return start + "\\" if start[0].isdigit() else "\\" + start


def _visible(character: str) -> str:
    """A control character's Unicode picture (U+2400-U+2421), or U+FFFD for one of the C1
    controls, which have none; any other character as it is."""
    code = ord(character)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return "\ufffd" if 0x80 <= code < 0xA0 else character
