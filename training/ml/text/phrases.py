"""Longest-match lookup of multi-word phrases in a token sequence, indexed by first word."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from training.ml.text.normalise import word_keys

Payload = TypeVar("Payload")
Key = tuple[str, ...]


def phrase_key(phrase: str) -> Key:
    """The token tuple a phrase is matched by: lowercase words, apostrophes dropped."""
    return word_keys(phrase)


def key_variants(key: Key) -> list[Key]:
    """The key plus its hyphen-joined and hyphen-split spellings ("sci-fi", "scifi", "sci fi")."""
    variants = [key]
    if any("-" in word for word in key):
        variants.append(tuple(word.replace("-", "") for word in key))
        variants.append(tuple(part for word in key for part in word.split("-") if part))
    return variants


class PhraseIndex(Generic[Payload]):
    """Phrases by their first word, so a lookup costs one dict hit per position of the text."""

    def __init__(self) -> None:
        self._payloads: dict[Key, Payload] = {}
        self._lengths: dict[str, list[int]] = {}  # first word -> phrase lengths, longest first

    def __len__(self) -> int:
        return len(self._payloads)

    def __contains__(self, key: object) -> bool:
        return key in self._payloads

    def add(self, key: Key, payload: Payload, *, replace: bool = False) -> bool:
        """Index `key`; an existing key keeps its first payload unless `replace`. True if stored."""
        if not key or (key in self._payloads and not replace):
            return False
        self._payloads[key] = payload
        lengths = self._lengths.setdefault(key[0], [])
        if len(key) not in lengths:
            lengths.append(len(key))
            lengths.sort(reverse=True)
        return True

    def add_phrase(self, phrase: str, payload: Payload) -> None:
        """Index a phrase under all its spellings (see `key_variants`)."""
        for key in key_variants(phrase_key(phrase)):
            self.add(key, payload)

    def keys(self) -> Iterable[Key]:
        return self._payloads.keys()

    def get(self, key: Key) -> Payload | None:
        return self._payloads.get(key)

    def candidates_at(self, keys: Sequence[str], start: int, stop: int) -> Iterator[tuple[int, Payload]]:
        """(end, payload) of every phrase starting at `start` and ending by `stop`, longest first."""
        for length in self._lengths.get(keys[start], ()):
            end = start + length
            if end <= stop:
                payload = self._payloads.get(tuple(keys[start:end]))
                if payload is not None:
                    yield end, payload

    def find(
        self,
        keys: Sequence[str],
        start: int = 0,
        stop: int | None = None,
        *,
        blocked: Callable[[int], bool] = lambda index: False,
        accept: Callable[[int, int, Payload], bool] = lambda start, end, payload: True,
    ) -> list[tuple[int, int, Payload]]:
        """Greedy left-to-right longest non-overlapping matches as (start, end, payload).

        A phrase may not cover a `blocked` position; `accept` can veto a candidate, and the next
        shorter one is tried.
        """
        stop = len(keys) if stop is None else stop
        matches: list[tuple[int, int, Payload]] = []
        position = start
        while position < stop:
            match_end = None
            if not blocked(position):
                for end, payload in self.candidates_at(keys, position, stop):
                    if any(blocked(index) for index in range(position + 1, end)):
                        continue
                    if accept(position, end, payload):
                        matches.append((position, end, payload))
                        match_end = end
                        break
            position = match_end if match_end is not None else position + 1
        return matches
