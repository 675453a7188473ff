from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from movies import services
from movies.exceptions import InvalidRating
from movies.models import Rating

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_anyone_can_list_movies_with_the_page_filters(api, catalogue):
    response = api.get("/api/movies/", {"genre": "Horror", "sort": "year"})
    assert response.status_code == 200
    assert [movie["title"] for movie in response.json()["results"]] == ["Aliens", "Shining, The", "Alien"]
    assert response.json()["count"] == 3


def test_a_bad_filter_is_a_400_with_a_field_message(api, catalogue):
    response = api.get("/api/movies/", {"year_min": "nineteen"})
    assert response.status_code == 400
    assert "year_min" in response.json()


def test_the_movie_search_finds_a_title_written_with_its_article_in_front(api, catalogue):
    response = api.get("/api/movies/", {"q": "the godfather"})
    assert [movie["name"] for movie in response.json()["results"]] == ["The Godfather"]


def test_movie_detail_is_addressed_by_movielens_id(api, catalogue):
    response = api.get("/api/movies/4/")
    assert response.json()["title"] == "Matrix, The"  # as in the MovieLens release
    assert response.json()["name"] == "The Matrix"  # as people write it
    assert response.json()["genres"] == ["Action", "Sci-Fi"]
    assert api.get("/api/movies/99999/").status_code == 404


def test_genres_are_listed(api, catalogue):
    assert [g["name"] for g in api.get("/api/genres/").json()] == [
        "Action",
        "Comedy",
        "Drama",
        "Horror",
        "Romance",
        "Sci-Fi",
    ]


def test_a_token_authenticates_api_calls(api, alice, catalogue):
    response = api.post(
        "/api/auth/token/", {"username": "alice", "password": "alice-pass-123"}, format="json"
    )
    token = response.json()["token"]
    assert (
        api.post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json").status_code
        == 400
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.post("/api/ratings/", {"movie": 1, "rating": 4.5}, format="json").status_code == 201


def test_ratings_need_authentication(api, catalogue):
    assert api.get("/api/ratings/").status_code in (401, 403)
    assert api.post("/api/ratings/", {"movie": 1, "rating": 4}, format="json").status_code in (401, 403)


def test_create_update_list_and_delete_my_rating(api, alice, catalogue):
    api.force_authenticate(alice)
    created = api.post("/api/ratings/", {"movie": 2, "rating": 3.5}, format="json")
    assert created.status_code == 201
    assert created.json()["movie"] == 2 and created.json()["rating"] == 3.5
    assert api.put("/api/ratings/2/", {"rating": 5}, format="json").json()["rating"] == 5.0
    assert [r["movie"] for r in api.get("/api/ratings/").json()["results"]] == [2]
    assert api.delete("/api/ratings/2/").status_code == 204
    assert api.get("/api/ratings/2/").status_code == 404


def test_rating_the_same_movie_twice_is_a_400_not_a_second_row(api, alice, catalogue):
    api.force_authenticate(alice)
    api.post("/api/ratings/", {"movie": 2, "rating": 3.5}, format="json")
    response = api.post("/api/ratings/", {"movie": 2, "rating": 1}, format="json")
    assert response.status_code == 400 and "movie" in response.json()
    assert Rating.objects.filter(rater__user=alice).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"movie": 1, "rating": 5.5}, "rating"),
        ({"movie": 1, "rating": 0}, "rating"),
        ({"movie": 1, "rating": 3.3}, "rating"),
        ({"movie": 1, "rating": "great"}, "rating"),
        ({"movie": 1, "rating": True}, "rating"),  # not 1.0
        ({"movie": 1, "rating": False}, "rating"),
        ({"movie": True, "rating": 3}, "movie"),  # not movie 1
        ({"movie": 424242, "rating": 3}, "movie"),
        ({"movie": "x", "rating": 3}, "movie"),
        ({"rating": 3}, "movie"),
        ({"movie": 1}, "rating"),
    ],
)
def test_bad_rating_input_is_a_400_naming_the_field(api, alice, catalogue, body, field):
    api.force_authenticate(alice)
    response = api.post("/api/ratings/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Rating.objects.filter(rater__user=alice).exists()


def test_a_boolean_is_not_a_rating_in_an_update_or_in_the_service(api, alice, catalogue):
    services.rating_set(user=alice, movie_id=3, value=2.0)
    api.force_authenticate(alice)
    response = api.put("/api/ratings/3/", {"rating": True}, format="json")
    assert response.status_code == 400
    assert response.json()["rating"] == ["A rating must be a number, not true or false."]
    with pytest.raises(InvalidRating):
        services.rating_set(user=alice, movie_id=4, value=True)
    assert Rating.objects.get(rater__user=alice, movie_id=3).rating == 2.0


@pytest.mark.parametrize(
    ("serializer", "body", "field"),
    [
        ("feedback.apis.ComparisonInputSerializer", {"task": True, "choice": "left"}, "task"),
        (
            "feedback.apis.ComparisonInputSerializer",
            {"task": 1, "choice": "left", "confidence": True},
            "confidence",
        ),
        (
            "feedback.apis.ComparisonInputSerializer",
            {"task": 1, "choice": "left", "decision_ms": False},
            "decision_ms",
        ),
        ("feedback.apis.ItemFeedbackInputSerializer", {"movie": True, "kind": "up"}, "movie"),
        ("feedback.apis.ListFeedbackInputSerializer", {"text": "ok", "items": [True, 2]}, "items"),
        ("training.apis.TrainingRunStartSerializer", {"kind": "base", "seed": True}, "seed"),
    ],
)
def test_no_numeric_input_of_the_api_takes_a_boolean(serializer, body, field):
    from django.utils.module_loading import import_string

    checked = import_string(serializer)(data=body)
    assert not checked.is_valid()
    assert field in checked.errors


def test_a_malformed_body_is_a_400(api, alice, catalogue):
    api.force_authenticate(alice)
    response = api.generic("POST", "/api/ratings/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_another_users_rating_is_neither_readable_nor_writable(api, alice, bob, catalogue):
    services.rating_set(user=bob, movie_id=3, value=2.0)
    api.force_authenticate(alice)
    assert api.get("/api/ratings/3/").status_code == 404
    assert api.put("/api/ratings/3/", {"rating": 5}, format="json").status_code == 404
    assert api.delete("/api/ratings/3/").status_code == 404
    assert api.get("/api/ratings/").json()["count"] == 0
    assert Rating.objects.get(rater__user=bob, movie_id=3).rating == 2.0


def test_the_openapi_schema_describes_the_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in [
        "/api/movies/",
        "/api/movies/{movie_id}/",
        "/api/genres/",
        "/api/ratings/",
        "/api/auth/token/",
    ]:
        assert path in schema["paths"]
    assert api.get("/api/docs/").status_code == 200
