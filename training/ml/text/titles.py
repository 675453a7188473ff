"""Index of catalogue titles for spotting movie names in feedback text.

Keys. A MovieLens title "Matrix, The (1999)" is indexed as "the matrix" and "matrix": the year is
dropped, a trailing article ("The", "A", "La", "L'", ...) moves to the front, and a leading
English article is optional. A trailing parenthesis is an alternative title ("Seven (a.k.a.
Se7en)"), and the part before a colon is a short name ("Star Wars: Episode IV - A New Hope" ->
"star wars"); both are secondary keys, used only when no movie has that exact title. When several
movies share a key the first in the catalogue wins, so pass the catalogue in order of preference
(for example by popularity).

Guard. Some keys would match ordinary words, so they match only with evidence the writer meant a
title: the words are quoted ('Up', "Heat") or capitalised ("I loved Up"), and capitals count only
if the text is not written in capitals throughout. Two levels:
- `GUARD_MID_SENTENCE`: keys shorter than 4 characters ("Up", "It", "Elf"), made only of grammar
  or sentiment words ("Inside Out", "Love"), only of digits ("1917"), or equal to an aspect, cue
  or tag phrase ("Western"). A capital that merely starts a sentence is not evidence: "It was
  great" and "Up was great" do not name films, "I loved Up" does.
- `GUARD_CAPITALS`: keys made only of everyday or movie-talk nouns ("Heat", "Alien", "Home
  Alone"). Any capital is evidence, sentence-initial included ("Heat is a masterpiece"), while
  "alien invasion movies" is not the film.
Within a title, function words may stay lowercase ("Lord of the Rings").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

from training.ml.text.lexicon import FUNCTION_WORDS
from training.ml.text.movielens_titles import front_article
from training.ml.text.normalise import Token, clean
from training.ml.text.phrases import Key, PhraseIndex, key_variants, phrase_key

MIN_UNGUARDED_CHARS = 4
"""Keys shorter than this (spaces excluded) need quotes or capitals to match."""
NO_GUARD, GUARD_CAPITALS, GUARD_MID_SENTENCE = 0, 1, 2

_YEAR = re.compile(r"\s*\(\s*\d{4}\s*(?:-\s*\d{0,4}\s*)?\)\s*$")
_TRAILING_PARENTHESIS = re.compile(r"^(.*\S)\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^\s*(?:a\.k\.a\.|aka)\s+", re.IGNORECASE)
_LEADING_ARTICLES = frozenset({"the", "a", "an"})
_QUOTES = frozenset("'\"")


class TitleEntry(NamedTuple):
    movie_id: int
    guard: int  # NO_GUARD, GUARD_CAPITALS or GUARD_MID_SENTENCE (see the module docstring)
    ends_with_period: bool  # "Monsters, Inc.": the "." after the words belongs to the title


def title_names(title: str) -> tuple[list[str], list[str]]:
    """(primary names, secondary names) a catalogue title is known by."""
    name = _YEAR.sub("", clean(title))
    alternatives: list[str] = []
    while name.endswith(")") and (match := _TRAILING_PARENTHESIS.match(name)):
        name, alternative = match.group(1), _AKA.sub("", match.group(2))
        alternatives.append(alternative)
    primary = [front_article(name) if "," in name else name]
    secondary = [front_article(alternative) for alternative in alternatives]
    for full in (*primary, *secondary):
        if ":" in full:
            secondary.append(full.split(":", 1)[0])
    return primary, secondary


def _keys(name: str) -> list[Key]:
    key = phrase_key(name)
    keys = key_variants(key) if "-" in name else [key]
    if len(key) > 1 and key[0] in _LEADING_ARTICLES:
        keys.extend(key_variants(key[1:]) if "-" in name else [key[1:]])
    return keys


class TitleIndex:
    """Normalised catalogue titles by first word; built once, then matched per text."""

    def __init__(
        self,
        titles: Iterable[tuple[int, str]],
        *,
        grammar_words: Collection[str],
        everyday_words: Collection[str],
        reserved: Collection[Key] = (),
    ) -> None:
        self._grammar_words = frozenset(grammar_words) | FUNCTION_WORDS
        self._common_words = self._grammar_words | frozenset(everyday_words)
        self._reserved = frozenset(reserved)
        self._index: PhraseIndex[TitleEntry] = PhraseIndex()
        deferred: list[tuple[Key, int, bool]] = []
        for movie_id, title in titles:
            movie_id = int(movie_id)
            primary, secondary = title_names(title)
            for name in primary:
                for key in _keys(name):
                    if key not in self._index:
                        self._index.add(key, TitleEntry(movie_id, self._guard(key), name.endswith(".")))
            for name in secondary:
                deferred.extend((key, movie_id, name.endswith(".")) for key in _keys(name))
        for key, movie_id, ends_with_period in deferred:
            if key not in self._index:
                self._index.add(key, TitleEntry(movie_id, self._guard(key), ends_with_period))

    def __len__(self) -> int:
        return len(self._index)

    def _guard(self, key: Key) -> int:
        core = key[1:] if len(key) > 1 and key[0] in _LEADING_ARTICLES else key
        joined = "".join(core)
        if (
            len(joined) < MIN_UNGUARDED_CHARS
            or joined.isdigit()
            or self._grammar_words.issuperset(core)
            or core in self._reserved
            or key in self._reserved
        ):
            return GUARD_MID_SENTENCE
        if self._common_words.issuperset(core):
            return GUARD_CAPITALS
        return NO_GUARD

    def find(
        self,
        text: str,
        tokens: Sequence[Token],
        keys: Sequence[str],
        *,
        sentence_starts: Collection[int],
        capitals_count: bool,
    ) -> list[tuple[int, int, TitleEntry]]:
        """(start token, end token, entry) of titles in the text, longest match first.

        `text` is the cleaned text the tokens index into; `capitals_count` is False when the
        text is written in capitals throughout, so capitals say nothing.
        """

        def has_evidence(start: int, end: int, entry: TitleEntry) -> bool:
            if entry.guard == NO_GUARD:
                return True
            before = text[tokens[start].start - 1] if tokens[start].start > 0 else ""
            after = text[tokens[end - 1].end] if tokens[end - 1].end < len(text) else ""
            if before in _QUOTES and after in _QUOTES:
                return True
            if not capitals_count:
                return False
            content = [i for i in range(start, end) if keys[i] not in FUNCTION_WORDS] or [start]
            if not all(tokens[i].text[0].isupper() for i in content):
                return False
            return entry.guard == GUARD_CAPITALS or any(i not in sentence_starts for i in content)

        return self._index.find(keys, accept=has_evidence)
