"""Finding catalogue titles in feedback text."""

from __future__ import annotations

import pytest

from training.ml.text import TextAnalyzer
from training.ml.text.titles import title_names


@pytest.mark.parametrize(
    ("title", "primary", "secondary"),
    [
        ("Toy Story (1995)", ["Toy Story"], []),
        ("Matrix, The (1999)", ["The Matrix"], []),
        ("Avventura, L' (1960)", ["L'Avventura"], []),
        ("Shichinin no samurai (Seven Samurai) (1954)", ["Shichinin no samurai"], ["Seven Samurai"]),
        ("Seven (a.k.a. Se7en) (1995)", ["Seven"], ["Se7en"]),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ["The City of Lost Children"],
            ["La Cité des enfants perdus"],
        ),
        (
            "Star Wars: Episode IV - A New Hope (1977)",
            ["Star Wars: Episode IV - A New Hope"],
            ["Star Wars"],
        ),
        ("Death Note: Desu nôto (2006\u20132007)", ["Death Note: Desu nôto"], ["Death Note"]),
        ("Babylon 5", ["Babylon 5"], []),
    ],
)
def test_title_names_drop_the_year_and_front_the_article(title, primary, secondary):
    assert title_names(title) == (primary, secondary)


def movie_ids(catalogue: list[tuple[int, str]], text: str) -> list[str]:
    analysis = TextAnalyzer(titles=catalogue).analyze(text)
    return [signal.value for signal in analysis.signals if signal.aspect == "title"]


def test_it_prefers_the_longest_title():
    catalogue = [(1, "Toy Story (1995)"), (3114, "Toy Story 2 (1999)")]
    assert movie_ids(catalogue, "toy story 2 was even better") == ["3114"]
    assert movie_ids(catalogue, "toy story was better") == ["1"]


def test_the_first_movie_in_the_catalogue_wins_a_shared_title():
    catalogue = [(1411, "Hamlet (1996)"), (1, "Hamlet (1948)")]
    assert movie_ids(catalogue, "loved hamlet") == ["1411"]


def test_an_exact_title_beats_another_movies_short_name():
    catalogue = [(2, "Alien: Resurrection (1997)"), (1214, "Alien (1979)")]
    assert movie_ids(catalogue, "I loved Alien") == ["1214"]


def test_it_matches_hyphenated_titles_joined_or_split():
    catalogue = [(5349, "Spider-Man (2002)")]
    assert movie_ids(catalogue, "spider-man was fine") == ["5349"]
    assert movie_ids(catalogue, "spiderman was fine") == ["5349"]
    assert movie_ids(catalogue, "spider man was fine") == ["5349"]


def test_it_matches_titles_without_accents():
    catalogue = [(4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)")]
    assert movie_ids(catalogue, "loved amélie") == ["4973"]
    assert movie_ids(catalogue, "le fabuleux destin d'amelie poulain") == ["4973"]


def test_a_title_keeps_its_own_commas_and_contrast_words():
    catalogue = [(4886, "Monsters, Inc. (2001)"), (5, "Anything But Love (2002)")]
    assert movie_ids(catalogue, "Monsters, Inc. is great") == ["4886"]
    assert movie_ids(catalogue, "I thought Anything But Love was dull") == ["5"]


SHORT_AND_COMMON = [(68954, "Up (2009)"), (6, "Heat (1995)"), (166643, "It (2017)"), (1214, "Alien (1979)")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("things heat up quickly", []),
        ("it was great", []),
        ("It was great", []),  # a capital that only starts a sentence says nothing
        ("Up was great", []),
        ("I loved Up", ["68954"]),
        ("I loved It", ["166643"]),
        ("'up' was great", ["68954"]),  # quoted
        ('loved "heat"', ["6"]),
        ("Heat is a masterpiece", ["6"]),  # an everyday noun: a sentence-initial capital is enough
        ("alien invasion movies are fun", []),
        ("Alien is a masterpiece", ["1214"]),
        ("I LOVED UP AND HEAT", []),  # all capitals: capitals say nothing
    ],
)
def test_short_or_common_titles_need_quotes_or_capitals(text, expected):
    assert movie_ids(SHORT_AND_COMMON, text) == expected
