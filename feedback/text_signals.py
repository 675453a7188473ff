"""One free-text analyzer per process, built over the catalogue and rebuilt when the catalogue changes.

Building a `TextAnalyzer` over ml-latest-small's titles and tags takes about a second, so each
process keeps one and checks the catalogue's fingerprint (movie count and highest id, one
aggregate query) before every use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.db.models import Count, Max

from movies.models import Movie, Tag
from training.ml.text import TextAnalyzer

MAX_TAGS = 5000  # the most used tags make the vocabulary; the long tail is mostly one-off typos


@dataclass(frozen=True)
class ParsedText:
    """What the stored feedback keeps of an analysis."""

    signals: list[dict]  # [{aspect, value, polarity, span}]
    sentiment: float | None


_lock = threading.Lock()
_cached: tuple[tuple[int, int | None], TextAnalyzer] | None = None


def _fingerprint() -> tuple[int, int | None]:
    row = Movie.objects.aggregate(n=Count("id"), top=Max("id"))
    return row["n"], row["top"]


def _build() -> TextAnalyzer:
    titles = [
        (movie_id, f"{title} ({year})" if year else title)
        for movie_id, title, year in Movie.objects.order_by("-num_ratings", "id").values_list(
            "id", "title", "year"
        )
    ]
    tags = list(
        Tag.objects.values("tag")
        .annotate(uses=Count("id"))
        .order_by("-uses", "tag")
        .values_list("tag", flat=True)[:MAX_TAGS]
    )
    return TextAnalyzer(titles=titles, tags=tags)


def text_analyzer() -> TextAnalyzer:
    """The process's analyzer, rebuilt when movies were added or removed since it was built."""
    global _cached
    fingerprint = _fingerprint()
    cached = _cached
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with _lock:
        if _cached is None or _cached[0] != fingerprint:
            _cached = (fingerprint, _build())
        return _cached[1]


def text_analyzer_reset() -> None:
    """Forget the cached analyzer (tests that change the catalogue's titles in place)."""
    global _cached
    with _lock:
        _cached = None


def parse_text(text: str) -> ParsedText:
    """Signals and sentiment of a feedback text; an empty text has neither."""
    if not text.strip():
        return ParsedText(signals=[], sentiment=None)
    analysis = text_analyzer().analyze(text)
    return ParsedText(signals=[signal.as_dict() for signal in analysis.signals], sentiment=analysis.sentiment)
