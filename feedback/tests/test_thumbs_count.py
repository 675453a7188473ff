"""A thumb on a recommended movie counts in the user's profile at once: the next list reflects it,
says so, and does not offer the movie again."""

from __future__ import annotations

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
