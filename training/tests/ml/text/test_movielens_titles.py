from __future__ import annotations

import pytest

from training.ml.text.movielens_titles import article_last, natural_title


@pytest.mark.parametrize(
    ("stored", "natural"),
    [
        ("Matrix, The", "The Matrix"),
        ("Patch of Blue, A", "A Patch of Blue"),
        ("Avventura, L'", "L'Avventura"),  # no space after an elided article
        (
            "Lord of the Rings: The Fellowship of the Ring, The",
            "The Lord of the Rings: The Fellowship of the Ring",
        ),
        ("10th Victim, The (La decima vittima)", "The 10th Victim (La decima vittima)"),
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le)", "Amelie (Le Fabuleux destin d'Amélie Poulain)"),
        ("6th Man, The (Sixth Man, The)", "The 6th Man (The Sixth Man)"),
        (
            "Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il)",
            "The Good, the Bad and the Ugly (Il Buono, il brutto, il cattivo)",
        ),
        # Commas that are part of the title stay where they are.
        ("Monsters, Inc.", "Monsters, Inc."),
        ("Hello, Dolly!", "Hello, Dolly!"),
        ("I, Robot", "I, Robot"),
        (
            "Crouching Tiger, Hidden Dragon (Wo hu cang long)",
            "Crouching Tiger, Hidden Dragon (Wo hu cang long)",
        ),
        ("Seven (a.k.a. Se7en)", "Seven (a.k.a. Se7en)"),
        ("Heat", "Heat"),
    ],
)
def test_natural_title_puts_a_trailing_article_in_front(stored, natural):
    assert natural_title(stored) == natural


@pytest.mark.parametrize(
    ("query", "split"),
    [
        ("the matrix", ("matrix", "the")),
        ("  An American  ", ("American", "An")),
        ("l'avventura", ("avventura", "l'")),
        ("the", None),  # an article alone is not split
        ("theater", None),
        ("matrix", None),
    ],
)
def test_article_last_splits_a_leading_article(query, split):
    assert article_last(query) == split
