"""The word lists behind the feedback-text analyzer."""

from __future__ import annotations

from training.ml.text.lexicon import CUES, GENRE_ALIASES, POPULARITY_ALIASES
from training.ml.text.phrases import phrase_key
from training.ml.user_features import GENRES, NO_GENRE


def test_every_genre_alias_names_a_movielens_genre():
    matchable = set(GENRES) - {NO_GENRE}
    assert {genre for genres in GENRE_ALIASES.values() for genre in genres} == matchable


def test_every_matchable_genre_is_found_by_its_own_name():
    names = {phrase_key(alias) for alias in GENRE_ALIASES}
    for genre in set(GENRES) - {NO_GENRE}:
        assert phrase_key(genre) in names, genre


def test_the_no_genres_placeholder_is_never_an_alias():
    assert phrase_key("(no genres listed)") not in {phrase_key(alias) for alias in GENRE_ALIASES}


def test_popularity_words_map_to_popular_or_niche():
    assert set(POPULARITY_ALIASES.values()) == {"popular", "niche"}


def test_cues_have_a_sign_a_strength_and_a_known_kind():
    for phrase, (direction, strength, kind) in CUES.items():
        assert direction in (-1, 1), phrase
        assert 0 < strength <= 1, phrase
        assert kind in {"quantity", "preference", "adjacent", "request"}, phrase
