"""The controls on "For you" and on GET /api/recommendations/: re-ranked at request time, validated."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from movies.models import Movie
from training.models import ShownList

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def genres_of(movie_id: int) -> set[str]:
    return set(Movie.objects.get(pk=movie_id).genres.values_list("name", flat=True))


def shown_movies(response) -> list[int]:
    return [rec.movie.pk for rec in response.context["recs"].items]


def test_the_page_shows_the_controls_as_is(catalogue, alice):
    response = client_for(alice).get("/for-you/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="popularity"' in html and 'name="recency"' in html and 'name="genre"' in html
    assert "Horror</option>" in html and "filter-errors" not in html


def test_a_genre_focus_puts_that_genre_first_and_the_shown_list_is_logged_as_shown(catalogue, alice):
    response = client_for(alice).get("/for-you/?genre=Horror")
    movies = shown_movies(response)
    assert "Horror" in genres_of(movies[0]) and "Horror" in genres_of(movies[1])
    shown = ShownList.objects.get()
    assert shown.movies == movies and shown.steered


def test_more_recent_leads_with_newer_movies_than_less_recent(catalogue, alice):
    client = client_for(alice)
    newer = shown_movies(client.get("/for-you/?recency=more"))
    older = shown_movies(client.get("/for-you/?recency=less"))
    year = {movie.pk: movie.year or 1990 for movie in Movie.objects.all()}
    assert year[newer[0]] > year[older[0]]


def test_more_popular_leads_with_a_more_rated_movie_than_less_popular(catalogue, alice):
    client = client_for(alice)
    popular = shown_movies(client.get("/for-you/?popularity=more"))
    obscure = shown_movies(client.get("/for-you/?popularity=less"))
    count = dict(Movie.objects.values_list("pk", "num_ratings"))
    assert sum(count[pk] for pk in popular[:5]) > sum(count[pk] for pk in obscure[:5])


def test_a_bad_control_is_named_and_the_others_still_apply(catalogue, alice):
    response = client_for(alice).get("/for-you/?popularity=lots&genre=Horror")
    assert response.status_code == 200
    html = response.content.decode()
    assert "filter-errors" in html and "<strong>Popular</strong>" in html
    assert "Horror" in genres_of(shown_movies(response)[0])
    assert response.context["form"]["popularity"].value() == ""  # the select shows "As is", as applied


def test_an_htmx_request_returns_the_list_partial(catalogue, alice):
    response = client_for(alice).get("/for-you/?genre=Comedy", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "<h1>" not in html and 'id="recommendations"' in html
    assert 'hx-get="/for-you/?genre=Comedy"' in html  # a rating refreshes the steered list, not the plain one


def test_the_api_takes_the_same_controls(catalogue, alice):
    client = APIClient()
    client.force_authenticate(alice)
    response = client.get("/api/recommendations/?genre=Horror&popularity=more&recency=less&k=3")
    assert response.status_code == 200
    assert "Horror" in genres_of(response.json()["results"][0]["movie"])


@pytest.mark.parametrize("query", ["popularity=lots", "recency=1", "genre=Western"])
def test_the_api_refuses_bad_controls_with_the_field_named(catalogue, alice, query):
    client = APIClient()
    client.force_authenticate(alice)
    response = client.get(f"/api/recommendations/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_a_steered_list_stays_out_of_an_online_comparison(catalogue, alice, monkeypatch):
    from training import serving
    from training.ml.steering import Steering

    asked = []
    monkeypatch.setattr(serving, "interleaved_for", lambda **kwargs: asked.append(kwargs))  # None: not in it
    serving.recommendations_for_user(user=alice, k=5)
    assert len(asked) == 1  # as is: the user may be in the comparison's share
    steered = serving.recommendations_for_user(user=alice, k=5, steering=Steering(genre="Horror"))
    assert len(asked) == 1 and len(steered.items) == 5
    assert list(ShownList.objects.order_by("id").values_list("movies", flat=True))[-1] == [
        item.movie.pk for item in steered.items
    ]
