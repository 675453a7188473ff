from __future__ import annotations

import pytest

from movies import services
from movies.exceptions import InvalidRating, UnknownMovie
from movies.models import Movie, Rating

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", [0.5, 1, "3.5", 5.0, 4.0])
def test_it_accepts_half_star_steps_from_half_to_five(value):
    assert services.validate_rating_value(value) == float(value)


@pytest.mark.parametrize("value", [0, 0.0, 5.5, 6, -1, 3.25, 4.1, "abc", "nan", "inf", None, ""])
def test_it_rejects_ratings_outside_the_scale_or_off_the_half_steps(value):
    with pytest.raises(InvalidRating):
        services.validate_rating_value(value)


def test_rating_a_movie_stores_it_with_the_account_and_a_timestamp(alice, catalogue):
    rating = services.rating_set(user=alice, movie_id=3, value=4.5)
    assert rating.rater.user == alice
    assert rating.rated_at is not None
    assert Rating.objects.filter(rater__user=alice).count() == 1


def test_changing_a_rating_keeps_one_row_and_updates_the_movie_average(alice, catalogue):
    before = Movie.objects.get(pk=12)
    assert before.num_ratings == 0 and before.avg_rating is None
    services.rating_set(user=alice, movie_id=12, value=2.0)
    services.rating_set(user=alice, movie_id=12, value=4.0)
    movie = Movie.objects.get(pk=12)
    assert Rating.objects.filter(rater__user=alice, movie_id=12).count() == 1
    assert movie.num_ratings == 1
    assert movie.avg_rating == pytest.approx(4.0)


def test_the_movie_statistics_track_every_change_exactly(alice, bob, catalogue):
    services.rating_set(user=alice, movie_id=1, value=5.0)
    services.rating_set(user=bob, movie_id=1, value=0.5)
    services.rating_set(user=alice, movie_id=1, value=3.0)
    services.rating_delete(user=bob, movie_id=1)
    movie = Movie.objects.get(pk=1)
    values = list(Rating.objects.filter(movie_id=1).values_list("rating", flat=True))
    assert movie.num_ratings == len(values)
    assert movie.avg_rating == pytest.approx(sum(values) / len(values))


def test_removing_the_only_rating_clears_the_average(alice, catalogue):
    services.rating_set(user=alice, movie_id=12, value=3.0)
    assert services.rating_delete(user=alice, movie_id=12) is True
    movie = Movie.objects.get(pk=12)
    assert (movie.num_ratings, movie.avg_rating) == (0, None)
    assert services.rating_delete(user=alice, movie_id=12) is False


def test_it_refuses_to_rate_an_unknown_movie(alice, catalogue):
    with pytest.raises(UnknownMovie):
        services.rating_set(user=alice, movie_id=999_999, value=3.0)
    assert not Rating.objects.filter(rater__user=alice).exists()
