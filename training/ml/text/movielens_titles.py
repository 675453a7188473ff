"""MovieLens titles as people write them.

MovieLens moves a leading article to the end so that titles sort by their first real word:
"Matrix, The", "Avventura, L'", "Amelie (Fabuleux destin d'Amélie Poulain, Le)". Pages show the
natural form ("The Matrix"); the stored title keeps the MovieLens form, which is also the sort key.
Plain Python: the text analyzer uses it too.
"""

from __future__ import annotations

import re

ARTICLES = (
    "the", "a", "an", "les", "la", "le", "l'", "il", "el", "los", "las", "der", "die", "das",
    "den", "det", "lo", "gli", "i", "un", "une", "una", "uno", "ein", "eine",
)  # fmt: skip
"""Articles MovieLens moves to the end of a title (English, French, Italian, Spanish, German, Scandinavian)."""

TRAILING_ARTICLE = re.compile(rf"^(?P<name>.+?),\s*(?P<article>{'|'.join(ARTICLES)})$", re.IGNORECASE)
_TRAILING_PARENTHESIS = re.compile(r"^(?P<head>.*\S)\s*\((?P<inner>[^()]*)\)$")
_LEADING_ARTICLE = re.compile(
    rf"^(?P<article>{'|'.join(ARTICLES)})(?:\s+|(?<=')\s*)(?P<rest>\S.*)$", re.IGNORECASE
)


def front_article(name: str) -> str:
    """Move a trailing article to the front: "Matrix, The" -> "The Matrix", "Avventura, L'" -> "L'Avventura"."""
    match = TRAILING_ARTICLE.match(name.strip())
    if not match:
        return name
    article = match.group("article")
    separator = "" if article.endswith("'") else " "
    return f"{article}{separator}{match.group('name')}"


def natural_title(title: str) -> str:
    """The title with each trailing article in front, in the main title and in alternative titles.

    "Lord of the Rings: The Fellowship of the Ring, The" -> "The Lord of the Rings: The Fellowship
    of the Ring"; "10th Victim, The (La decima vittima)" -> "The 10th Victim (La decima vittima)".
    """
    alternatives: list[str] = []
    head = title.strip()
    while head.endswith(")") and (match := _TRAILING_PARENTHESIS.match(head)):
        head = match.group("head")
        alternatives.insert(0, front_article(match.group("inner")))
    return " ".join([front_article(head), *(f"({alternative})" for alternative in alternatives)])


def article_last(query: str) -> tuple[str, str] | None:
    """A query that starts with an article, split the way MovieLens stores it: ("matrix", "the").

    ``None`` when the query does not start with an article followed by more words.
    """
    match = _LEADING_ARTICLE.match(query.strip())
    if not match:
        return None
    return match.group("rest"), match.group("article")
