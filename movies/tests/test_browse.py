from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from movies import services

pytestmark = pytest.mark.django_db


def titles(response) -> list[str]:
    return [movie.title for movie in response.context["page"]]


def test_the_list_searches_titles_case_insensitively(client, catalogue):
    response = client.get("/movies/", {"q": "ALIEN"})
    assert sorted(titles(response)) == ["Alien", "Aliens"]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("the matrix", ["Matrix, The"]),  # stored with the article last, searched as written
        ("The Godfather", ["Godfather, The"]),
        ("matrix, the", ["Matrix, The"]),  # the stored form still matches
        ("the shin", ["Shining, The"]),  # a prefix, as while typing
        ("the heat", []),  # "Heat" has no article
        # An article alone is an ordinary substring.
        (
            "a",
            [
                "Airplane!",
                "Alien",
                "Aliens",
                "Amelie",
                "Casablanca",
                "Godfather, The",
                "Heat",
                "Matrix, The",
            ],
        ),
    ],
)
def test_the_list_finds_titles_with_their_article_in_front(client, catalogue, query, found):
    assert sorted(titles(client.get("/movies/", {"q": query}))) == found


def test_pages_show_titles_as_written(client, catalogue):
    body = client.get("/movies/", {"q": "matrix"}).content.decode()
    assert "The Matrix" in body and "Matrix, The" not in body
    assert "<h1>The Godfather" in client.get("/movies/7/").content.decode()


def test_the_list_filters_by_genre_and_year_range(client, catalogue):
    response = client.get("/movies/", {"genre": "Sci-Fi", "year_min": 1980, "year_max": 1999})
    assert sorted(titles(response)) == ["Aliens", "Matrix, The"]


def test_the_list_filters_by_minimum_number_of_ratings(client, catalogue):
    response = client.get("/movies/", {"min_ratings": 5})
    assert len(titles(response)) == 7  # movies 1..7 are rated by all five dataset users


@pytest.mark.parametrize(
    ("sort", "first"),
    [("title", "Airplane!"), ("year", "Amelie"), ("popularity", "Toy Story")],
)
def test_the_list_sorts(client, catalogue, sort, first):
    assert titles(client.get("/movies/", {"sort": sort}))[0] == first


def test_sorting_by_average_rating_puts_unrated_movies_last(client, catalogue):
    response = client.get("/movies/", {"sort": "rating"})
    averages = [movie.avg_rating for movie in response.context["page"]]
    assert averages[-1] is None
    rated = [value for value in averages if value is not None]
    assert rated == sorted(rated, reverse=True)


def test_an_impossible_year_range_shows_an_error_not_a_crash(client, catalogue):
    response = client.get("/movies/", {"year_min": 2000, "year_max": 1990})
    assert response.status_code == 200
    assert b"end year must not be before" in response.content


def test_a_bad_filter_value_names_its_field_and_the_other_filters_still_apply(client, catalogue):
    response = client.get("/movies/", {"genre": "Sci-Fi", "year_min": "abc", "year_max": 1985})
    assert sorted(titles(response)) == ["Alien"]  # Sci-Fi up to 1985; the bad lower bound is left out
    body = response.content.decode()
    assert "<li><strong>From year</strong>: Enter a whole number.</li>" in body
    assert "This filter was left out; the others still apply" in body


def test_two_bad_filters_are_each_named_once(client, catalogue):
    response = client.get("/movies/", {"year_min": "abc", "min_ratings": "-3", "q": "alien"})
    assert sorted(titles(response)) == ["Alien", "Aliens"]
    body = response.content.decode()
    assert body.count("<strong>From year</strong>") == 1
    assert body.count("<strong>Min. ratings</strong>") == 1
    assert "These filters were left out" in body


def test_an_impossible_year_range_keeps_the_start_year(client, catalogue):
    response = client.get("/movies/", {"year_min": 1999, "year_max": 1990})
    assert sorted(titles(response)) == ["Amelie", "Matrix, The", "Notting Hill"]
    assert "<strong>To year</strong>" in response.content.decode()


def test_htmx_search_returns_only_the_results_fragment(client, catalogue):
    response = client.get("/movies/", {"q": "heat"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="movie-results")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="movie-results">')
    assert "<html" not in body and "Heat" in body


def test_the_list_page_runs_a_fixed_number_of_queries_whatever_the_page_size(client, alice, catalogue):
    client.force_login(alice)
    for movie_id in (1, 2, 3):
        services.rating_set(user=alice, movie_id=movie_id, value=4.0)
    with CaptureQueriesContext(connection) as few:
        client.get("/movies/", {"q": "alien"})
    with CaptureQueriesContext(connection) as many:
        client.get("/movies/")
    # session, user, groups (role), count, page, genres prefetch, own ratings, own watchlist
    assert len(many) == len(few)
    assert len(many) <= 9, [query["sql"] for query in many.captured_queries]


def test_the_movie_page_shows_genres_tags_links_stats_and_the_users_own_rating(client, alice, catalogue):
    from datetime import UTC, datetime

    from movies.models import Movie, Rater, Tag

    movie = Movie.objects.get(pk=4)
    movie.imdb_id, movie.tmdb_id = "0133093", 603
    movie.save()
    Tag.objects.create(
        rater=Rater.objects.get(movielens_id=1),
        movie=movie,
        tag="cyberpunk",
        tagged_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    services.rating_set(user=alice, movie_id=4, value=3.5)
    client.force_login(alice)
    body = client.get("/movies/4/").content.decode()
    for expected in [
        "The Matrix",
        "1999",
        "Sci-Fi",
        "cyberpunk",
        "tt0133093",
        "themoviedb.org/movie/603",
        "Your rating: <strong>3.5</strong>",
    ]:
        assert expected in body


def test_an_unknown_movie_is_404(client, catalogue):
    assert client.get("/movies/424242/").status_code == 404


def test_pages_work_without_javascript_as_plain_forms(client, alice, catalogue):
    client.force_login(alice)
    response = client.post("/movies/5/rate/", {"rating": "4.5", "next": "/movies/?q=notting"})
    assert response.status_code == 302 and response["Location"] == "/movies/?q=notting"
    response = client.post("/movies/5/unrate/", {"next": "//evil.example.com/"})
    assert response["Location"] == "/movies/5/"


def test_rating_through_htmx_returns_the_star_widget_and_a_refresh_event(client, alice, catalogue):
    client.force_login(alice)
    response = client.post("/movies/5/rate/", {"rating": "2.5"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Trigger"] == "ratings-changed"
    assert "Your rating: <strong>2.5</strong>" in response.content.decode()


def test_a_bad_rating_from_the_page_is_an_error_message_and_nothing_is_stored(client, alice, catalogue):
    client.force_login(alice)
    response = client.post("/movies/5/rate/", {"rating": "4.25"}, HTTP_HX_REQUEST="true")
    assert "multiple of 0.5" in response.content.decode()
    assert "HX-Trigger" not in response
    assert client.get("/my/ratings/").context["page"].paginator.count == 0


def test_anonymous_visitors_are_sent_to_log_in_before_rating(client, catalogue):
    response = client.post("/movies/5/rate/", {"rating": "4"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_my_ratings_lists_only_my_own_ratings(client, alice, bob, catalogue):
    services.rating_set(user=alice, movie_id=1, value=5.0)
    services.rating_set(user=bob, movie_id=2, value=1.0)
    client.force_login(alice)
    page = client.get("/my/ratings/").context["page"]
    assert [rating.movie_id for rating in page] == [1]


@pytest.mark.parametrize("url", ["/", "/movies/", "/movies/4/", "/accounts/login/", "/accounts/signup/"])
def test_every_page_has_a_search_box_that_goes_to_the_movie_list(client, catalogue, url):
    body = client.get(url).content.decode()
    assert '<form class="site-search" method="get" action="/movies/" role="search">' in body
    assert 'name="q" id="site-search-q"' in body


def test_the_header_search_box_keeps_the_query_on_the_movie_list(client, catalogue):
    body = client.get("/movies/", {"q": "alien"}).content.decode()
    assert re.search(r'id="site-search-q"[^>]*value="alien"', body)


@pytest.fixture
def alices_ratings(alice, catalogue):
    """Alice rated Alien 5 a year ago, Heat 3 a week ago, Toy Story 5 and Casablanca 1 today."""
    from datetime import timedelta

    from django.utils import timezone

    from movies.models import Rating

    for movie_id, value in [(2, 5.0), (3, 3.0), (1, 5.0), (10, 1.0)]:
        services.rating_set(user=alice, movie_id=movie_id, value=value)
    now = timezone.now()
    Rating.objects.filter(rater__user=alice, movie_id=2).update(rated_at=now - timedelta(days=400))
    Rating.objects.filter(rater__user=alice, movie_id=3).update(rated_at=now - timedelta(days=6))
    Rating.objects.filter(rater__user=alice, movie_id=1).update(rated_at=now - timedelta(hours=2))
    return alice


def my_rated(client, **params) -> list[int]:
    return [rating.movie_id for rating in client.get("/my/ratings/", params).context["page"]]


@pytest.mark.parametrize(
    ("params", "movie_ids"),
    [
        ({}, [10, 1, 3, 2]),  # newest first
        ({"sort": "oldest"}, [2, 3, 1, 10]),
        ({"sort": "highest"}, [1, 2, 3, 10]),  # ties: the more recent first
        ({"sort": "lowest"}, [10, 3, 1, 2]),
        ({"sort": "title"}, [2, 10, 3, 1]),
        ({"rating": "5"}, [1, 2]),
        ({"genre": "Drama"}, [10, 3]),
        ({"rated": "week"}, [10, 1, 3]),
        ({"rated": "day"}, [10, 1]),
        ({"rating": "5", "rated": "month", "sort": "title"}, [1]),
    ],
)
def test_my_ratings_sort_and_filter_by_rating_date_and_genre(client, alices_ratings, params, movie_ids):
    client.force_login(alices_ratings)
    assert my_rated(client, **params) == movie_ids


def test_a_bad_my_ratings_filter_is_named_and_the_others_still_apply(client, alices_ratings):
    client.force_login(alices_ratings)
    response = client.get("/my/ratings/", {"rating": "7", "genre": "Drama"})
    assert [rating.movie_id for rating in response.context["page"]] == [10, 3]
    assert "<strong>Stars</strong>: Select a valid choice." in response.content.decode()


def test_filtered_my_ratings_say_how_many_match_and_keep_the_filters_across_pages(client, alices_ratings):
    client.force_login(alices_ratings)
    body = client.get("/my/ratings/", {"rating": "5"}).content.decode()
    assert "2 of your ratings match." in body and "4 ratings." in body
    response = client.get("/my/ratings/", {"genre": "Horror", "rating": "1"})
    assert "None of your ratings match these filters." in response.content.decode()


def test_my_ratings_filters_as_an_htmx_fragment(client, alices_ratings):
    client.force_login(alices_ratings)
    response = client.get(
        "/my/ratings/", {"sort": "title"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="movie-results"
    )
    body = response.content.decode()
    assert body.startswith('<div id="movie-results">') and "<html" not in body


def test_a_rating_made_seconds_ago_reads_just_now(client, alices_ratings):
    client.force_login(alices_ratings)
    body = client.get("/my/ratings/").content.decode()
    assert "rated just now" in body and "0 minutes" not in body
    assert "rated 2\xa0hours ago" in body and "rated 6\xa0days ago" in body


def test_my_ratings_take_a_fixed_number_of_queries_whatever_the_filters(client, alices_ratings):
    client.force_login(alices_ratings)
    with CaptureQueriesContext(connection) as few:
        client.get("/my/ratings/", {"genre": "Drama"})
    services.rating_set(user=alices_ratings, movie_id=7, value=4.0)
    services.rating_set(user=alices_ratings, movie_id=8, value=4.0)
    with CaptureQueriesContext(connection) as more:
        client.get("/my/ratings/")
    assert len(more) == len(few)
