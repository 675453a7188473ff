""" "More like this": the nearest movies by the active recommender's item embeddings, on pages and the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from movies.models import Genre, Movie
from training import registry
from training.ml.artifacts import save_scorer
from training.ml.scoring import NumpyRecommender
from training.serving import similar_movies as similar_to
from training.store import models as served_models

pytestmark = pytest.mark.django_db

# Six movies; the item embeddings put 2 next to 1, then 3, while 4 points the other way.
# Movie 5 is as close to 1 as 2 is, but only two people rated it. Movie 6 is not in the model.
MOVIE_IDS = [1, 2, 3, 4, 5]
ITEM_EMBEDDINGS = np.array(
    [[1.0, 0.0], [0.9, 0.1], [0.6, 0.8], [-1.0, 0.0], [0.9, 0.1]],
    np.float32,
)
NUM_RATINGS = {1: 50, 2: 40, 3: 30, 4: 60, 5: 2, 6: 10}
GENRES = {
    1: ["Comedy", "Drama"],
    2: ["Drama"],
    3: ["Comedy"],
    4: ["Horror"],
    5: ["Comedy", "Drama"],
    6: ["Comedy", "Drama"],
}


@pytest.fixture
def catalogue():
    genres = {name: Genre.objects.create(name=name) for name in ("Comedy", "Drama", "Horror")}
    for movie_id, count in NUM_RATINGS.items():
        movie = Movie.objects.create(id=movie_id, title=f"Movie {movie_id}", year=2000, num_ratings=count)
        movie.genres.set([genres[name] for name in GENRES[movie_id]])


@pytest.fixture
def recommender(catalogue):
    served_models.clear()
    scorer = NumpyRecommender(
        input_embeddings=ITEM_EMBEDDINGS,
        encoder_bias=np.zeros(2, np.float32),
        item_embeddings=ITEM_EMBEDDINGS,
        item_bias=np.zeros(len(MOVIE_IDS), np.float32),
        rating_weights=np.ones(10, np.float32),
        recency_half_life=0.0,
    )
    save_scorer(Path(settings.ARTIFACTS_DIR), "base-1", scorer, np.array(MOVIE_IDS))
    version = registry.model_version_register(
        algorithm="base", version=1, artifact="base-1", metrics={}, config={}, seed=0, data_snapshot={}
    )
    registry.model_version_activate(version=version)
    yield version
    served_models.clear()


def similar_movies(movie_id: int, **options):
    return similar_to(movie=Movie.objects.prefetch_related("genres").get(pk=movie_id), **options)


def test_the_cosine_of_every_item_embedding_to_one_movie() -> None:
    scorer = NumpyRecommender(
        ITEM_EMBEDDINGS, np.zeros(2), 3 * ITEM_EMBEDDINGS, np.zeros(5), np.ones(10), 0.0
    )  # the length of an embedding does not count, only its direction
    similarity = scorer.similar_items(0)
    assert similarity[0] == pytest.approx(1.0)
    assert similarity[2] == pytest.approx(0.6)
    assert similarity[3] == pytest.approx(-1.0)
    assert similarity[1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    nearest, cosines = scorer.nearest_items(0, 2)
    assert sorted(nearest.tolist()) == [1, 4]  # 1 and 4 share a direction; 0 itself is left out
    assert cosines == pytest.approx([similarity[j] for j in nearest])
    assert sorted(scorer.nearest_items(0, 10)[0].tolist()) == [1, 2, 3, 4]  # at most the others


def test_nearest_first_without_the_movie_itself_and_a_rarely_rated_movie_shrunk(recommender) -> None:
    similar = similar_movies(1, k=4)
    assert similar.version == 1
    assert [item.movie.pk for item in similar.items] == [2, 3, 5, 4]
    cosine = 0.9 / np.hypot(0.9, 0.1)
    assert similar.items[0].score == pytest.approx(cosine * 40 / 50)  # n / (n + 10)
    assert similar.items[2].score == pytest.approx(cosine * 2 / 12)  # same direction as 2, two ratings
    assert similar.items[0].reason == "Often liked by people who liked Movie 1 (2000)"
    assert [item.movie.pk for item in similar_movies(1, k=2).items] == [2, 3]


def test_movies_the_recommender_cannot_place_get_the_most_rated_movies_in_the_same_genres(recommender):
    unknown = similar_movies(6)  # in the catalogue, not in the model
    assert unknown.policy == "genres" and unknown.version is None
    # Most genres shared first, then most rated; movie 5 has too few ratings to be shown.
    assert [item.movie.pk for item in unknown.items] == [1, 2, 3]
    assert [item.reason for item in unknown.items] == ["Also Comedy, Drama", "Also Drama", "Also Comedy"]
    rarely_rated = similar_movies(5, k=2)  # known to the model, but from two ratings
    assert rarely_rated.policy == "genres"
    assert [item.movie.pk for item in rarely_rated.items] == [1, 6]


def test_without_an_active_recommender_genres_decide(recommender):
    recommender.status = recommender.Status.RETIRED
    recommender.save(update_fields=["status"])
    similar = similar_movies(1)
    assert (similar.policy, [item.movie.pk for item in similar.items]) == ("genres", [6, 2, 3])


def test_nothing_for_a_movie_without_genres(recommender):
    Movie.objects.create(id=7, title="Movie 7", num_ratings=3)
    assert similar_movies(7).items == []


def test_the_movie_page_loads_more_like_this_from_its_own_url(client, recommender) -> None:
    page = client.get("/movies/1/").content.decode()
    assert 'hx-get="/movies/1/similar/" hx-trigger="load"' in page and 'href="/movies/1/similar/"' in page
    fragment = client.get("/movies/1/similar/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="similar"') and "<html" not in fragment
    assert "More like this" in fragment and "often liked by the same people" in fragment
    assert fragment.index("/movies/2/") < fragment.index("/movies/3/")
    fragment = client.get("/movies/5/similar/", HTTP_HX_REQUEST="true").content.decode()
    assert "in the same genres: too few people rated this one" in fragment
    page = client.get("/movies/1/similar/").content.decode()  # without htmx: a page of its own
    assert "<html" in page and "often liked by the same people" in page and 'href="/movies/1/"' in page
    assert client.get("/movies/999/similar/").status_code == 404


def test_the_movie_page_falls_back_to_genres_without_a_model(client, catalogue) -> None:
    served_models.clear()
    page = client.get("/movies/1/similar/", HTTP_HX_REQUEST="true").content.decode()
    assert "More like this" in page and "Well-known movies in the same genres." in page
    assert page.index("/movies/6/") < page.index("/movies/2/") < page.index("/movies/3/")


def test_the_api_lists_similar_movies_to_anyone(recommender) -> None:
    response = APIClient().get("/api/movies/1/similar/?k=2")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1
    assert [(row["movie"], row["title"]) for row in body["results"]] == [
        (2, "Movie 2 (2000)"),
        (3, "Movie 3 (2000)"),
    ]


@pytest.mark.parametrize("query", ["k=0", "k=51", "k=many"])
def test_the_api_refuses_a_bad_k(recommender, query) -> None:
    response = APIClient().get(f"/api/movies/1/similar/?{query}")
    assert response.status_code == 400
    assert "k" in response.json()


def test_the_api_answers_404_for_an_unknown_movie(recommender) -> None:
    response = APIClient().get("/api/movies/999/similar/")
    assert response.status_code == 404
