"""GET /api/recommendations/: the response contract, who may inspect what, and validation."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from movies import services
from movies.models import Rater, Rating
from training.apis import RecommendationListSerializer
from training.serving import recommend
from training.store import models as served_models

from .conftest import train_base_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def trained(taste_world):
    served_models.clear()
    run = train_base_now(epochs=4)
    assert run.status == "succeeded", run.error
    yield taste_world
    served_models.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_signed_in_user_gets_k_unrated_movies_from_the_active_model(trained, alice):
    rated = [movie.pk for movie in trained["movies"][:5]]
    for movie_id in rated:
        services.rating_set(user=alice, movie_id=movie_id, value=5.0)
    response = client_for(alice).get("/api/recommendations/?k=7")
    assert response.status_code == 200
    payload = response.json()
    assert payload["policy"] == "base" and payload["version"] == 1
    assert len(payload["results"]) == 7
    assert not {item["movie"] for item in payload["results"]} & set(rated)
    first = payload["results"][0]
    assert set(first) == {"movie", "title", "score", "reason"}
    assert first["title"].endswith(")") and first["reason"].startswith("Because you rated ")
    scores = [item["score"] for item in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_the_hand_built_response_matches_the_declared_fields(trained):
    rater = Rater.objects.order_by("id").first()
    recs = recommend(rater_id=rater.pk, k=6)
    serializer = RecommendationListSerializer()
    assert serializer.to_representation(recs) == serializers.Serializer.to_representation(serializer, recs)


def test_only_staff_choose_the_policy_or_the_user(trained, alice, sam):
    dataset_user = Rater.objects.order_by("id").first()
    for query in ("policy=base", f"user={dataset_user.movielens_id}"):
        assert client_for(alice).get(f"/api/recommendations/?{query}").status_code == 403
    response = client_for(sam).get(
        f"/api/recommendations/?user={dataset_user.movielens_id}&policy=popularity&k=5"
    )
    assert response.status_code == 200 and response.json()["policy"] == "popularity"
    inspected = client_for(sam).get(f"/api/recommendations/?user={dataset_user.movielens_id}&k=10").json()
    rated = set(Rating.objects.filter(rater=dataset_user).values_list("movie_id", flat=True))
    assert len(inspected["results"]) == 10 and not {item["movie"] for item in inspected["results"]} & rated
    assert client_for(sam).get("/api/recommendations/?user=999999").status_code == 404


@pytest.mark.parametrize("query", ["k=0", "k=101", "k=ten", "policy=nope", "user=0", "user=abc"])
def test_bad_parameters_are_refused_with_the_field_named(trained, sam, query):
    response = client_for(sam).get(f"/api/recommendations/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_anonymous_requests_are_refused(trained):
    assert APIClient().get("/api/recommendations/").status_code in (401, 403)


def test_token_authentication_loads_the_rater_with_the_account(trained, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    services.rating_set(user=alice, movie_id=trained["movies"][0].pk, value=5.0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/recommendations/?k=3")
    assert response.status_code == 200 and response.json()["policy"] == "base"
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "movies_rater"')]


def test_a_bad_or_inactive_token_is_refused(trained, alice):
    from rest_framework.authtoken.models import Token

    key = Token.objects.create(user=alice).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get("/api/recommendations/")  # 403, not 401: session authentication comes first
    assert response.status_code == 403 and response.json()["detail"] == "Invalid token."
    alice.is_active = False
    alice.save()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/recommendations/")
    assert response.status_code == 403 and "inactive" in response.json()["detail"]
