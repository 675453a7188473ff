"""Feedback fixtures: a wider catalogue, a tiny servable recommender, and a second annotator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest


@pytest.fixture
def andy(db):
    """A second annotator, for overlap and agreement."""
    from movies.services import account_create

    return account_create(username="andy", password="andy-pass-123", annotator=True)


@pytest.fixture
def wide_catalogue(catalogue):
    """The shared dozen plus 28 rated movies (ids 13-40), so every persona has unrated movies left.

    A crowd of dataset users 100-102 rates the new movies; personas 1-5 keep their histories.
    """
    from movies.models import Genre, Movie, Rater, Rating
    from movies.stats import movie_stats_refresh

    genres = list(Genre.objects.order_by("name"))
    when = datetime(2021, 1, 1, tzinfo=UTC)
    added = Movie.objects.bulk_create(
        Movie(id=movie_id, title=f"Feature {movie_id}", year=1960 + movie_id) for movie_id in range(13, 41)
    )
    Movie.genres.through.objects.bulk_create(
        Movie.genres.through(movie_id=movie.pk, genre_id=genres[movie.pk % len(genres)].pk) for movie in added
    )
    crowd = Rater.objects.bulk_create(Rater(movielens_id=crowd_id) for crowd_id in (100, 101, 102))
    Rating.objects.bulk_create(
        Rating(
            rater=rater,
            movie_id=movie_id,
            rating=1.0 + (movie_id + n) % 9 / 2,
            rated_at=when + timedelta(days=movie_id),
        )
        for n, rater in enumerate(crowd)
        for movie_id in range(13, 41)
    )
    movie_stats_refresh()
    return {**catalogue, **{movie.pk: movie for movie in added}}


def register_recommender(*, algorithm: str = "base", version: int = 1, seed: int = 0, activate: bool = True):
    """Random small embeddings over the whole catalogue, saved as an artifact and registered."""
    from django.conf import settings

    from movies.models import Movie
    from training.ml.artifacts import save_scorer
    from training.ml.scoring import NumpyRecommender
    from training.registry import model_version_activate, model_version_register

    item_ids = np.array(sorted(Movie.objects.values_list("id", flat=True)), np.int64)
    rng = np.random.default_rng(seed)
    n, dim = len(item_ids), 8
    scorer = NumpyRecommender(
        input_embeddings=rng.normal(size=(n, dim)).astype(np.float32),
        encoder_bias=np.zeros(dim, np.float32),
        item_embeddings=rng.normal(size=(n, dim)).astype(np.float32),
        item_bias=rng.normal(size=n).astype(np.float32),
        rating_weights=np.linspace(-1.0, 1.0, 10).astype(np.float32),
        recency_half_life=50.0,
    )
    name = f"{algorithm}-v{version}-test"
    save_scorer(settings.ARTIFACTS_DIR, name, scorer, item_ids)
    model_version = model_version_register(
        algorithm=algorithm,
        version=version,
        artifact=name,
        metrics={},
        config={},
        seed=seed,
        data_snapshot={},
    )
    if activate:
        model_version = model_version_activate(version=model_version)
    return model_version


@pytest.fixture
def base_model(wide_catalogue):
    """An active "base" recommender over the wide catalogue (no TensorFlow)."""
    from training.store import models

    models.clear()
    yield register_recommender()
    models.clear()


@pytest.fixture
def no_model():
    """Make sure the process's model cache does not remember another test's versions."""
    from training.store import models

    models.clear()
    yield
    models.clear()
