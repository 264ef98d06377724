"""Text for the autoregressive family: sources, tokenizers and the arithmetic language.

Pure Python and NumPy, no TensorFlow: the compiler fits the vocabulary when it builds a
project (so the generated model knows its size and the lock pins it), and the runtime
tokenizes the same text with the same functions when it trains.

- `source_text(source, seed)`: the text of a resolved `data.source` (a file, or the
  built-in `arithmetic` language generated from the seed);
- `split_text(text, fraction)`: the last `fraction` of the characters is held out;
- `fit_tokenizer(config, text)`: a char, byte or word tokenizer whose vocabulary comes from
  the training text; char and word vocabularies start with the unknown token `<unk>`;
- `arithmetic_text` / `arithmetic_validity`: lines such as `12+7=19`, and the fraction of
  lines that are correct sums.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where tokens are counted: lowering a spec needs no NumPy
    import numpy as np

UNKNOWN = "<unk>"
WORD_PATTERN = re.compile(r"\w+|[^\w\s]|\n")
ARITHMETIC_LINE = re.compile(r"(\d+)\+(\d+)=(\d+)")
# The same line as word tokens decode it: a space between tokens (`12 + 7 = 19`).
ARITHMETIC_WORDS = re.compile(r"(\d+) \+ (\d+) = (\d+)")
TEXT_BUILTINS = ("arithmetic",)


# --------------------------------------------------------------------------- sources


def arithmetic_lines(n_samples: int, max_operand: int, seed: int) -> list[str]:
    """`n_samples` lines `a+b=c` with a, b uniform in 0..max_operand, drawn from `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    operands = rng.integers(0, max_operand + 1, size=(n_samples, 2))
    return [f"{a}+{b}={a + b}" for a, b in operands.tolist()]


def arithmetic_text(n_samples: int, max_operand: int, seed: int) -> str:
    """The arithmetic language as one text: one sum per line, each line ending with \\n."""
    return "\n".join(arithmetic_lines(n_samples, max_operand, seed)) + "\n"


def arithmetic_validity(lines: list[str], words: bool = False) -> tuple[int, int]:
    """(correct sums, lines checked): a line is correct if it reads `a+b=c` with a + b = c.

    `words`: the lines are decoded word tokens, which `Tokenizer.decode` joins with spaces;
    a correct line is then `a + b = c`, the decoded tokens of `a+b=c` (and `12 7` is two
    number tokens, not the number 127)."""
    pattern = ARITHMETIC_WORDS if words else ARITHMETIC_LINE
    correct = 0
    for line in lines:
        match = pattern.fullmatch(line)
        if match and int(match[1]) + int(match[2]) == int(match[3]):
            correct += 1
    return correct, len(lines)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A text file's contents, read with the memory limit of every data file (a FIFO or a
    device is refused as `DataFileError`; UnicodeDecodeError / LookupError propagate)."""
    from gencompile.datafiles import read_text_file

    text = read_text_file(path, "data.source.path", encoding, "use a shorter text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text reads it


def source_text(source: dict[str, Any], seed: int) -> str:
    """The text of a resolved text source: `{type: text, path}` or builtin `arithmetic`."""
    if source["type"] == "text":
        return read_text(source["path"], source.get("encoding", "utf-8"))
    if source["type"] == "builtin" and source["name"] == "arithmetic":
        return arithmetic_text(int(source["n_samples"]), int(source["max_operand"]), seed)
    raise ValueError(f"not a text source: {source}")


def split_text(text: str, fraction: float) -> tuple[str, str]:
    """(training text, held-out text): the last round(len * fraction) characters are held out."""
    held_out = round(len(text) * fraction)
    cut = len(text) - held_out
    return text[:cut], text[cut:]


def windows(ids: np.ndarray, context_length: int) -> np.ndarray:
    """Windows of context_length + 1 tokens with stride context_length: (n, context_length + 1).

    Consecutive windows share one token, so every token but the first is a target once.
    """
    import numpy as np

    count = (len(ids) - 1) // context_length
    starts = np.arange(count, dtype=np.int64)[:, None] * context_length
    found: np.ndarray = np.asarray(ids, dtype=np.int32)[starts + np.arange(context_length + 1)]
    return found


# --------------------------------------------------------------------------- tokenizers


@dataclass(frozen=True)
class Tokenizer:
    """Token ids <-> text. `tokens[i]` is the text of id i (byte tokenizers: none needed)."""

    type: str  # char | byte | word
    tokens: tuple[str, ...]

    @property
    def vocab_size(self) -> int:
        return 256 if self.type == "byte" else len(self.tokens)

    @property
    def unknown_id(self) -> int | None:
        return None if self.type == "byte" else 0

    def encode(self, text: str) -> np.ndarray:
        """int32 token ids; characters or words outside the vocabulary become `<unk>` (0)."""
        import numpy as np

        if self.type == "byte":
            return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        if self.type == "char":
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            known = np.array([ord(t) for t in self.tokens[1:]], dtype=np.uint32)  # sorted
            if len(known) == 0:
                return np.zeros(len(codes), dtype=np.int32)
            position = np.minimum(np.searchsorted(known, codes), len(known) - 1)
            return np.where(known[position] == codes, position + 1, 0).astype(np.int32)
        index = {token: i for i, token in enumerate(self.tokens)}
        return np.array([index.get(w, 0) for w in WORD_PATTERN.findall(text)], dtype=np.int32)

    def unknown(self, text: str) -> list[str]:
        """The distinct characters (char) or words (word) of `text` outside the vocabulary, in
        order of appearance; `encode` would turn each into `<unk>`. A byte tokenizer knows
        every text."""
        if self.type == "byte":
            return []
        known = set(self.tokens[1:])
        pieces = text if self.type == "char" else WORD_PATTERN.findall(text)
        return list(dict.fromkeys(p for p in pieces if p not in known))

    def describe_vocabulary(self, limit: int = 60) -> str:
        """The vocabulary in a line: characters with runs such as `0-9` or `a-z` shortened,
        words as the first `limit` quoted; `<unk>` left out."""
        if self.type == "byte":
            return "all 256 byte values"
        known = list(self.tokens[1:])
        if self.type == "word":
            shown = " ".join(repr(w) for w in known[:limit])
            more = f" ... ({len(known)} words)" if len(known) > limit else ""
            return shown + more
        parts: list[str] = []
        i = 0
        while i < len(known):
            j = i
            while j + 1 < len(known) and ord(known[j + 1]) == ord(known[j]) + 1:
                j += 1
            ends = [_shown_char(c) for c in (known[i], known[j])]
            if j - i >= 2 and all(c.isalnum() for c in (known[i], known[j])):
                parts.append(f"{ends[0]}-{ends[1]}")
            else:
                parts.extend(_shown_char(c) for c in known[i : j + 1])
            i = j + 1
        if len(parts) > limit:
            return " ".join(parts[:limit]) + f" ... ({len(known)} characters)"
        return " ".join(parts)

    def decode(self, ids: Any) -> str:
        """Text of token ids (words are joined by spaces, none around line breaks)."""
        import numpy as np

        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if self.type == "byte":
            return bytes(i % 256 for i in ids).decode("utf-8", errors="replace")
        if self.type == "char":
            return "".join(self.tokens[i] if 0 < i < len(self.tokens) else "\ufffd" for i in ids)
        return self.spell([self.tokens[i] if 0 <= i < len(self.tokens) else UNKNOWN for i in ids])

    def pieces(self, text: str) -> list[str]:
        """The pieces of `text` that `encode(text)`'s tokens stand for, one per token, an
        unknown one as written (not `<unk>`): characters, words, or one-byte strings."""
        if self.type == "byte":
            return [bytes([b]).decode("latin-1") for b in text.encode("utf-8")]
        return list(text) if self.type == "char" else WORD_PATTERN.findall(text)

    def spell(self, pieces: Sequence[str]) -> str:
        """Text of token pieces as `decode` writes it: words joined by spaces, none around
        line breaks; bytes decoded as UTF-8."""
        if self.type == "byte":
            return "".join(pieces).encode("latin-1").decode("utf-8", errors="replace")
        if self.type == "char":
            return "".join(pieces)
        joined = " ".join(pieces)
        return joined.replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")

    def characters(self, ids: Any) -> int:
        """How many characters the token ids spell (for bits per character)."""
        return len(self.decode(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "tokens": list(self.tokens), "unknown": UNKNOWN}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        return cls(str(data["type"]), tuple(str(t) for t in data["tokens"]))


def _shown_char(c: str) -> str:
    """A vocabulary character as a reader can see it: printable ones bare, others escaped
    (`\\n`, `' '` for the space)."""
    if c == " ":
        return "' '"
    return c if c.isprintable() else repr(c)[1:-1]


def unknown_prompt(tokenizer: Tokenizer, prompt: str) -> tuple[str, str] | None:
    """Why `prompt` cannot be continued by a model with this vocabulary, and what to do; or
    None: the characters (words) it never saw would be replaced by `<unk>`, silently, and
    a prompt of no token (a word tokenizer reads none in spaces) leaves nothing to continue.
    The one check of a prompt: the spec's, training's, `sample --prompt`'s and the server's."""
    if len(tokenizer.encode(prompt)) == 0:
        if tokenizer.type == "word":
            return (
                "the prompt holds no token: a word tokenizer reads none in spaces",
                "give at least one token: a word, a punctuation mark or a line break",
            )
        return ("the prompt holds no token", "give at least one token: a character")
    missing = tokenizer.unknown(prompt)
    if not missing:
        return None
    what = "characters" if tokenizer.type == "char" else "words"
    listed = ", ".join(repr(m) for m in missing[:20]) + (" ..." if len(missing) > 20 else "")
    return (
        f"the prompt has {what} the model never saw: {listed}",
        f"write it with the {what} of its vocabulary: {tokenizer.describe_vocabulary()}",
    )


def unknown_prompt_message(tokenizer: Tokenizer, prompt: str) -> str | None:
    """`unknown_prompt` in one line (what; what to do), or None."""
    found = unknown_prompt(tokenizer, prompt)
    return None if found is None else "; ".join(found)


def fit_tokenizer(config: dict[str, Any], text: str) -> Tokenizer:
    """A tokenizer whose vocabulary is the training text's: `<unk>` then the tokens.

    char: every distinct character, sorted; word: the `vocab_size - 1` most frequent words
    (ties broken alphabetically); byte: the 256 byte values, no vocabulary to fit.
    """
    kind = config["type"]
    if kind == "byte":
        return Tokenizer("byte", ())
    if kind == "char":
        return Tokenizer("char", (UNKNOWN, *sorted(set(text))))
    if kind == "word":
        counts = Counter(WORD_PATTERN.findall(text))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))[: int(config["vocab_size"]) - 1]
        return Tokenizer("word", (UNKNOWN, *ranked))
    raise ValueError(f"unknown tokenizer type {kind!r}")
