"""A thumb on a recommended movie counts in the user's profile at once: the next list reflects it,
says so, and does not offer the movie again."""

from __future__ import annotations

import numpy as np

from feedback import services
from movies.services import rating_set
from training.serving import recommendations_for_user


def test_a_like_changes_the_next_list_and_the_list_says_which_like_moved_a_movie(base_model, alice):
    for movie_id in (1, 2, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=3.0)
    before = recommendations_for_user(user=alice, k=10)
    liked = before.items[-1].movie.pk  # a movie the list ranks low
    services.item_feedback_set(user=alice, movie_id=liked, kind="up")
    after = recommendations_for_user(user=alice, k=10)
    shown = [item.movie.pk for item in after.items]
    assert liked not in shown  # the thumb is in the profile, as a rating would be
    assert shown != [item.movie.pk for item in before.items if item.movie.pk != liked][: len(shown)]
    liked_title = before.items[-1].movie.display_title
    assert any(item.reason == f"Because you liked {liked_title}" for item in after.items)
    # Taking the thumb back restores the list exactly: nothing else was learned from it.
    services.item_feedback_set(user=alice, movie_id=liked, kind=None)
    assert [item.movie.pk for item in recommendations_for_user(user=alice, k=10).items] == [
        item.movie.pk for item in before.items
    ]


def test_a_rating_of_the_same_movie_wins_over_its_thumb(base_model, alice, settings):
    for movie_id in (1, 2, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=3.0)
    services.item_feedback_set(user=alice, movie_id=6, kind="down")
    disliked = [item.movie.pk for item in recommendations_for_user(user=alice, k=10).items]
    rating_set(user=alice, movie_id=6, value=5.0)
    rated = [item.movie.pk for item in recommendations_for_user(user=alice, k=10).items]
    settings.THUMB_DOWN_RATING = 5.0  # the thumb no longer matters once the movie is rated
    assert [item.movie.pk for item in recommendations_for_user(user=alice, k=10).items] == rated
    assert 6 not in disliked and 6 not in rated


class SignalMinded:
    """A policy scorer that ranks movies by id, except that a text signal lifts Horror movies first."""

    signal_dim = 3

    def __init__(self, horror_index: set[int], n_items: int):
        self.horror, self.n = horror_index, n_items

    def top_k(self, history, k, signals=None, key=None):
        rated = set(history.item_idx.tolist())
        lifted = signals is not None and float(np.asarray(signals).sum()) != 0.0
        order = sorted(
            (i for i in range(self.n) if i not in rated), key=lambda i: (not (lifted and i in self.horror), i)
        )[:k]
        return np.asarray(order, np.int64), -np.arange(len(order), dtype=np.float32)

    def explain_many(self, history, item_idx):
        return np.full(len(item_idx), history.item_idx[0], np.int64)


def test_a_movie_moved_up_by_what_the_user_said_says_so_in_their_words(base_model, alice):
    from feedback.models import ListFeedback
    from movies.models import Movie
    from training.serving import recommend_from
    from training.store import LoadedModel

    for movie_id in (1, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=4.0)
    item_ids = np.array(sorted(Movie.objects.values_list("id", flat=True)), np.int64)
    horror = {
        int(np.searchsorted(item_ids, m))
        for m in Movie.objects.filter(genres__name="Horror").values_list("id", flat=True)
    }
    loaded = LoadedModel(99, "ppo", 1, SignalMinded(horror, len(item_ids)), item_ids)
    rater = alice.rater.pk

    plain = recommend_from(loaded, rater_id=rater, k=5)
    assert not any(item.reason.startswith("Moved up") for item in plain.items)
    ListFeedback.objects.create(
        user=alice,
        text="more horror please",
        signals=[{"aspect": "genre", "value": "Horror", "polarity": 0.8, "span": "horror"}],
    )
    steered = recommend_from(loaded, rater_id=rater, k=5)
    reasons = {item.movie.pk: item.reason for item in steered.items}
    before = [item.movie.pk for item in plain.items]
    entered = [movie_id for movie_id in reasons if movie_id not in before]  # Horror movies the signal lifted
    assert entered and all(reasons[movie_id] == "Moved up by what you said: “horror”" for movie_id in entered)
    kept = [
        movie_id for rank, movie_id in enumerate(reasons) if rank < len(before) and before[rank] == movie_id
    ]
    assert kept and all(reasons[movie_id].startswith("Because you rated") for movie_id in kept)  # not moved


def test_the_signal_a_movie_answers_is_named_else_the_comments_are(catalogue):
    from movies.models import Movie
    from training.serving import signal_reason

    aliens = Movie.objects.get(pk=9)  # 1986, Action, Horror, Sci-Fi
    said = [
        {"aspect": "decade", "value": "1980s", "polarity": 0.7, "span": "eighties films"},
        {"aspect": "genre", "value": "Comedy", "polarity": 0.9, "span": "comedies"},
        {"aspect": "genre", "value": "Horror", "polarity": -0.5, "span": "horror"},
    ]
    assert signal_reason(aliens, said) == "Moved up by what you said: “eighties films”"
    assert signal_reason(aliens, said[1:]) == "Moved up by your comments on earlier lists"


def test_reactions_count_as_the_item_feedback_experiment_measured_them(settings):
    from training.ml.item_feedback import ItemFeedbackConfig

    measured = ItemFeedbackConfig()
    assert (
        measured.like_rating,
        measured.dislike_rating,
        measured.not_interested_rating,
    ) == (settings.THUMB_UP_RATING, settings.THUMB_DOWN_RATING, settings.NOT_INTERESTED_RATING)


HORROR_SIGNAL = {"aspect": "genre", "value": "Horror", "polarity": 0.8, "span": "horror"}


def test_the_selectors_take_a_planted_hidden_movie_as_an_argument_and_read_no_database(
    base_model, alice, django_assert_num_queries
):
    from dataclasses import replace

    from training.profiles import profile_for
    from training.serving import model_slate, rank
    from training.store import models

    for movie_id in (1, 2, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=4.0)
    loaded = models.served()
    profile = profile_for(rater_id=alice.rater.pk)
    with django_assert_num_queries(0):
        plain = rank(loaded, profile, k=10)
        first = plain.movie_ids[0]
        planted = replace(profile, reactions=(*profile.reactions, (first, "not_interested", 0.0)))
        hidden = rank(loaded, planted, k=10)
        slate = model_slate(loaded, planted, k=10, rng=np.random.default_rng(0))
    assert planted.hidden == {first} and not profile.hidden
    assert first not in hidden.movie_ids and first not in slate.movie_ids
    assert len(hidden.movie_ids) == 10 and hidden.movie_ids != plain.movie_ids


def test_the_selector_takes_planted_text_signals_as_an_argument_and_reads_no_database(
    base_model, alice, django_assert_num_queries
):
    from dataclasses import replace

    from movies.models import Movie
    from training.profiles import profile_for
    from training.serving import rank
    from training.store import LoadedModel

    for movie_id in (1, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=4.0)
    item_ids = np.array(sorted(Movie.objects.values_list("id", flat=True)), np.int64)
    horror_ids = set(Movie.objects.filter(genres__name="Horror").values_list("id", flat=True))
    horror = {int(np.searchsorted(item_ids, m)) for m in horror_ids}
    loaded = LoadedModel(99, "ppo", 1, SignalMinded(horror, len(item_ids)), item_ids)
    profile = profile_for(rater_id=alice.rater.pk, signals=True)  # none in the database
    with django_assert_num_queries(0):
        plain = rank(loaded, profile, k=5)
        said = rank(loaded, replace(profile, signals=(HORROR_SIGNAL,)), k=5)
    assert not profile.signals and not plain.moved
    assert said.moved and said.moved <= horror_ids and said.moved <= set(said.movie_ids)
    assert said.movie_ids != plain.movie_ids


def test_for_you_reads_the_profile_once_and_a_few_rows_more(base_model, alice, settings):
    """Eight queries for a list of ten: the online comparison, the served decision, the ratings, the
    reactions, the movies and their genres, the served version's id and the shown list written.
    Reading the profile in one place must not make it more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.FOR_YOU_EXPLORE_SHARE = 0.0
    for movie_id in (1, 2, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=4.0)
    services.item_feedback_set(user=alice, movie_id=6, kind="up")
    services.item_feedback_set(user=alice, movie_id=7, kind="not_interested")
    recommendations_for_user(user=alice, k=10)  # the model store loads the served version
    with CaptureQueriesContext(connection) as queries:
        shown = recommendations_for_user(user=alice, k=10)
    assert len(shown.items) == 10 and not {6, 7} & {item.movie.pk for item in shown.items}
    assert len(queries) <= 8, [query["sql"] for query in queries.captured_queries]
