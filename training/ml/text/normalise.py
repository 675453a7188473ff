"""Text clean-up and tokenisation shared by the feedback-text analyzer and its indexes.

`clean` keeps the case (capitals tell a title from a common word, and VADER reads them as
emphasis); `normalise` is `clean` lowercased, the form everything is matched in.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

MAX_CHARS = 2000
"""Longer feedback is cut: comments are short, and the cap bounds the analyzer's work."""

_QUOTE_TRANSLATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": " - ",
        "\u2014": " - ",
    }
)
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # control, format, unassigned
# A word keeps inner apostrophes and hyphens ("don't", "sci-fi", "80's"); a leading apostrophe
# is kept only before digits ("'80s"), so a quoted 'Up' still tokenises to "Up".
_TOKEN = re.compile(r"'\d+s?\b|\w+(?:['\-]\w+)*")


class Token(NamedTuple):
    """One word of the cleaned text with its character offsets into that text."""

    text: str  # as written (case kept)
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def key(self) -> str:
        """The form phrases are matched in: see `match_key`."""
        return match_key(self.text)


def match_key(word: str) -> str:
    """Lowercase, apostrophes and accents dropped: "Don't" -> "dont", "Amélie" -> "amelie"."""
    key = word.lower().replace("'", "")
    if not key.isascii():
        key = "".join(char for char in unicodedata.normalize("NFKD", key) if not unicodedata.combining(char))
    return key


def clean(text: str) -> str:
    """NFKC, straight quotes, control characters removed, whitespace collapsed, length capped."""
    if not isinstance(text, str):
        raise TypeError(f"feedback text must be str, not {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii() or "`" in text:
        text = text.translate(_QUOTE_TRANSLATION)
    if not text.isprintable():  # the fast path skips this per-character pass
        text = "".join(
            " " if char.isspace() else char
            for char in text
            if char.isspace() or unicodedata.category(char) not in _DROPPED_CATEGORIES
        )
    text = " ".join(text.split())
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rstrip()
    return text


def normalise(text: str) -> str:
    """`clean` lowercased: the text as the analyzer matches it."""
    return clean(text).lower()


def tokenise(text: str) -> list[Token]:
    """Regex word tokens of already-cleaned text; punctuation and emoji are dropped."""
    return [Token(match.group(), match.start(), match.end()) for match in _TOKEN.finditer(text)]


def word_keys(text: str) -> tuple[str, ...]:
    """`match_key` of every word of already-cleaned text: the fast path for building indexes."""
    lowered = text.lower()
    if not lowered.isascii():
        return tuple(match_key(word) for word in _TOKEN.findall(lowered))
    if "'" not in lowered:
        return tuple(_TOKEN.findall(lowered))
    return tuple(word.replace("'", "") for word in _TOKEN.findall(lowered))


def words(text: str) -> list[str]:
    """Lowercase word tokens of any text, cleaning it first."""
    return [token.lower for token in tokenise(clean(text))]
